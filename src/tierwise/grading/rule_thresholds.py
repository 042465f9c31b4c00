"""Which numbers of a tier's rule calibration moves (the comparisons of the metric with a
number), how they move together, and numbers written back the way users write them
(``62万``). Used by :mod:`tierwise.grading.calibration`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from tierwise.errors import TierwiseError
from tierwise.policy.model import Policy, Tier
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
)

Target = tuple[float, float]

_UNIT_FACTORS = {
    "": Decimal(1), "%": Decimal("0.01"), "千": Decimal(1_000), "万": Decimal(10_000),
    "百万": Decimal(1_000_000), "千万": Decimal(10_000_000), "亿": Decimal(100_000_000),
}  # fmt: skip
_UNIT_RE = re.compile(r"(千万|百万|亿|万|千|%)$")
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


class CalibrationError(TierwiseError):
    """A calibration that cannot start: bad metric, targets, or rules it cannot move."""


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


@dataclass
class _Outcome:
    values: tuple[float, ...]
    share: float
    status: str
    note: str = ""
