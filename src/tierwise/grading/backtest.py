"""Backtest: grade every period end of a span with a policy, without recording runs, and
measure how good the grading would have been.

* stability: the share of customers keeping their tier from one period to the next, and
  flapping (a change that undoes the change of the period before: A→B→A);
* prediction: revenue per customer in the 12 months after each period end, by tier; the lift
  of the top tier over the average customer; the share of that revenue the tiers capture;
* concentration: the share of trailing spend held by the top 20% of customers (Pareto).

Each period is graded like a run (the same metrics, rules and hysteresis, chained from the
period before; overrides are left out, they are people's decisions, not the policy's). The
assignments of all periods go to one temporary table and every statistic is one query over
all periods at once.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from tierwise.common.i18n import is_zh
from tierwise.data.tables import CanonicalTables, latest_order_date
from tierwise.errors import TierwiseError
from tierwise.grading.run import effective_tiers, evaluation, tier_rank
from tierwise.metrics.per_customer import add_months
from tierwise.policy.model import Policy

Every = Literal["month", "quarter"]
OUTCOME_MONTHS = 12
PARETO_TOP = 0.20


@dataclass(frozen=True)
class TierOutcome:
    tier: str
    label: str
    share: float                       # of customers, mean over the periods
    revenue_next_12m: float | None     # per customer, mean over periods with a full outcome
    lift: float | None                 # revenue per customer / that of all customers
    captured: float | None             # share of next-12-month revenue of this and better tiers


@dataclass(frozen=True)
class PeriodOutcome:
    as_of: dt.date
    customers: int
    shares: dict[str, float]
    kept: float | None                 # share keeping their tier since the period before
    complete: bool                     # the 12 months after it are all in the data
    top_lift: float | None
    pareto_top20: float | None


@dataclass(frozen=True)
class Backtest:
    policy_name: str
    policy_hash: str
    periods: list[PeriodOutcome]
    tiers: list[TierOutcome]
    stability: float | None            # mean of the periods' kept shares
    flaps: int                         # changes that undo the change of the period before
    flapping_customers: int
    pareto_top20: float | None         # mean share of spend held by the top 20%
    notes: list[str] = field(default_factory=list)

    @property
    def top_lift(self) -> float | None:
        return self.tiers[0].lift if self.tiers else None

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": {"name": self.policy_name, "hash": self.policy_hash},
            "stability": self.stability, "flaps": self.flaps,
            "flapping_customers": self.flapping_customers,
            "top_tier_lift": self.top_lift, "pareto_top20": self.pareto_top20,
            "tiers": [t.__dict__ for t in self.tiers],
            "periods": [{**p.__dict__, "as_of": p.as_of.isoformat()} for p in self.periods],
            "notes": self.notes,
        }


def period_ends(start: str, end: str, every: Every = "month") -> list[dt.date]:
    """Month ends from the month ``start`` (YYYY-MM) to the month ``end``; with ``quarter``
    only the calendar quarter ends among them."""
    first, last = _month(start, "--from"), _month(end, "--to")
    if last < first:
        raise TierwiseError(f"--to {end} is before --from {start}")
    ends = []
    year, month = first
    while (year, month) <= last:
        if every == "month" or month % 3 == 0:
            ends.append(dt.date(year, month, calendar.monthrange(year, month)[1]))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if not ends:
        raise TierwiseError(f"no quarter ends between {start} and {end}")
    return ends


def _month(text: str, option: str) -> tuple[int, int]:
    try:
        day = dt.datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise TierwiseError(f"{option} must be a month like 2025-01, not {text!r}") from None
    return day.year, day.month


def backtest(backend: Any, tables: CanonicalTables, policy: Policy, ends: Sequence[dt.date],
             *, lang: str = "zh") -> Backtest:
    """Grade ``policy`` at each of ``ends`` (in order) and measure the result."""
    if not ends:
        raise TierwiseError("a backtest needs at least one period")
    with _assignments(backend, tables, policy, list(ends)) as table:
        outcome = _outcomes(backend, tables, table, list(ends))
        data_end = latest_order_date(backend, tables.orders)
        return _summarise(backend, policy, table, outcome, list(ends), data_end, lang)


@contextmanager
def _assignments(backend: Any, tables: CanonicalTables, policy: Policy,
                 ends: list[dt.date]) -> Iterator[ir.Table]:
    """A temporary table of every period's tiers: period, customer_id, rank (0 = best),
    tier, policy_tier, downgrade_streak, annual_spend."""
    name = f"_tw_backtest_{uuid.uuid4().hex[:8]}"
    try:
        for period, as_of in enumerate(ends):
            prior = None
            if period > 0:
                done = backend.table(name)
                before = done.filter(done.period == period - 1)
                prior = before.select("customer_id", prev_tier=before.tier,
                                      prev_policy_tier=before.policy_tier,
                                      prev_streak=before.downgrade_streak)
            with evaluation(backend, tables, policy, as_of) as ev:
                final = effective_tiers(ev.graded, policy, prior)
                rank = tier_rank(final.tier, policy.keys)   # every tier is a policy key
                rows = final.select(
                    period=ibis.literal(period, "int64"), customer_id=final.customer_id,
                    rank=rank.cast("int64"), tier=final.tier, policy_tier=final.policy_tier,
                    downgrade_streak=final.downgrade_streak,
                    annual_spend=final.annual_spend.cast("float64"))
                if period == 0:
                    backend.create_table(name, rows, temp=True)
                else:
                    backend.insert(name, rows)
        yield backend.table(name)
    finally:
        backend.drop_table(name, force=True)


def _outcomes(backend: Any, tables: CanonicalTables, table: ir.Table,
              ends: list[dt.date]) -> ir.Table:
    """Per period and customer, revenue in the 12 months after the period end."""
    o = tables.orders
    horizon = ibis.memtable(pa.table({
        "period": pa.array(range(len(ends)), pa.int64()),
        "start": pa.array(ends, pa.date32()),
        "stop": pa.array([add_months(e, OUTCOME_MONTHS) for e in ends], pa.date32()),
    }))
    # Daily totals first: a customer's orders of one day count once in the range join.
    daily = o.group_by(["customer_id", "order_date"]).aggregate(amount=o.amount.sum())
    joined = daily.inner_join(
        horizon, (daily.order_date > horizon.start) & (daily.order_date <= horizon.stop))
    future = joined.group_by(["period", "customer_id"]).aggregate(
        next_revenue=joined.amount.sum())
    return table.left_join(future, ["period", "customer_id"]).select(
        table, next_revenue=future.next_revenue.fill_null(0.0))


def _summarise(backend: Any, policy: Policy, table: ir.Table, outcome: ir.Table,
               ends: list[dt.date], data_end: dt.date, lang: str) -> Backtest:
    complete = [add_months(e, OUTCOME_MONTHS) <= data_end for e in ends]
    # One query: the range join behind the outcome is the costliest step of a backtest.
    per_tier = backend.to_pyarrow(outcome.group_by(["period", "tier"]).aggregate(
        customers=outcome.count(), revenue=outcome.next_revenue.sum())).to_pylist()
    per_period: dict[int, dict[str, Any]] = {}
    for r in per_tier:
        total = per_period.setdefault(r["period"], {"customers": 0, "revenue": 0.0})
        total["customers"] += r["customers"]
        total["revenue"] += r["revenue"] or 0.0
    kept = _kept(backend, table)
    pareto = _pareto(backend, table)
    flaps, flappers = _flaps(backend, table)

    counts: dict[tuple[int, str], tuple[int, float]] = {
        (r["period"], r["tier"]): (r["customers"], r["revenue"] or 0.0) for r in per_tier}
    periods = []
    for p, as_of in enumerate(ends):
        total = per_period.get(p, {"customers": 0, "revenue": 0.0})
        n = total["customers"]
        shares = {k: counts.get((p, k), (0, 0.0))[0] / n if n else 0.0 for k in policy.keys}
        top_lift = _lift(counts.get((p, policy.keys[0])), n, total["revenue"] or 0.0) \
            if complete[p] else None
        periods.append(PeriodOutcome(as_of=as_of, customers=n, shares=shares,
                                     kept=kept.get(p), complete=complete[p],
                                     top_lift=top_lift, pareto_top20=pareto.get(p)))
    tiers = _tier_outcomes(policy, counts, per_period, complete, lang)
    notes = []
    if not any(complete):
        notes.append(f"没有一期之后有完整的{OUTCOME_MONTHS}个月订单（数据截至 {data_end}），"
                     "无法衡量对后续收入的预测" if is_zh(lang) else
                     f"no period has {OUTCOME_MONTHS} months of orders after it (the data "
                     f"ends {data_end}): revenue prediction is not measured")
    kept_values = [p.kept for p in periods if p.kept is not None]
    pareto_values = [p.pareto_top20 for p in periods if p.pareto_top20 is not None]
    return Backtest(
        policy_name=policy.name, policy_hash=policy.hash, periods=periods, tiers=tiers,
        stability=sum(kept_values) / len(kept_values) if kept_values else None,
        flaps=flaps, flapping_customers=flappers,
        pareto_top20=sum(pareto_values) / len(pareto_values) if pareto_values else None,
        notes=notes)


def _lift(tier: tuple[int, float] | None, customers: int, revenue: float) -> float | None:
    if tier is None or tier[0] == 0 or customers == 0 or revenue <= 0:
        return None
    return (tier[1] / tier[0]) / (revenue / customers)


def _tier_outcomes(policy: Policy, counts: dict[tuple[int, str], tuple[int, float]],
                   per_period: dict[int, dict[str, Any]], complete: list[bool],
                   lang: str) -> list[TierOutcome]:
    periods = range(len(complete))
    full = [p for p in periods if complete[p]]
    result = []
    captured = 0.0
    for key in policy.keys:
        shares = [counts.get((p, key), (0, 0.0))[0] / per_period[p]["customers"]
                  for p in periods if per_period.get(p, {}).get("customers")]
        per_customer = [counts[(p, key)][1] / counts[(p, key)][0]
                        for p in full if counts.get((p, key), (0, 0.0))[0] > 0]
        lifts = [v for p in full
                 if (v := _lift(counts.get((p, key)), per_period[p]["customers"],
                                per_period[p]["revenue"] or 0.0)) is not None]
        shares_of_revenue = [counts.get((p, key), (0, 0.0))[1] / per_period[p]["revenue"]
                             for p in full if (per_period[p]["revenue"] or 0.0) > 0]
        captured += sum(shares_of_revenue) / len(shares_of_revenue) if shares_of_revenue else 0
        result.append(TierOutcome(
            tier=key, label=policy.tier(key).display(lang),
            share=sum(shares) / len(shares) if shares else 0.0,
            revenue_next_12m=sum(per_customer) / len(per_customer) if per_customer else None,
            lift=sum(lifts) / len(lifts) if lifts else None,
            captured=captured if shares_of_revenue else None))
    return result


def _kept(backend: Any, table: ir.Table) -> dict[int, float]:
    """Per period, the share of the customers graded in the period before that keep their
    tier (customers new in the period do not count)."""
    before = table.select(prev_period=table.period + 1, customer_id=table.customer_id,
                          prev_tier=table.tier)
    pair = table.inner_join(before, [table.period == before.prev_period,
                                     table.customer_id == before.customer_id])
    kept = pair.group_by(pair.period).aggregate(
        share=(pair.tier == pair.prev_tier).cast("float64").mean())
    rows = backend.to_pyarrow(kept).to_pylist()
    return {r["period"]: r["share"] for r in rows}


def _pareto(backend: Any, table: ir.Table) -> dict[int, float]:
    """Per period, the share of trailing-12-month spend held by the top 20% of customers."""
    w = ibis.window(group_by=table.period, order_by=[ibis.desc(table.annual_spend),
                                                     table.customer_id])
    ranked = table.mutate(position=ibis.row_number().over(w),
                          n=table.count().over(ibis.window(group_by=table.period)),
                          spend=ibis.greatest(table.annual_spend, 0.0))
    top = ranked.position < (ranked.n * PARETO_TOP).ceil()   # row_number counts from 0
    shares = ranked.group_by("period").aggregate(
        top=ranked.spend.sum(where=top), total=ranked.spend.sum())
    rows = backend.to_pyarrow(shares).to_pylist()
    return {r["period"]: r["top"] / r["total"] for r in rows if r["total"]}


def _flaps(backend: Any, table: ir.Table) -> tuple[int, int]:
    """Changes that undo the change of the period before (A→B in one period, B→A in the
    next), and how many customers flapped at least once."""
    w = ibis.window(group_by=table.customer_id, order_by=table.period)
    moves = table.mutate(step=table.rank - table.rank.lag().over(w),
                         gap=table.period - table.period.lag().over(w))
    moves = moves.mutate(previous_step=moves.step.lag().over(w),
                         previous_gap=moves.gap.lag().over(w))
    flap = ((moves.step * moves.previous_step < 0) & (moves.gap == 1)
            & (moves.previous_gap == 1))
    flagged = moves.filter(flap)
    result = backend.to_pyarrow(flagged.aggregate(
        flaps=flagged.count(), customers=flagged.customer_id.nunique())).to_pylist()[0]
    return int(result["flaps"] or 0), int(result["customers"] or 0)
