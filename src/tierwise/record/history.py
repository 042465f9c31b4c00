"""Reading the record: runs, tier history per customer, diffs between runs, overrides."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from tierwise.appdb import schema
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


def diff_runs(appdb: sa.Engine, run_a: int | None = None, run_b: int | None = None) -> Diff:
    """Who moved between two runs (default: the two latest) and the migration matrix."""
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
    t = schema.assignments
    left = sa.select(t.c.customer_id, t.c.tier).where(t.c.run_id == a.id).subquery()
    right = sa.select(t.c.customer_id, t.c.tier).where(t.c.run_id == b.id).subquery()
    query = sa.select(
        sa.func.coalesce(left.c.customer_id, right.c.customer_id).label("customer_id"),
        left.c.tier.label("a"), right.c.tier.label("b"),
    ).select_from(left.join(right, left.c.customer_id == right.c.customer_id, full=True))
    matrix: Counter[tuple[str | None, str | None]] = Counter()
    moves: list[Move] = []
    with appdb.connect() as connection:
        for customer_id, tier_a, tier_b in connection.execute(query):
            matrix[(tier_a, tier_b)] += 1
            if tier_a != tier_b:
                moves.append(Move(customer_id, tier_a, tier_b))
    moves.sort(key=lambda m: m.customer_id)
    unchanged = sum(n for (x, y), n in matrix.items() if x == y)
    return Diff(a, b, moves, dict(matrix), unchanged)


@dataclass(frozen=True)
class HistoryEntry:
    run_id: int
    as_of: dt.date
    tier: str
    computed_tier: str
    basis: str
    score: float | None
    stage: str | None = None       # lifecycle stage (runs before it was recorded: None)


def customer_history(appdb: sa.Engine, customer_id: str) -> list[HistoryEntry]:
    a, r = schema.assignments, schema.runs
    query = (sa.select(a.c.run_id, r.c.as_of, a.c.tier, a.c.computed_tier, a.c.basis, a.c.score,
                       a.c.stage)
             .join(r, r.c.id == a.c.run_id).where(a.c.customer_id == customer_id)
             .order_by(r.c.as_of, a.c.run_id))
    with appdb.connect() as connection:
        return [HistoryEntry(*row) for row in connection.execute(query)]


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
