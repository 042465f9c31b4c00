"""Recording a run: its snapshot of every customer's metrics and tiers, and the app-database
rows (the run with its summary, the customers who moved), all in one transaction; and where a
run's snapshot lives. Runs before 2026-12 also kept every assignment in the app database;
every reader now reads the snapshot."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.appdb.database import bulk_insert
from tierwise.data.engines import (
    described,
    is_local,
    is_spark,
    local_path,
    remove_dataset,
    rename_dataset,
    staging_location,
)
from tierwise.errors import TierwiseError
from tierwise.metrics.per_customer import Window
from tierwise.policy.model import Policy
from tierwise.record.audit import Actor, audit
from tierwise.record.history import new_id


@dataclass(frozen=True)
class TierSummary:
    tier: str
    label: str
    customers: int
    customer_share: float | None
    revenue: float
    revenue_share: float | None
    profit: float | None
    profit_share: float | None
    target_share: tuple[float, float] | None = None


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    as_of: dt.date
    policy_name: str
    policy_hash: str
    customers: int
    tiers: list[TierSummary]
    changes: dict[str, int]
    previous_run_id: int | None = None
    created_at: dt.datetime | None = None
    source: str = ""
    rejected_rows: int = 0          # rows of the graded files that failed validation
    models: dict[str, Any] | None = None   # what the run's models fitted (ModelReport)
    tasks: Any = None               # tierwise.work.tasks.TaskSync when the run derived tasks

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "policy": {"name": self.policy_name, "hash": self.policy_hash},
            "customers": self.customers,
            "tiers": [
                {k: v for k, v in t.__dict__.items() if k != "target_share"} for t in self.tiers
            ],
            "changes": self.changes,
            **({"models": self.models} if self.models is not None else {}),
            **({"tasks": self.tasks.__dict__} if self.tasks is not None else {}),
        }


def snapshot_path(runs_dir: Path, run_id: int) -> Path:
    """Where the embedded engine keeps a run's assignments."""
    return runs_dir / f"run-{run_id:06d}.parquet"


def snapshot_location(runs_dir: Path, run_id: int, stored: str | None) -> str:
    """A run's assignments as a path or glob both engines read: ``runs.snapshot`` as stored
    (relative to the workspace when inside it), else the embedded engine's file."""
    if stored is None:
        return str(snapshot_path(runs_dir, run_id))
    if is_local(stored) and not local_path(stored).is_absolute():
        return str(runs_dir.parent / stored)
    return stored


def local_snapshot(location: str) -> str:
    """``location``, which must be on this machine: a run whose assignments Spark wrote to
    a cluster filesystem (s3a://, hdfs://) is read there, not here."""
    if not is_local(location):
        raise TierwiseError(f"this run's assignments are at {location}: read them with Spark "
                            "(or keep engine.assignments on a local or mounted path for the "
                            "workbench and exports)")
    return location


def snapshot_files(location: str) -> list[str]:
    """The Parquet files of a snapshot on this machine's disk (a file, or a run's part
    files); empty when it is missing."""
    return sorted(glob.glob(str(local_path(local_snapshot(location)))))


def run_partition(folder: str, run_id: int) -> str:
    """The folder of one run in an assignments dataset partitioned by run."""
    return f"{folder.rstrip('/')}/run_id={run_id}"


def previous_run(connection: sa.Connection, as_of: dt.date, policy: Policy,
                 source: str) -> Mapping[str, Any] | None:
    """The run this one continues: the latest with an earlier as-of date, the same policy
    name and the same source.

    Re-running a date therefore starts from the same base and gives the same tiers (a rerun
    does not count twice towards hysteresis), and trying another policy or grading other
    files does not disturb the history of the workspace's own runs.
    """
    runs = schema.runs
    row = connection.execute(
        sa.select(runs.c.id, runs.c.as_of, runs.c.snapshot)
        .where(runs.c.as_of < as_of, runs.c.policy_name == policy.name,
               runs.c.source == source)
        .order_by(runs.c.as_of.desc(), runs.c.id.desc()).limit(1)
    ).mappings().first()
    return dict(row) if row else None


NO_OVERRIDES = pa.table({"customer_id": pa.array([], pa.string()),
                         "override_tier": pa.array([], pa.string()),
                         "override_id": pa.array([], pa.int64())})


def active_overrides(connection: sa.Connection, as_of: dt.date, policy: Policy) -> pa.Table:
    o = schema.overrides
    rows = connection.execute(
        sa.select(o.c.customer_id, o.c.tier, o.c.id)
        .where(o.c.removed_at.is_(None))
        .where(sa.or_(o.c.until.is_(None), o.c.until >= as_of))
        .where(o.c.tier.in_(policy.keys))
        .order_by(o.c.id)
    ).all()
    latest = {customer: (tier, oid) for customer, tier, oid in rows}  # newest wins
    return pa.table({
        "customer_id": pa.array(list(latest), pa.string()),
        "override_tier": pa.array([v[0] for v in latest.values()], pa.string()),
        "override_id": pa.array([v[1] for v in latest.values()], pa.int64()),
    }, schema=NO_OVERRIDES.schema)


def summarise(snapshot: pa.Table, policy: Policy,
              lang: str = "zh") -> tuple[list[TierSummary], dict[str, int]]:
    """Per tier in policy order: customers, revenue, profit and shares; change counts."""
    return summarise_on(ibis.memtable(snapshot), policy, lang, execute=lambda e: e.to_pyarrow())


def summarise_on(snapshot: ir.Table, policy: Policy, lang: str = "zh", *,
                 execute: Any) -> tuple[list[TierSummary], dict[str, int]]:
    """:func:`summarise` as two aggregate queries on the engine that holds the snapshot:
    a few rows per tier come back, however many customers there are."""
    spend = snapshot.annual_spend.fill_null(0.0)
    by_tier = execute(snapshot.group_by("tier").aggregate(
        customers=snapshot.count(), revenue=spend.sum(), profit=snapshot.profit.sum(),
        profit_known=snapshot.profit.count())).to_pylist()
    by_change = execute(snapshot.group_by("change").aggregate(n=snapshot.count())).to_pylist()
    per_tier = {row["tier"]: row for row in by_tier}
    total = sum(row["customers"] for row in by_tier)
    total_revenue = sum(row["revenue"] or 0.0 for row in by_tier)
    profit_known = any(row["profit_known"] for row in by_tier)
    total_profit = sum(row["profit"] or 0.0 for row in by_tier) if profit_known else None
    tiers: list[TierSummary] = []
    for tier in policy.tiers:
        row = per_tier.get(tier.key, {})
        count = int(row.get("customers") or 0)
        revenue = float(row.get("revenue") or 0.0)
        tier_profit = float(row.get("profit") or 0.0) if profit_known else None
        tiers.append(TierSummary(
            tier=tier.key, label=tier.display(lang), customers=count,
            customer_share=count / total if total else None,
            revenue=revenue,
            revenue_share=revenue / total_revenue if total_revenue > 0 else None,
            profit=tier_profit,
            profit_share=(tier_profit / total_profit
                          if tier_profit is not None and total_profit else None),
            target_share=tier.target_share,
        ))
    by_kind = {row["change"]: int(row["n"]) for row in by_change}
    changes = {"upgraded": by_kind.get("up", 0), "downgraded": by_kind.get("down", 0),
               "new": by_kind.get("new", 0), "unchanged": by_kind.get("same", 0)}
    return tiers, changes


def _record(backend: Any, final: ir.Table, policy: Policy, policy_text: str, *,
            appdb: sa.Engine, runs_dir: Path, window: Window,
            aggregates: Mapping[tuple[str, str], float | None],
            previous: Mapping[str, Any] | None, fingerprint: str, source: str,
            actor: Actor, lang: str, models: dict[str, Any] | None = None,
            assignments: str | None = None) -> RunSummary:
    """Write the snapshot to a staging place, summarise it there, then in one app-database
    transaction record the run and move the snapshot into place: all of it or nothing."""
    spark = is_spark(backend)
    runs_dir.mkdir(parents=True, exist_ok=True)
    folder = assignments or str(runs_dir / "assignments")
    if spark:
        # Written by the executors; nothing per customer passes through the driver.
        staging = staging_location(folder)
        with described(backend, "tiers, written as the run's assignments"):
            backend.to_parquet(final, staging)
    else:
        staging = str(runs_dir / f".staging-{uuid.uuid4().hex}.parquet")
        backend.to_parquet(final.order_by("customer_id"), staging)
    try:
        snapshot = backend.read_parquet(staging)
        with described(backend, "run summary"):
            tiers, changes = summarise_on(snapshot, policy, lang, execute=backend.to_pyarrow)
        customers = sum(t.customers for t in tiers)
        created_at = dt.datetime.now(dt.UTC)
        with appdb.begin() as connection:
            run_id = new_id(connection.execute(schema.runs.insert().values(
                created_at=created_at, created_by=actor.name, as_of=window.as_of,
                window_months=window.months, policy_name=policy.name,
                policy_hash=policy.hash, policy_text=policy_text,
                data_fingerprint=fingerprint, source=source, customers=customers,
                previous_run_id=previous["id"] if previous else None,
                summary=json.loads(json.dumps([t.__dict__ for t in tiers])),
                aggregates={f"{f}({n})": v for (f, n), v in aggregates.items()},
                models=models, engine="spark" if spark else "duckdb", changes=changes,
            )))
            audit(connection, actor, "run", f"run {run_id}",
                  f"as of {window.as_of.isoformat()}, {policy.name}, {customers} customers")
            if spark:
                target = run_partition(folder, run_id)
                connection.execute(schema.runs.update().where(schema.runs.c.id == run_id)
                                   .values(snapshot=_stored_location(runs_dir, target)))
                rename_dataset(backend, staging, target)
            else:
                # Every customer's tier stays in the snapshot; the app database keeps the
                # moves (a first run moves no one: every tier is new).
                if previous is not None:
                    moved = snapshot.filter(snapshot.change.isin(["up", "down", "new"]))
                    _insert_changes(connection, run_id, backend.to_pyarrow(moved.select(
                        "customer_id", "prev_tier", "tier", "change", "basis")))
                os.replace(staging, snapshot_path(runs_dir, run_id))
    except BaseException:
        remove_dataset(backend, staging) if spark else Path(staging).unlink(missing_ok=True)
        raise
    return RunSummary(run_id=run_id, as_of=window.as_of, policy_name=policy.name,
                      policy_hash=policy.hash, customers=customers, tiers=tiers,
                      changes=changes, previous_run_id=previous["id"] if previous else None,
                      created_at=created_at, source=source, models=models)


def _stored_location(runs_dir: Path, location: str) -> str:
    """Inside the workspace: relative to it, so that a moved workspace keeps its runs."""
    folder = location
    if is_local(location):
        path = local_path(location)
        folder = str(path.relative_to(runs_dir.parent) if path.is_relative_to(runs_dir.parent)
                     else path)
    return folder + "/*.parquet"


def _insert_changes(connection: sa.Connection, run_id: int, moved: pa.Table) -> None:
    basis = moved["basis"].to_pylist()
    rows = zip(moved["customer_id"].to_pylist(), moved["prev_tier"].to_pylist(),
               moved["tier"].to_pylist(), moved["change"].to_pylist(), basis, strict=True)
    bulk_insert(connection, schema.changes,
                ("run_id", "customer_id", "from_tier", "to_tier", "direction", "basis"),
                ((run_id, *row) for row in rows))


def discard_run(appdb: sa.Engine, runs_dir: Path, run_id: int) -> None:
    """Take back a recorded run whose follow-up failed (its tasks could not be written):
    its rows, its changes, its audit row and its snapshot, so that no half-done run stays
    as the latest. Only the embedded engine's runs are taken back (a Spark run's dataset is
    left where the engine wrote it)."""
    with appdb.begin() as connection:
        for table in (schema.changes, schema.assignments):
            connection.execute(table.delete().where(table.c.run_id == run_id))
        connection.execute(schema.audit_log.delete().where(
            schema.audit_log.c.action == "run", schema.audit_log.c.target == f"run {run_id}"))
        connection.execute(schema.runs.delete().where(schema.runs.c.id == run_id))
    snapshot_path(runs_dir, run_id).unlink(missing_ok=True)


def sweep_staging(runs_dir: Path) -> list[Path]:
    """Remove staging snapshots a killed run left in runs/ (``.staging-*.parquet``): a run
    writes one before its transaction and moves or removes it after, so one that is still
    there belongs to no run. Called at the start of a run, which holds the store."""
    left = sorted(runs_dir.glob(".staging-*.parquet"))
    for path in left:
        path.unlink(missing_ok=True)
    return left
