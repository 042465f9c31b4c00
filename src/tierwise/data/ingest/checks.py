"""Checks: which staged rows are rejected, and why, in plain words per file and column.

Every check is SQL over a relation with the stage's columns (``stage.stage_sql``, or the
stage of one file, ``stage.stage_select``):

* ``bad_sql``: a boolean, TRUE for a row that any check rejects. It is cheap (no strings
  are built), so a query over millions of rows can filter with it;
* ``rejects_sql``: ``__file, __row, __reason, __column`` of each rejected row, the reasons
  built only for those rows (``problems_sql``, ``REASON_SQL``, ``COLUMN_SQL``). One
  problem reads as its reason; several name their column each ("金额: not an amount:
  'abc'; 日期: not a date: ''"). The column is the user's header in that row's file.

A row with a missing, unreadable or implausible value is rejected for that; only a row
whose values all parse is checked across its fields (``ROW_CHECKS``, e.g. a paid date
before the invoice date).
"""

from __future__ import annotations

from tierwise.data.ingest.fields import Kind, Plausible, fields_of
from tierwise.data.ingest.parsing import problem_sql, sql_identifier, sql_string
from tierwise.data.ingest.stage import Plan, text_column

# Checks across the fields of a parsed row, by kind: (field, condition, reason SQL). A row
# failing any of them is rejected with every failed check's reason, like a bad value.
ROW_CHECKS: dict[Kind, tuple[tuple[str, str, str], ...]] = {
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


def _value_checks(kind: Kind, plausible: Plausible) -> list[tuple[str, str, str]]:
    """(field, condition, reason SQL) of each check of one value: missing, unreadable,
    implausible. Conditions read the parsed field and its ``text_column``."""
    checks = []
    for f in fields_of(kind):
        value = sql_identifier(f.name)
        if f.type == "text":
            if f.required:
                checks.append((f.name, f"{value} IS NULL", "'missing required value'"))
            continue
        text = text_column(f)
        if f.required:
            checks.append((f.name, f"{text} IS NULL", "'missing required value'"))
        checks.append((f.name, f"{text} IS NOT NULL AND {value} IS NULL",
                       problem_sql(f.type, f.name, text)))
        if f.type == "date":
            earliest, latest = plausible.earliest.isoformat(), plausible.latest().isoformat()
            checks.append((
                f.name, f"{value} NOT BETWEEN DATE '{earliest}' AND DATE '{latest}'",
                f"'date outside the plausible range {earliest} – {latest} "
                f"(import: in tierwise.yaml): ' || {value}"))
        if f.type == "amount":
            bound = f"{plausible.max_amount:.17g}"
            checks.append((
                f.name, f"abs({value}) > {bound}",
                f"'amount beyond the plausible bound ±{plausible.max_amount:g} "
                f"(import: max_amount in tierwise.yaml): ' || {text}"))
    return checks


def bad_sql(kind: Kind, plausible: Plausible) -> str:
    """TRUE for a staged row that is rejected: the reader's problem, or any check."""
    conditions = [c for _, c, _ in _value_checks(kind, plausible)]
    conditions += [c for _, c, _ in ROW_CHECKS.get(kind, ())]
    failed = " OR ".join(f"({c})" for c in conditions)
    return f"(__problem IS NOT NULL OR coalesce({failed}, false))"


def problems_sql(kind: Kind, plans: list[Plan], plausible: Plausible) -> str:
    """The problems of a staged row as a list of {column, reason} structs: its values'
    problems, or when its values are all good, its ``ROW_CHECKS`` problems. Costly: build
    it only for rows ``bad_sql`` finds."""
    def found(checks: list[tuple[str, str, str]] | tuple[tuple[str, str, str], ...]) -> str:
        listed = ", ".join(_problem(condition, header_sql(plans, name), reason)
                           for name, condition, reason in checks)
        return f"list_filter([{listed}], lambda p: p IS NOT NULL)"

    values = found(_value_checks(kind, plausible))
    if kind not in ROW_CHECKS:
        return values
    return f"(CASE WHEN len({values}) > 0 THEN {values} ELSE {found(ROW_CHECKS[kind])} END)"


def rejects_sql(kind: Kind, plans: list[Plan], plausible: Plausible, relation: str) -> str:
    """SELECT ``__file, __row, __reason, __column`` of every rejected row of ``relation``
    (a stage, or anything with its columns); ``plans`` name the user's headers."""
    return (
        f"SELECT __file, __row, {REASON_SQL} AS __reason, {COLUMN_SQL} AS __column "
        f"FROM (SELECT __file, __row, __problem, "
        f"{problems_sql(kind, plans, plausible)} AS __problems FROM {relation} "
        f"WHERE {bad_sql(kind, plausible)})"
    )


def duplicate_rejects_sql(plans: list[Plan], key: str, relation: str) -> str:
    """SELECT ``__file, __row, __reason, __column`` of every row of ``relation`` (rows whose
    key appears in this import with different content)."""
    reason = sql_string(f"duplicate {key} in this import with different content")
    return (f"SELECT __file, __row, {reason} AS __reason, {header_sql(plans, key)} AS __column "
            f"FROM {relation}")


def header_sql(plans: list[Plan], field_name: str) -> str:
    """SQL for the source header of a field in the row's file: rejects name the user's column."""
    whens = " ".join(
        f"WHEN {plan.index} THEN {sql_string(plan.header_of(field_name) or field_name)}"
        for plan in plans
    )
    return f"(CASE __file {whens} END)"


def _problem(condition: str, column: str, reason: str) -> str:
    return f"CASE WHEN {condition} THEN {{'column': {column}, 'reason': {reason}}} END"


# The reason and column of a rejected row from its reader's ``__problem`` and its
# ``__problems`` (``problems_sql``). One problem reads as its reason; several name their
# column each: "金额: not an amount: ...".
REASON_SQL = (
    "coalesce(__problem, CASE len(__problems) WHEN 1 THEN __problems[1].reason "
    "ELSE array_to_string(list_transform(__problems, lambda p: p.column || ': ' || p.reason), "
    "'; ') END)"
)
COLUMN_SQL = (
    "CASE WHEN __problem IS NULL "
    "THEN array_to_string(list_transform(__problems, lambda p: p.column), ', ') END"
)
