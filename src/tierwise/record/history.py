"""Reading the record: runs, tier history per customer, diffs between runs, overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.data.ingest.parsing import sql_string
from tierwise.errors import RunNotFound, TierwiseError
from tierwise.policy.loading import load_policy_text
from tierwise.policy.model import Policy


@dataclass(frozen=True)
class RunRecord:
    id: int
    created_at: dt.datetime
    created_by: str
    as_of: dt.date
    window_months: int
    policy_name: str
    policy_hash: str
    policy_text: str
    data_fingerprint: str
    source: str
    customers: int
    previous_run_id: int | None
    summary: list[dict[str, Any]]
    aggregates: dict[str, float | None]
    models: dict[str, Any] | None = None
    engine: str | None = None          # None: duckdb (runs before engines were recorded)
    snapshot: str | None = None        # where its assignments are (tierwise.grading.run)
    changes: dict[str, int] | None = None

    @property
    def policy(self) -> Policy:
        return _run_policy(self.id, self.policy_text)

    def aggregate_values(self) -> dict[tuple[str, str], float | None]:
        result: dict[tuple[str, str], float | None] = {}
        for key, value in self.aggregates.items():
            func, _, rest = key.partition("(")
            result[(func, rest.rstrip(")"))] = value
        return result


@lru_cache(maxsize=64)
def _run_policy(run_id: int, text: str) -> Policy:
    """A run's policy, parsed once per process: the web pages read it on every request.
    The stored text was valid when the run was made; rules are not re-checked against
    today's attributes."""
    return load_policy_text(text, source=f"run {run_id}", check=False)


def _record(row: Any) -> RunRecord:
    return RunRecord(**{k: row[k] for k in RunRecord.__dataclass_fields__})


def list_runs(appdb: sa.Engine) -> list[RunRecord]:
    with appdb.connect() as connection:
        rows = connection.execute(sa.select(schema.runs).order_by(schema.runs.c.id)).mappings()
        return [_record(row) for row in rows]


def get_run(appdb: sa.Engine, run_id: int | None = None) -> RunRecord:
    """A run by id, or the latest run when run_id is None."""
    runs = schema.runs
    query = sa.select(runs)
    query = (query.where(runs.c.id == run_id) if run_id is not None
             else query.order_by(runs.c.id.desc()).limit(1))
    with appdb.connect() as connection:
        row = connection.execute(query).mappings().first()
    if row is None:
        raise RunNotFound(f"no run {run_id}" if run_id is not None
                          else "no grading run yet: make one with `tierwise grade`")
    return _record(row)


@dataclass(frozen=True)
class Move:
    customer_id: str
    from_tier: str | None
    to_tier: str | None


@dataclass(frozen=True)
class Diff:
    run_a: RunRecord
    run_b: RunRecord
    moves: list[Move]
    matrix: dict[tuple[str | None, str | None], int]   # (tier in A, tier in B) -> customers
    unchanged: int


# The Parquet files of a run's snapshot on this machine (empty when missing): every
# customer's tier of a run is read there, not from the app database.
SnapshotFiles = Callable[[RunRecord], list[str]]


def diff_runs(appdb: sa.Engine, files: SnapshotFiles, run_a: int | None = None,
              run_b: int | None = None) -> Diff:
    """Who moved between two runs (default: the two latest) and the migration matrix,
    from the two runs' snapshots."""
    if run_a is None:
        runs = list_runs(appdb)
        if len(runs) < 2:
            raise RunNotFound(f"diff needs two runs; there is only {len(runs)}")
        a, b = runs[-2], runs[-1]
    elif run_b is None:                       # one run: against the run it continues
        b = get_run(appdb, run_a)
        if b.previous_run_id is None:
            raise RunNotFound(f"run {b.id} continues no earlier run; give two run ids")
        a = get_run(appdb, b.previous_run_id)
    else:
        a, b = get_run(appdb, run_a), get_run(appdb, run_b)
    con = duckdb.connect()
    try:
        left, right = _tiers(con, files, a), _tiers(con, files, b)
        pairs = con.execute(f"""
            SELECT a.tier, b.tier, count(*) FROM {left} a FULL JOIN {right} b USING (customer_id)
            GROUP BY ALL""").fetchall()
        moved = con.execute(f"""
            SELECT customer_id, a.tier, b.tier FROM {left} a FULL JOIN {right} b
            USING (customer_id) WHERE a.tier IS DISTINCT FROM b.tier
            ORDER BY customer_id""").fetchall()
    finally:
        con.close()
    matrix = {(tier_a, tier_b): int(n) for tier_a, tier_b, n in pairs}
    moves = [Move(customer_id, tier_a, tier_b) for customer_id, tier_a, tier_b in moved]
    unchanged = sum(n for (x, y), n in matrix.items() if x == y)
    return Diff(a, b, moves, matrix, unchanged)


def _tiers(con: duckdb.DuckDBPyConnection, files: SnapshotFiles, record: RunRecord) -> str:
    """A relation of (customer_id, tier) of a run's snapshot."""
    found = files(record)
    if not found:
        raise TierwiseError(f"the snapshot of run {record.id} is missing")
    return f"(SELECT customer_id, tier FROM read_parquet({_list(found)}))"


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(map(sql_string, paths)) + "]"


@dataclass(frozen=True)
class HistoryEntry:
    run_id: int
    as_of: dt.date
    tier: str
    computed_tier: str
    basis: str
    score: float | None
    stage: str | None = None       # lifecycle stage (runs before it was recorded: None)


def customer_history(appdb: sa.Engine, customer_id: str,
                     files: SnapshotFiles) -> list[HistoryEntry]:
    """The customer's tier, basis, score and stage in every run that graded them, oldest
    first, read from the runs' snapshots (each sorted by customer, so a filter skips most
    of every file)."""
    runs = list_runs(appdb)
    by_file = {path: record for record in runs for path in files(record)}
    if not by_file:
        return []
    con = duckdb.connect()
    try:
        table = con.execute(
            f"SELECT * FROM read_parquet({_list(list(by_file))}, union_by_name = true, "
            "filename = '_tw_file') WHERE customer_id = ?", [customer_id]).to_arrow_table()
    finally:
        con.close()
    entries = []
    for row in table.to_pylist():
        record = by_file[row["_tw_file"]]
        entries.append(HistoryEntry(record.id, record.as_of, row["tier"], row["computed_tier"],
                                    row["basis"], row.get("score"), row.get("stage")))
    return sorted(entries, key=lambda e: (e.as_of, e.run_id))


@dataclass(frozen=True)
class Override:
    id: int
    customer_id: str
    tier: str
    reason: str
    until: dt.date | None
    created_at: dt.datetime
    created_by: str
    removed_at: dt.datetime | None
    removed_by: str | None


def overrides_for(appdb: sa.Engine, customer_id: str) -> list[Override]:
    o = schema.overrides
    with appdb.connect() as connection:
        rows = connection.execute(sa.select(o).where(o.c.customer_id == customer_id)
                                  .order_by(o.c.id)).mappings()
        return [Override(**row) for row in rows]


def add_override(appdb: sa.Engine, customer_id: str, tier: str, *, reason: str,
                 until: dt.date | None, user: str, policy: Policy) -> int:
    if tier not in policy.keys:
        raise TierwiseError(f"unknown tier {tier!r}; the policy's tiers are: "
                            + ", ".join(policy.keys))
    if not reason.strip():
        raise TierwiseError("an override needs a reason (--reason)")
    with appdb.begin() as connection:
        result = connection.execute(schema.overrides.insert().values(
            customer_id=customer_id, tier=tier, reason=reason.strip(), until=until,
            created_at=dt.datetime.now(dt.UTC), created_by=user))
        return new_id(result)


def new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def remove_overrides(appdb: sa.Engine, customer_id: str, *, user: str) -> int:
    """End every active override of the customer; returns how many were ended."""
    o = schema.overrides
    with appdb.begin() as connection:
        result = connection.execute(
            o.update().where(o.c.customer_id == customer_id).where(o.c.removed_at.is_(None))
            .values(removed_at=dt.datetime.now(dt.UTC), removed_by=user))
        return int(result.rowcount)


def overrides_by_id(appdb: sa.Engine) -> dict[int, Override]:
    o = schema.overrides
    with appdb.connect() as connection:
        return {row["id"]: Override(**row)
                for row in connection.execute(sa.select(o)).mappings()}
