"""Staging: every row of a file parsed once, in SQL over the file's relation.

``_stage_select`` turns one opened and mapped file (a ``_Plan``) into a SELECT of the kind's
fields, parsed, with the text each typed field was read from (to tell empty from
unparseable) and the reader's ``__file``, ``__row`` and ``__problem``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from tierwise.data.ingest.fields import (
    ATTRIBUTE_PREFIX,
    Field,
    Kind,
    fields_of,
)
from tierwise.data.ingest.parsing import (
    clean_sql,
    parse_sql,
    sql_identifier,
    sql_type,
)
from tierwise.data.ingest.readers import Source

STAGE = "__tw_stage"
REJECTS = "__tw_rejects"
INCOMING = "__tw_incoming"
CONFLICTS = "__tw_conflicts"
REPEATED = "__tw_repeated_keys"

# The key a re-imported row is matched on; interactions are keyed by a content hash.
_KEYS: dict[Kind, str] = {
    "customers": "customer_id",
    "orders": "order_id",
    "payments": "invoice_id",
}


@dataclass
class _Plan:
    """One file, opened and mapped."""

    index: int
    source: Source
    mapping: dict[str, str]

    def header_of(self, field_name: str) -> str | None:
        for header, target in self.mapping.items():
            if target == field_name:
                return header
        return None


def _text_column(f: Field) -> str:
    """Stage column keeping the text of a typed field, to tell empty from unparseable."""
    return sql_identifier(f"__text_{f.name}")


def _stage(
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan], attributes: list[str]
) -> None:
    """Parse every non-blank row of every file into ``__tw_stage``, each value parsed once."""
    selects = [_stage_select(kind, plan, attributes) for plan in plans]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS " + " UNION ALL ".join(selects))


_DATE_TYPES = ("DATE", "TIMESTAMP")
_NUMBER_TYPES = ("DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT",
                 "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")


def _typed_field(f: Field, column: str, source_type: str | None) -> tuple[str, str] | None:
    """(value, text) SQL for a field read from an already typed column, or None to parse text.

    The text stand-in is NULL exactly when the value is missing, and shows the value only
    where it is rejected (a NaN or infinite amount)."""
    if source_type is None:
        return None
    if f.type == "date" and source_type.startswith(_DATE_TYPES):
        return f"CAST({column} AS DATE)", f"CASE WHEN {column} IS NOT NULL THEN '' END"
    if f.type == "amount" and source_type.startswith(_NUMBER_TYPES):
        finite = f"isfinite(CAST({column} AS DOUBLE))"
        return (f"CASE WHEN {finite} THEN CAST({column} AS DOUBLE) END",
                f"CASE WHEN {finite} THEN '' ELSE CAST({column} AS VARCHAR) END")
    return None


def _stage_select(kind: Kind, plan: _Plan, attributes: list[str]) -> str:
    texts = {header: f"t{i}" for i, header in enumerate(plan.source.columns)}
    typed = plan.source.types
    cleaned = ", ".join(
        (f"{column} AS {texts[header]}" if header in typed
         else f"{clean_sql(column)} AS {texts[header]}")
        for header, column in plan.source.columns.items()
    )
    values, kept_texts = [], []
    for f in fields_of(kind):
        header = plan.header_of(f.name)
        text = texts[header] if header is not None else "CAST(NULL AS VARCHAR)"
        direct = _typed_field(f, text, typed.get(header)) if header is not None else None
        if direct is not None:
            parsed, text = direct
        elif header is None:
            parsed = f"CAST(NULL AS {sql_type(f.type)})"
        else:
            if header in typed:  # a typed column read as text (e.g. 20250307 as a date)
                text = clean_sql(f"CAST({text} AS VARCHAR)")
            parsed = parse_sql(f.type, text)
        values.append(f"{parsed} AS {sql_identifier(f.name)}")
        if f.type != "text":
            kept_texts.append(f"{text} AS {_text_column(f)}")
    for name in attributes:
        header = plan.header_of(ATTRIBUTE_PREFIX + name)
        value = texts[header] if header is not None else "CAST(NULL AS VARCHAR)"
        if header in typed:
            value = f"CAST({value} AS VARCHAR)"
        values.append(f"{value} AS {sql_identifier(name)}")
    not_blank = "NOT (" + " AND ".join(f"{t} IS NULL" for t in texts.values()) + ")"
    return (
        f"SELECT {plan.index} AS __file, __row, __problem, {', '.join(values + kept_texts)} "
        f"FROM (SELECT __row, __problem, {cleaned} FROM {plan.source.relation}) "
        f"WHERE __problem IS NOT NULL OR {not_blank}"
    )
