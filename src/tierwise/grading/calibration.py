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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN
from typing import Any

import ibis.expr.types as ir
import numpy as np

from tierwise.common.vocabulary import ValueType
from tierwise.data.tables import CanonicalTables, latest_order_date
from tierwise.grading.policy_rewrite import rewrite_policy
from tierwise.grading.rule_thresholds import (
    CalibrationError,
    Target,
    _Outcome,
    _Plan,
    _plans,
    _significant_digits,
    round_significant,
    write_number,
)
from tierwise.grading.run import evaluation
from tierwise.grading.share_counting import _Counter
from tierwise.policy.loading import load_policy_text, name_types
from tierwise.policy.model import Policy, Tier, parse_quantity

_EPSILON = 1e-12  # shares are count / total; the tolerance only absorbs float noise
_MAX_DIGITS = 8   # significant figures tried before the exact value is written as is


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
    """``5–10%``, the way tiering guidelines write share ranges."""
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
# Calibrating


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


def calibrate(backend: Any, tables: CanonicalTables, policy: Policy, policy_text: str, *,
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
    types = name_types(policy, tables.attributes)
    _check_metric(metric, types)
    goals = _goals(policy, targets)
    plans = _plans(policy, metric, goals)
    as_of = as_of or latest_order_date(backend, tables.orders)
    with evaluation(backend, tables, policy, as_of) as ev:
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
                                      attributes=tables.attributes)
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
