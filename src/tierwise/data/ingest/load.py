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

from tierwise.data.ingest.checks import (
    _GOOD_ROWS,
    _ROW_CHECKS,
    _reject_bad_values,
    _reject_conflicting_duplicates,
    _reject_inconsistent_rows,
)
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
    sql_identifier,
    sql_string,
)
from tierwise.data.ingest.readers import Source, expand_paths, open_source
from tierwise.data.ingest.stage import (
    _KEYS,
    CONFLICTS,
    INCOMING,
    REJECTS,
    REPEATED,
    STAGE,
    _Plan,
    _stage,
)
from tierwise.data.store import customer_attribute_columns
from tierwise.errors import InputError

_STRICT_EXAMPLES = 5
_REJECT_COLUMNS = ("file", "row", "column", "reason")


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




def _content_columns(kind: Kind, attributes: list[str]) -> list[str]:
    return [f.name for f in fields_of(kind)] + (attributes if kind == "customers" else [])




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
