"""Model metrics per customer as of a date: p_alive, expected_orders_12m,
expected_order_value and predicted_clv.

The engine summarises the orders (``rfm_summary``) and gives the distinct histories; the
models are fitted and evaluated in numpy on those distinct (frequency, recency, T) triples
only, and the engine joins the results back onto the customers. Gamma-Gamma's expected value
is plain arithmetic in the fitted parameters, so it stays an engine expression too.

A model that cannot be fitted (too few repeat buyers, say) leaves its metrics null and says
why in ``ModelReport.notes``; grading never fails because of a model.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from tierwise.common.vocabulary import MODEL_METRICS
from tierwise.data.engines import materialise, release
from tierwise.errors import ModelError
from tierwise.metrics.models.bgnbd import BetaGeo
from tierwise.metrics.models.gamma_gamma import GammaGamma, discounted_purchases
from tierwise.metrics.models.summary import rfm_summary, triples
from tierwise.policy.model import Models

DAYS_PER_MONTH = 365.25 / 12
# The published name says 12 months whatever the CLV horizon is.
EXPECTED_ORDERS_MONTHS = 12


@dataclass(frozen=True)
class ModelReport:
    """What was fitted, on how many customers, and why a metric is missing."""

    settings: dict[str, Any]
    customers: int = 0                 # customers with at least one purchase
    repeat_buyers: int = 0
    bgnbd: dict[str, float] | None = None
    gamma_gamma: dict[str, float] | None = None
    # metric -> reason it is null for every customer (the model could not be fitted)
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelMetrics:
    table: ir.Table        # customer_id and the model metrics, for customers with purchases
    report: ModelReport




@contextmanager
def model_metrics(backend: Any, orders: ir.Table, as_of: dt.date,
                  settings: Models) -> Iterator[ModelMetrics]:
    """Fit the models on the orders up to ``as_of`` and give every buyer's model metrics.

    Time is measured in days, or whole weeks with ``period: week``; a month is 365.25/12
    days. The summary is kept for the life of the context, as three queries read it.
    """
    scratch = f"_tw_rfm_{uuid.uuid4().hex[:8]}"
    summary = materialise(backend, scratch,
                          rfm_summary(orders, as_of, period_days=settings.period_days,
                                      purchases=settings.purchases,
                                      whole_periods=settings.period_days > 1))
    try:
        yield _predict(backend, summary, settings)
    finally:
        release(backend, scratch)


def _predict(backend: Any, summary: ir.Table, settings: Models) -> ModelMetrics:
    # Sorted, so that the sums in the fit, hence the parameters to the last digit, do not
    # depend on the order the engine returns rows in: a rerun gives the same tiers.
    histories = backend.to_pyarrow(triples(summary).order_by(["frequency", "recency", "T"]))
    x, t_x, age, n = (histories[c].to_numpy().astype(np.float64)
                      for c in ("frequency", "recency", "T", "n"))
    report = ModelReport(settings=settings.model_dump(), customers=int(n.sum()),
                         repeat_buyers=int(n[x > 0].sum()))
    try:
        bgnbd = BetaGeo.fit(x, t_x, age, n)
    except ModelError as exc:
        reason = f"BG/NBD: {exc}"
        return ModelMetrics(_all_null(summary), _with_notes(report, MODEL_METRICS, reason))
    report = _replace(report, bgnbd={"r": bgnbd.r, "alpha_days": bgnbd.alpha * settings.period_days,
                                     "a": bgnbd.a,
                                     "b": bgnbd.b, "log_likelihood": bgnbd.log_likelihood})
    per_history = pa.table({
        "frequency": histories["frequency"], "recency": histories["recency"],
        "T": histories["T"],
        "p_alive": bgnbd.p_alive(x, t_x, age),
        "expected_orders_12m": bgnbd.expected_purchases(
            EXPECTED_ORDERS_MONTHS * DAYS_PER_MONTH / settings.period_days, x, t_x, age),
        "discounted_orders": discounted_orders(bgnbd, x, t_x, age, settings),
    })
    scored = _join_histories(summary, per_history)
    try:
        spend = _fit_spend(backend, summary)
    except ModelError as exc:
        reason = f"Gamma-Gamma: {exc}"
        notes = ("expected_order_value", "predicted_clv")
        table = scored.select("customer_id", "p_alive", "expected_orders_12m",
                              expected_order_value=ibis.null("float64"),
                              predicted_clv=ibis.null("float64"))
        return ModelMetrics(table, _with_notes(report, notes, reason))
    report = _replace(report, gamma_gamma={"p": spend.p, "q": spend.q, "gamma": spend.gamma,
                                           "log_likelihood": spend.log_likelihood})
    value = expected_value(spend, scored.frequency, scored.monetary_value)
    table = scored.select(
        "customer_id", "p_alive", "expected_orders_12m",
        expected_order_value=value,
        predicted_clv=settings.margin * value * scored.discounted_orders,
    )
    return ModelMetrics(table, report)


def discounted_orders(bgnbd: BetaGeo, x: np.ndarray, t_x: np.ndarray, age: np.ndarray,
                      settings: Models) -> np.ndarray:
    """Discounted expected orders over the CLV horizon (times E[value] and the margin it is
    the CLV), with the policy's yearly discount rate turned into a monthly one."""
    monthly = (1.0 + settings.discount_rate) ** (1.0 / 12.0) - 1.0
    return discounted_purchases(bgnbd, x, t_x, age, months=settings.clv_months,
                                periods_per_month=DAYS_PER_MONTH / settings.period_days,
                                discount_rate_monthly=monthly)


def expected_value(spend: GammaGamma, frequency: ir.IntegerValue,
                   monetary_value: ir.FloatingValue) -> ir.FloatingValue:
    """Gamma-Gamma's E[mean order value | x, m] as an engine expression (see
    ``GammaGamma.conditional_expected_average_value``); needs q > 1."""
    population = spend.p * spend.gamma / (spend.q - 1.0)
    own = spend.p * frequency / (spend.p * frequency + (spend.q - 1.0))
    return ((1.0 - own) * population + own * monetary_value).cast("float64")


def _fit_spend(backend: Any, summary: ir.Table) -> GammaGamma:
    """Fit on the distinct (frequency, mean spend) pairs with their counts, computed by the
    engine: exact (the likelihood depends on a customer only through the pair), and fewer
    rows where spends repeat (round prices); sorted, so the sums do not depend on row order."""
    repeat = summary.filter(summary.frequency > 0)
    pairs = (repeat.group_by(["frequency", "monetary_value"]).aggregate(n=repeat.count())
             .order_by(["frequency", "monetary_value"]))
    data = backend.to_pyarrow(pairs)
    spend = GammaGamma.fit(data["frequency"].to_numpy(), data["monetary_value"].to_numpy(),
                           data["n"].to_numpy().astype(np.float64))
    if spend.q <= 1.0:
        raise ModelError(f"the fitted q = {spend.q:.3g} ≤ 1 means the mean order value is "
                         "infinite; spend is too heavy-tailed for the model")
    return spend


def _join_histories(summary: ir.Table, per_history: pa.Table) -> ir.Table:
    # recency and T are whole days cast to float, so equality on them is exact.
    h = ibis.memtable(per_history)
    keys = [summary.frequency == h.frequency, summary.recency == h.recency,
            summary.T == h.T]
    return summary.inner_join(h, keys).select(
        summary.customer_id, summary.frequency, summary.monetary_value,
        h.p_alive, h.expected_orders_12m, h.discounted_orders)


def _all_null(summary: ir.Table) -> ir.Table:
    return summary.select("customer_id", **{m: ibis.null("float64") for m in MODEL_METRICS})


def _with_notes(report: ModelReport, metrics: tuple[str, ...], reason: str) -> ModelReport:
    return _replace(report, notes={**report.notes, **dict.fromkeys(metrics, reason)})


def _replace(report: ModelReport, **changes: Any) -> ModelReport:
    return ModelReport(**{**asdict(report), **changes})
