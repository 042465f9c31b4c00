"""Task generation at scale: derive and sync the tasks of a 1,000,000-customer run.

Uses the workspace that ``benchmarks/predictive.py`` builds (1M customers, 50M orders in
``bench-data/predictive/workspace``; run that first). One command:

    .venv/bin/python benchmarks/tasks.py [--workspace DIR] [--as-of 2025-12-31]

It grades with the value-tiers preset (its playbooks give every tier a contact cadence), then
times, in the same process: the grade itself (the baseline), deriving the candidate tasks
(one DuckDB query over the run's snapshot and the interactions), the first sync into the app
database (every task new), a second run's sync (every task still valid, none duplicated),
and owner assignment over the whole book (propose, then propose and apply; the owners are
put back afterwards). Nothing under ``src/`` is changed; the phases are timed by calling the
same functions ``Workspace.grade`` and ``Workspace.assign`` call.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import random
import resource
import time
from pathlib import Path

import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.policy.model import Policy
from tierwise.record.runs import snapshot_path
from tierwise.work import owners, tasks
from tierwise.workspace import Workspace

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path,
                        default=HERE.parent / "bench-data" / "predictive" / "workspace")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 12, 31))
    args = parser.parse_args()
    with Workspace(args.workspace) as ws:
        with ws.appdb.begin() as connection:          # start from no tasks
            connection.execute(schema.tasks.delete())
        policy, _ = ws.policy("value-tiers")
        started = time.perf_counter()
        summary = ws.grade(as_of=args.as_of, policy="value-tiers")   # grade + derive + sync
        whole = time.perf_counter() - started
        snapshot = str(snapshot_path(ws.runs_dir, summary.run_id))
        with ws.appdb.begin() as connection:
            connection.execute(schema.tasks.delete())
        timings: dict[str, float] = {}
        started = time.perf_counter()
        found = tasks.candidates(ws.store(), policy, snapshot, args.as_of,
                                ws.run(summary.run_id).aggregate_values())
        timings["derive candidates (DuckDB)"] = time.perf_counter() - started
        started = time.perf_counter()
        first = tasks.sync_tasks(ws.appdb, summary.run_id, args.as_of, found)
        timings["sync: all new (insert)"] = time.perf_counter() - started
        started = time.perf_counter()
        second = tasks.sync_tasks(ws.appdb, summary.run_id, args.as_of, found)
        timings["sync: all still valid (update)"] = time.perf_counter() - started
        with ws.appdb.connect() as connection:
            stored = connection.execute(sa.select(sa.func.count()).select_from(
                schema.tasks)).scalar()
        kinds = collections.Counter(found["kind"].to_pylist())
        assigned = _time_assignment(ws, policy, timings)
    # The grade call derived and synced the same tasks once: take them off for the baseline.
    grade_only = whole - timings["derive candidates (DuckDB)"] - timings["sync: all new (insert)"]
    print(f"tasks for {summary.customers:,} customers as of {args.as_of} "
          f"(app database: {ws.appdb.dialect.name})")
    print(f"{'grade incl. its tasks':<36} {whole:8.1f} s")
    print(f"{'grade without tasks (baseline)':<36} {grade_only:8.1f} s")
    for name, seconds in timings.items():
        print(f"{name:<36} {seconds:8.1f} s  {seconds / grade_only:6.2f}x the grade")
    print(f"candidates {found.num_rows:,}: " + ", ".join(f"{k} {n:,}" for k, n in
                                                         kinds.most_common()))
    print(f"first sync {first}; second sync {second}; rows stored {stored:,}")
    print(f"assign: {assigned.accounts:,} accounts, {assigned.kept:,} kept, "
          f"{len(assigned.placed):,} moved, {len(assigned.unplaced):,} unplaced")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


def _time_assignment(ws: Workspace, policy: Policy,
                     timings: dict[str, float]) -> owners.Proposal:
    """Propose and apply owners for the whole book with one rep per current owner (levels,
    regions and capacities drawn with a fixed seed; the top tier's capacity is tight), then
    put the owners back so that the workspace is unchanged."""
    store = ws.store()
    names = [r[0] for r in store.execute(
        "SELECT DISTINCT owner FROM customers WHERE owner IS NOT NULL ORDER BY owner").fetchall()]
    regions = [r[0] for r in store.execute(
        "SELECT DISTINCT region FROM customers WHERE region IS NOT NULL ORDER BY 1").fetchall()]
    rng = random.Random(7)
    top, *rest = policy.keys
    reps = [owners.Rep(name, level=rng.randint(0, 5), region=rng.choice(regions),
                       active=rng.random() > 0.05,
                       capacity={top: rng.randint(0, 150), **dict.fromkeys(rest, None)})
            for name in names]
    owners.save_reps(ws.appdb, reps, [])
    store.execute("CREATE OR REPLACE TEMP TABLE _bench_owners AS "
                  "SELECT customer_id, owner FROM customers")
    try:
        started = time.perf_counter()
        proposal = ws.assign()
        timings["assign: propose"] = time.perf_counter() - started
        started = time.perf_counter()
        ws.assign(apply=True)
        timings["assign: propose + apply"] = time.perf_counter() - started
    finally:
        store.execute("UPDATE customers SET owner = b.owner FROM _bench_owners b "
                      "WHERE customers.customer_id = b.customer_id")
        with ws.appdb.begin() as connection:
            connection.execute(schema.owner_changes.delete())
            connection.execute(schema.reps.delete())
    return proposal


if __name__ == "__main__":
    main()
