"""Which metrics a run computes: what its policy and its outputs read, and what those need.

A run pays for what it uses. The policy's rules, scorecard, clustering, models and
``metrics_shown`` name metrics; the lifecycle stage and the work a run derives (tasks,
warnings) name theirs; every run's record needs ``annual_spend`` and ``profit`` (revenue and
profit per tier). :func:`metric_plan` closes those names over what each metric is computed
from, and :mod:`tierwise.metrics.per_customer` computes only the plan's metrics: a policy
that reads ``annual_spend`` and ``tenure_years`` never pays for the median gap between
purchase days, the prior window or the ranks over all customers.

``metrics_shown: [all]`` in a policy asks for the whole vocabulary.

>>> sorted(metric_plan(["spend_growth"]).metrics)
['annual_spend', 'first_order_date', 'prior_spend', 'profit', 'spend_growth']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tierwise.common.vocabulary import METRICS, MODEL_METRICS

# Asked for by name in metrics_shown: the whole vocabulary.
ALL = "all"

# Every run's record: revenue and profit per tier (tierwise.record.runs.summarise_on).
RECORD_METRICS = ("annual_spend", "profit")

# What a metric is computed from, besides its own aggregate. first_order_date is always
# computed: it tells customers with orders from prospects.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "avg_order_value": ("annual_spend", "order_count"),
    "margin": ("profit",),
    "recency_days": ("last_order_date",),
    "tenure_years": ("first_order_date",),
    "spend_growth": ("annual_spend", "prior_spend"),
    "r_score": ("recency_days",),
    "f_score": ("order_count",),
    "m_score": ("annual_spend",),
    "spend_share_above": ("annual_spend",),
    "stage": ("first_order_date", "last_order_date", "recency_days", "previous_order_date",
              "spend_growth", "tenure_years", "active_months"),
}
ALWAYS = ("first_order_date", *RECORD_METRICS)

RANK_METRICS = ("r_score", "f_score", "m_score", "spend_share_above")
GAP_METRICS = ("previous_order_date", "order_gap_days")
INTERACTION_METRICS = ("complaints_12m", "interactions_12m", "satisfaction_avg")
PAYMENT_METRICS = ("overdue_amount", "overdue_days", "receivable_amount")
# One pass over the interactions, the purchase days or the invoices gives its whole group.
for _group in (GAP_METRICS, INTERACTION_METRICS, PAYMENT_METRICS):
    for _name in _group:
        DEPENDS_ON[_name] = tuple(other for other in _group if other != _name)
# Computed elsewhere: the models (tierwise.metrics.models) and the stage (grading.lifecycle).
_NOT_PER_CUSTOMER = (*MODEL_METRICS, "stage")
PER_CUSTOMER = tuple(name for name in METRICS if name not in _NOT_PER_CUSTOMER)


@dataclass(frozen=True)
class MetricPlan:
    """The metrics a run computes (names of tierwise.common.vocabulary.METRICS)."""

    metrics: frozenset[str]

    def __contains__(self, name: object) -> bool:
        return name in self.metrics

    def any_of(self, names: Iterable[str]) -> bool:
        return any(name in self.metrics for name in names)

    @property
    def is_complete(self) -> bool:
        """Whether every metric of the vocabulary (but the models) is computed."""
        return all(name in self.metrics for name in (*PER_CUSTOMER, "stage"))

    def missing(self, names: Iterable[str]) -> list[str]:
        """Names of the vocabulary among ``names`` that this plan leaves out."""
        return [n for n in names if n in METRICS and n not in MODEL_METRICS
                and n not in self.metrics]


def metric_plan(names: Iterable[str]) -> MetricPlan:
    """The plan that computes ``names`` (metric, attribute or score names; only metrics of
    the vocabulary count, ``all`` means every one) with what they are computed from."""
    wanted = set(names)
    if ALL in wanted:
        wanted |= set(PER_CUSTOMER) | {"stage"}
    chosen: set[str] = set()
    todo = [n for n in (*ALWAYS, *wanted) if n in METRICS and n not in MODEL_METRICS]
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        chosen.add(name)
        todo.extend(DEPENDS_ON.get(name, ()))
    return MetricPlan(frozenset(chosen))


COMPLETE = metric_plan([ALL])
