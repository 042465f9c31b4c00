"""The embedded DuckDB store: canonical customers, orders, interactions and payments
tables.

There are no PRIMARY KEY or UNIQUE constraints: DuckDB keeps those as in-memory ART indexes,
too costly at tens of millions of orders. Keys stay unique because every write goes through
the set-based merges in ``tierwise.data.ingest.load``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from tierwise.errors import WorkspaceError

# Canonical columns of customers, in table order; any other column is an extra attribute.
CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "contact",
    "industry",
    "region",
    "size",
    "owner",
    "since",
    "placeholder",
)
# Store bookkeeping, not a customer attribute: rules and exports never see it.
BOOKKEEPING_COLUMNS = frozenset({"placeholder"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id VARCHAR NOT NULL,
    name VARCHAR,
    contact VARCHAR,
    industry VARCHAR,
    region VARCHAR,
    size VARCHAR,
    owner VARCHAR,
    since DATE,
    -- true while the customer is known only from an order or interaction
    placeholder BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS orders (
    order_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    order_date DATE NOT NULL,
    amount DOUBLE NOT NULL,  -- negative for refunds and returns
    cost DOUBLE,
    profit DOUBLE,
    product VARCHAR,
    category VARCHAR,
    channel VARCHAR
);
CREATE TABLE IF NOT EXISTS interactions (
    interaction_id VARCHAR NOT NULL,  -- content hash: identical rows re-import as no-ops
    customer_id VARCHAR NOT NULL,
    date DATE NOT NULL,
    type VARCHAR NOT NULL,
    satisfaction DOUBLE,  -- 1 to 5
    note VARCHAR
);
-- Invoices (receivables). Created by every connect, so older stores gain it empty.
CREATE TABLE IF NOT EXISTS payments (
    invoice_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    invoice_date DATE,
    due_date DATE NOT NULL,
    amount DOUBLE NOT NULL,  -- more than 0
    paid_date DATE,  -- NULL while unpaid
    paid_amount DOUBLE  -- NULL with a paid_date: paid in full
);
"""


DEFAULT_MEMORY_LIMIT = "4GB"


LOCK_WAIT_SECONDS = 30.0


def connect(path: Path | None = None, *, memory_limit: str = DEFAULT_MEMORY_LIMIT,
            threads: int | None = None, temp_directory: Path | None = None,
            lock_wait: float | None = None,
            read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the store's tables: a file, or in memory when path is None.

    DuckDB's own default lets it take 80% of the machine's memory; tierwise caps it and
    spills to ``temp_directory`` instead, so a 50M-order import stays inside a few GB. A file
    another process holds is waited for ``lock_wait`` seconds (default: TIERWISE_LOCK_WAIT,
    else 30). ``read_only`` opens an existing file so that other processes may read it too
    (the web server's workers); nothing can be written through it.
    """
    # Never download an extension at run time (a path like s3://… would fetch httpfs):
    # only what ships in the wheel loads.
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory_limit, "autoinstall_known_extensions": False}
    if threads:
        config["threads"] = threads
    if temp_directory is not None:
        temp_directory.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_directory)
    if path is None:
        con = duckdb.connect(":memory:", config=config)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        wait = lock_wait if lock_wait is not None else float(
            os.environ.get("TIERWISE_LOCK_WAIT") or LOCK_WAIT_SECONDS)
        con = _connect_waiting(path, config, wait, read_only)
    if not read_only:
        ensure_schema(con)
    return con



def _connect_waiting(path: Path, config: dict[str, Any], wait: float,
                     read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store file, waiting up to ``wait`` seconds while another process holds it
    (one process may write a DuckDB file at a time: a grade, an import, `tierwise serve`);
    then a clear error naming that process, not DuckDB's lock traceback."""
    deadline = time.monotonic() + wait
    pause = 0.1
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WorkspaceError(
                    f"the store {path} is in use by {_holder(str(error))}; wait for it to "
                    f"finish (waited {wait:g} s) or stop it, then try again") from None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _holder(message: str) -> str:
    """The process DuckDB names as holding the lock, with its command line when readable."""
    found = re.search(r"PID (\d+)", message)
    if found is None:
        return "another process"
    pid = found.group(1)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace").strip()
    except OSError:
        command = ""
    return f"process {pid}" + (f" ({command[:120]})" if command else "")


@contextmanager
def consistent_read(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Read the store as of one moment: inside, every query on ``con`` sees the tables as
    they were when it began, whatever another cursor imports meanwhile (DuckDB's snapshot
    isolation), so a run grades and fingerprints the same data. Nothing is written to the
    store inside; temporary tables made there go with it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    finally:
        con.execute("ROLLBACK")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the canonical tables if they do not exist; existing data is left alone."""
    con.execute(_SCHEMA)


def customer_attribute_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Extra customer attribute columns (e.g. ``员工人数``), in the order they were added."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() "
        "WHERE table_name = 'customers' AND schema_name = current_schema() "
        "AND database_name = current_database() ORDER BY column_index"
    ).fetchall()
    canonical = set(CUSTOMER_COLUMNS)
    return [name for (name,) in rows if name not in canonical]
