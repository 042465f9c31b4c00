"""The weighted multi-dimension scorecard as Ibis expressions: factor → dimension → score."""

from __future__ import annotations

import hashlib
from typing import Any

import ibis
import ibis.expr.types as ir

from tierwise.common.vocabulary import ValueType
from tierwise.metrics.ranking import rank_keys
from tierwise.policy.model import Factor, Scorecard


def with_scores(table: ir.Table, scorecard: Scorecard, types: dict[str, ValueType]) -> ir.Table:
    """Add `<dimension>_score` columns and the overall `score` (all 0–100). Percentile
    factors read the columns :func:`with_percentile_ranks` added, and drop them."""
    dimension_scores: dict[str, ir.FloatingValue] = {}
    for dimension in scorecard.dimensions:
        total = sum(f.weight for f in dimension.factors)
        weighted = [
            factor_score(table[percentile_column(f) if f.percentile else f.metric], f,
                         types[f.metric]) * (f.weight / total)
            for f in dimension.factors
        ]
        dimension_scores[dimension.score_name] = _sum(weighted)
    total = sum(d.weight for d in scorecard.dimensions)
    overall = _sum(
        [dimension_scores[d.score_name] * (d.weight / total) for d in scorecard.dimensions]
    )
    ranks = [c for c in table.columns if c.startswith(_PERCENTILE_PREFIX)]
    return table.mutate(**dimension_scores, score=overall).drop(*ranks)


_PERCENTILE_PREFIX = "_tw_pct_"


def percentile_column(factor: Factor) -> str:
    digest = hashlib.sha1(factor.metric.encode()).hexdigest()[:12]
    return f"{_PERCENTILE_PREFIX}{digest}_{'hi' if factor.higher_is_better else 'lo'}"


def with_percentile_ranks(backend: Any, table: ir.Table, scorecard: Scorecard,
                          types: dict[str, ValueType], *, ranges: int) -> ir.Table:
    """Add each percentile factor's 0–100 rank: 100 × (customers strictly worse) / (n − 1)
    among the customers with a value; ties share it. Ranked by tierwise.metrics.ranking (aggregates
    and a join, no unpartitioned window)."""
    factors = {percentile_column(f): f for d in scorecard.dimensions for f in d.factors
               if f.percentile}
    for column, factor in factors.items():
        sign = 1.0 if factor.higher_is_better else -1.0
        number = _number(table[factor.metric], types[factor.metric])
        present = table.mutate(_tw_value=number).filter(lambda t: t._tw_value.notnull())
        ranked = rank_keys(backend, present.select(key=present._tw_value * sign),
                           ranges=ranges)
        r = ranked.table
        ratio = (r.below.cast("float64") / (ranked.total - 1) if ranked.total > 1
                 else ibis.literal(1.0))
        r = r.select(_tw_key=r.key, _tw_rank=ratio * 100.0)
        joined = table.left_join(r, (number * sign) == r._tw_key)
        table = joined.mutate(**{column: joined._tw_rank}).drop("_tw_key", "_tw_rank")
    return table


def factor_score(value: ir.Value, factor: Factor, value_type: ValueType) -> ir.FloatingValue:
    missing = ibis.literal(factor.missing, "float64")
    if factor.map is not None:
        text = value.cast("string")
        cases = [(text == key, ibis.literal(float(score))) for key, score in factor.map.items()]
        return ibis.cases(*cases, else_=missing)
    if factor.percentile:               # value: the rank from with_percentile_ranks
        return value.cast("float64").fill_null(missing)
    number = _number(value, value_type)
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
        raise AssertionError("a factor has bins, map, linear or percentile")
    return ibis.cases((number.isnull(), missing), else_=scored)


def _number(value: ir.Value, value_type: ValueType) -> ir.FloatingValue:
    return value.try_cast("float64") if value_type == "string" else value.cast("float64")


def _sum(parts: list[ir.FloatingValue]) -> ir.FloatingValue:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
