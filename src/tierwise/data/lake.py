"""The canonical tables on Spark, read where the data lives: the Parquet or CSV files,
Spark/Hive tables and SQL databases named in ``sources:`` (tierwise.data.sources), or, when
there are none, the workspace store written out as Parquet. The same code reads files in
place on DuckDB (benchmarks/engines.py compares the engines on it).

The embedded engine imports sources into its store (validation, rejects, merge). On Spark
nothing is copied: each source is renamed (``map:``) and cast to the canonical columns as
it is read, and rows without a usable key, date or amount are set aside — written by the
engine next to the run's rejects with their reason and counted, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from tierwise.data import store
from tierwise.data.engines import (
    DEBIAN_JDBC_JARS,
    Measure,
    described,
    is_spark,
    materialise,
    materialise_measured,
)
from tierwise.data.ingest import KINDS
from tierwise.data.ingest.fields import ATTRIBUTE_PREFIX, IGNORED, detect_mapping
from tierwise.data.ingest.parsing import INTERACTION_TYPES, sql_string
from tierwise.data.sources import Source, database_kind, quoted_table, safe_url, stream_sql
from tierwise.data.tables import CanonicalTables
from tierwise.errors import InputError, WorkspaceError

# Columns a row cannot be graded without, per kind.
REQUIRED = {
    "customers": ("customer_id",),
    "orders": ("order_id", "customer_id", "order_date", "amount"),
    "interactions": ("customer_id", "date", "type"),
    "payments": ("invoice_id", "customer_id", "due_date", "amount"),
}
STORE_LABEL = "workspace store"
_JDBC = {"postgresql": ("jdbc:postgresql", "org.postgresql.Driver", DEBIAN_JDBC_JARS[0]),
         # jdbc:mysql (not jdbc:mariadb) so that Spark picks its MySQL dialect: backquoted
         # names; with the default dialect MariaDB reads "列" as a string literal.
         "mysql": ("jdbc:mysql", "org.mariadb.jdbc.Driver", DEBIAN_JDBC_JARS[1])}


@dataclass(frozen=True)
class LakeTables:
    tables: CanonicalTables
    rejected: int                      # rows set aside, written under rejects/
    # The latest order's date, found while reading (None: no orders): a run as of it needs
    # no query of its own.
    latest_order_date: dt.date | None = None


def canonical_schemas() -> dict[str, ibis.Schema]:
    """The store's column types, per kind: one definition of the canonical tables."""
    con = store.connect()
    try:
        backend = ibis.duckdb.from_connection(con)
        return {kind: backend.table(kind).schema() for kind in KINDS}
    finally:
        con.close()


def store_as_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, str]:
    """The store's tables written out as Parquet files for the Spark engine to read."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for kind in KINDS:
        target = folder / f"{kind}.parquet"
        con.execute(f"COPY {kind} TO {sql_string(str(target))} (FORMAT parquet)")
        files[kind] = str(target)
    return files


def input_rows(specs: Sequence[Source], *, root: Path,
               store_con: duckdb.DuckDBPyConnection) -> int | None:
    """The rows a run will read, when known before it starts: the store's tables (no
    ``specs``), or the footers of local Parquet files; None when a source is anything else
    (CSV, a glob, a database, a Spark table, a remote file)."""
    if not specs:
        counts = [store_con.execute(f"SELECT count(*) FROM {kind}").fetchone() for kind in KINDS]
        return sum(int(row[0]) if row else 0 for row in counts)
    total = 0
    for spec in specs:
        if _parquet_columns(spec, root) is None:
            return None
        total += pq.read_metadata(_located(spec, root)).num_rows
    return total


def read_lake(backend: Any, specs: Sequence[Source], *, root: Path, rejects_dir: Path,
              store_con: duckdb.DuckDBPyConnection) -> LakeTables:
    """The canonical tables on Spark: from ``specs``, or the store when there are none."""
    schemas = canonical_schemas()
    if not specs:
        newest = store_con.execute("SELECT max(order_date) FROM orders").fetchone()
        files = store_as_parquet(store_con, root / "data" / "lake")
        exported = {kind: backend.read_parquet(path) for kind, path in files.items()}
        return LakeTables(_canonical_tables(backend, exported, schemas), 0,
                          _date(newest[0] if newest else None))
    rejected = 0
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="tierwise-lake-") as scratch:
        marked: dict[str, ir.Table] = {}
        for group in _read_together(specs, root):
            spec = group[0]
            raw = _read(backend, spec, root, Path(scratch),
                        together=[_located(s, root) for s in group[1:]])
            table = _marked(_canonical(raw, spec, schemas[spec.kind]), spec.kind)
            # Several sources of one kind (files given one by one) are read as one table.
            marked[spec.kind] = (_union(marked[spec.kind], table) if spec.kind in marked
                                 else table)
        # One pass over each source: read, cast and checked rows are held by the engine
        # (also past the scratch folder of a SQL source read without a JDBC driver) and
        # the rejects counted, in one action; they are written from there.
        tables: dict[str, ir.Table] = {}
        latest = None
        for kind, table in marked.items():
            measures: dict[str, Measure] = {"rejected": lambda t: t._tw_reason.count()}
            if kind == "orders":
                measures["latest"] = lambda t: t.order_date.max(where=t._tw_reason.isnull())
            with described(backend, f"read {kind}"):
                held, facts = materialise_measured(
                    backend, f"_tw_lake_{uuid.uuid4().hex[:8]}", table, measures)
            latest = _date(facts["latest"]) if kind == "orders" else latest
            bad = held.filter(held._tw_reason.notnull())
            count = int(facts["rejected"] or 0)
            if count:
                backend.to_parquet(bad.rename(reason="_tw_reason"),
                                   str(rejects_dir / f"spark-{stamp}-{kind}"))
                rejected += count
            tables[kind] = held.filter(held._tw_reason.isnull()).drop("_tw_reason")
    read = _canonical_tables(backend, tables, schemas)
    with described(backend, "read customers (and placeholders)"):
        customers = _cached(backend, read.customers)      # with the placeholders, once
    return LakeTables(dataclasses.replace(read, customers=customers), rejected, latest)


def _date(value: Any) -> dt.date | None:
    if value is None or str(value) in ("NaT", "nan"):
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def _cached(backend: Any, table: ir.Table) -> ir.Table:
    return materialise(backend, f"_tw_lake_{uuid.uuid4().hex[:8]}", table)


def _located(spec: Source, root: Path) -> str:
    """A path source's location: a URL, or a path made absolute against the workspace."""
    location = spec.path or ""
    if "://" not in location and not Path(location).is_absolute():
        location = str(root / location)
    return location


def _read_together(specs: Sequence[Source], root: Path) -> list[list[Source]]:
    """The sources in groups read as one table: local Parquet files of one kind with the same
    ``map:`` and the same columns (as several files given one by one are); every other
    source alone. Spark infers a Parquet schema with a job of its own, once per read."""
    groups: dict[Any, list[Source]] = {}
    for spec in specs:
        key = _parquet_columns(spec, root)
        groups.setdefault((spec.kind, tuple(sorted(spec.map.items())), key)
                          if key is not None else id(spec), []).append(spec)
    return list(groups.values())


def _parquet_columns(spec: Source, root: Path) -> str | None:
    """A local Parquet file's columns and types (read from its footer), or None for any
    other source."""
    if spec.path is None or "://" in spec.path or any(c in spec.path for c in "*?["):
        return None
    location = Path(_located(spec, root))
    if location.suffix.lower() != ".parquet" or not location.is_file():
        return None
    try:
        schema = pq.read_schema(location)
    except Exception:             # read alone: the engine says what is wrong with it
        return None
    return schema.remove_metadata().to_string(show_field_metadata=False,
                                             show_schema_metadata=False)


def _read(backend: Any, spec: Source, root: Path, scratch: Path,
          together: Sequence[str] = ()) -> ir.Table:
    """One source as a table; ``together``: more Parquet files read with ``spec``'s, which
    have its columns (:func:`_read_together`)."""
    try:
        if together:
            files = [_located(spec, root), *together]
            if not is_spark(backend):
                return backend.read_parquet(files)
            name = f"_tw_files_{uuid.uuid4().hex[:8]}"
            backend._session.read.parquet(*files).createOrReplaceTempView(name)
            return backend.table(name)
        if spec.path is not None:
            location = _located(spec, root)
            lowered = location.lower()
            if lowered.endswith(".csv"):
                # Every column as text: the casts below decide, as for other sources.
                options = {"inferSchema": False} if is_spark(backend) else {"all_varchar": True}
                return backend.read_csv(location, **options)
            if lowered.endswith(".parquet") or lowered.endswith("/") or "." not in lowered[-8:]:
                return backend.read_parquet(location)
            raise WorkspaceError(f"source {spec.label}: the Spark engine reads Parquet or CSV; "
                                 "import other files with the embedded engine")
        if spec.sql is None:
            return backend.table(spec.table)
        return _read_sql(backend, spec, scratch)
    except WorkspaceError:
        raise
    except Exception as error:
        raise WorkspaceError(f"source {spec.label} cannot be read: "
                             f"{_reason(safe_url(str(error)))}") from None


def _reason(text: str) -> str:
    """The first line that says what went wrong: a Py4JJavaError starts with "An error
    occurred while calling oNN.load." and has the Java exception on the next line."""
    lines = [line.strip().lstrip(": ") for line in text.splitlines()]
    useful = [line for line in lines
              if line and not line.startswith("An error occurred while calling")]
    return (useful or lines or [""])[0]


def _read_sql(backend: Any, spec: Source, scratch: Path) -> ir.Table:
    """Spark's JDBC source with Debian's driver jar when it is installed; otherwise the
    rows are streamed through connectorx into a Parquet file (local mode)."""
    assert spec.sql is not None
    url = urlparse(spec.sql)
    scheme = database_kind(spec.sql)
    prefix, driver, jar = _JDBC[scheme]
    if not is_spark(backend) or not Path(jar).exists():
        return backend.read_parquet(str(stream_sql(spec, scratch / f"{spec.kind}.parquet")))
    session = backend._session
    try:
        session._jvm.org.apache.spark.util.Utils.classForName(driver, True, False)
    except Exception:
        # A session started before tierwise's (spark.jars is read only at start-up), or this
        # thread has not its class loader: ADD JAR loads the driver for this thread.
        session.sql(f"ADD JAR '{jar}'")
    reader = (session.read.format("jdbc")
              .option("url", f"{prefix}://{url.hostname}:{url.port or _port(scheme)}"
                             f"{url.path or '/'}"
                             + ("?permitMysqlScheme" if scheme == "mysql" else ""))
              .option("driver", driver).option("fetchsize", "10000"))
    if url.username:
        reader = reader.option("user", unquote(url.username))
    if url.password:
        reader = reader.option("password", unquote(url.password))
    if spec.query is not None:
        reader = reader.option("query", spec.query)
    else:
        reader = reader.option("dbtable", quoted_table(spec.table or "", scheme))
    frame = reader.load()
    name = f"_tw_jdbc_{spec.kind}"
    frame.createOrReplaceTempView(name)
    return backend.table(name)


def _port(scheme: str) -> int:
    return 5432 if scheme == "postgresql" else 3306


def _canonical(raw: ir.Table, spec: Source, schema: ibis.Schema) -> ir.Table:
    """Headers recognised as for an import (Chinese or English names, ``map:`` first),
    values cast to the canonical types; other customer columns stay as attributes."""
    try:
        mapping = detect_mapping(raw.columns, spec.kind, spec.map)        # type: ignore[arg-type]
    except InputError as error:
        raise WorkspaceError(f"source {spec.label}: {error}") from None
    fields = {target: header for header, target in mapping.items()
              if target != IGNORED and not target.startswith(ATTRIBUTE_PREFIX)}
    missing = [c for c in REQUIRED[spec.kind] if c not in fields]
    if missing:
        raise WorkspaceError(f"source {spec.label}: no column for {missing[0]!r} (columns: "
                             f"{', '.join(raw.columns)}); name it with map: {{HEADER: "
                             f"{missing[0]}}}")
    columns: dict[str, ir.Value] = {}
    for name, dtype in schema.items():
        if name in fields:
            value = raw[fields[name]]
            columns[name] = value if value.type() == dtype else value.try_cast(dtype)
        elif name == "placeholder":
            columns[name] = ibis.literal(False)
        elif name == "interaction_id":
            columns[name] = _interaction_id(raw, fields)
        else:
            columns[name] = ibis.null(dtype)
    if spec.kind == "interactions" and "type" in fields:
        # 投诉 → complaint …, as the embedded engine's import does.
        lowered = columns["type"].lower()
        columns["type"] = ibis.cases(
            *[(lowered.isin([n.lower() for n in names]), ibis.literal(canonical))
              for canonical, names in INTERACTION_TYPES.items()], else_=lowered)
    for header, target in mapping.items():
        if target.startswith(ATTRIBUTE_PREFIX):
            columns[target[len(ATTRIBUTE_PREFIX):]] = raw[header]
    return raw.select(**columns)


def _interaction_id(raw: ir.Table, fields: Mapping[str, str]) -> ir.StringValue:
    parts = [raw[fields[c]].cast("string").fill_null("") for c in ("customer_id", "date", "type")
             if c in fields]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "|" + part
    return joined.hash().cast("string")


def _marked(table: ir.Table, kind: str) -> ir.Table:
    """The rows with ``_tw_reason``: null when every required value is there, else why
    not (``reason`` in the rejects written)."""
    problems = [(table[c].isnull(), f"missing or invalid {c}") for c in REQUIRED[kind]]
    if kind in ("orders", "payments"):
        problems.append((table.amount.isnan(), "invalid amount"))
    return table.mutate(_tw_reason=ibis.cases(*problems, else_=ibis.null("string")))


def _canonical_tables(backend: Any, tables: Mapping[str, ir.Table],
                      schemas: Mapping[str, ibis.Schema]) -> CanonicalTables:
    """Every kind present (empty tables for the missing ones), and a placeholder customer
    for every id that has orders or interactions but no customer row, as the store does."""
    full = {kind: tables.get(kind) for kind in KINDS}
    for kind in ("orders", "interactions"):
        if full[kind] is None:
            full[kind] = _empty(backend, schemas[kind])
    customers = full["customers"]
    if customers is None:
        customers = _empty(backend, schemas["customers"])
    known = customers.select("customer_id")
    referenced = _union(full["orders"].select("customer_id"),             # type: ignore[union-attr]
                        full["interactions"].select("customer_id")).distinct()  # type: ignore[union-attr]
    unknown = referenced.anti_join(known, "customer_id")
    placeholders = unknown.select(
        "customer_id", **{name: (ibis.literal(True) if name == "placeholder"
                                 else ibis.null(customers[name].type()))
                          for name in customers.columns if name != "customer_id"})
    customers = _union(customers, placeholders.select(*customers.columns))
    return CanonicalTables(customers, full["orders"], full["interactions"],
                   label=STORE_LABEL, payments=full["payments"])


def _union(first: ir.Table, second: ir.Table) -> ir.Table:
    """UNION ALL of two tables whose columns differ at most in nullability (a Parquet file
    may declare a column required, a derived table not): both as nullable columns."""
    loose = ibis.schema({name: dtype.copy(nullable=True)
                         for name, dtype in first.schema().items()})
    return first.cast(loose).union(second.select(*first.columns).cast(loose))


def _empty(backend: Any, schema: ibis.Schema) -> ir.Table:
    return ibis.memtable(pa.Table.from_pylist([], schema=schema.to_pyarrow()))
