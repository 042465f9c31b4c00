"""The customer list of a run: filter, search, sort and page, within what the reader may see.

The run's snapshot joined with today's owners from the store, read once per process into
memory in the list's default order (a "book": the list's columns only, about 100 MB at
1,000,000 customers) and kept until the run or the store changes (the store file's size and
time say so); a page in the default order is then a slice, and any other filter or sort one
DuckDB query over the book instead of over the Parquet file and the store. A sales rep's
scope (tierwise.work.users.User.owner_scope) is a condition of every query here — list,
counts, facets and exports alike — so no filter or page number can reach past it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.errors import TierwiseError

WARNINGS = ("churn_risk", "complaint", "credit_risk", "contact_overdue", "upgrade")
LIST_COLUMNS = ("customer_id", "name", "tier", "stage", "owner", "industry", "region",
                "annual_spend", "profit", "score", "recency_days", "change", "p_alive",
                "predicted_clv")
FACETS = ("stage", "owner", "industry", "region")
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class CustomerFilter:
    tier: str | None = None
    stage: str | None = None
    owner: str | None = None
    industry: str | None = None
    region: str | None = None
    warning: str | None = None       # one of WARNINGS: an open task of that kind
    search: str | None = None        # part of the id or the name
    sort: str = "tier"               # a column; "-annual_spend" sorts descending
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class CustomerPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    facets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "page": self.page, "per_page": self.per_page,
                "pages": self.pages, "customers": self.rows}


def warned_customers(appdb: sa.Engine, kind: str, today: dt.date) -> pa.Table:
    """The customers with an open task of a warning kind (contact_overdue: a contact task
    past its due date)."""
    if kind not in WARNINGS:
        raise TierwiseError(f"unknown warning {kind!r}; warnings: {', '.join(WARNINGS)}")
    t = schema.tasks
    query = sa.select(t.c.customer_id).where(t.c.status == "open").distinct()
    if kind == "contact_overdue":
        query = query.where(t.c.kind == "contact", t.c.due_date < today)
    else:
        query = query.where(t.c.kind == kind)
    with appdb.connect() as connection:
        ids = [row[0] for row in connection.execute(query)]
    return pa.table({"customer_id": pa.array(ids, pa.string())})


@dataclass(frozen=True)
class _Selection:
    """The SQL of a filtered, scoped list over one cursor: ``FROM … WHERE …`` and its
    parameters, the order, the snapshot's columns and the scope's own base query."""

    source: str
    params: list[Any]
    order: str
    shown: list[str]
    columns: set[str]
    base: str
    base_params: list[Any]


def _select(cursor: duckdb.DuckDBPyConnection, book: _Book, tiers: list[str],
            flt: CustomerFilter, scope: str | None, warned: pa.Table | None) -> _Selection:
    cursor.register("_tw_book", book.table)
    base, params = "SELECT * FROM _tw_book", []
    if scope is not None:
        base, params = "SELECT * FROM _tw_book WHERE owner = ?", [scope]
    where, where_params = _conditions(flt, warned is not None, book.columns | {"owner"})
    if warned is not None:
        cursor.register("_tw_warned", warned)
    order = _order(flt.sort, book.shown, tiers)
    if flt.sort == "tier":
        order = "_pos"                    # the book is in this order already
    return _Selection(f"FROM ({base}) b {where}", params + where_params, order, book.shown,
                      book.columns, base, params)


def list_customers(con: duckdb.DuckDBPyConnection, snapshot: str, tiers: list[str],
                   flt: CustomerFilter, *, scope: str | None,
                   warned: pa.Table | None = None, facets: bool = False) -> CustomerPage:
    """One page of the run's customers that pass the filter and the scope (an owner name,
    or None for everyone)."""
    book = _book(con, snapshot, tiers)
    per_page = min(max(flt.per_page, 1), MAX_PER_PAGE)
    page = max(flt.page, 1)
    plain = CustomerFilter(page=flt.page, per_page=flt.per_page)
    values = book.facets if facets and scope is None else {}
    if warned is None and flt == plain:
        # The default order, nothing filtered: a slice of the book, or of an owner's rows.
        _order(flt.sort, book.shown, tiers)                  # the same check as a query's
        start = (page - 1) * per_page
        if scope is None:
            rows = book.table.select(book.shown).slice(start, per_page)
            return CustomerPage(rows.to_pylist(), book.table.num_rows, page, per_page, values)
        mine = book.owners.get(scope, _NONE)
        rows = book.table.select(book.shown).take(mine[start:start + per_page])
        if facets:
            values = _scoped_facets(con, snapshot, book, scope)
        return CustomerPage(rows.to_pylist(), len(mine), page, per_page, values)
    cursor = con.cursor()
    try:
        chosen = _select(cursor, book, tiers, flt, scope, warned)
        total = cursor.execute(f"SELECT count(*) {chosen.source}", chosen.params).fetchone()
        rows = cursor.execute(
            f"SELECT {', '.join(chosen.shown)} {chosen.source} ORDER BY {chosen.order} "
            f"LIMIT {per_page} OFFSET {(page - 1) * per_page}", chosen.params)
        names = [d[0] for d in rows.description or []]
        found = [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
        if facets and scope is not None:
            values = _cached_facets(cursor, snapshot, chosen.base, chosen.base_params,
                                    chosen.columns)
    finally:
        cursor.close()
    return CustomerPage(found, int(total[0]) if total else 0, page, per_page, values)


def matching_ids(con: duckdb.DuckDBPyConnection, snapshot: str, tiers: list[str],
                 flt: CustomerFilter, *, scope: str | None,
                 warned: pa.Table | None = None) -> list[str]:
    """The ids of every customer the filter and scope let through, in the list's order (an
    export of the filtered list): one query, not a walk over the pages."""
    book = _book(con, snapshot, tiers)
    cursor = con.cursor()
    try:
        chosen = _select(cursor, book, tiers, flt, scope, warned)
        rows = cursor.execute(f"SELECT customer_id {chosen.source} ORDER BY {chosen.order}",
                              chosen.params).fetchall()
    finally:
        cursor.close()
    return [r[0] for r in rows]


# -- the book: a run's list in memory -------------------------------------------------------

@dataclass(frozen=True)
class _Book:
    """A run's list columns with today's owners, in the default order (``_pos``), and the
    facets of the whole book."""

    table: pa.Table
    shown: list[str]
    columns: set[str]
    facets: dict[str, list[str]]
    ids: Any                          # numpy: the customer ids, sorted
    at: Any                           # numpy: each sorted id's row in ``table``
    owners: dict[str, Any]            # numpy: each owner's rows in ``table``, in order


_NONE = np.zeros(0, dtype=np.int64)


def _by_owner(table: pa.Table) -> dict[str, Any]:
    """Each owner's rows of the book (ascending, so in the list's order)."""
    encoded = pc.dictionary_encode(table["owner"].combine_chunks())
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    cuts = np.flatnonzero(np.diff(ordered)) + 1
    names = encoded.dictionary.to_pylist()
    return {names[int(group[0])]: rows for group, rows in
            zip(np.split(ordered, cuts), np.split(order, cuts), strict=True)
            if len(group) and group[0] >= 0}


def _scoped_facets(con: duckdb.DuckDBPyConnection, snapshot: str, book: _Book,
                   scope: str) -> dict[str, list[str]]:
    cursor = con.cursor()
    try:
        cursor.register("_tw_book", book.table)
        return _cached_facets(cursor, snapshot, "SELECT * FROM _tw_book WHERE owner = ?",
                              [scope], book.columns)
    finally:
        cursor.close()


BOOKS_KEPT = 2                        # a run's book and the next one's while it replaces it
_books: dict[tuple[str, str, tuple[str, ...]], _Book] = {}
_books_lock = threading.Lock()


def _store_stamp(con: duckdb.DuckDBPyConnection) -> str:
    """What changes when the store is written: its file's (and write-ahead log's) size and
    time; an in-memory store never counts as unchanged."""
    row = con.execute("SELECT path FROM duckdb_databases() "
                      "WHERE database_name = current_database()").fetchone()
    if not row or not row[0]:
        return f"memory-{time.monotonic_ns()}"
    parts = []
    for path in (Path(row[0]), Path(str(row[0]) + ".wal")):
        try:
            stat = path.stat()
            parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return "/".join(parts)


def _book(con: duckdb.DuckDBPyConnection, snapshot: str, tiers: list[str]) -> _Book:
    key = (snapshot, _store_stamp(con), tuple(tiers))
    found = _books.get(key)
    if found is not None:
        return found
    with _books_lock:                  # one thread reads it; the others wait for it
        found = _books.get(key)
        if found is None:
            found = _read_book(con, snapshot, tiers)
            for old in [k for k in _books if k[0] == snapshot or len(_books) >= BOOKS_KEPT]:
                _books.pop(old, None)
            _books[key] = found
    return found


def _read_book(con: duckdb.DuckDBPyConnection, snapshot: str, tiers: list[str]) -> _Book:
    cursor = con.cursor()
    try:
        columns = {r[0] for r in cursor.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{snapshot}')").fetchall()}
        shown = [c for c in LIST_COLUMNS if c in columns or c == "owner"]
        kept = [c for c in columns if c in LIST_COLUMNS and c != "owner"]
        picked = ", ".join(f"s.{_quoted(c)}" for c in sorted(kept))
        order = _order("tier", shown, tiers).replace("customer_id", "s.customer_id")
        table = cursor.execute(
            f"SELECT {picked}, coalesce(c.owner, s.owner) AS owner, "
            f"c.owner AS store_owner FROM read_parquet('{snapshot}') s "
            f"LEFT JOIN customers c USING (customer_id) ORDER BY {order}").to_arrow_table()
        table = table.append_column("_pos", pa.array(range(table.num_rows), pa.int64()))
        cursor.register("_tw_book", table)
        facets = _facets(cursor, "SELECT * FROM _tw_book", [], columns | {"owner"})
        cursor.unregister("_tw_book")
    finally:
        cursor.close()
    table = table.combine_chunks()
    ids = table["customer_id"].to_numpy(zero_copy_only=False).astype(str)
    at = np.argsort(ids, kind="stable")
    return _Book(table, shown, columns, facets, ids[at], at, _by_owner(table))


@dataclass(frozen=True)
class _Rows:
    """A run's whole snapshot (every column) with its ids sorted: one customer's row for
    their profile without reading the file (about 0.4 GB at 1,000,000 customers)."""

    table: pa.Table
    ids: Any
    at: Any


_rows: dict[str, _Rows] = {}
_rows_lock = threading.Lock()


def snapshot_row(con: duckdb.DuckDBPyConnection, snapshot: str,
                 customer_id: str) -> pa.Table | None:
    """The customer's row of the run's snapshot (kept in memory per process for the
    latest run asked about), or None when the run has no such customer."""
    found = _rows.get(snapshot)
    if found is None:
        with _rows_lock:
            found = _rows.get(snapshot)
            if found is None:
                cursor = con.cursor()
                try:
                    table = cursor.execute(
                        f"SELECT * FROM read_parquet('{snapshot}')").to_arrow_table()
                finally:
                    cursor.close()
                table = table.combine_chunks()
                ids = table["customer_id"].to_numpy(zero_copy_only=False).astype(str)
                at = np.argsort(ids, kind="stable")
                found = _Rows(table, ids[at], at)
                _rows.clear()                   # only the latest run's is kept
                _rows[snapshot] = found
    index = int(np.searchsorted(found.ids, customer_id))
    if index >= len(found.ids) or found.ids[index] != customer_id:
        return None
    return found.table.slice(int(found.at[index]), 1)


def book_owner(con: duckdb.DuckDBPyConnection, snapshot: str, tiers: list[str],
               customer_id: str) -> tuple[bool, str | None]:
    """Whether the customer is in the run's book, and their owner in the store."""
    book = _book(con, snapshot, tiers)
    index = int(np.searchsorted(book.ids, customer_id))
    if index >= len(book.ids) or book.ids[index] != customer_id:
        return False, None
    owner = book.table["store_owner"][int(book.at[index])].as_py()
    return True, owner


def _conditions(flt: CustomerFilter, warned: bool,
                columns: set[str]) -> tuple[str, list[Any]]:
    parts, params = [], []
    for name in ("tier", "stage", "owner", "industry", "region"):
        value = getattr(flt, name)
        if value and name not in columns:
            raise TierwiseError(f"the run has no {name} column to filter by")
        if value:
            parts.append(f"{name} = ?")
            params.append(value)
    if flt.search:
        parts.append("(customer_id ILIKE ? OR coalesce(name, '') ILIKE ?)")
        pattern = "%" + flt.search.replace("%", r"\%").replace("_", r"\_") + "%"
        params += [pattern, pattern]
    if warned:
        parts.append("customer_id IN (SELECT customer_id FROM _tw_warned)")
    return ("WHERE " + " AND ".join(parts)) if parts else "", params


def _order(sort: str, shown: list[str], tiers: list[str]) -> str:
    descending = sort.startswith("-")
    name = sort.lstrip("-") or "tier"
    if name not in shown:
        raise TierwiseError(f"cannot sort by {name!r}; columns: {', '.join(shown)}")
    direction = "DESC" if descending else "ASC"
    if name == "tier":
        ranks = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(tiers))
        value = "score" if "score" in shown else "annual_spend"
        return (f"CASE tier {ranks} END {direction}, {value} DESC NULLS LAST, customer_id")
    return f"{_quoted(name)} {direction} NULLS LAST, customer_id"


_FACETS_FOR = 60.0                       # seconds: owners may change, runs do not
_facet_cache: dict[tuple[str, str | None], tuple[float, dict[str, list[str]]]] = {}


def _cached_facets(cursor: duckdb.DuckDBPyConnection, snapshot: str, base: str,
                   params: list[Any], columns: set[str]) -> dict[str, list[str]]:
    """The filter choices of a run and scope, kept for a minute: four DISTINCT scans of the
    book on every page of the list would cost more than the page itself."""
    key = (snapshot, params[0] if params else None)
    found = _facet_cache.get(key)
    if found is None or time.monotonic() - found[0] > _FACETS_FOR:
        found = (time.monotonic(), _facets(cursor, base, params, columns | {"owner"}))
        _facet_cache[key] = found
    return found[1]


def _facets(cursor: duckdb.DuckDBPyConnection, base: str, params: list[Any],
            columns: set[str]) -> dict[str, list[str]]:
    values = {}
    for name in (f for f in FACETS if f in columns):
        rows = cursor.execute(f"SELECT DISTINCT {name} FROM ({base}) WHERE {name} IS NOT NULL "
                              f"ORDER BY 1 LIMIT 500", params).fetchall()
        values[name] = [str(r[0]) for r in rows]
    return values


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def owned_ids(con: duckdb.DuckDBPyConnection, owner: str) -> set[str]:
    """The customers an owner has today (a rep's scope over lists that are not the list)."""
    cursor = con.cursor()
    try:
        rows = cursor.execute("SELECT customer_id FROM customers WHERE owner = ?",
                              [owner]).fetchall()
    finally:
        cursor.close()
    return {r[0] for r in rows}


def visible(con: duckdb.DuckDBPyConnection, customer_id: str, scope: str | None) -> bool:
    """Whether a reader with this scope may see the customer (None: everyone may)."""
    cursor = con.cursor()
    try:
        row = cursor.execute("SELECT owner FROM customers WHERE customer_id = ?",
                             [customer_id]).fetchone()
    finally:
        cursor.close()
    if row is None:
        return False
    return scope is None or row[0] == scope
