"""Lifecycle stages: where a customer stands in the relationship, beside the tier.

Every run assigns one stage from the metrics as of D, so a customer moves both ways: a
churned customer who buys again is 回流 reactivated, a loyal one who stops buying becomes
风险 at risk and then 流失 churned. The first stage whose test holds wins, in this order:

1. potential 潜在 — no order yet;
2. churned 流失 — no order for more than ``churned_after_days``;
3. reactivated 回流 — the latest order came after a gap longer than ``churned_after_days``;
4. new 新客 — the first order lies within the last ``new_within_days``;
5. at_risk 风险 — no order for more than ``at_risk_after_days``, or spend down by at least
   ``at_risk_drop`` against the prior window;
6. growing 成长 — spend up by at least ``growing_growth`` against the prior window;
7. loyal 忠诚 — a customer for at least ``loyal_after_years`` and active in at least
   ``loyal_active_months`` of the window's months;
8. stable 稳定 — everyone else.

The thresholds come from the policy's ``lifecycle`` block (tierwise.policy.model.Lifecycle).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from tierwise.policy.model import Lifecycle


def stage(t: ir.Table, settings: Lifecycle, as_of: dt.date) -> ir.StringValue:
    """The stage of each row of a metrics table (tierwise.metrics.per_customer.customer_metrics)."""
    day = ibis.date(as_of)
    gap_before_last = t.last_order_date.delta(t.previous_order_date, unit="day")
    first_days_ago = day.delta(t.first_order_date, unit="day")
    growth = t.spend_growth
    return ibis.cases(
        (t.first_order_date.isnull() | t.last_order_date.isnull(), "potential"),
        (t.recency_days > settings.churned_after_days, "churned"),
        (gap_before_last.notnull() & (gap_before_last > settings.churned_after_days),
         "reactivated"),
        (first_days_ago <= settings.new_within_days, "new"),
        ((t.recency_days > settings.at_risk_after_days)
         | (growth.notnull() & (growth <= -settings.at_risk_drop)), "at_risk"),
        (growth.notnull() & (growth >= settings.growing_growth), "growing"),
        ((t.tenure_years >= settings.loyal_after_years)
         & (t.active_months >= settings.loyal_active_months), "loyal"),
        else_="stable",
    )
