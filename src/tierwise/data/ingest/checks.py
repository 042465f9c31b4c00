"""Checks: which staged rows are rejected, and why, in plain words per file and column.

Every check is SQL over the stage (``tierwise.data.ingest.stage``), collected into the
rejects work table with the user's header for the column that failed.
"""

from __future__ import annotations

import duckdb

from tierwise.data.ingest.fields import (
    Kind,
    Plausible,
    fields_of,
)
from tierwise.data.ingest.parsing import (
    problem_sql,
    sql_identifier,
    sql_string,
)
from tierwise.data.ingest.stage import (
    _KEYS,
    CONFLICTS,
    INCOMING,
    REJECTS,
    REPEATED,
    STAGE,
    _Plan,
    _text_column,
)

# Checks across the fields of a parsed row, by kind: (field, condition, reason SQL). A row
# failing any of them is rejected with every failed check's reason, like a bad value.
_ROW_CHECKS: dict[Kind, tuple[tuple[str, str, str], ...]] = {
    "payments": (
        ("amount", "amount <= 0", "'amount must be more than 0: ' || amount"),
        ("paid_amount", "paid_amount < 0", "'paid amount is negative: ' || paid_amount"),
        ("paid_amount", "paid_amount > amount",
         "'paid amount ' || paid_amount || ' is more than the invoice amount ' || amount"),
        ("paid_amount", "paid_amount > 0 AND paid_date IS NULL",
         "'paid amount without a paid date'"),
        ("due_date", "due_date < invoice_date",
         "'due date ' || due_date || ' is before the invoice date ' || invoice_date"),
        ("paid_date", "paid_date < invoice_date",
         "'paid date ' || paid_date || ' is before the invoice date ' || invoice_date"),
    ),
}


def _reject_bad_values(con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan],
                       plausible: Plausible) -> None:
    """Collect rows with a missing, unparseable or implausible value into ``__tw_rejects``.

    Checks read the parsed stage, so the parsing expressions are not evaluated again."""
    problems = []
    for f in fields_of(kind):
        column = _header_by_file(plans, f.name)
        value = sql_identifier(f.name)
        if f.type == "text":
            if f.required:
                problems.append(_problem(f"{value} IS NULL", column, "'missing required value'"))
            continue
        text = _text_column(f)
        if f.required:
            problems.append(_problem(f"{text} IS NULL", column, "'missing required value'"))
        reason = problem_sql(f.type, f.name, text)
        problems.append(_problem(f"{text} IS NOT NULL AND {value} IS NULL", column, reason))
        if f.type == "date":
            earliest, latest = plausible.earliest.isoformat(), plausible.latest().isoformat()
            problems.append(_problem(
                f"{value} NOT BETWEEN DATE '{earliest}' AND DATE '{latest}'", column,
                f"'date outside the plausible range {earliest} – {latest} "
                f"(import: in tierwise.yaml): ' || {value}"))
        if f.type == "amount":
            bound = f"{plausible.max_amount:.17g}"
            problems.append(_problem(
                f"abs({value}) > {bound}", column,
                f"'amount beyond the plausible bound ±{plausible.max_amount:g} "
                f"(import: max_amount in tierwise.yaml): ' || {text}"))
    found = f"list_filter([{', '.join(problems)}], lambda p: p IS NOT NULL)"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REJECTS} AS "
        f"SELECT __file, __row, {_REASON_SQL} AS __reason, {_COLUMN_SQL} AS __column "
        f"FROM (SELECT __file, __row, __problem, {found} AS __problems FROM {STAGE}) "
        f"WHERE __problem IS NOT NULL OR len(__problems) > 0"
    )


def _reject_inconsistent_rows(
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan]
) -> None:
    """Add rows whose values parse but contradict each other (``_ROW_CHECKS``) to the rejects."""
    problems = [
        _problem(condition, _header_by_file(plans, name), reason)
        for name, condition, reason in _ROW_CHECKS[kind]
    ]
    found = f"list_filter([{', '.join(problems)}], lambda p: p IS NOT NULL)"
    con.execute(
        f"INSERT INTO {REJECTS} (__file, __row, __reason, __column) "
        f"SELECT __file, __row, {_REASON_SQL}, {_COLUMN_SQL} "
        f"FROM (SELECT __file, __row, CAST(NULL AS VARCHAR) AS __problem, "
        f"{found} AS __problems FROM {_GOOD_ROWS}) WHERE len(__problems) > 0"
    )


def _header_by_file(plans: list[_Plan], field_name: str) -> str:
    """SQL for the source header of a field in the row's file: rejects name the user's column."""
    whens = " ".join(
        f"WHEN {plan.index} THEN {sql_string(plan.header_of(field_name) or field_name)}"
        for plan in plans
    )
    return f"(CASE __file {whens} END)"


def _problem(condition: str, column: str, reason: str) -> str:
    return f"CASE WHEN {condition} THEN {{'column': {column}, 'reason': {reason}}} END"


# One problem reads as its reason; several name their column each: "金额: not an amount: ...".
_REASON_SQL = (
    "coalesce(__problem, CASE len(__problems) WHEN 1 THEN __problems[1].reason "
    "ELSE array_to_string(list_transform(__problems, lambda p: p.column || ': ' || p.reason), "
    "'; ') END)"
)
_COLUMN_SQL = (
    "CASE WHEN __problem IS NULL "
    "THEN array_to_string(list_transform(__problems, lambda p: p.column), ', ') END"
)

# Stage rows not rejected: a FROM clause with its WHERE condition, which callers may extend.
_GOOD_ROWS = (
    f"{STAGE} s WHERE NOT EXISTS "
    f"(SELECT 1 FROM {REJECTS} r WHERE r.__file = s.__file AND r.__row = s.__row)"
)


def _reject_conflicting_duplicates(
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan]
) -> None:
    """Reject every row of a key that appears with different content in this import (which
    one is right is for the user to say), and drop the key from ``__tw_incoming``."""
    key = sql_identifier(_KEYS[kind])
    reason = sql_string(f"duplicate {_KEYS[kind]} in this import with different content")
    # Incoming rows are distinct, so a key in more than one of them has conflicting content;
    # only keys that repeated in the files can.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CONFLICTS} AS "
        f"SELECT {key} FROM {INCOMING} WHERE {key} IN (SELECT {key} FROM {REPEATED}) "
        f"GROUP BY {key} HAVING count(*) > 1"
    )
    con.execute(
        f"INSERT INTO {REJECTS} SELECT __file, __row, {reason}, "
        f"{_header_by_file(plans, _KEYS[kind])} FROM {_GOOD_ROWS} "
        f"AND {key} IN (SELECT {key} FROM {CONFLICTS})"
    )
    con.execute(f"DELETE FROM {INCOMING} WHERE {key} IN (SELECT {key} FROM {CONFLICTS})")
