"""Validate parsed rows, write rejects, and merge the good rows into the store.

One call is one transaction. The files are read where they are (CSV and Excel as the
Parquet text copy the readers make), through temporary views and small work tables:

* ``__tw_stage``: a view of every non-blank row of every file, parsed (``stage.stage_sql``);
* ``__tw_checked``: rows per file, each rejected row with its reason, and the hashes of
  keys that repeat among the good rows, all from one aggregation (``_check``);
* ``__tw_rejects``: (file, row, reason, column) of each rejected row;
* ``__tw_incoming``: a view of the good rows, identical duplicates collapsed, one per key
  (only rows whose key hash repeats are compared column by column);

then the canonical table is merged from ``__tw_incoming``, set-based, never row by row: into
an empty table a plain INSERT; else one join with the table finds the new and the changed
rows (``__tw_changes``), and only those are written. Nothing is materialised twice, so an
import writes about what a plain copy of the files into the store writes, and re-importing
an unchanged file writes nothing.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv

from tierwise.data.ingest.checks import (
    COLUMN_SQL,
    REASON_SQL,
    bad_sql,
    duplicate_rejects_sql,
    problems_sql,
)
from tierwise.data.ingest.fields import (
    ATTRIBUTE_PREFIX,
    PLAUSIBLE,
    Kind,
    Plausible,
    fields_of,
)
from tierwise.data.ingest.parsing import sql_identifier, sql_string
from tierwise.data.ingest.readers import expand_paths, open_source
from tierwise.data.ingest.stage import KEYS, Plan, plan_file, stage_sql
from tierwise.data.store import customer_attribute_columns
from tierwise.errors import InputError

STAGE = "__tw_stage"
GOOD = "__tw_good"
REJECTS = "__tw_rejects"
CHECKED = "__tw_checked"
REPEATED = "__tw_repeated"
CONFLICTS = "__tw_conflicts"
INCOMING = "__tw_incoming"
CHANGES = "__tw_changes"
_VIEWS = (INCOMING, GOOD, STAGE)
_TABLES = (REJECTS, CHECKED, REPEATED, CONFLICTS, CHANGES)
_STRICT_EXAMPLES = 5
_REJECT_COLUMNS = ("file", "row", "column", "reason")
# While importing: rows may be written in any order (DuckDB then writes in parallel and
# holds less in memory); the store's tables have no order to keep.
_IMPORT_SETTINGS = {"preserve_insertion_order": "false"}


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
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as workdir, _settings(con):
        con.begin()
        try:
            plans = _open_all(kind, con, files, Path(workdir), column_map, say)
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


@contextmanager
def _settings(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``_IMPORT_SETTINGS`` for the import, the connection's own afterwards."""
    before = {name: con.execute(f"SELECT current_setting('{name}')").fetchone()
              for name in _IMPORT_SETTINGS}
    for name, value in _IMPORT_SETTINGS.items():
        con.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        for name, row in before.items():
            if row is not None:
                con.execute(f"SET {name} = {sql_string(str(row[0]))}")


def _open_all(
    kind: Kind,
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    workdir: Path,
    column_map: Mapping[str, str] | None,
    say: Callable[[str], None],
) -> list[Plan]:
    plans = []
    for index, path in enumerate(files):
        say(f"reading {path}")
        plans.append(plan_file(index, open_source(con, path, workdir), kind, column_map))
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
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[Plan], attributes: list[str],
    plausible: Plausible,
) -> ImportResult:
    """Check every row and collapse duplicates; the result so far counts rows and rejects."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {STAGE} AS {stage_sql(kind, plans, attributes)}")
    key = KEYS.get(kind)
    _check(con, kind, plans, plausible, key)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REJECTS} AS SELECT __file, __bad_row AS __row, "
                f"__reason, __column FROM {CHECKED} WHERE __set = 'row'")
    # When the check rejected nothing, every row is good: the merge need not check again.
    rejected = _count(con, f"SELECT count(*) FROM {REJECTS}")
    checked = f" WHERE NOT {bad_sql(kind, plausible)}" if rejected else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {GOOD} AS SELECT * FROM {STAGE}{checked}")
    columns = ", ".join(sql_identifier(c) for c in _content_columns(kind, attributes))
    if key is None:  # interactions: keyed by a hash of their content
        con.execute(f"CREATE OR REPLACE TEMP VIEW {INCOMING} AS "
                    f"SELECT DISTINCT {interaction_id_sql()} AS interaction_id, {columns} "
                    f"FROM {GOOD}")
    else:
        _collapse_duplicates(con, plans, key, columns)
    counts = dict(con.execute(f"SELECT __file, n FROM {CHECKED} WHERE __set = 'file'").fetchall())
    reports = [
        FileReport(str(plan.source.path), int(counts.get(plan.index, 0)), plan.mapping)
        for plan in plans
    ]
    return ImportResult(kind=kind, files=reports,
                        rejected=_count(con, f"SELECT count(*) FROM {REJECTS}"))


def _check(con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[Plan], plausible: Plausible,
           key: str | None) -> None:
    """``__tw_checked``, from one pass over the stage, one aggregation with three sets:

    * ``__set = 'file'``: rows per file (``n``);
    * ``__set = 'row'``: each rejected row with its reason and column (reasons are built
      for rejected rows only);
    * ``__set = 'hash'``: each hash of a key that more than one good row has. Hashes, not
      the keys themselves: grouping 20 million 64-bit numbers is much cheaper than grouping
      20 million strings. The rows whose hashes repeat are few and compared exactly later.
    """
    hashed = f"hash({sql_identifier(key)})" if key else "NULL"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS "
        f"SELECT __file, __hash, __bad_row, __reason, __column, count(*) AS n, "
        f"CASE WHEN grouping(__bad_row) = 0 THEN 'row' WHEN grouping(__hash) = 0 THEN 'hash' "
        f"ELSE 'file' END AS __set "
        f"FROM (SELECT __file, __hash, __bad_row, "
        f"CASE WHEN __bad_row IS NOT NULL THEN {REASON_SQL} END AS __reason, "
        f"CASE WHEN __bad_row IS NOT NULL THEN {COLUMN_SQL} END AS __column "
        f"FROM (SELECT __file, __problem, "
        f"CASE WHEN __bad THEN __row END AS __bad_row, "
        f"CAST(CASE WHEN NOT __bad THEN {hashed} END AS UBIGINT) AS __hash, "
        f"CASE WHEN __bad THEN {problems_sql(kind, plans, plausible)} END AS __problems "
        f"FROM (SELECT *, {bad_sql(kind, plausible)} AS __bad FROM {STAGE}))) "
        f"GROUP BY GROUPING SETS ((__file), (__hash), (__file, __bad_row, __reason, __column)) "
        f"HAVING (grouping(__hash) = 1 AND grouping(__bad_row) = 1) "
        f"OR (grouping(__hash) = 0 AND __hash IS NOT NULL AND count(*) > 1) "
        f"OR (grouping(__bad_row) = 0 AND __bad_row IS NOT NULL)"
    )


def _collapse_duplicates(con: duckdb.DuckDBPyConnection, plans: list[Plan], key: str,
                         columns: str) -> None:
    """``__tw_incoming``: the good rows, one per key. Rows of a key repeated with identical
    content become one; every row of a key repeated with different content is rejected
    (which one is right is for the user to say) and none is imported."""
    quoted = sql_identifier(key)
    repeats = _count(con, f"SELECT count(*) FROM {CHECKED} WHERE __set = 'hash'")
    if not repeats:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {INCOMING} AS SELECT {columns} FROM {GOOD}")
        return
    hashed = f"hash({quoted}) IN (SELECT __hash FROM {CHECKED} WHERE __set = 'hash')"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REPEATED} AS "
                f"SELECT DISTINCT {columns} FROM {GOOD} WHERE {hashed}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CONFLICTS} AS SELECT {quoted} FROM {REPEATED} "
                f"GROUP BY {quoted} HAVING count(*) > 1")
    conflicting = f"{quoted} IN (SELECT {quoted} FROM {CONFLICTS})"
    con.execute(f"INSERT INTO {REJECTS} " + duplicate_rejects_sql(
        plans, key, f"{GOOD} WHERE {hashed} AND {conflicting}"))
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {INCOMING} AS "
        f"SELECT {columns} FROM {GOOD} g WHERE NOT EXISTS (SELECT 1 FROM {CHECKED} c "
        f"WHERE c.__set = 'hash' AND c.__hash = hash(g.{quoted})) "
        f"UNION ALL SELECT {columns} FROM {REPEATED} WHERE NOT {conflicting}"
    )


def _merge(con: duckdb.DuckDBPyConnection, result: ImportResult, attributes: list[str]) -> None:
    """Merge ``__tw_incoming`` into the store and fill in the result's counts."""
    good = sum(report.rows for report in result.files) - result.rejected
    if good == 0:
        # Nothing to merge: in particular, a file of headers alone must not add attribute
        # columns to customers for good (an orders file imported as customers would).
        return
    source = INCOMING
    if result.kind == "customers":
        _add_attribute_columns(con, attributes)
        result.updated, result.accepted = _merge_customers(con, attributes)
    elif result.kind in ("orders", "payments"):
        result.updated, result.accepted, source = _merge_replacing(con, result.kind)
    else:
        result.accepted = _insert_new(con, "interactions", "interaction_id")
    if result.kind != "customers":
        result.created_customers = _create_placeholder_customers(con, source)
    result.unchanged = good - result.accepted - result.updated


# --- staging ---------------------------------------------------------------------------------


def _attribute_columns(con: duckdb.DuckDBPyConnection, plans: list[Plan]) -> list[str]:
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


def _merge_replacing(con: duckdb.DuckDBPyConnection, kind: Kind) -> tuple[int, int, str]:
    """Replace orders (or invoices) whose content changed, insert new ones: (updated,
    inserted, the relation of the rows written). The table is named after the kind.

    Into an empty table every row is new: one INSERT. Else one join with the table keeps the
    new and the changed rows in ``__tw_changes`` (none when the files are unchanged), and
    only those are written."""
    key = sql_identifier(KEYS[kind])
    columns = [sql_identifier(f.name) for f in fields_of(kind)]
    listed = ", ".join(columns)
    if _is_empty(con, kind):  # the table then holds just the rows written
        return 0, _count(con, f"INSERT INTO {kind} ({listed}) SELECT {listed} FROM {INCOMING}"), \
            kind
    changed = " OR ".join(f"i.{c} IS DISTINCT FROM t.{c}" for c in columns if c != key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CHANGES} AS "
        f"SELECT {', '.join(f'i.{c}' for c in columns)}, t.{key} IS NULL AS __new "
        f"FROM {INCOMING} i LEFT JOIN {kind} t ON t.{key} = i.{key} "
        f"WHERE t.{key} IS NULL OR {changed}"
    )
    assign = ", ".join(f"{c} = i.{c}" for c in columns if c != key)
    updated = _count(con, f"UPDATE {kind} SET {assign} FROM {CHANGES} i "
                          f"WHERE NOT i.__new AND {kind}.{key} = i.{key}")
    inserted = _count(con, f"INSERT INTO {kind} ({listed}) SELECT {listed} FROM {CHANGES} "
                           f"WHERE __new")
    return updated, inserted, CHANGES


def _merge_customers(con: duckdb.DuckDBPyConnection, attributes: list[str]) -> tuple[int, int]:
    """Upsert by customer_id: a value in the file replaces the stored one, an empty cell
    keeps it, and real data turns a placeholder into a customer. (updated, inserted)"""
    columns = [f.name for f in fields_of("customers") if f.name != "customer_id"] + attributes
    quoted = [sql_identifier(c) for c in columns]
    assign = ", ".join(f"{c} = coalesce(i.{c}, customers.{c})" for c in quoted)
    changed = " OR ".join(
        f"(i.{c} IS NOT NULL AND i.{c} IS DISTINCT FROM customers.{c})" for c in quoted
    )
    updated = 0
    if not _is_empty(con, "customers"):
        updated = _count(
            con,
            f"UPDATE customers SET {assign}, placeholder = false FROM {INCOMING} i "
            f"WHERE customers.customer_id = i.customer_id "
            f"AND (customers.placeholder OR {changed})",
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


def _create_placeholder_customers(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """Customers known only by an id in ``source`` (the rows just written): placeholders.

    The ids are made distinct before the anti-join: otherwise DuckDB may build its hash
    table on the rows just written (it under-estimates a table written in the same
    transaction) and probe it with every customer: twice as slow at 4M orders."""
    rows = con.execute(
        f"INSERT INTO customers (customer_id, placeholder) "
        f"SELECT customer_id, true FROM (SELECT DISTINCT customer_id FROM {source}) i "
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
    for view in _VIEWS:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for table in _TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single number a count query, UPDATE or INSERT returns."""
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return int(row[0])


# --- rejects ---------------------------------------------------------------------------------


def _write_rejects(
    con: duckdb.DuckDBPyConnection, kind: Kind, plans: list[Plan], rejects_dir: Path
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


def _raw_value_names(plans: list[Plan]) -> dict[str, str]:
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


def _rejects_path(rejects_dir: Path, kind: Kind, plans: list[Plan]) -> Path:
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
    con: duckdb.DuckDBPyConnection, plans: list[Plan], result: ImportResult
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
