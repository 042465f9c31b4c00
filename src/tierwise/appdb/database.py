"""Connecting to the app database and bringing its schema up to date with Alembic."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from tierwise.errors import WorkspaceError

if TYPE_CHECKING:      # Alembic is imported only when the schema is not up to date
    from alembic.config import Config


def normalise_url(url: str) -> str:
    """Plain postgresql:// URLs use psycopg 3, the driver tierwise installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def connect(url: str) -> sa.Engine:
    """The app database (an SQLAlchemy Engine) on an up-to-date schema: migrations run on
    first use. ("Engine" in tierwise means the compute engine, DuckDB or Spark: the app
    database is called ``appdb`` everywhere.)"""
    # The web server runs up to 40 request threads: enough connections that none waits.
    appdb = sa.create_engine(normalise_url(url), pool_size=10, max_overflow=40,
                             pool_timeout=60)
    if appdb.dialect.name == "sqlite":
        sa.event.listen(appdb, "connect", _sqlite_pragmas)
    try:
        upgrade(appdb)
    except sa.exc.OperationalError as error:
        appdb.dispose()
        raise WorkspaceError(f"cannot open the app database {_safe(url)}: {error.orig}") from None
    return appdb


def alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("tierwise.appdb") / "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade(appdb: sa.Engine) -> None:
    """Bring the schema to the newest migration. Every command opens the app database: one
    query tells an up-to-date schema, without loading Alembic and every migration script."""
    if _current_revision(appdb) == head_revision():
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with appdb.begin() as connection:
        config = alembic_config(connection)
        head = ScriptDirectory.from_config(config).get_current_head()
        if MigrationContext.configure(connection).get_current_revision() != head:
            command.upgrade(config, "head")


@cache
def head_revision() -> str:
    """The newest migration: revisions are numbered as their files (0012_jobs.py is
    revision "0012", tests/test_appdb.py checks it against Alembic's own reading)."""
    folder = resources.files("tierwise.appdb") / "migrations" / "versions"
    numbers = [m.group(1) for entry in folder.iterdir()
               if (m := re.fullmatch(r"(\d{4})_\w+\.py", entry.name))]
    return max(numbers)


def _current_revision(appdb: sa.Engine) -> str | None:
    try:
        with appdb.connect() as connection:
            row = connection.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    except sa.exc.DBAPIError:          # a new database: no version table yet
        return None
    return row[0] if row else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _safe(url: str) -> str:
    return sa.engine.make_url(normalise_url(url)).render_as_string(hide_password=True)


def bulk_insert(connection: sa.Connection, table: sa.Table, columns: Sequence[str],
                rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert many rows fast: COPY on PostgreSQL, one executemany on the DB-API elsewhere."""
    dbapi = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        names = ", ".join(f'"{c}"' for c in columns)
        with dbapi.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
            f'COPY "{table.name}" ({names}) FROM STDIN'
        ) as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" if connection.dialect.paramstyle == "qmark" else "%s"
                             for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({placeholders})',
                           rows)
    finally:
        cursor.close()


def fetch_arrow(connection: sa.Connection, query: sa.Select[Any]) -> pa.Table:
    """Run a SELECT on the raw DB-API cursor into an Arrow table, values as the driver
    returns them (dates stay text on SQLite; a column with no value to type it is text): on
    a million rows this is twice as fast as SQLAlchemy's rows, whose per-row type processing
    dominates."""
    compiled = query.compile(dialect=connection.dialect,
                             compile_kwargs={"literal_binds": True})
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled))
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({n: _array(c) for n, c in zip(names, columns, strict=True)})


def _array(values: Sequence[Any]) -> pa.Array:
    array = pa.array(list(values))
    # No value to type it by (no rows, or all null): text, which joins with anything.
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array
