"""Recording one interaction at a time (a visit, a call, a complaint), as `tierwise log` does.

The row is the same as an imported one: the type is mapped onto the canonical interaction
types, and the id is the same content hash imports use, so importing an export that already
holds the row later changes nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass

import duckdb

from tierwise.data.ingest.load import interaction_id_sql
from tierwise.data.ingest.parsing import (
    INTERACTION_ALIASES,
    INTERACTION_TYPES,
    canonical_interaction_type,
)
from tierwise.errors import InputError


@dataclass(frozen=True)
class Logged:
    interaction_id: str
    customer_id: str
    kind: str
    date: dt.date
    created: bool           # False: the same interaction was already recorded


def interaction_type(text: str) -> str:
    """The canonical type for what a user wrote (拜访 → visit); unknown types are refused."""
    kind = canonical_interaction_type(text)
    if kind is None:
        close = difflib.get_close_matches(text.strip().lower(), list(INTERACTION_ALIASES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise InputError(f"unknown interaction type {text!r}{hint} Known: "
                         + ", ".join(sorted(INTERACTION_TYPES)) + " (or 拜访, 电话, 投诉, …)")
    return kind


def log_interaction(con: duckdb.DuckDBPyConnection, customer_id: str, kind: str, *,
                    date: dt.date, note: str | None = None,
                    satisfaction: float | None = None,
                    today: dt.date | None = None) -> Logged:
    """Record one interaction with a known customer."""
    canonical = interaction_type(kind)
    if date > (today or dt.date.today()):
        raise InputError(f"the date {date} lies in the future")
    if satisfaction is not None and not 1 <= satisfaction <= 5:
        raise InputError(f"satisfaction must be between 1 and 5, not {satisfaction:g}")
    known = con.execute("SELECT count(*) FROM customers WHERE customer_id = ?",
                        [customer_id]).fetchone()
    if not known or not known[0]:
        raise InputError(f"unknown customer {customer_id!r}: import or add it first")
    row = ("SELECT ?::VARCHAR AS customer_id, ?::DATE AS date, ?::VARCHAR AS type, "
           "?::DOUBLE AS satisfaction, ?::VARCHAR AS note")
    values = [customer_id, date, canonical, satisfaction, note or None]
    found = con.execute(f"SELECT {interaction_id_sql()} FROM ({row})", values).fetchone()
    assert found is not None
    interaction_id = str(found[0])
    con.execute("BEGIN TRANSACTION")
    try:
        exists = con.execute("SELECT count(*) FROM interactions WHERE interaction_id = ?",
                             [interaction_id]).fetchone()
        created = not (exists and exists[0])
        if created:
            con.execute("INSERT INTO interactions (interaction_id, customer_id, date, type, "
                        "satisfaction, note) VALUES (?, ?, ?, ?, ?, ?)",
                        [interaction_id, *values])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return Logged(interaction_id, customer_id, canonical, date, created)


def customer_interactions(con: duckdb.DuckDBPyConnection, customer_id: str,
                          limit: int = 50) -> list[dict[str, object]]:
    """A customer's interactions, newest first."""
    rows = con.execute("SELECT date, type, satisfaction, note FROM interactions "
                       "WHERE customer_id = ? ORDER BY date DESC, interaction_id LIMIT ?",
                       [customer_id, limit])
    names = [d[0] for d in rows.description or []]
    return [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
