"""What-if: grade with another policy without recording anything, and see who would move
against the latest recorded run.

The tiers are the ones a real run of the policy would record (hysteresis from the run it
would continue, active overrides); the comparison is done by the engine, joining them with
the latest run's snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import sqlalchemy as sa

from tierwise.data.tables import CanonicalTables, latest_order_date
from tierwise.grading.run import final_tiers
from tierwise.policy.model import Policy
from tierwise.record.history import Move, RunRecord, list_runs
from tierwise.record.runs import TierSummary, snapshot_location, summarise


@dataclass(frozen=True)
class WhatIf:
    as_of: dt.date
    policy_name: str
    policy_hash: str
    customers: int
    tiers: list[TierSummary]
    against: RunRecord | None                # the latest recorded run, if any
    pairs: dict[tuple[str | None, str | None], int]   # (recorded tier, new tier) -> customers
    moves: list[Move]                       # customers whose tier would differ, by id
    unchanged: int

    @property
    def moved(self) -> int:
        return sum(n for (a, b), n in self.pairs.items() if a != b)

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        return {
            "dry_run": True,
            "as_of": self.as_of.isoformat(),
            "policy": {"name": self.policy_name, "hash": self.policy_hash},
            "customers": self.customers,
            "tiers": [{k: v for k, v in t.__dict__.items() if k != "target_share"}
                      for t in self.tiers],
            "against_run": None if self.against is None else {
                "id": self.against.id, "as_of": self.against.as_of.isoformat(),
                "policy": self.against.policy_name},
            "moved": self.moved,
            "unchanged": self.unchanged,
            "pairs": [{"from": a, "to": b, "customers": n}
                      for (a, b), n in sorted(self.pairs.items(), key=_pair_order)
                      if a != b],
            "moves": [m.__dict__ for m in self.moves[:limit]],
        }


def what_if(backend: Any, tables: CanonicalTables, policy: Policy, *, appdb: sa.Engine,
            runs_dir: Path, as_of: dt.date | None = None, lang: str = "zh") -> WhatIf:
    """Grade with ``policy`` as of ``as_of`` (default: the latest run's date, so that the
    comparison is like for like) and compare with the latest recorded run."""
    runs = list_runs(appdb)
    against = runs[-1] if runs else None
    if as_of is None:
        as_of = against.as_of if against else latest_order_date(backend, tables.orders)
    with final_tiers(backend, tables, policy, as_of, appdb=appdb,
                     runs_dir=runs_dir) as (_ev, final, _previous):
        light = backend.to_pyarrow(final.select(
            "customer_id", "tier", "change", "annual_spend", "profit"))
        tiers, _changes = summarise(light, policy, lang)
        pairs, moves = _compare(backend, final, against, runs_dir)
    unchanged = sum(n for (a, b), n in pairs.items() if a == b)
    return WhatIf(as_of=as_of, policy_name=policy.name, policy_hash=policy.hash,
                  customers=light.num_rows, tiers=tiers, against=against, pairs=pairs,
                  moves=moves, unchanged=unchanged)


def _compare(backend: Any, final: ir.Table, against: RunRecord | None, runs_dir: Path,
             ) -> tuple[dict[tuple[str | None, str | None], int], list[Move]]:
    new = final.select("customer_id", new_tier=final.tier)
    if against is None:
        counts = backend.to_pyarrow(new.group_by("new_tier").aggregate(n=new.count()))
        return {(None, t): n for t, n in zip(counts["new_tier"].to_pylist(),
                                             counts["n"].to_pylist(), strict=True)}, []
    old = backend.read_parquet(snapshot_location(runs_dir, against.id, against.snapshot))
    old = old.select(old_id=old.customer_id, old_tier=old.tier)
    both = new.outer_join(old, new.customer_id == old.old_id).select(
        customer_id=new.customer_id.coalesce(old.old_id), old_tier=old.old_tier,
        new_tier=new.new_tier)
    counts = backend.to_pyarrow(both.group_by(["old_tier", "new_tier"]).aggregate(n=both.count()))
    pairs = {(a, b): n for a, b, n in zip(counts["old_tier"].to_pylist(),
                                          counts["new_tier"].to_pylist(),
                                          counts["n"].to_pylist(), strict=True)}
    moved = both.filter(both.old_tier.isnull() | both.new_tier.isnull()
                        | (both.old_tier != both.new_tier)).order_by("customer_id")
    rows: pa.Table = backend.to_pyarrow(moved)
    moves = [Move(c, a, b) for c, a, b in zip(rows["customer_id"].to_pylist(),
                                              rows["old_tier"].to_pylist(),
                                              rows["new_tier"].to_pylist(), strict=True)]
    return pairs, moves


def _pair_order(item: tuple[tuple[str | None, str | None], int]) -> tuple[int, str, str]:
    (a, b), n = item
    return (-n, a or "", b or "")
