"""The weighted multi-dimension scorecard as Ibis expressions: factor → dimension → score."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from tierwise.policy.model import Factor, Scorecard
from tierwise.vocabulary import ValueType


def with_scores(table: ir.Table, scorecard: Scorecard, types: dict[str, ValueType]) -> ir.Table:
    """Add `<dimension>_score` columns and the overall `score` (all 0–100)."""
    dimension_scores: dict[str, ir.FloatingValue] = {}
    for dimension in scorecard.dimensions:
        total = sum(f.weight for f in dimension.factors)
        weighted = [
            factor_score(table[f.metric], f, types[f.metric]) * (f.weight / total)
            for f in dimension.factors
        ]
        dimension_scores[dimension.score_name] = _sum(weighted)
    total = sum(d.weight for d in scorecard.dimensions)
    overall = _sum(
        [dimension_scores[d.score_name] * (d.weight / total) for d in scorecard.dimensions]
    )
    return table.mutate(**dimension_scores, score=overall)


def factor_score(value: ir.Value, factor: Factor, value_type: ValueType) -> ir.FloatingValue:
    missing = ibis.literal(factor.missing, "float64")
    if factor.map is not None:
        text = value.cast("string")
        cases = [(text == key, ibis.literal(float(score))) for key, score in factor.map.items()]
        return ibis.cases(*cases, else_=missing)
    number = value.try_cast("float64") if value_type == "string" else value.cast("float64")
    if factor.bins is not None:
        scored = ibis.cases(
            *[
                (number >= b.at_least, ibis.literal(b.score, "float64"))
                for b in reversed(factor.bins)
            ],
            else_=ibis.literal(0.0, "float64"),
        )
    elif factor.linear is not None:
        worst, best = factor.linear
        position = (number - worst) / (best - worst)
        scored = position.clip(lower=0.0, upper=1.0) * 100.0
    else:
        scored = _percentile(number, higher_is_better=factor.higher_is_better)
        return scored.fill_null(missing)
    return ibis.cases((number.isnull(), missing), else_=scored)


def _percentile(number: ir.FloatingValue, *, higher_is_better: bool) -> ir.FloatingValue:
    """100 × (customers strictly worse) / (n − 1) among customers with a value; ties share it."""
    present = number.notnull()
    key = number if higher_is_better else -number
    worse = ibis.rank().over(ibis.window(group_by=present, order_by=key))
    n = present.cast("int64").sum().over(ibis.window())
    ratio = ibis.cases((n > 1, worse.cast("float64") / (n - 1)), else_=1.0)
    return ibis.cases((present, ratio * 100.0), else_=ibis.null("float64"))


def _sum(parts: list[ir.FloatingValue]) -> ir.FloatingValue:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
