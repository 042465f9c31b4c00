"""Counting tier shares on the engine for calibration: the share of candidate rules, of
each tier as grading computes it, and every threshold at which a tier's share changes (one
GROUP BY over per-customer critical values). Used by :mod:`tierwise.grading.calibration`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from tierwise.common.vocabulary import ValueType
from tierwise.grading.rule_thresholds import Threshold, _number, _Plan
from tierwise.grading.run import computed_tiers
from tierwise.policy.evaluation import to_ibis
from tierwise.policy.model import Policy
from tierwise.policy.syntax import And, Compare, Node, Not, Or, Rule, parse_rule, walk

# ---------------------------------------------------------------------------------------
# Counting on the engine


@ibis.udf.scalar.builtin(name="nextafter")
def _nextafter(x: float, y: float) -> float:  # type: ignore[empty-body]
    """The engine's nextafter(x, y): the double next to x in the direction of y."""


_INF = ibis.literal(math.inf, type="float64")
_NEG_INF = ibis.literal(-math.inf, type="float64")
_COMPLEMENT = {">=": "<", ">": "<=", "<=": ">", "<": ">="}


def critical_values(plan: _Plan, table: ir.Table, types: Mapping[str, ValueType],
                    aggregates: Mapping[tuple[str, str], float | None]) -> ir.FloatingValue:
    """Per customer, the largest w at which the tier's rule holds with its first threshold at
    v = w (v = -w for `<=` rules), the others following it: the rule holds exactly when
    w <= this value (+inf: whatever the threshold; -inf: never).

    This is what makes the search cheap: the tier's share at every candidate threshold
    is a count of customers at or above it, so one GROUP BY gives them all. It follows the
    rule's semantics (nulls, NaN, `not`): a comparison `m >= v` holds up to m (`m > v` up to
    the next double below m); `and` is the least of its parts, `or` the greatest, and `not`
    turns one into the other (De Morgan) with the comparison complemented. Parts without a
    moving threshold are true or false whatever v is: +inf or -inf. For thresholds that
    follow the first at a ratio the edge m/ratio is exact up to float rounding, which is why
    the chosen thresholds are counted again with the rule as written.
    """
    sign = 1.0 if plan.stricter_when_higher else -1.0
    moving = {t.pos: t for t in plan.thresholds if plan.ratio(t) is not None}
    value = table[plan.metric].cast("float64")
    metric = value.nullif(ibis.literal(math.nan, type="float64"))  # NaN is null, as in rules

    def threshold_of(node: Node) -> Threshold | None:
        if isinstance(node, Compare):
            for side in (node.left, node.right):
                if side.pos in moving and _number(side) is not None:
                    return moving[side.pos]
        return None

    def bound(node: Node, negated: bool) -> ir.FloatingValue:
        if not any(threshold_of(n) is not None for n in walk(node)):
            holds = to_ibis(Rule(plan.rule.text, node, plan.rule.names, plan.rule.aggregates),
                            table, types, aggregates)
            return ibis.cases((~holds if negated else holds, _INF), else_=_NEG_INF)
        match node:
            case Not(operand=x):
                return bound(x, not negated)
            case And(items=items) | Or(items=items):
                parts = [bound(item, negated) for item in items]
                return ibis.least(*parts) if isinstance(node, And) != negated else (
                    ibis.greatest(*parts))
        threshold = threshold_of(node)
        assert threshold is not None  # moving thresholds sit only in comparisons
        return comparison(threshold, negated)

    def comparison(threshold: Threshold, negated: bool) -> ir.FloatingValue:
        op = _COMPLEMENT[threshold.op] if negated else threshold.op
        ratio = plan.ratio(threshold)
        assert ratio is not None and ratio > 0  # proportional only when signs agree
        # `m >= r·v` holds for v <= m/r; `m <= r·v` for v >= m/r, i.e. w = -v <= -m/r.
        edge = (metric / ratio) * sign
        if op in (">", "<"):  # strict: the largest double below the edge
            edge = _nextafter(edge, _NEG_INF)
        # A comparison with null is false, so its negation is true.
        return edge.fill_null(_INF if negated else _NEG_INF)

    return bound(plan.rule.ast, False)


class _Counter:
    """Shares of conditions among all graded customers, counted by the engine."""

    def __init__(self, backend: Any, table: ir.Table, types: Mapping[str, ValueType],
                 aggregates: Mapping[tuple[str, str], float | None]) -> None:
        self.backend, self.table, self.types, self.aggregates = backend, table, types, aggregates
        self.total = int(backend.execute(table.count()))

    def holds(self, rule_text: str, table: ir.Table | None = None) -> ir.BooleanValue:
        return to_ibis(parse_rule(rule_text), self.table if table is None else table,
                       self.types, self.aggregates)

    def shares(self, rule_texts: Sequence[str], left: ir.BooleanValue | None) -> list[float]:
        """The share of each rule among the customers `left` (None: all), in one scan."""
        table = self.table if left is None else self.table.filter(left)
        counts = table.aggregate(**{f"c{i}": self.holds(text, table).cast("int64").sum()
                                    for i, text in enumerate(rule_texts)})
        row = self.backend.execute(counts).iloc[0]
        return [_count(row[f"c{i}"]) / self.total for i in range(len(rule_texts))]

    def tier_shares(self, policy: Policy) -> dict[str, float]:
        """Each tier's share as grading computes it (before hysteresis and overrides)."""
        tiers = computed_tiers(self.table, policy, self.types, self.aggregates)
        counts = self.backend.execute(tiers.computed_tier.value_counts())
        by_key = dict(zip(counts.iloc[:, 0], counts.iloc[:, 1], strict=True))
        return {key: int(by_key.get(key, 0)) / self.total for key in policy.keys}

    def sweep(self, plan: _Plan, left: ir.BooleanValue | None) -> tuple[np.ndarray, np.ndarray]:
        """Every threshold at which the tier's share changes, and the share there.

        Returned as first-threshold values v with shares (both arrays in order of the
        critical value, i.e. of falling share), plus one beyond the last, where only the
        customers the threshold cannot exclude remain.
        """
        table = self.table if left is None else self.table.filter(left)
        edges = table.select(w=critical_values(plan, table, self.types, self.aggregates))
        edges = edges.filter(edges.w > _NEG_INF)
        counted = edges.group_by("w").aggregate(n=edges.count()).order_by("w").to_pyarrow()
        w = np.asarray(counted["w"].to_numpy(), dtype="float64")
        n = np.asarray(counted["n"].to_numpy(), dtype="int64")
        always = int(n[np.isposinf(w)].sum())  # in the tier whatever the threshold
        w, n = w[np.isfinite(w)], n[np.isfinite(w)]
        if len(w) == 0:
            return w, w
        at_or_above = np.cumsum(n[::-1])[::-1] + always
        w = np.append(w, np.nextafter(w[-1], np.inf))
        shares = np.append(at_or_above, always) / self.total
        sign = 1.0 if plan.stricter_when_higher else -1.0
        return w * sign, shares


def _count(value: Any) -> int:
    return 0 if value is None or value != value else int(value)  # sum() of no rows is null
