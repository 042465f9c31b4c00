"""A grading run: metrics → scores → tiers → hysteresis and overrides → an immutable record.

Everything per customer is computed by the engine; Python only moves the finished assignment
rows into the app database. A run either lands whole (snapshot file + database rows in one
transaction) or leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.appdb.database import bulk_insert
from tierwise.common.vocabulary import MODEL_METRICS, ValueType
from tierwise.data.engines import (
    described,
    is_local,
    is_spark,
    local_path,
    materialise,
    release,
    remove_dataset,
    rename_dataset,
    staging_location,
)
from tierwise.data.store import BOOKKEEPING_COLUMNS
from tierwise.errors import TierwiseError
from tierwise.grading.clustering import ClusterResult, cluster_tiers, with_cluster_tiers
from tierwise.grading.lifecycle import stage
from tierwise.grading.scorecard import with_percentile_ranks, with_scores
from tierwise.metrics.models.predictions import ModelReport, model_metrics
from tierwise.metrics.per_customer import Window, customer_metrics, with_rank_metrics
from tierwise.metrics.ranking import ranges_for
from tierwise.policy.expr import to_ibis
from tierwise.policy.loading import name_types
from tierwise.policy.model import Models, Policy
from tierwise.record.history import new_id


@dataclass(frozen=True)
class Sources:
    """The canonical tables a run reads, as Ibis tables on one backend."""

    customers: ir.Table
    orders: ir.Table
    interactions: ir.Table
    label: str = "workspace store"
    # Invoices (tierwise.data.store payments); None: no receivables, their metrics are NULL.
    payments: ir.Table | None = None

    @classmethod
    def of_store(cls, backend: Any, label: str) -> Sources:
        """The canonical tables of a store connection (see tierwise.data.store)."""
        payments = backend.table("payments") if "payments" in backend.list_tables() else None
        return cls(backend.table("customers"), backend.table("orders"),
                   backend.table("interactions"), label=label, payments=payments)

    @property
    def attributes(self) -> list[str]:
        return [c for c in self.customers.columns
                if c not in BOOKKEEPING_COLUMNS and c != "customer_id"]


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


@dataclass(frozen=True)
class Evaluation:
    """Metrics, scores and computed tiers of every customer, before history is applied."""

    window: Window
    graded: ir.Table
    aggregates: dict[tuple[str, str], float | None]
    models: ModelReport | None = None     # None: the policy uses no model metric
    clusters: ClusterResult | None = None  # clustering policies: the fitted clusters

    def models_json(self) -> dict[str, Any] | None:
        """What the run fitted, as stored with it (runs.models)."""
        if self.models is None and self.clusters is None:
            return None
        stored: dict[str, Any] = self.models.to_json() if self.models else {}
        if self.clusters is not None:
            stored["clusters"] = self.clusters.to_json()
        return stored


def with_stage(metrics: ir.Table, policy: Policy, as_of: dt.date) -> ir.Table:
    """The metrics with the lifecycle ``stage``."""
    return metrics.mutate(stage=stage(metrics, policy.lifecycle, as_of))


def uses_models(policy: Policy) -> bool:
    """Whether a run fits the customer-base models: they cost a few seconds on a large book,
    so only when the policy reads a model metric or asks for them with a ``models`` block."""
    return policy.models is not None or bool(set(policy.used_metrics()) & set(MODEL_METRICS))


@contextmanager
def evaluation(backend: Any, sources: Sources, policy: Policy,
               as_of: dt.date) -> Iterator[Evaluation]:
    """Compute metrics once into a temporary table, and the tier each rule gives."""
    window = Window(as_of, policy.window_months)
    types = name_types(policy, sources.attributes)
    scratch = f"_tw_metrics_{uuid.uuid4().hex[:8]}"
    table, report = _materialise_metrics(backend, sources, policy, window, types, scratch)
    try:
        with described(backend, "rule aggregates"):
            aggregates = compute_aggregates(backend, table, policy)
        if policy.clustering is not None:
            clusters = cluster_tiers(backend, table, policy)
            yield Evaluation(window, with_cluster_tiers(table, clusters), aggregates, report,
                             clusters)
        else:
            yield Evaluation(window, computed_tiers(table, policy, types, aggregates),
                             aggregates, report)
    finally:
        release(backend, scratch)


def _materialise_metrics(backend: Any, sources: Sources, policy: Policy, window: Window,
                         types: dict[str, ValueType],
                         name: str) -> tuple[ir.Table, ModelReport | None]:
    """The metrics (and model metrics and scores) of every customer, computed once: the
    per-customer metrics first, then the ranks over all of them (tierwise.metrics.ranking)."""
    metrics = customer_metrics(sources.customers, sources.orders, sources.interactions, window,
                               sources.payments)
    metrics = with_stage(metrics, policy, window.as_of)
    base = f"{name}_base"
    with ExitStack() as stack:
        report = None
        if uses_models(policy):
            with described(backend, "customer-base models (histories and fit)"):
                predicted = stack.enter_context(model_metrics(
                    backend, sources.orders, window.as_of, policy.models or Models()))
            p = predicted.table
            metrics = metrics.left_join(p, "customer_id").select(
                metrics, *[p[m] for m in MODEL_METRICS])
            report = predicted.report
        with described(backend, "metrics per customer"):
            table = materialise(backend, base, metrics)
        stack.callback(release, backend, base)
        ranges = ranges_for(backend)
        with described(backend, "ranks over all customers and scores"):
            table = with_rank_metrics(backend, table, ranges=ranges)
            if policy.scorecard is not None:
                table = with_percentile_ranks(backend, table, policy.scorecard, types,
                                              ranges=ranges)
                table = with_scores(table, policy.scorecard, types)
            return materialise(backend, name, table), report


def grade(
    backend: Any,
    sources: Sources,
    policy: Policy,
    policy_text: str,
    *,
    appdb: sa.Engine,
    runs_dir: Path,
    as_of: dt.date | None = None,
    user: str = "",
    lang: str = "zh",
    assignments: str | None = None,
) -> RunSummary:
    """Grade every customer as of a date and record the run.

    On Spark the engine writes the assignments (``assignments``, default
    ``runs/assignments``, one ``run_id=N`` partition per run) and only the summary comes
    back to the driver; on DuckDB they go to ``runs/run-NNNNNN.parquet`` and the app database.
    """
    as_of = as_of or latest_order_date(backend, sources.orders)
    with final_tiers(backend, sources, policy, as_of, appdb=appdb,
                     runs_dir=runs_dir) as (ev, final, previous):
        return _record(backend, final, policy, policy_text, appdb=appdb, runs_dir=runs_dir,
                       window=ev.window, aggregates=ev.aggregates, previous=previous,
                       models=ev.models_json(),
                       fingerprint=_fingerprint(backend, sources, as_of),
                       source=sources.label, user=user, lang=lang,
                       assignments=assignments)


@contextmanager
def final_tiers(backend: Any, sources: Sources, policy: Policy, as_of: dt.date, *,
                appdb: sa.Engine, runs_dir: Path,
                ) -> Iterator[tuple[Evaluation, ir.Table, Mapping[str, Any] | None]]:
    """The tiers a run would record: computed tiers, then hysteresis from the run it
    continues and the active overrides. Also gives the evaluation and that previous run."""
    with evaluation(backend, sources, policy, as_of) as ev:
        with appdb.connect() as connection:
            previous = previous_run(connection, as_of, policy, sources.label)
            overrides = active_overrides(connection, as_of, policy)
        prior = _previous_assignments(backend, runs_dir, previous)
        yield ev, effective_tiers(ev.graded, policy, prior, overrides), previous


def latest_order_date(backend: Any, orders: ir.Table) -> dt.date:
    value = backend.execute(orders.order_date.max())
    if value is None or str(value) in ("NaT", "nan"):
        raise TierwiseError("there are no orders to grade; import orders first "
                            "(tierwise import orders FILE) or give --as-of")
    return value.date() if isinstance(value, dt.datetime) else value


def compute_aggregates(backend: Any, table: ir.Table,
                       policy: Policy) -> dict[tuple[str, str], float | None]:
    """Values of mean(x), median(x), … that the rules use, over all graded customers."""
    needed = sorted({a for t in policy.tiers if t.rule for a in t.rule.aggregates})
    if not needed:
        return {}
    functions = {"mean": "mean", "median": "median", "min": "min", "max": "max"}
    exprs = {f"a{i}": getattr(table[name], functions[func])()
             for i, (func, name) in enumerate(needed)}
    row = backend.execute(table.aggregate(**exprs)).iloc[0]
    return {key: _float_or_none(row[f"a{i}"]) for i, key in enumerate(needed)}


def computed_tiers(table: ir.Table, policy: Policy, types: Mapping[str, ValueType],
                   aggregates: Mapping[tuple[str, str], float | None]) -> ir.Table:
    """The first tier whose rule holds; the last tier takes everyone else."""
    last = policy.tiers[-1].key
    cases = [(to_ibis(t.rule, table, types, aggregates), ibis.literal(t.key))
             for t in policy.tiers[:-1] if t.rule is not None]
    tier = ibis.cases(*cases, else_=ibis.literal(last)) if cases else ibis.literal(last)
    return table.mutate(computed_tier=tier)


def tier_rank(column: ir.StringValue, keys: Sequence[str]) -> ir.IntegerValue:
    """0 for the best tier; null for a key the policy does not have."""
    return ibis.cases(*[(column == key, ibis.literal(i)) for i, key in enumerate(keys)],
                      else_=ibis.null("int64"))


NO_OVERRIDES = pa.table({"customer_id": pa.array([], pa.string()),
                         "override_tier": pa.array([], pa.string()),
                         "override_id": pa.array([], pa.int64())})


def effective_tiers(graded: ir.Table, policy: Policy, prior: ir.Table | None,
                    overrides: pa.Table = NO_OVERRIDES) -> ir.Table:
    """Apply hysteresis (slow downgrades) and overrides to the computed tiers.

    `prior` has the previous run's customer_id, prev_tier (effective), prev_policy_tier and
    prev_streak. A lower computed tier takes effect after `downgrade_after` consecutive runs;
    an upgrade is immediate; an override wins over both.
    """
    keys = policy.keys
    if prior is None:
        prior = ibis.memtable(pa.table({
            "customer_id": pa.array([], pa.string()), "prev_tier": pa.array([], pa.string()),
            "prev_policy_tier": pa.array([], pa.string()),
            "prev_streak": pa.array([], pa.int64())}))
    t = graded.left_join(prior, "customer_id").select(
        graded, prior.prev_tier, prior.prev_policy_tier, prior.prev_streak)
    ov = ibis.memtable(overrides)
    t = t.left_join(ov, "customer_id").select(t, ov.override_tier, ov.override_id)
    base_rank = tier_rank(t.prev_policy_tier, keys)
    computed_rank = tier_rank(t.computed_tier, keys)
    lower = base_rank.notnull() & (computed_rank > base_rank)
    streak = ibis.cases((lower, t.prev_streak.fill_null(0) + 1), else_=0)
    held = lower & (streak < policy.hysteresis.downgrade_after)
    policy_tier = ibis.cases((held, t.prev_policy_tier), else_=t.computed_tier)
    t = t.mutate(
        policy_tier=policy_tier,
        downgrade_streak=ibis.cases((held, streak), else_=0).cast("int64"),
        tier=t.override_tier.coalesce(policy_tier),
        basis=ibis.cases((t.override_tier.notnull(), "override"), (held, "hysteresis"),
                         else_="policy"),
    )
    prev_rank, rank = tier_rank(t.prev_tier, keys), tier_rank(t.tier, keys)
    return t.mutate(
        change=ibis.cases(
            (prev_rank.isnull(), "new"),
            (rank < prev_rank, "up"),
            (rank > prev_rank, "down"),
            else_="same",
        )
    ).drop("override_tier")


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


def _previous_assignments(backend: Any, runs_dir: Path,
                          previous: Mapping[str, Any] | None) -> ir.Table | None:
    if previous is None:
        return None
    location = snapshot_location(runs_dir, previous["id"], previous.get("snapshot"))
    if is_local(location) and not snapshot_files(location):
        raise TierwiseError(f"the snapshot of run {previous['id']} is missing ({location}); "
                            "hysteresis and changes need it")
    t = backend.read_parquet(location)
    return t.select("customer_id", prev_tier=t.tier, prev_policy_tier=t.policy_tier,
                    prev_streak=t.downgrade_streak)


def _fingerprint(backend: Any, sources: Sources, as_of: dt.date) -> str:
    with described(backend, "data fingerprint"):
        return data_fingerprint(backend, sources, as_of)


def data_fingerprint(backend: Any, sources: Sources, as_of: dt.date) -> str:
    """A digest of the input rows as of the date: the same data gives the same fingerprint,
    and rows dated after the as-of date do not count."""
    as_of_day = ibis.date(as_of)
    tables = {
        "customers": sources.customers,
        "orders": sources.orders.filter(sources.orders.order_date <= as_of_day),
        "interactions": sources.interactions.filter(sources.interactions.date <= as_of_day),
    }
    if sources.payments is not None:
        # An invoice's state as of the date: a payment made later does not count either.
        p = sources.payments
        as_of_payments = p.filter(p.invoice_date.coalesce(p.due_date) <= as_of_day).mutate(
            paid_date=ibis.cases((p.paid_date <= as_of_day, p.paid_date),
                                 else_=ibis.null("date")),
            paid_amount=ibis.cases((p.paid_date <= as_of_day, p.paid_amount),
                                   else_=ibis.null("float64")))
        if backend.execute(as_of_payments.count()):
            tables["payments"] = as_of_payments
    parts: list[Any] = [as_of.isoformat()]
    for table in tables.values():
        # Order-independent: one hash per row (of the row as a struct, far cheaper than
        # hashing text), reduced below 2**31 and summed: no int64 overflow below 2**32 rows.
        row = ibis.struct({c: table[c] for c in sorted(table.columns)})
        result = backend.execute(table.aggregate(n=table.count(),
                                                 h=(row.hash() % 2_147_483_647).sum()))
        parts.extend(str(v) for v in result.iloc[0].tolist())
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


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


_ASSIGNMENT_COLUMNS = ("run_id", "customer_id", "tier", "computed_tier", "score", "basis",
                       "downgrade_streak", "override_id", "stage")


def _record(backend: Any, final: ir.Table, policy: Policy, policy_text: str, *,
            appdb: sa.Engine, runs_dir: Path, window: Window,
            aggregates: Mapping[tuple[str, str], float | None],
            previous: Mapping[str, Any] | None, fingerprint: str, source: str,
            user: str, lang: str, models: dict[str, Any] | None = None,
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
                created_at=created_at, created_by=user, as_of=window.as_of,
                window_months=window.months, policy_name=policy.name,
                policy_hash=policy.hash, policy_text=policy_text,
                data_fingerprint=fingerprint, source=source, customers=customers,
                previous_run_id=previous["id"] if previous else None,
                summary=json.loads(json.dumps([t.__dict__ for t in tiers])),
                aggregates={f"{f}({n})": v for (f, n), v in aggregates.items()},
                models=models, engine="spark" if spark else "duckdb", changes=changes,
            )))
            if spark:
                target = run_partition(folder, run_id)
                connection.execute(schema.runs.update().where(schema.runs.c.id == run_id)
                                   .values(snapshot=_stored_location(runs_dir, target)))
                rename_dataset(backend, staging, target)
            else:
                light = backend.to_pyarrow(snapshot.select(*_light_columns(snapshot)))
                _insert_assignments(connection, run_id, light)
                if previous is not None:  # a first run changes nothing: every tier is new
                    _insert_changes(connection, run_id, light)
                os.replace(staging, snapshot_path(runs_dir, run_id))
    except BaseException:
        remove_dataset(backend, staging) if spark else Path(staging).unlink(missing_ok=True)
        raise
    return RunSummary(run_id=run_id, as_of=window.as_of, policy_name=policy.name,
                      policy_hash=policy.hash, customers=customers, tiers=tiers,
                      changes=changes, previous_run_id=previous["id"] if previous else None,
                      created_at=created_at, source=source, models=models)


def _light_columns(snapshot: ir.Table) -> list[str]:
    wanted = ["customer_id", "tier", "computed_tier", "basis", "downgrade_streak",
              "override_id", "change", "prev_tier", "stage"]
    return wanted + (["score"] if "score" in snapshot.columns else [])


def _stored_location(runs_dir: Path, location: str) -> str:
    """Inside the workspace: relative to it, so that a moved workspace keeps its runs."""
    folder = location
    if is_local(location):
        path = local_path(location)
        folder = str(path.relative_to(runs_dir.parent) if path.is_relative_to(runs_dir.parent)
                     else path)
    return folder + "/*.parquet"


def _insert_assignments(connection: sa.Connection, run_id: int, light: pa.Table) -> None:
    score = light["score"] if "score" in light.column_names else pa.nulls(light.num_rows)
    arrays = [light["customer_id"], light["tier"], light["computed_tier"], score,
              light["basis"], light["downgrade_streak"], light["override_id"], light["stage"]]
    rows = zip(*(a.to_pylist() for a in arrays), strict=True)
    bulk_insert(connection, schema.assignments, _ASSIGNMENT_COLUMNS,
                ((run_id, *row) for row in rows))


def _insert_changes(connection: sa.Connection, run_id: int, light: pa.Table) -> None:
    moved = light.filter(pc.is_in(light["change"], pa.array(["up", "down", "new"])))
    basis = moved["basis"].to_pylist()
    rows = zip(moved["customer_id"].to_pylist(), moved["prev_tier"].to_pylist(),
               moved["tier"].to_pylist(), moved["change"].to_pylist(), basis, strict=True)
    bulk_insert(connection, schema.changes,
                ("run_id", "customer_id", "from_tier", "to_tier", "direction", "basis"),
                ((run_id, *row) for row in rows))
