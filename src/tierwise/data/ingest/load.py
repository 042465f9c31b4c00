"""Validate parsed rows, write rejects, and merge the good rows into the store.

One call is one transaction, working through temporary tables:

* ``__tw_stage``: every non-blank row of every file, each value parsed once;
* ``__tw_rejects``: (file, row, column, reason) of each rejected row;
* ``__tw_incoming``: the good rows, identical duplicates collapsed, one per key;

then the canonical table is merged from ``__tw_incoming`` with set-based UPDATE ... FROM and
anti-join INSERTs, never row by row.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv

from tierwise.data.ingest.fields import (
    ATTRIBUTE_PREFIX,
    PLAUSIBLE,
    Field,
    Kind,
    Plausible,
    detect_mapping,
    fields_of,
    missing_required,
)
from tierwise.data.ingest.parsing import (
    clean_sql,
    parse_sql,
    problem_sql,
    sql_identifier,
    sql_string,
    sql_type,
)
from tierwise.data.ingest.readers import Source, expand_paths, open_source
from tierwise.data.store import customer_attribute_columns
from tierwise.errors import InputError

STAGE = "__tw_stage"
REJECTS = "__tw_rejects"
INCOMING = "__tw_incoming"
CONFLICTS = "__tw_conflicts"
REPEATED = "__tw_repeated_keys"
_STRICT_EXAMPLES = 5
_REJECT_COLUMNS = ("file", "row", "column", "reason")

# The key a re-imported row is matched on; interactions are keyed by a content hash.
_KEYS: dict[Kind, str] = {
    "customers": "customer_id",
    "orders": "order_id",
    "payments": "invoice_id",
}

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


@dataclass
class FileReport:
    path: str
    rows: int
    mapping: dict[str, str]  # source header -> field, "attribute:<name>" or "ignored"


@dataclass
class ImportResult:
    kind: Kind
    files: list[FileReport]
    accepted: int = 0  # new rows inserted
    updated: int = 0  # existing keys whose content changed
    unchanged: int = 0  # rows identical to what is stored (skipped)
    rejected: int = 0
    created_customers: list[str] = field(default_factory=list)
    rejects_path: Path | None = None


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


def import_files(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    paths: Sequence[str | Path],
    *,
    rejects_dir: Path,
    column_map: Mapping[str, str] | None = None,
    strict: bool = False,
    progress: Callable[[str], None] | None = None,
    plausible: Plausible = PLAUSIBLE,
) -> ImportResult:
    """Import files of one kind into the store (see ``tierwise.data.ingest``). A date or
    amount outside ``plausible`` is rejected like an unreadable one.

    Writes nothing when a file cannot be read, or, with ``strict``, when any row is rejected;
    the rejects file is written either way so every problem can be seen at once.
    """
    fields_of(kind)
    say = progress or (lambda _message: None)
    files = expand_paths(paths)
    sweep_scratch()
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as workdir:
        con.begin()
        try:
            plans = _open_all(con, kind, files, Path(workdir), column_map, say)
            attributes = _attribute_columns(con, plans) if kind == "customers" else []
            say("checking values")
            result = _validate(con, kind, plans, attributes, plausible)
            if result.rejected:
                result.rejects_path = _write_rejects(con, kind, plans, rejects_dir)
                say(f"{result.rejected} rejected rows written to {result.rejects_path}")
                if strict:
                    raise _strict_failure(con, plans, result)
            say(f"merging {kind}")
            _merge(con, result, attributes)
            _drop_work_tables(con)
        except BaseException:
            con.rollback()
            raise
        con.commit()
    return result


def _open_all(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    files: list[Path],
    workdir: Path,
    column_map: Mapping[str, str] | None,
    say: Callable[[str], None],
) -> list[_Plan]:
    plans = []
    for index, path in enumerate(files):
        say(f"reading {path}")
        plans.append(_plan(index, open_source(con, path, workdir), kind, column_map))
    return plans


SCRATCH_PREFIX = "tierwise-import-"
SCRATCH_MAX_AGE = dt.timedelta(hours=6)


def sweep_scratch(max_age: dt.timedelta = SCRATCH_MAX_AGE) -> list[Path]:
    """Remove import scratch folders a killed import left in the temp folder. Another
    import (of any workspace on the machine) may be using a fresh one, so only folders
    untouched for ``max_age`` go."""
    cutoff = time.time() - max_age.total_seconds()
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:          # gone meanwhile, or another user's
            continue
    return removed


def _validate(
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan], attributes: list[str],
    plausible: Plausible,
) -> ImportResult:
    """Stage and check every row; the result so far counts rows and rejects."""
    _stage(con, kind, plans, attributes)
    _reject_bad_values(con, kind, plans, plausible)
    if kind in _ROW_CHECKS:
        _reject_inconsistent_rows(con, kind, plans)
    _distinct_good_rows(con, kind, attributes)
    if kind in _KEYS:
        _reject_conflicting_duplicates(con, kind, plans)
    return _count_rows(con, kind, plans)


def _merge(con: duckdb.DuckDBPyConnection, result: ImportResult, attributes: list[str]) -> None:
    """Merge ``__tw_incoming`` into the store and fill in the result's counts."""
    good = sum(report.rows for report in result.files) - result.rejected
    if good == 0:
        # Nothing to merge: in particular, a file of headers alone must not add attribute
        # columns to customers for good (an orders file imported as customers would).
        return
    if result.kind == "customers":
        _add_attribute_columns(con, attributes)
        result.updated, result.accepted = _merge_customers(con, attributes)
    elif result.kind in ("orders", "payments"):
        result.updated, result.accepted = _merge_replacing(con, result.kind)
    else:
        result.accepted = _insert_new(con, "interactions", "interaction_id")
    if result.kind != "customers":
        result.created_customers = _create_placeholder_customers(con)
    result.unchanged = good - result.accepted - result.updated


def _plan(index: int, source: Source, kind: Kind, column_map: Mapping[str, str] | None) -> _Plan:
    try:
        mapping = detect_mapping(source.headers, kind, column_map)
    except InputError as error:
        raise InputError(error.reason, file=str(source.path)) from error
    missing = missing_required(kind, mapping)
    if missing:
        raise InputError(_missing_columns_message(missing, source.headers), file=str(source.path))
    return _Plan(index, source, mapping)


def _missing_columns_message(missing: list[Field], headers: list[str]) -> str:
    wanted = "; ".join(f"{f.name} (e.g. {', '.join(f.aliases[:4])})" for f in missing)
    return (
        f"no column for required field(s) {wanted}. The file has: {', '.join(headers)}. "
        f"Name the column with --map 源列=field"
    )


# --- staging ---------------------------------------------------------------------------------


def _attribute_columns(con: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> list[str]:
    """Attribute columns of this import, one per name ignoring case (DuckDB column names are
    case-insensitive), spelled as already stored or as first seen."""
    spelling = {name.lower(): name for name in customer_attribute_columns(con)}
    names: list[str] = []
    for plan in plans:
        for header, target in plan.mapping.items():
            if not target.startswith(ATTRIBUTE_PREFIX):
                continue
            wanted = target[len(ATTRIBUTE_PREFIX) :]
            name = spelling.setdefault(wanted.lower(), wanted)
            plan.mapping[header] = ATTRIBUTE_PREFIX + name
            if name not in names:
                names.append(name)
    return names


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


def _content_columns(kind: Kind, attributes: list[str]) -> list[str]:
    return [f.name for f in fields_of(kind)] + (attributes if kind == "customers" else [])


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


def _count_rows(con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan]) -> ImportResult:
    counts = dict(con.execute(f"SELECT __file, count(*) FROM {STAGE} GROUP BY __file").fetchall())
    reports = [
        FileReport(str(plan.source.path), int(counts.get(plan.index, 0)), plan.mapping)
        for plan in plans
    ]
    rejected = _count(con, f"SELECT count(*) FROM {REJECTS}")
    return ImportResult(kind=kind, files=reports, rejected=rejected)


def _distinct_good_rows(con: duckdb.DuckDBPyConnection, kind: Kind, attributes: list[str]) -> None:
    """Collapse identical duplicates of the good rows into ``__tw_incoming``.

    For keyed kinds only rows whose key repeats need the (costly) DISTINCT over every
    column; finding those keys is one aggregation on the key alone.
    """
    columns = ", ".join(sql_identifier(c) for c in _content_columns(kind, attributes))
    if kind not in _KEYS:
        columns = f"{interaction_id_sql()} AS interaction_id, {columns}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {INCOMING} AS "
            f"SELECT DISTINCT {columns} FROM {_GOOD_ROWS}"
        )
        return
    key = sql_identifier(_KEYS[kind])
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REPEATED} AS "
        f"SELECT {key} FROM {_GOOD_ROWS} GROUP BY {key} HAVING count(*) > 1"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {INCOMING} AS "
        f"SELECT {columns} FROM {_GOOD_ROWS} AND {key} NOT IN (SELECT {key} FROM {REPEATED}) "
        f"UNION ALL "
        f"SELECT DISTINCT {columns} FROM {_GOOD_ROWS} AND {key} IN (SELECT {key} FROM {REPEATED})"
    )


def interaction_id_sql() -> str:
    """A content hash; each part is length-prefixed so different rows never collide by
    concatenation, and NULL differs from an empty note."""
    parts = [
        "customer_id",
        "strftime(date, '%Y-%m-%d')",
        "type",
        "printf('%.4f', satisfaction)",
        "note",
    ]
    encoded = ", ".join(f"coalesce(length({p}) || ':' || {p}, '-')" for p in parts)
    return f"md5(concat_ws('|', {encoded}))"


# --- merging ---------------------------------------------------------------------------------


def _merge_replacing(con: duckdb.DuckDBPyConnection, kind: Kind) -> tuple[int, int]:
    """Replace orders (or invoices) whose content changed, insert new ones: (updated,
    inserted). The table is named after the kind."""
    key = _KEYS[kind]
    columns = [f.name for f in fields_of(kind) if f.name != key]
    assign = ", ".join(f"{sql_identifier(c)} = i.{sql_identifier(c)}" for c in columns)
    changed = " OR ".join(
        f"{kind}.{sql_identifier(c)} IS DISTINCT FROM i.{sql_identifier(c)}" for c in columns
    )
    updated = 0
    if not _is_empty(con, kind):  # an empty table has nothing to update
        updated = _count(
            con,
            f"UPDATE {kind} SET {assign} FROM {INCOMING} i "
            f"WHERE {kind}.{key} = i.{key} AND ({changed})",
        )
    return updated, _insert_new(con, kind, key)


def _merge_customers(con: duckdb.DuckDBPyConnection, attributes: list[str]) -> tuple[int, int]:
    """Upsert by customer_id: a value in the file replaces the stored one, an empty cell
    keeps it, and real data turns a placeholder into a customer. (updated, inserted)"""
    columns = [f.name for f in fields_of("customers") if f.name != "customer_id"] + attributes
    quoted = [sql_identifier(c) for c in columns]
    assign = ", ".join(f"{c} = coalesce(i.{c}, customers.{c})" for c in quoted)
    changed = " OR ".join(
        f"(i.{c} IS NOT NULL AND i.{c} IS DISTINCT FROM customers.{c})" for c in quoted
    )
    updated = _count(
        con,
        f"UPDATE customers SET {assign}, placeholder = false FROM {INCOMING} i "
        f"WHERE customers.customer_id = i.customer_id AND (customers.placeholder OR {changed})",
    )
    return updated, _insert_new(con, "customers", "customer_id")


def _insert_new(con: duckdb.DuckDBPyConnection, table: str, key: str) -> int:
    """Insert incoming rows whose key the table does not have (an anti-join)."""
    columns = ", ".join(
        sql_identifier(d[0]) for d in con.execute(f"SELECT * FROM {INCOMING} LIMIT 0").description
    )
    new_only = (
        "" if _is_empty(con, table)
        else f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = i.{key})"
    )
    return _count(
        con, f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {INCOMING} i{new_only}"
    )


def _is_empty(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return con.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table})").fetchone() == (True,)


def _create_placeholder_customers(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        f"INSERT INTO customers (customer_id, placeholder) "
        f"SELECT DISTINCT customer_id, true FROM {INCOMING} i "
        f"WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = i.customer_id) "
        f"RETURNING customer_id"
    ).fetchall()
    return sorted(customer_id for (customer_id,) in rows)


def _add_attribute_columns(con: duckdb.DuckDBPyConnection, attributes: list[str]) -> None:
    existing = {name.lower() for name in customer_attribute_columns(con)}
    for name in attributes:
        if name.lower() not in existing:
            con.execute(f"ALTER TABLE customers ADD COLUMN {sql_identifier(name)} VARCHAR")


def _drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in (STAGE, REJECTS, INCOMING, CONFLICTS, REPEATED):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single number a count query, UPDATE or INSERT returns."""
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return int(row[0])


# --- rejects ---------------------------------------------------------------------------------


def _write_rejects(
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[_Plan], rejects_dir: Path
) -> Path:
    """Rejected rows with file, row, column, reason and the row's raw values, as UTF-8 CSV
    with a BOM so Excel opens Chinese text correctly."""
    raw_names = _raw_value_names(plans)
    selects = []
    for plan in plans:
        raw = ", ".join(
            f"r.{plan.source.columns[header]} AS {sql_identifier(name)}"
            for header, name in raw_names.items()
            if header in plan.source.columns
        )
        selects.append(
            f"SELECT s.__file AS __file, {sql_string(str(plan.source.path))} AS file, "
            f's.__row AS row, s.__column AS "column", s.__reason AS reason'
            f"{', ' + raw if raw else ''} "
            f"FROM {REJECTS} s JOIN {plan.source.relation} r ON r.__row = s.__row "
            f"WHERE s.__file = {plan.index}"
        )
    ordered = ", ".join(
        [*(sql_identifier(c) for c in _REJECT_COLUMNS), *map(sql_identifier, raw_names.values())]
    )
    query = f"SELECT {ordered} FROM ({' UNION ALL BY NAME '.join(selects)}) ORDER BY __file, row"
    path = _rejects_path(rejects_dir, kind, plans)
    reader = con.sql(query).to_arrow_reader()
    with path.open("wb") as sink:
        sink.write(b"\xef\xbb\xbf")
        with pa_csv.CSVWriter(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    return path


def _raw_value_names(plans: list[_Plan]) -> dict[str, str]:
    """Source header -> rejects column, over all files, not clashing with the fixed columns."""
    names: dict[str, str] = {}
    taken = {c.lower() for c in _REJECT_COLUMNS}
    for plan in plans:
        for header in plan.source.columns:
            if header in names:
                continue
            name = header
            while name.lower() in taken:
                name = f"{name} (raw)"
            taken.add(name.lower())
            names[header] = name
    return names


def _rejects_path(rejects_dir: Path, kind: Kind, plans: list[_Plan]) -> Path:
    rejects_dir.mkdir(parents=True, exist_ok=True)
    stem = plans[0].source.path.stem
    if len(plans) > 1:
        stem = f"{stem}-and-{len(plans) - 1}-more"
    base = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{kind}-{stem}"
    path, suffix = rejects_dir / f"{base}.csv", 2
    while path.exists():
        path, suffix = rejects_dir / f"{base}-{suffix}.csv", suffix + 1
    return path


def _strict_failure(
    con: duckdb.DuckDBPyConnection, plans: list[_Plan], result: ImportResult
) -> InputError:
    paths = {plan.index: str(plan.source.path) for plan in plans}
    examples = con.execute(
        f"SELECT __file, __row, __column, __reason FROM {REJECTS} "
        f"ORDER BY __file, __row LIMIT {_STRICT_EXAMPLES}"
    ).fetchall()
    lines = [
        str(InputError(reason, file=paths[index], row=row, column=column))
        for index, row, column, reason in examples
    ]
    more = result.rejected - len(lines)
    if more > 0:
        lines.append(f"... and {more} more")
    return InputError(
        f"{result.rejected} row(s) rejected, so nothing was imported (strict mode). "
        f"All problems are listed in {result.rejects_path}\n  " + "\n  ".join(lines)
    )
