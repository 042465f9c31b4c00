"""Per-customer metrics as of a date, written once as Ibis expressions.

The functions here take Ibis tables and return Ibis expressions, so the same code runs on
the embedded DuckDB engine and on Spark; only the ranks over all customers
(:func:`with_rank_metrics`) first ask the engine for a few aggregates. Nothing is computed
row by row in Python.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from tierwise.data.store import BOOKKEEPING_COLUMNS
from tierwise.metrics.plan import (
    COMPLETE,
    GAP_METRICS,
    INTERACTION_METRICS,
    PAYMENT_METRICS,
    MetricPlan,
)
from tierwise.metrics.ranking import quintile, quintile_cutoffs, rank_keys


@dataclass(frozen=True)
class Window:
    """The as-of date and the trailing windows metrics are measured over.

    The window holds orders with ``start < order_date <= as_of``; the prior window is the
    same length just before it.
    """

    as_of: dt.date
    months: int = 12

    @property
    def start(self) -> dt.date:
        return add_months(self.as_of, -self.months)

    @property
    def prior_start(self) -> dt.date:
        return add_months(self.as_of, -2 * self.months)


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar month arithmetic, clamped to the month's end: 2024-02-29 - 12 → 2023-02-28."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def order_metrics(orders: ir.Table, window: Window, plan: MetricPlan = COMPLETE,
                  carried: Mapping[str, ir.Scalar] | None = None) -> ir.Table:
    """One row per customer with orders; aggregates see only orders up to the as-of date.

    Only the aggregates the plan's metrics are made of: each one costs a filtered sum or
    count in the one pass over the orders, ``active_months`` a distinct count. ``carried``:
    more aggregates of ``orders`` for the same pass (kept as columns of the result)."""
    o = orders
    known = o.order_date <= ibis.date(window.as_of)
    in_window = known & (o.order_date > ibis.date(window.start))
    in_prior = (o.order_date > ibis.date(window.prior_start)) & known & ~in_window
    positive = o.amount > 0
    order_profit = o.profit.coalesce(o.amount - o.cost)
    costed = in_window & order_profit.notnull()
    wanted = {
        "annual_spend": lambda: o.amount.sum(where=in_window),
        "order_count": lambda: o.amount.count(where=in_window & positive),
        "profit": lambda: order_profit.sum(where=in_window),
        "costed_spend": lambda: o.amount.sum(where=costed),
        "window_orders": lambda: o.amount.count(where=in_window),
        "last_order_date": lambda: o.order_date.max(where=known & positive),
        "lifetime_spend": lambda: o.amount.sum(where=known),
        "first_order_date": lambda: o.order_date.min(where=known),
        "active_months": lambda: o.order_date.truncate("M").nunique(where=in_window & positive),
        "prior_spend": lambda: o.amount.sum(where=in_prior),
        "prior_order_count": lambda: o.amount.count(where=in_prior & positive),
        "has_profit_data": lambda: order_profit.count(where=known) > 0,
        "ordered_later": lambda: o.amount.count(where=~known) > 0,
    }
    needed = _order_aggregates(plan)
    return o.group_by("customer_id").aggregate(
        **{name: make() for name, make in wanted.items() if name in needed}, **(carried or {}))


def _order_aggregates(plan: MetricPlan) -> set[str]:
    """The aggregates of :func:`order_metrics` that the plan's metrics are computed from."""
    needed = {"first_order_date", "ordered_later"} | (set(plan.metrics) & _OWN_AGGREGATES)
    if "profit" in plan:
        needed |= {"window_orders", "has_profit_data"}
    if "margin" in plan:
        needed.add("costed_spend")
    return needed


_OWN_AGGREGATES = {"annual_spend", "order_count", "profit", "last_order_date",
                   "lifetime_spend", "first_order_date", "active_months", "prior_spend",
                   "prior_order_count"}


def order_gap_metrics(orders: ir.Table, as_of: dt.date) -> ir.Table:
    """Per customer who bought on two or more days by the date: the purchase day before the
    last (``previous_order_date``) and the median gap in days between purchase days
    (``order_gap_days``), the customer's own rhythm that churn warnings compare recency with.

    One window pass over the distinct purchase days, not a self-join of the orders."""
    o = orders.filter((orders.order_date <= ibis.date(as_of)) & (orders.amount > 0))
    days = o.select("customer_id", "order_date").distinct()
    by_customer = ibis.window(group_by=days.customer_id, order_by=days.order_date)
    gaps = days.mutate(previous=days.order_date.lag().over(by_customer))
    gaps = gaps.filter(gaps.previous.notnull())
    gap = gaps.order_date.delta(gaps.previous, unit="day")
    return gaps.group_by("customer_id").aggregate(
        previous_order_date=gaps.previous.max(),
        order_gap_days=gap.median(),
    )


def interaction_metrics(interactions: ir.Table, window: Window) -> ir.Table:
    i = interactions.filter(
        (interactions.date <= ibis.date(window.as_of))
        & (interactions.date > ibis.date(window.start))
    )
    return i.group_by("customer_id").aggregate(
        complaints_12m=i.type.count(where=i.type == "complaint"),
        interactions_12m=i.type.count(),
        satisfaction_avg=i.satisfaction.mean(),
    )


def payment_metrics(payments: ir.Table, as_of: dt.date) -> ir.Table:
    """One row per customer with invoices: receivables as of the date (not windowed).

    An invoice counts once issued (``invoice_date``, or its ``due_date`` when that is
    missing, on or before the date). What is paid as of the date is ``paid_amount`` (the whole
    amount when it is empty) if ``paid_date`` is on or before the date, else nothing; an
    invoice is overdue when part of it is still unpaid and its due date lies before the date.
    """
    p = payments
    day = ibis.date(as_of)
    issued = p.invoice_date.coalesce(p.due_date) <= day
    paid_by_then = p.paid_date.notnull() & (p.paid_date <= day)
    paid = ibis.cases((paid_by_then, p.paid_amount.coalesce(p.amount)), else_=0.0)
    unpaid = p.amount - paid
    still_open = issued & (unpaid > 0)
    overdue = still_open & (p.due_date < day)
    return p.group_by("customer_id").aggregate(
        overdue_amount=unpaid.sum(where=overdue),
        overdue_days=day.delta(p.due_date, unit="day").max(where=overdue),
        receivable_amount=unpaid.sum(where=still_open),
        has_invoices=p.amount.count(where=issued) > 0,
    )


def _with_payment_metrics(joined: ir.Table, payments: ir.Table | None,
                          as_of: dt.date) -> ir.Table:
    """Receivable metrics: 0 for a customer without open invoices when the book has any
    invoice by the date, NULL for everyone when it has none (no payments data at all)."""
    if payments is None:
        return joined.mutate(overdue_amount=ibis.null("float64"),
                             overdue_days=ibis.null("int64"),
                             receivable_amount=ibis.null("float64"))
    pm = payment_metrics(payments, as_of)
    joined = joined.left_join(pm, "customer_id").select(
        joined, *[pm[n] for n in pm.columns if n != "customer_id"]
    )
    # A scalar subquery over the per-customer invoices, not a window over every row (which
    # Spark runs in one task).
    any_invoices = pm.has_invoices.any().as_scalar().fill_null(False)
    return joined.mutate(
        overdue_amount=ibis.cases((any_invoices, joined.overdue_amount.fill_null(0.0)),
                                  else_=ibis.null("float64")),
        overdue_days=ibis.cases((any_invoices, joined.overdue_days.fill_null(0)),
                                else_=ibis.null("int64")),
        receivable_amount=ibis.cases((any_invoices, joined.receivable_amount.fill_null(0.0)),
                                     else_=ibis.null("float64")),
    ).drop("has_invoices")


def customer_metrics(
    customers: ir.Table,
    orders: ir.Table,
    interactions: ir.Table,
    window: Window,
    payments: ir.Table | None = None,
    plan: MetricPlan = COMPLETE,
    carried: Mapping[str, ir.Scalar] | None = None,
) -> ir.Table:
    """Every customer known as of the date, with the plan's metrics (default: the whole
    vocabulary but the ranks, the stage and the models) and the attributes.

    A customer with no order by the as-of date did not exist yet, and is left out, when its
    ``since`` lies after the date, or when it has no ``since`` but orders only later.
    Prospects (no orders at all) are kept. Without ``payments`` the receivable metrics are
    NULL, as when no invoices were imported. ``carried``: more aggregates of ``orders`` for
    the pass over them (see :func:`order_metrics`), columns of the result.
    """
    om = order_metrics(orders, window, plan, carried)
    attributes = [c for c in customers.columns if c not in BOOKKEEPING_COLUMNS]
    c = customers.select(*attributes)
    joined = (
        c.left_join(om, "customer_id").select(c, *[om[n] for n in om.columns if n != "customer_id"])
    )
    if plan.any_of(INTERACTION_METRICS):
        im = interaction_metrics(interactions, window)
        joined = joined.left_join(im, "customer_id").select(
            joined, *[im[n] for n in im.columns if n != "customer_id"]
        )
    if plan.any_of(GAP_METRICS):
        gm = order_gap_metrics(orders, window.as_of)
        joined = joined.left_join(gm, "customer_id").select(
            joined, gm.previous_order_date,
            gm.order_gap_days.cast("float64").name("order_gap_days"))
    as_of = ibis.date(window.as_of)
    has_orders = joined.first_order_date.notnull()
    existed = ibis.cases((joined.since.notnull(), joined.since <= as_of),
                         else_=~joined.ordered_later.fill_null(False))
    joined = joined.filter(has_orders | existed)
    values = _metric_values(joined, om, as_of, plan)
    m = joined.mutate(**values, has_orders=has_orders)
    if "margin" in plan:
        # Margin over the orders whose cost or profit is known, so that orders without cost
        # data do not dilute it.
        m = m.mutate(margin=ibis.cases((m.costed_spend > 0, m.profit / m.costed_spend),
                                       else_=ibis.null("float64")))
    m = m.drop(*[n for n in ("window_orders", "has_profit_data", "costed_spend",
                             "ordered_later") if n in m.columns])
    if plan.any_of(PAYMENT_METRICS):
        m = _with_payment_metrics(m, payments, window.as_of)
    return m


# Counts and sums that are 0, not unknown, for a customer without orders (or interactions).
_ZERO_WITHOUT_ROWS = {"annual_spend": 0.0, "order_count": 0, "lifetime_spend": 0.0,
                      "active_months": 0, "prior_spend": 0.0, "prior_order_count": 0,
                      "complaints_12m": 0, "interactions_12m": 0}


def _metric_values(joined: ir.Table, om: ir.Table, as_of: ir.DateValue,
                   plan: MetricPlan) -> dict[str, ir.Value]:
    """The plan's metrics made of the per-customer aggregates. Columns the aggregates
    already hold are replaced in place; the derived ones follow in this order."""
    values: dict[str, ir.Value] = {name: joined[name].fill_null(zero)
                                   for name, zero in _ZERO_WITHOUT_ROWS.items() if name in plan}
    if "avg_order_value" in plan:
        spend, count = values["annual_spend"], values["order_count"]
        values["avg_order_value"] = ibis.cases((count > 0, spend / count),
                                               else_=ibis.null("float64"))
    if "profit" in plan:
        any_profit_data = om.has_profit_data.any().as_scalar().fill_null(False)
        values["profit"] = ibis.cases(
            (joined.window_orders.fill_null(0) == 0,
             ibis.cases((any_profit_data, 0.0), else_=ibis.null("float64"))),
            else_=joined.profit)
    if "recency_days" in plan:
        values["recency_days"] = as_of.delta(joined.last_order_date, unit="day")
    if "tenure_years" in plan:
        tenure_start = joined.since.coalesce(joined.first_order_date)
        # float64 first: Spark would divide a day count by 365.25 as a DECIMAL
        values["tenure_years"] = (as_of.delta(tenure_start, unit="day").cast("float64")
                                  / 365.25)
    if "spend_growth" in plan:
        spend, prior = values["annual_spend"], values["prior_spend"]
        values["spend_growth"] = ibis.cases((prior > 0, (spend - prior) / prior),
                                            else_=ibis.null("float64"))
    return values


def with_rank_metrics(backend: Any, m: ir.Table, *, ranges: int,
                      plan: MetricPlan = COMPLETE) -> ir.Table:
    """Add the plan's ranks over all graded customers to base metrics (from customer_metrics,
    computed once, e.g. materialised): r/f/m_score, 1–5 quintile scores by the share of the
    customers with orders strictly worse (ties share a score, so the result depends on
    neither row order nor engine), and spend_share_above, the share of all positive spend
    held by the customers ranked above (by spend, then id): the ABC curve.

    Computed by tierwise.metrics.ranking: cut-offs and ranks from aggregates, no unpartitioned
    window; each rank costs a few queries over all customers."""
    scores = {}
    for name, column, higher_is_better in (("r_score", "recency_days", False),
                                           ("f_score", "order_count", True),
                                           ("m_score", "annual_spend", True)):
        if name not in plan:
            continue
        population = m.filter(m.has_orders & m[column].notnull())
        sign = 1 if higher_is_better else -1
        ranked = rank_keys(backend, population.select(key=population[column] * sign),
                           ranges=ranges)
        score = quintile(m[column] * sign, quintile_cutoffs(backend, ranked))
        scores[name] = ibis.cases((m.has_orders, score), else_=ibis.null("int64"))
    m = m.mutate(**scores)
    if "spend_share_above" in plan:
        m = _with_spend_share(backend, m, ranges=ranges)
    return m.drop("has_orders")


def _with_spend_share(backend: Any, m: ir.Table, *, ranges: int) -> ir.Table:
    positive = m.filter(m.annual_spend > 0)
    total = backend.execute(positive.annual_spend.sum())
    if total is None or total != total or total <= 0:
        return m.mutate(spend_share_above=ibis.null("float64"))
    # Ranked on the negated spend: "below" is then the customers with more spend.
    ranked = rank_keys(backend, positive.select(key=-positive.annual_spend,
                                                weight=positive.annual_spend), ranges=ranges)
    r = ranked.table.select(_tw_key=ranked.table.key, _tw_above=ranked.table.below_weight)
    joined = m.left_join(r, (-m.annual_spend) == r._tw_key)
    # Customers with the same spend are ordered by id: a window per spend value.
    tie = ibis.window(group_by=joined.annual_spend, order_by=joined.customer_id)
    above = joined._tw_above + joined.annual_spend * ibis.row_number().over(tie)
    share = ibis.cases((joined.annual_spend > 0, above / float(total)),
                       else_=ibis.null("float64"))
    return joined.mutate(spend_share_above=share).drop("_tw_key", "_tw_above")
