"""Data read where it lives: `sources:` in tierwise.yaml names, per kind, a file or glob or a
table or query in a SQL database (PostgreSQL, MySQL/MariaDB). Before each run the workspace
pulls them through the same import as a file (header mapping with `map:`, validation,
rejects, an idempotent merge), so nobody re-exports data by hand:

    sources:
      customers: {path: exports/客户*.xlsx}
      orders:
        sql: postgresql://erp@db.example.com:5432/erp     # or mysql://…, mariadb://…
        table: 销售订单                                    # or query: "SELECT … FROM …"
        map: {单号: order_id, 客户编号: customer_id, 日期: order_date, 金额: amount}

A SQL source is streamed as Arrow record batches (connectorx, whose drivers ship in its
wheel: nothing is downloaded at run time) into a Parquet file, one batch in memory at a time.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq

from tierwise.data.ingest import KINDS
from tierwise.errors import WorkspaceError

BATCH_ROWS = 100_000
_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql",
            "mariadb": "mysql"}


@dataclass(frozen=True)
class Source:
    kind: str
    path: str | None = None            # a file or a glob, relative to the workspace
    sql: str | None = None             # a database URL
    table: str | None = None
    query: str | None = None
    map: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.sql is not None:
            what = self.table if self.table is not None else "query"
            return f"{self.kind} from {safe_url(self.sql)} ({what})"
        if self.path is None:
            return f"{self.kind} from Spark table {self.table}"
        return f"{self.kind} from {self.path}"


def parse_sources(value: Any, *, source: str) -> list[Source]:
    """tierwise.yaml's `sources:`, customers first (orders may create customers)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise WorkspaceError(f"{source}: sources: expected a mapping of kinds "
                             f"({', '.join(KINDS)}) to a path or a sql source")
    found = []
    for kind in KINDS:
        if kind in value:
            found.append(_source(kind, value[kind], f"{source}: sources.{kind}"))
    unknown = sorted(set(value) - set(KINDS))
    if unknown:
        raise WorkspaceError(f"{source}: sources: unknown kind {unknown[0]!r}; kinds: "
                             + ", ".join(KINDS))
    return found


def _source(kind: str, value: Any, where: str) -> Source:
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, Mapping):
        raise WorkspaceError(f"{where}: expected a path, or {{sql: URL, table: NAME}}")
    unknown = sorted(set(value) - {"path", "sql", "table", "query", "map"})
    if unknown:
        raise WorkspaceError(f"{where}: unknown setting {unknown[0]!r}; settings: path, sql, "
                             "table, query, map")
    mapping = value.get("map") or {}
    if not isinstance(mapping, Mapping):
        raise WorkspaceError(f"{where}.map: expected header: field pairs")
    spec = Source(kind, path=_text(value.get("path")), sql=_text(value.get("sql")),
                  table=_text(value.get("table")), query=_text(value.get("query")),
                  map={str(k): str(v) for k, v in mapping.items()})
    if spec.path is None and spec.sql is None and spec.table is not None:
        return spec                       # a Spark/Hive table (engine: spark)
    if (spec.path is None) == (spec.sql is None):
        raise WorkspaceError(f"{where}: give either path, sql, or a Spark table")
    if spec.sql is not None:
        if (spec.table is None) == (spec.query is None):
            raise WorkspaceError(f"{where}: a sql source needs either table or query")
        scheme = spec.sql.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in _SCHEMES:
            raise WorkspaceError(f"{where}.sql: a postgresql:// or mysql:// (mariadb://) "
                                 f"URL, not {safe_url(spec.sql)!r}")
    return spec


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def files_of(spec: Source, root: Path, folder: Path) -> list[Path]:
    """The files to import for one source: its paths, or the SQL source streamed to one
    Parquet file under ``folder``."""
    if spec.path is None and spec.sql is None:
        raise WorkspaceError(f"source {spec.label}: a Spark or Hive table is read by the Spark "
                             "engine (engine: spark in tierwise.yaml, or --engine spark)")
    if spec.path is not None:
        pattern = spec.path if Path(spec.path).is_absolute() else str(root / spec.path)
        found = sorted(Path(p) for p in glob.glob(pattern))
        if not found:
            raise WorkspaceError(f"source {spec.label}: no file matches {spec.path!r}")
        return found
    return [stream_sql(spec, folder / f"{spec.kind}.parquet")]


def stream_sql(spec: Source, target: Path) -> Path:
    """Stream a table or query into a Parquet file, BATCH_ROWS rows at a time."""
    import connectorx as cx

    assert spec.sql is not None
    kind = database_kind(spec.sql)
    url = kind + ":" + spec.sql.split(":", 1)[1]
    query = spec.query or f"SELECT * FROM {quoted_table(spec.table or '', kind)}"
    try:
        reader = cast(pa.RecordBatchReader, cx.read_sql(
            url, query, return_type="arrow_stream", batch_size=BATCH_ROWS))
        writer: pq.ParquetWriter | None = None
        try:
            for batch in reader:
                if writer is None:
                    writer = pq.ParquetWriter(target, batch.schema)
                writer.write_batch(batch)
            if writer is None:           # no rows: an empty file with the query's columns
                pq.write_table(pa.Table.from_batches([], reader.schema), target)
        finally:
            if writer is not None:
                writer.close()
    except Exception as error:     # connectorx raises RuntimeError/ValueError with the cause
        raise WorkspaceError(f"source {spec.label} cannot be read: "
                             f"{safe_url(str(error)).splitlines()[0]}") from None
    return target


def database_kind(url: str) -> str:
    """postgresql or mysql (MariaDB speaks MySQL) for a source's database URL."""
    return _SCHEMES[url.split(":", 1)[0].split("+", 1)[0].lower()]


def quoted_table(table: str, kind: str) -> str:
    """A table name quoted for the database kind (dots separate schema and table)."""
    if kind == "mysql":
        return ".".join("`" + part.replace("`", "``") + "`" for part in table.split("."))
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
