"""Staging: every row of a file parsed once, in SQL over the file's relation.

``stage_select`` turns one opened and mapped file (a ``Plan``, from ``plan_file``) into a
SELECT of the kind's fields, parsed, with the text each typed field was read from (to tell
empty from unparseable: ``text_column``) and the reader's ``__file``, ``__row`` and
``__problem``. ``stage_sql`` is the UNION ALL of a plan list. Nothing here runs a query:
an import and a grade reading files in place build on the same SQL, and
``tierwise.data.ingest.checks`` says which of its rows are rejected and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tierwise.data.ingest.fields import (
    ATTRIBUTE_PREFIX,
    Field,
    Kind,
    detect_mapping,
    fields_of,
    missing_required,
)
from tierwise.data.ingest.parsing import (
    clean_sql,
    parse_sql,
    sql_identifier,
    sql_type,
)
from tierwise.data.ingest.readers import Source
from tierwise.errors import InputError

# The key a re-imported row is matched on; interactions are keyed by a content hash.
KEYS: dict[Kind, str] = {
    "customers": "customer_id",
    "orders": "order_id",
    "payments": "invoice_id",
}


@dataclass
class Plan:
    """One file, opened and mapped."""

    index: int
    source: Source
    mapping: dict[str, str]

    def header_of(self, field_name: str) -> str | None:
        for header, target in self.mapping.items():
            if target == field_name:
                return header
        return None


def text_column(f: Field) -> str:
    """Stage column keeping the text of a typed field, to tell empty from unparseable."""
    return sql_identifier(f"__text_{f.name}")


def plan_file(
    index: int, source: Source, kind: Kind, column_map: Mapping[str, str] | None = None
) -> Plan:
    """An opened file mapped to the kind's fields; InputError naming the file when a
    required field has no column."""
    try:
        mapping = detect_mapping(source.headers, kind, column_map)
    except InputError as error:
        raise InputError(error.reason, file=str(source.path)) from error
    missing = missing_required(kind, mapping)
    if missing:
        raise InputError(_missing_columns_message(missing, source.headers), file=str(source.path))
    return Plan(index, source, mapping)


def _missing_columns_message(missing: list[Field], headers: list[str]) -> str:
    wanted = "; ".join(f"{f.name} (e.g. {', '.join(f.aliases[:4])})" for f in missing)
    return (
        f"no column for required field(s) {wanted}. The file has: {', '.join(headers)}. "
        f"Name the column with --map 源列=field"
    )


def stage_sql(kind: Kind, plans: list[Plan], attributes: list[str]) -> str:
    """Every non-blank row of every file, parsed: the UNION ALL of their ``stage_select``."""
    return " UNION ALL ".join(stage_select(kind, plan, attributes) for plan in plans)


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


def stage_select(kind: Kind, plan: Plan, attributes: list[str]) -> str:
    """SELECT over the file's relation: ``__file`` (the plan's index), ``__row``,
    ``__problem`` (the reader's), each field of the kind parsed (NULL when missing or
    unreadable), each attribute as text, and each typed field's ``text_column`` (NULL
    exactly when the cell is empty). Blank rows are left out."""
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
            kept_texts.append(f"{text} AS {text_column(f)}")
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
