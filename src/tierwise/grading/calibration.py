"""Calibrating a policy: move the numbers its rules compare one metric with, so that each
tier's share of customers lands in its target range; then write the policy back with its
comments and layout untouched.

How a tier is calibrated (tiers best first; the last tier takes whoever is left):

* the tiers above it are already final, so they take their customers first, exactly as
  grading's ``CASE WHEN`` does;
* the tier's comparisons of the metric with a number (``annual_spend >= 100万``) move
  together: the first is set to a candidate value and the others keep their ratio to it
  (``50万 or (30万 and …)`` becomes ``62万 or (37万 and …)``). When the numbers differ in
  sign or one is zero a common ratio means nothing, so only the first moves (and the result
  says so);
* the search is monotone: a higher threshold on ``>=`` lets fewer customers in. Rather than
  bisect with one counting query per step, the engine computes once, per customer, the
  highest threshold at which the rule still holds (:func:`critical_values`); one GROUP BY
  over those gives the tier's share at every threshold where it changes, and the one nearest
  the middle of the target is taken. Ties show up as one value holding many customers;
* the exact threshold is rounded to a nice number (2, then 3, … significant figures) as long
  as the share stays inside the target, and written with the unit the user wrote (``62万``).
  Those candidates are counted with the rule as written, all in one query, so every share
  reported is what grading would give.

A tier whose share already lies inside its target keeps its thresholds: calibration moves
only what is off target, so re-running it on a calibrated policy changes nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.nodes import Node as YamlNode

from tierwise.common.vocabulary import ValueType
from tierwise.data.tables import Sources, latest_order_date
from tierwise.errors import TierwiseError
from tierwise.grading.run import computed_tiers, evaluation
from tierwise.policy.evaluation import to_ibis
from tierwise.policy.loading import load_policy_text, name_types
from tierwise.policy.model import Policy, Tier, parse_quantity
from tierwise.policy.syntax import (
    ORDERING,
    And,
    Compare,
    Name,
    Negate,
    Node,
    Not,
    Number,
    Or,
    Rule,
    children,
    parse_rule,
    walk,
)

Target = tuple[float, float]

_UNIT_FACTORS = {
    "": Decimal(1), "%": Decimal("0.01"), "千": Decimal(1_000), "万": Decimal(10_000),
    "百万": Decimal(1_000_000), "千万": Decimal(10_000_000), "亿": Decimal(100_000_000),
}  # fmt: skip
_UNIT_RE = re.compile(r"(千万|百万|亿|万|千|%)$")
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_EPSILON = 1e-12  # shares are count / total; the tolerance only absorbs float noise
_MAX_DIGITS = 8   # significant figures tried before the exact value is written as is
_CALIBRATED_COMMENT = re.compile(r"[ \t]*# calibrated .*(?:\r?\n)")


class CalibrationError(TierwiseError):
    """A calibration that cannot start: bad metric, targets, or rules it cannot move."""


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class TierCalibration:
    """One tier before and after; thresholds as written in the rule (``100万``)."""

    key: str
    old_thresholds: tuple[str, ...]
    new_thresholds: tuple[str, ...]
    old_values: tuple[float, ...]
    new_values: tuple[float, ...]
    old_share: float
    new_share: float
    target: Target | None
    # calibrated: moved into the target · kept: already inside it · unmet: moved as close as
    # the data allows · fixed: no target, rule untouched · remainder: the last tier
    status: str
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else in_target(self.new_share, self.target)

    def to_json(self) -> dict[str, Any]:
        return {"tier": self.key, "old_thresholds": list(self.old_thresholds),
                "new_thresholds": list(self.new_thresholds),
                "old_values": list(self.old_values), "new_values": list(self.new_values),
                "old_share": self.old_share, "new_share": self.new_share,
                "target": list(self.target) if self.target else None, "met": self.met,
                "status": self.status, "note": self.note}


@dataclass(frozen=True)
class Calibration:
    """The calibrated policy (parsed and as YAML text) and what changed, tier by tier."""

    as_of: dt.date
    metric: str
    customers: int
    tiers: tuple[TierCalibration, ...]
    policy: Policy
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "metric": self.metric,
                "customers": self.customers, "policy": {"name": self.policy.name,
                                                        "hash": self.policy.hash},
                "tiers": [t.to_json() for t in self.tiers]}


def in_target(share: float, target: Target) -> bool:
    return target[0] - _EPSILON <= share <= target[1] + _EPSILON


def describe_target(target: Target) -> str:
    """``5–10%``, the way seed 004 writes share ranges."""
    return f"{_percent(target[0])}–{_percent(target[1])}%"


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100, 4):g}"


# ---------------------------------------------------------------------------------------
# Inputs


def parse_targets(text: str) -> dict[str, Target]:
    """``vip=5%:10%,important=0.15:0.20`` as {key: (low, high)} fractions."""
    targets: dict[str, Target] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, bounds = item.partition("=")
        low_text, colon, high_text = bounds.partition(":")
        if not (sep and colon and key.strip()):
            raise CalibrationError(f"--target: expected key=low:high such as vip=5%:10%, "
                                   f"got {item!r}")
        try:
            low, high = parse_quantity(low_text.strip()), parse_quantity(high_text.strip())
        except ValueError:
            raise CalibrationError(f"--target: {item!r}: low and high are fractions or "
                                   "percents, e.g. 0.05:0.10 or 5%:10%") from None
        targets[key.strip()] = (low, high)
    if not targets:
        raise CalibrationError("--target: give at least one key=low:high, e.g. vip=5%:10%")
    return targets


def _goals(policy: Policy, targets: Mapping[str, Target] | None) -> dict[str, Target]:
    """Given targets replace the policy's entirely: only the tiers they name are moved."""
    if targets is None:
        return {t.key: t.target_share for t in policy.tiers if t.target_share is not None}
    problems = []
    for key, (low, high) in targets.items():
        if key not in policy.keys:
            hint = _did_you_mean(key, policy.keys)
            problems.append(f"unknown tier {key!r} in the targets{hint} "
                            f"(tiers: {', '.join(policy.keys)})")
        elif not 0 <= low <= high <= 1:
            problems.append(f"target of {key!r} must be low:high shares between 0 and 100% "
                            f"with low <= high, got {low:g}:{high:g}")
    if problems:
        raise CalibrationError("; ".join(problems))
    return dict(targets)


def _did_you_mean(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" — did you mean '{close[0]}'?" if close else ""


def _check_metric(metric: str, types: Mapping[str, ValueType]) -> None:
    if metric not in types:
        raise CalibrationError(f"unknown metric '{metric}'{_did_you_mean(metric, list(types))}")
    if types[metric] != "number":
        raise CalibrationError(f"'{metric}' is a {types[metric]}, not a number: calibration "
                               "moves numeric thresholds")


# ---------------------------------------------------------------------------------------
# Which numbers of a rule move


@dataclass(frozen=True)
class Threshold:
    """A number the metric is compared with: its span in the rule text, value and unit."""

    pos: int
    end: int
    value: float
    unit: str                    # '', '万', '%', …: new values are written the same way
    op: str                      # as if the metric were on the left: `5 < x` is `x > 5`
    stricter_when_higher: bool   # True for `metric >= x`: a higher x lets fewer customers in


def thresholds(rule: Rule, metric: str) -> list[Threshold]:
    """The comparisons ``metric <op> number`` (either side) of a rule, in source order.

    Only comparisons reached through and/or/not count: there the rule is monotone in each,
    and `not` flips the direction. Anywhere else (a comparison compared with something) the
    direction is unknown, so calibration refuses rather than guess.
    """
    found: list[Threshold] = []

    def visit(node: Node, negated: bool, monotone: bool) -> None:
        match node:
            case Not(operand=x):
                visit(x, not negated, monotone)
                return
            case And(items=items) | Or(items=items):
                for item in items:
                    visit(item, negated, monotone)
                return
            case Compare(op=op, left=a, right=b) if op in ORDERING:
                threshold = _threshold(rule.text, op, a, b, metric, negated)
                if threshold is not None:
                    if not monotone:
                        raise CalibrationError(
                            f"cannot tell which way {rule.text[node.pos:node.end]!r} moves "
                            f"the tier in {rule.text!r}; write it as a plain condition")
                    found.append(threshold)
        for child in children(node):
            visit(child, negated, False)

    visit(rule.ast, False, True)
    return found


def _threshold(text: str, op: str, left: Node, right: Node, metric: str,
               negated: bool) -> Threshold | None:
    if _is_metric(left, metric) and _number(right) is not None:
        number_node = right
    elif _is_metric(right, metric) and _number(left) is not None:
        number_node, op = left, _FLIPPED[op]
    else:
        return None
    value = _number(number_node)
    assert value is not None  # checked above
    match = _UNIT_RE.search(text[number_node.pos:number_node.end])
    return Threshold(pos=number_node.pos, end=number_node.end, value=value,
                     unit=match.group(1) if match else "", op=op,
                     stricter_when_higher=(op in (">", ">=")) != negated)


def _is_metric(node: Node, metric: str) -> bool:
    return isinstance(node, Name) and node.name == metric


def _number(node: Node) -> float | None:
    """The value of a literal number, also of ``-5`` (parsed as the negation of 5)."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Negate) and isinstance(node.operand, Number):
        return -node.operand.value
    return None


@dataclass(frozen=True)
class _Plan:
    """How one tier's rule moves: its thresholds and whether the others follow the first."""

    tier: Tier
    rule: Rule
    metric: str
    thresholds: tuple[Threshold, ...]
    proportional: bool

    @property
    def stricter_when_higher(self) -> bool:
        return self.thresholds[0].stricter_when_higher

    @property
    def old_values(self) -> tuple[float, ...]:
        return tuple(t.value for t in self.thresholds)

    def ratio(self, threshold: Threshold) -> float | None:
        """How `threshold` follows the first (value = ratio × first), None if it stays."""
        if threshold == self.thresholds[0]:
            return 1.0
        return threshold.value / self.thresholds[0].value if self.proportional else None

    def values(self, primary: float, digits: int | None = None) -> tuple[float, ...]:
        """All thresholds when the first is `primary`; others rounded to `digits` if given."""
        first = self.thresholds[0].value
        rest = [t.value * primary / first if self.proportional else t.value
                for t in self.thresholds[1:]]
        if digits is not None and self.proportional:
            rest = [round_significant(v, digits, ROUND_HALF_EVEN) for v in rest]
        return (primary, *rest)

    def literals(self, values: Sequence[float]) -> tuple[str, ...]:
        return tuple(write_number(v, t.unit) for v, t in zip(values, self.thresholds,
                                                              strict=True))

    def text(self, values: Sequence[float]) -> str:
        """The rule with the thresholds replaced by `values`, the rest exactly as written."""
        text = self.rule.text
        for t, literal in sorted(zip(self.thresholds, self.literals(values), strict=True),
                                 key=lambda pair: -pair[0].pos):
            text = text[:t.pos] + literal + text[t.end:]
        return text

    @property
    def old_literals(self) -> tuple[str, ...]:
        return tuple(self.rule.text[t.pos:t.end] for t in self.thresholds)


def _plans(policy: Policy, metric: str, goals: Mapping[str, Target]) -> dict[str, _Plan]:
    problems: list[str] = []
    plans: dict[str, _Plan] = {}
    for tier in policy.tiers[:-1]:
        if tier.key not in goals or tier.rule is None:
            continue
        found = thresholds(tier.rule, metric)
        if not found:
            problems.append(f"tier {tier.key!r}: its rule does not compare {metric} with a "
                            f"number ({tier.rule.text}); choose a metric it compares, or "
                            "leave the tier out of --target")
        elif len({t.stricter_when_higher for t in found}) > 1:
            problems.append(f"tier {tier.key!r}: its rule bounds {metric} from both sides "
                            f"({tier.rule.text}); calibration cannot move a range")
        else:
            values = [t.value for t in found]
            same_sign = all(v > 0 for v in values) or all(v < 0 for v in values)
            plans[tier.key] = _Plan(tier, tier.rule, metric, tuple(found), same_sign)
    if problems:
        raise CalibrationError("cannot calibrate on " + metric + ":\n  - "
                               + "\n  - ".join(problems))
    return plans


# ---------------------------------------------------------------------------------------
# Numbers as users write them


def write_number(value: float, unit: str = "") -> str:
    """``620000`` with unit 万 → ``62万``; exact (a decimal shift), so it parses back equal.

    Amounts under one 千/万/亿 are written plainly (``8000``, not ``0.8万``)."""
    if unit not in ("", "%") and abs(value) < _UNIT_FACTORS[unit]:
        unit = ""
    amount = Decimal(repr(float(value))) / _UNIT_FACTORS[unit]
    text = format(amount.normalize(), "f")
    return f"{text}{unit}"


def round_significant(value: float, digits: int, rounding: str) -> float:
    """`value` to `digits` significant figures, rounding as decimal's ROUND_* says."""
    if value == 0 or not math.isfinite(value):
        return value
    exact = Decimal(repr(float(value)))
    step = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    return float(exact.quantize(step, rounding=rounding))


def _significant_digits(value: float) -> int:
    return len(Decimal(repr(float(value))).normalize().as_tuple().digits)


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


# ---------------------------------------------------------------------------------------
# Calibrating


@dataclass
class _Outcome:
    values: tuple[float, ...]
    share: float
    status: str
    note: str = ""


@dataclass
class _Search:
    """One tier's counts of candidate rules (each counted once, many per query)."""

    counter: _Counter
    plan: _Plan
    left: ir.BooleanValue | None   # customers the tiers above leave (None: everyone)
    target: Target
    known: dict[tuple[str, ...], float] = field(default_factory=dict)

    @property
    def aim(self) -> float:
        return (self.target[0] + self.target[1]) / 2

    def shares(self, options: Sequence[Sequence[float]]) -> list[float]:
        keys = [self.plan.literals(o) for o in options]
        missing = {k: o for k, o in zip(keys, options, strict=True) if k not in self.known}
        if missing:
            texts = [self.plan.text(o) for o in missing.values()]
            self.known.update(zip(missing, self.counter.shares(texts, self.left), strict=True))
        return [self.known[k] for k in keys]

    def share(self, values: Sequence[float]) -> float:
        return self.shares([values])[0]

    def closeness(self, share: float) -> tuple[bool, float, float]:
        """Sort key: inside the target first, then nearer the range, then nearer its middle."""
        low, high = self.target
        outside = max(low - share, share - high, 0.0)
        return (outside > _EPSILON, outside, abs(share - self.aim))


def _calibrate_tier(search: _Search) -> _Outcome:
    plan = search.plan
    old_share = search.share(plan.old_values)
    if in_target(old_share, search.target):
        return _Outcome(plan.old_values, old_share, "kept")
    candidates, shares = search.counter.sweep(plan, search.left)
    if len(candidates) == 0:
        return _Outcome(plan.old_values, old_share, "unmet", f"moving {plan.metric} changes "
                        "the tier of none of the customers the tiers above leave")
    exact = plan.values(float(candidates[_nearest(shares, search.target)]))
    values = _nice(search, exact, search.share(exact))
    share = search.share(values)
    note = ""
    if len(plan.thresholds) > 1 and not plan.proportional:
        note = (f"only {plan.old_literals[0]} moved: the other numbers compared with "
                f"{plan.metric} differ in sign or are zero, so they stay")
    if in_target(share, search.target):
        return _Outcome(values, share, "calibrated", note)
    unmet = _unmet_note(search, share, candidates, shares)
    return _Outcome(values, share, "unmet", f"{unmet}; {note}" if note else unmet)


def _nearest(shares: np.ndarray, target: Target) -> int:
    """The index of the share nearest the target's middle among those inside it, else of
    the share nearest the range."""
    low, high = target
    outside = np.maximum(np.maximum(low - shares, shares - high), 0.0)
    inside = np.flatnonzero(outside <= _EPSILON)
    if len(inside):
        return int(inside[np.argmin(np.abs(shares[inside] - (low + high) / 2))])
    return int(np.argmin(outside))


def _nice(search: _Search, exact: tuple[float, ...], share: float) -> tuple[float, ...]:
    """The roundest thresholds, by significant figures, that keep the share acceptable:
    inside the target when the exact one is, else exactly the exact one's share. All the
    roundings are counted in one query, with the rule as written."""
    plan, primary = search.plan, exact[0]
    levels = [[plan.values(p, digits) for p in sorted({round_significant(primary, digits, mode)
                                                       for mode in (ROUND_FLOOR, ROUND_CEILING)})]
              for digits in range(2, min(_significant_digits(primary), _MAX_DIGITS))]
    search.shares([option for level in levels for option in level])

    def acceptable(candidate_share: float) -> bool:
        if in_target(share, search.target):
            return in_target(candidate_share, search.target)
        return candidate_share == share

    for options in levels:
        good = [o for o in options if acceptable(search.share(o))]
        if good:
            return min(good, key=lambda o: (search.closeness(search.share(o)),
                                            abs(o[0] - primary)))
    return plan.values(primary, _MAX_DIGITS)


def _unmet_note(search: _Search, share: float, candidates: np.ndarray,
                shares: np.ndarray) -> str:
    """Why no threshold works. Shares fall along the candidates, so when none is inside the
    target, the last one above it and the first one below it are neighbours: a jump."""
    low, high = search.target
    target, metric = describe_target(search.target), search.plan.metric
    above = np.flatnonzero(shares > high + _EPSILON)
    below = np.flatnonzero(shares < low - _EPSILON)
    if len(above) and len(below):
        i, j = above[-1], below[0]
        unit = search.plan.thresholds[0].unit
        a, b = (write_number(round_significant(float(candidates[k]), 6, ROUND_HALF_EVEN), unit)
                for k in (i, j))
        return (f"target {target} not reachable: the share jumps from {shares[i]:.1%} to "
                f"{shares[j]:.1%} between {metric} {a} and {b} (customers tied on one value)")
    reach = "at most" if len(below) else "at least"
    return (f"target {target} not reachable by moving {metric}: the share is {reach} "
            f"{share:.1%} (the rule's other conditions limit it)")


def calibrate(backend: Any, sources: Sources, policy: Policy, policy_text: str, *,
              metric: str, targets: Mapping[str, Target] | None = None,
              as_of: dt.date | None = None) -> Calibration:
    """Move the thresholds on `metric` so each tier's share lands in its target range.

    `targets` maps tier keys to (low, high) fractions; None takes the policy's
    `target_share`s. A tier without a target keeps its rule. Shares are of all graded
    customers' computed tiers (before hysteresis and overrides) on the `as_of` date, by
    default the latest order date as in grading. Raises CalibrationError on bad input.
    """
    if policy.clustering is not None:
        raise CalibrationError(
            f"policy {policy.name!r} clusters customers instead of comparing metrics with "
            "thresholds: there is nothing to calibrate (the tiers follow the clusters)")
    types = name_types(policy, sources.attributes)
    _check_metric(metric, types)
    goals = _goals(policy, targets)
    plans = _plans(policy, metric, goals)
    as_of = as_of or latest_order_date(backend, sources.orders)
    with evaluation(backend, sources, policy, as_of) as ev:
        if metric not in ev.graded.columns:
            raise CalibrationError(f"'{metric}' is not computed for this policy")
        counter = _Counter(backend, ev.graded, types, ev.aggregates)
        if counter.total == 0:
            raise CalibrationError("there are no customers to calibrate on")
        old_shares = counter.tier_shares(policy)
        outcomes, rules = _calibrate_tiers(counter, policy, plans, goals)
        text = rewrite_policy(policy_text, policy, plans, outcomes, comment=lambda key: (
            _comment(as_of, metric, plans[key], outcomes[key], old_shares[key], goals[key])))
        calibrated = load_policy_text(text, source="calibrated policy",
                                      attributes=sources.attributes)
        new_shares = counter.tier_shares(calibrated)
    _check_rules(calibrated, rules)
    tiers = tuple(_result(tier, plans.get(tier.key), outcomes.get(tier.key), goals,
                          old_shares[tier.key], new_shares[tier.key], last)
                  for tier, last in zip(policy.tiers,
                                        [False] * (len(policy.tiers) - 1) + [True], strict=True))
    return Calibration(as_of, metric, counter.total, tiers, calibrated, text)


def _calibrate_tiers(counter: _Counter, policy: Policy, plans: Mapping[str, _Plan],
                     goals: Mapping[str, Target]) -> tuple[dict[str, _Outcome], list[str]]:
    """Top-down: each tier is searched with the final rules of the tiers above in place."""
    outcomes: dict[str, _Outcome] = {}
    rules: list[str] = []
    left: ir.BooleanValue | None = None
    for tier in policy.tiers[:-1]:
        assert tier.rule is not None  # only the last tier has no rule
        rule = tier.rule.text
        plan = plans.get(tier.key)
        if plan is not None:
            outcome = _calibrate_tier(_Search(counter, plan, left, goals[tier.key]))
            outcomes[tier.key] = outcome
            rule = plan.text(outcome.values)
        rules.append(rule)
        taken = ~counter.holds(rule)
        left = taken if left is None else left & taken
    return outcomes, rules


def _check_rules(calibrated: Policy, rules: Sequence[str]) -> None:
    written = [t.when for t in calibrated.tiers[:-1]]
    if written != list(rules):  # pragma: no cover - rewrite_policy verifies this already
        raise CalibrationError("the written policy does not hold the calibrated rules")


def _result(tier: Tier, plan: _Plan | None, outcome: _Outcome | None,
            goals: Mapping[str, Target], old_share: float, new_share: float,
            last: bool) -> TierCalibration:
    target = goals.get(tier.key)
    if plan is None or outcome is None:
        status = "remainder" if last else "fixed"
        note = ""
        if last and target is not None and not in_target(new_share, target):
            note = f"what the tiers above leave is outside its target {describe_target(target)}"
        return TierCalibration(tier.key, (), (), (), (), old_share, new_share, target,
                               status, note)
    return TierCalibration(tier.key, plan.old_literals, plan.literals(outcome.values),
                           plan.old_values,
                           outcome.values, old_share, new_share, target, outcome.status,
                           outcome.note)


def _comment(as_of: dt.date, metric: str, plan: _Plan, outcome: _Outcome,
             old_share: float, target: Target) -> str:
    old, new = "/".join(plan.old_literals), "/".join(plan.literals(outcome.values))
    met = "" if in_target(outcome.share, target) else ", not met"
    return (f"# calibrated {as_of.isoformat()} on {metric}: was {old} (share {old_share:.1%}), "
            f"now {new} (share {outcome.share:.1%}, target {describe_target(target)}{met})")


# ---------------------------------------------------------------------------------------
# Writing the policy back


def rewrite_policy(text: str, policy: Policy, plans: Mapping[str, _Plan],
                   outcomes: Mapping[str, _Outcome], *,
                   comment: Callable[[str], str]) -> str:
    """The policy YAML with each moved number replaced where it stands, and a comment line
    above each changed `when:`; every other character is kept (comments, quotes, layout).

    The YAML node of each `when` gives the scalar's place in the file. Within it, a number
    is found as the same occurrence of the same token as in the rule text: tokens hold no
    spaces or quotes, so line folding and quoting cannot split or fake one. The result is
    read back and compared with the intended rules, so a surprise is an error, not a file
    that says something else.
    """
    root = YAML(typ="rt").compose(io.StringIO(text))
    items = _tier_nodes(root)
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[tuple[int, int, str]] = []
    expected: dict[int, str] = {}
    for index, tier in enumerate(policy.tiers):
        plan, outcome = plans.get(tier.key), outcomes.get(tier.key)
        if plan is None or outcome is None or plan.literals(outcome.values) == plan.old_literals:
            continue
        key_node, value_node = _entry(items[index], "when")
        start = value_node.start_mark.index
        scalar = text[start:value_node.end_mark.index]
        for threshold, literal in zip(plan.thresholds, plan.literals(outcome.values),
                                      strict=True):
            token = plan.rule.text[threshold.pos:threshold.end]
            nth = _occurrences(plan.rule.text, token).index(threshold.pos)
            found = _occurrences(scalar, token)
            if nth >= len(found):
                raise CalibrationError(f"cannot find {token!r} in the `when` of tier "
                                       f"{tier.key!r}; edit the policy by hand")
            edits.append((start + found[nth], start + found[nth] + len(token), literal))
        edits.append(_comment_edit(text, key_node, comment(tier.key), newline))
        expected[index] = plan.text(outcome.values)
    result = _apply(text, edits)
    _verify(result, expected)
    return result


def _tier_nodes(root: YamlNode | None) -> list[YamlNode]:
    tiers = _entry(root, "tiers")[1] if isinstance(root, MappingNode) else None
    if not isinstance(tiers, SequenceNode):  # pragma: no cover - the policy loaded already
        raise CalibrationError("the policy has no list of tiers to rewrite")
    return list(tiers.value)


def _entry(mapping: YamlNode, key: str) -> tuple[YamlNode, YamlNode]:
    if isinstance(mapping, MappingNode):
        for key_node, value_node in mapping.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node, value_node
    raise CalibrationError(f"cannot find '{key}' in the policy YAML; edit it by hand")


def _occurrences(text: str, token: str) -> list[int]:
    positions, at = [], text.find(token)
    while at >= 0:
        positions.append(at)
        at = text.find(token, at + 1)
    return positions


def _comment_edit(text: str, key_node: YamlNode, comment: str,
                  newline: str) -> tuple[int, int, str]:
    """A comment line above the line of `when:`, replacing an earlier calibration's."""
    line_start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    line = text[line_start:key_node.start_mark.index]
    # Aligned with `when:` when it starts a block mapping item (`- when: …`), else with the
    # line (a flow mapping `- {key: …, when: …}` on one line).
    indent = re.match(r"[ \t]*(?:-[ \t]+)?", line)
    width = len(indent.group(0)) if indent else 0
    if width < len(line):
        width = len(line) - len(line.lstrip(" \t"))
    start = line_start
    while start > 0:  # earlier "# calibrated …" lines just above go
        previous = text.rfind("\n", 0, start - 1) + 1
        if not _CALIBRATED_COMMENT.fullmatch(text[previous:start]):
            break
        start = previous
    return start, line_start, " " * width + comment + newline


def _apply(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    pieces, at = [], 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        pieces += [text[at:start], replacement]
        at = end
    return "".join(pieces) + text[at:]


def _verify(text: str, expected: Mapping[int, str]) -> None:
    data = YAML(typ="rt").load(io.StringIO(text))
    for index, rule in expected.items():
        written = data["tiers"][index].get("when")
        if written != rule:
            raise CalibrationError(f"rewriting the rule of tier {index + 1} gave {written!r} "
                                   f"instead of {rule!r}; edit the policy by hand")
