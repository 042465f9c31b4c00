"""A grading run: metrics → scores → tiers → hysteresis and overrides → an immutable record.

Everything per customer is computed by the engine and written by it to the run's snapshot;
the app database gets the run's summary and the customers who moved. A run either lands whole
(snapshot file + database rows in one transaction) or leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlalchemy as sa

from tierwise.common.vocabulary import MODEL_METRICS, ValueType
from tierwise.data.engines import (
    described,
    is_local,
    materialise,
    release,
)
from tierwise.data.tables import (
    ORDER_HASH,
    ORDER_ROWS,
    CanonicalTables,
    data_fingerprint,
    latest_order_date,
    order_fingerprint_aggregates,
)
from tierwise.errors import TierwiseError
from tierwise.grading.clustering import ClusterResult, cluster_tiers, with_cluster_tiers
from tierwise.grading.lifecycle import stage
from tierwise.grading.scorecard import with_percentile_ranks, with_scores
from tierwise.metrics.per_customer import Window, customer_metrics, with_rank_metrics
from tierwise.metrics.plan import COMPLETE, MetricPlan, metric_plan
from tierwise.metrics.ranking import ranges_for
from tierwise.policy.expr import to_ibis
from tierwise.policy.loading import name_types
from tierwise.policy.model import Models, Policy
from tierwise.record.audit import Actor
from tierwise.record.runs import (
    NO_OVERRIDES,
    RunSummary,
    _record,
    active_overrides,
    previous_run,
    snapshot_files,
    snapshot_location,
)

if TYPE_CHECKING:     # the models import SciPy: loaded when a run fits them, not before
    from tierwise.metrics.models.predictions import ModelReport


@dataclass(frozen=True)
class Evaluation:
    """Metrics, scores and computed tiers of every customer, before history is applied."""

    window: Window
    graded: ir.Table
    aggregates: dict[tuple[str, str], float | None]
    models: ModelReport | None = None     # None: the policy uses no model metric
    clusters: ClusterResult | None = None  # clustering policies: the fitted clusters
    # The orders' part of the data fingerprint, from the metrics pass (when asked for).
    orders_fingerprint: tuple[int, int] | None = None

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


def metrics_of(backend: Any, tables: CanonicalTables, policy: Policy, as_of: dt.date,
               customer_id: str) -> dict[str, Any]:
    """Every per-customer metric and the stage of one customer as of a date: what a run's
    snapshot left out, computed on demand for ``explain`` and the profile page. The ranks
    over all customers (r/f/m_score, spend_share_above) need the whole book and are not
    among them; nor are the models."""
    def one(table: ir.Table) -> ir.Table:
        return table.filter(table.customer_id == customer_id)

    window = Window(as_of, policy.window_months)
    payments = one(tables.payments) if tables.payments is not None else None
    metrics = customer_metrics(one(tables.customers), one(tables.orders),
                               one(tables.interactions), window, payments, COMPLETE)
    rows = backend.to_pyarrow(with_stage(metrics, policy, as_of).drop("has_orders")).to_pylist()
    return rows[0] if rows else {}


def run_plan(policy: Policy, outputs: Iterable[str] = ()) -> MetricPlan:
    """The metrics a run of ``policy`` computes: what its rules, scorecard, clustering,
    models and ``metrics_shown`` read, what the run's ``outputs`` read (the work derived
    from a run of the workspace's book: tierwise.work.tasks.WORK_METRICS), the run's own
    record (revenue and profit per tier), and what those are computed from."""
    return metric_plan([*policy.used_metrics(), *outputs])


def uses_models(policy: Policy) -> bool:
    """Whether a run fits the customer-base models: they cost a few seconds on a large book,
    so only when the policy reads a model metric or asks for them with a ``models`` block."""
    return policy.models is not None or bool(set(policy.used_metrics()) & set(MODEL_METRICS))


@contextmanager
def evaluation(backend: Any, tables: CanonicalTables, policy: Policy, as_of: dt.date,
               plan: MetricPlan | None = None, *,
               fingerprint: bool = False) -> Iterator[Evaluation]:
    """Compute the plan's metrics (default: what the policy reads) once into a temporary
    table, and the tier each rule gives; with ``fingerprint``, the orders' part of the data
    fingerprint in the same pass over the orders."""
    window = Window(as_of, policy.window_months)
    types = name_types(policy, tables.attributes)
    scratch = f"_tw_metrics_{uuid.uuid4().hex[:8]}"
    table, report, part = _materialise_metrics(backend, tables, policy, window, types, scratch,
                                               plan or run_plan(policy), fingerprint)
    try:
        with described(backend, "rule aggregates"):
            aggregates = compute_aggregates(backend, table, policy)
        if policy.clustering is not None:
            clusters = cluster_tiers(backend, table, policy)
            yield Evaluation(window, with_cluster_tiers(table, clusters), aggregates, report,
                             clusters, orders_fingerprint=part)
        else:
            yield Evaluation(window, computed_tiers(table, policy, types, aggregates),
                             aggregates, report, orders_fingerprint=part)
    finally:
        release(backend, scratch)


def _materialise_metrics(
        backend: Any, tables: CanonicalTables, policy: Policy, window: Window,
        types: dict[str, ValueType], name: str, plan: MetricPlan, fingerprint: bool,
) -> tuple[ir.Table, ModelReport | None, tuple[int, int] | None]:
    """The plan's metrics (and model metrics and scores) of every customer, computed once:
    the per-customer metrics first, then the ranks over all of them
    (tierwise.metrics.ranking); and the orders' part of the fingerprint if asked for."""
    carried = order_fingerprint_aggregates(tables.orders, window.as_of) if fingerprint else None
    metrics = customer_metrics(tables.customers, tables.orders, tables.interactions, window,
                               tables.payments, plan, carried)
    if "stage" in plan:
        metrics = with_stage(metrics, policy, window.as_of)
    base = f"{name}_base"
    with ExitStack() as stack:
        report = None
        if uses_models(policy):
            from tierwise.metrics.models.predictions import model_metrics

            with described(backend, "customer-base models (histories and fit)"):
                predicted = stack.enter_context(model_metrics(
                    backend, tables.orders, window.as_of, policy.models or Models()))
            p = predicted.table
            metrics = metrics.left_join(p, "customer_id").select(
                metrics, *[p[m] for m in MODEL_METRICS])
            report = predicted.report
        with described(backend, "metrics per customer"):
            table = materialise(backend, base, metrics)
        stack.callback(release, backend, base)
        part = None
        if carried is not None:
            part = _orders_part(backend, table)
            table = table.drop(*carried)
        ranges = ranges_for(backend)
        with described(backend, "ranks over all customers and scores"):
            table = with_rank_metrics(backend, table, ranges=ranges, plan=plan)
            if policy.scorecard is not None:
                table = with_percentile_ranks(backend, table, policy.scorecard, types,
                                              ranges=ranges)
                table = with_scores(table, policy.scorecard, types)
            return materialise(backend, name, table), report, part


def _orders_part(backend: Any, table: ir.Table) -> tuple[int, int] | None:
    """The sums of the per-customer fingerprint aggregates; None when no order is dated by
    the as-of date (the fingerprint then reads the orders itself, as it always did)."""
    row = backend.execute(table.aggregate(n=table[ORDER_ROWS].sum(),
                                          h=table[ORDER_HASH].sum())).iloc[0]
    if row["n"] is None or row["n"] != row["n"] or int(row["n"]) == 0:
        return None
    return int(row["n"]), int(row["h"])


def grade(
    backend: Any,
    tables: CanonicalTables,
    policy: Policy,
    policy_text: str,
    *,
    appdb: sa.Engine,
    runs_dir: Path,
    actor: Actor,
    as_of: dt.date | None = None,
    lang: str = "zh",
    assignments: str | None = None,
    outputs: Iterable[str] = (),
) -> RunSummary:
    """Grade every customer as of a date and record the run, started by ``actor`` (the
    run's creator and its audit row, written in the run's transaction).

    On Spark the engine writes the assignments (``assignments``, default
    ``runs/assignments``, one ``run_id=N`` partition per run) and only the summary comes
    back to the driver; on DuckDB they go to ``runs/run-NNNNNN.parquet``.
    The run computes the metrics the policy and ``outputs`` read (:func:`run_plan`).
    """
    as_of = as_of or latest_order_date(backend, tables.orders)
    with final_tiers(backend, tables, policy, as_of, appdb=appdb, runs_dir=runs_dir,
                     plan=run_plan(policy, outputs), fingerprint=True) as (ev, final, previous):
        return _record(backend, final, policy, policy_text, appdb=appdb, runs_dir=runs_dir,
                       window=ev.window, aggregates=ev.aggregates, previous=previous,
                       models=ev.models_json(),
                       fingerprint=_fingerprint(backend, tables, as_of,
                                                ev.orders_fingerprint),
                       source=tables.label, actor=actor, lang=lang,
                       assignments=assignments)


@contextmanager
def final_tiers(backend: Any, tables: CanonicalTables, policy: Policy, as_of: dt.date, *,
                appdb: sa.Engine, runs_dir: Path, plan: MetricPlan | None = None,
                fingerprint: bool = False,
                ) -> Iterator[tuple[Evaluation, ir.Table, Mapping[str, Any] | None]]:
    """The tiers a run would record: computed tiers, then hysteresis from the run it
    continues and the active overrides. Also gives the evaluation and that previous run."""
    with evaluation(backend, tables, policy, as_of, plan, fingerprint=fingerprint) as ev:
        with appdb.connect() as connection:
            previous = previous_run(connection, as_of, policy, tables.label)
            overrides = active_overrides(connection, as_of, policy)
        prior = _previous_assignments(backend, runs_dir, previous)
        yield ev, effective_tiers(ev.graded, policy, prior, overrides), previous


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


def effective_tiers(graded: ir.Table, policy: Policy, prior: ir.Table | None,
                    overrides: pa.Table = NO_OVERRIDES) -> ir.Table:
    """Apply hysteresis (slow downgrades) and overrides to the computed tiers.

    `prior` has the previous run's customer_id, prev_tier (effective), prev_policy_tier and
    prev_streak. A lower computed tier takes effect after `downgrade_after` consecutive runs;
    an upgrade is immediate; an override wins over both.
    """
    keys = policy.keys
    # With nothing to join (a first run, no override) the columns a join would leave, as
    # NULLs: no join, which on Spark is a shuffle of every customer.
    if prior is None:
        t = graded.mutate(prev_tier=ibis.null("string"), prev_policy_tier=ibis.null("string"),
                          prev_streak=ibis.null("int64"))
    else:
        t = graded.left_join(prior, "customer_id").select(
            graded, prior.prev_tier, prior.prev_policy_tier, prior.prev_streak)
    if overrides.num_rows:
        ov = ibis.memtable(overrides)
        t = t.left_join(ov, "customer_id").select(t, ov.override_tier, ov.override_id)
    else:
        t = t.mutate(override_tier=ibis.null("string"), override_id=ibis.null("int64"))
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


def _fingerprint(backend: Any, tables: CanonicalTables, as_of: dt.date,
                 orders_part: tuple[int, int] | None) -> str:
    with described(backend, "data fingerprint"):
        return data_fingerprint(backend, tables, as_of, orders_part=orders_part)


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


