"""Why a customer has its tier: the rule that fired, the rules above it that failed and on
which condition, scores, hysteresis and overrides, and what would move the customer up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel

from tierwise.common import formatting
from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import (
    METRICS,
    MODEL_METRICS,
    ValueType,
    interaction_label,
    metric_label,
)
from tierwise.policy.expr import (
    Condition,
    Shortfall,
    conditions,
    deciding_conditions,
    evaluate,
    shortfalls,
)
from tierwise.policy.loading import name_types
from tierwise.policy.model import Playbook, Policy, Tier
from tierwise.record.history import HistoryEntry, Override

NON_METRIC_COLUMNS = frozenset({"tier", "computed_tier", "policy_tier", "basis",
                                "downgrade_streak", "override_id", "change", "prev_tier",
                                "prev_policy_tier", "prev_streak"})


@dataclass(frozen=True)
class RuleCheck:
    tier: str
    label: str
    rule: str | None
    holds: bool
    conditions: list[Condition]   # every condition, in source order
    deciding: list[Condition]     # the ones that decided it (see expr.deciding_conditions)


@dataclass(frozen=True)
class Step:
    """What would move the customer up to one tier above."""

    tier: str
    label: str
    shortfalls: list[Shortfall] | None   # None: no simple change of one metric gets there


@dataclass
class Explanation:
    customer_id: str
    name: str | None
    run_id: int | None
    as_of: dt.date
    tier: str
    tier_label: str
    computed_tier: str
    basis: str
    score: float | None
    dimension_scores: dict[str, float | None]
    metrics: dict[str, Any]
    checks: list[RuleCheck]                  # rules down to the one that fired, in order
    moves_up: list[Step]                     # nearest tier above first
    override: Override | None = None
    downgrade_streak: int = 0
    downgrade_after: int = 1
    history: list[HistoryEntry] = field(default_factory=list)
    owner_changes: list[Any] = field(default_factory=list)   # tierwise.work.owners.OwnerChange
    lang: str = "zh"
    labels: dict[str, str] = field(default_factory=dict)   # tier keys and score names
    model_notes: dict[str, str] = field(default_factory=dict)  # why a model metric is null
    clusters: ClusterNote | None = None      # clustering policies: the centres and this row
    playbook: Playbook | None = None         # the service level of the customer's tier
    # Metrics the run did not compute (its policy does not read them), computed for this
    # customer when explained, from the store as it is now, as of the run's date.
    computed_now: list[str] = field(default_factory=list)

    def service_level(self) -> list[str]:
        """The tier's playbook in words: cadence and channels, team, benefits, events."""
        if self.playbook is None:
            return []
        p, lang, zh = self.playbook, self.lang, is_zh(self.lang)
        lines = []
        if p.cadence is not None:
            names = [interaction_label(c, lang) for c in p.channels]
            channels = "、".join(names) if zh else ", ".join(names)
            via = (f"（{channels}）" if zh else f" ({channels})") if channels else ""
            lines.append((f"沟通频率：{p.cadence.describe(lang)}至少一次" if zh
                          else f"Contact {p.cadence.describe(lang)} at least") + via)
        for name, zh_name, en_name in (("owner_role", "服务团队", "Served by"),
                                       ("benefits", "服务内容", "Benefits"),
                                       ("events", "活动邀请", "Events")):
            value = p.text(name, lang)
            if value:
                text = value if isinstance(value, str) else ("；" if zh else "; ").join(value)
                lines.append(f"{zh_name}：{text}" if zh else f"{en_name}: {text}")
        return lines

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("lang")
        data.pop("labels")
        data["reasons"] = self.reasons()
        data["moves_up_text"] = self.moves_up_text()
        return _jsonable(data)

    def reasons(self) -> list[str]:
        return reasons_for(self)

    def moves_up_text(self) -> list[str]:
        return [_step_text(step, self.labels, self.lang) for step in self.moves_up]


@dataclass(frozen=True)
class ClusterNote:
    """How a clustering policy placed the customer: the centres of every tier's cluster (in
    the metrics' own units) and the customer's own values of the same features."""

    features: list[str]
    centres: dict[str, dict[str, float]]     # tier -> feature -> centre value, best first
    values: dict[str, Any]                   # the customer's values of the features
    clustered: bool                          # False: no orders in the window, last tier


def cluster_note(values: Mapping[str, Any], stored: Mapping[str, Any] | None
                 ) -> ClusterNote | None:
    if not stored or "clusters" not in stored:
        return None
    clusters = stored["clusters"]
    features = list(clusters["features"])
    return ClusterNote(
        features=features,
        centres={c["tier"]: c["centre"] for c in clusters["centres"]},
        values={f: values.get(f) for f in features},
        clustered=(values.get("order_count") or 0) > 0,
    )


def snapshot_attributes(columns: Iterable[str], policy: Policy) -> list[str]:
    """Customer attributes among a run snapshot's columns (not metrics, scores or tiers)."""
    derived = METRICS.keys() | NON_METRIC_COLUMNS | set(policy.score_names)
    return [c for c in columns if c not in derived]


def explain_row(row: Mapping[str, Any], policy: Policy, *,
                aggregates: Mapping[tuple[str, str], float | None], as_of: dt.date,
                run_id: int | None, attributes: list[str], lang: str = "zh",
                override: Override | None = None,
                models: Mapping[str, Any] | None = None) -> Explanation:
    """Explain one customer's snapshot row (metrics, scores, computed and effective tier)."""
    types = name_types(policy, attributes)
    values = dict(row)
    checks: list[RuleCheck] = []
    for tier in policy.tiers if policy.clustering is None else ():
        if tier.rule is None:
            checks.append(RuleCheck(tier.key, tier.display(lang), None, True, [], []))
            break
        holds = evaluate(tier.rule, values, types, aggregates)
        checks.append(RuleCheck(tier.key, tier.display(lang), tier.when, holds,
                                conditions(tier.rule, values, types, aggregates),
                                deciding_conditions(tier.rule, values, types, aggregates)))
        if holds:
            break
    computed = str(row["computed_tier"])
    # From the tier the customer has (held by hysteresis or set by an override), not the
    # tier the rules computed: that is the tier a move up starts from.
    moves_up = ([] if policy.clustering is not None else
                _moves_up(policy, str(row["tier"]), values, types, aggregates, lang))
    dimensions = [d.score_name for d in policy.scorecard.dimensions] if policy.scorecard else []
    metric_names = [c for c in row if c not in NON_METRIC_COLUMNS and c not in dimensions
                    and c not in ("score", "customer_id")]
    return Explanation(
        customer_id=str(row["customer_id"]), name=row.get("name"), run_id=run_id,
        as_of=as_of, tier=str(row["tier"]),
        tier_label=policy.tier(str(row["tier"])).display(lang), computed_tier=computed,
        basis=str(row["basis"]), score=row.get("score"),
        dimension_scores={d: row.get(d) for d in dimensions},
        metrics={name: row[name] for name in metric_names},
        checks=checks, moves_up=moves_up, override=override,
        downgrade_streak=int(row.get("downgrade_streak") or 0),
        downgrade_after=policy.hysteresis.downgrade_after, lang=lang,
        labels=display_labels(policy, lang),
        model_notes=model_notes(values, models, lang),
        clusters=cluster_note(values, models) if policy.clustering is not None else None,
        playbook=policy.playbooks.get(str(row["tier"])),
    )


def model_notes(values: Mapping[str, Any], models: Mapping[str, Any] | None,
                lang: str) -> dict[str, str]:
    """Why each model metric the row has is null: the run's model could not be fitted, or
    the customer had bought nothing by the as-of date."""
    zh = is_zh(lang)
    notes: dict[str, str] = {}
    run_notes = (models or {}).get("notes", {})
    for name in MODEL_METRICS:
        if name not in values or values[name] is not None:
            continue
        if name in run_notes:
            notes[name] = (f"模型无法拟合：{run_notes[name]}" if zh
                           else f"the model could not be fitted: {run_notes[name]}")
        else:
            notes[name] = ("截至评级日没有购买记录，模型无从预测" if zh
                           else "no purchase by the as-of date, nothing to predict from")
    return notes


def display_labels(policy: Policy, lang: str) -> dict[str, str]:
    """What people read for each tier key and scorecard score name."""
    labels = {tier.key: tier.display(lang) for tier in policy.tiers}
    if policy.scorecard is not None:
        zh = is_zh(lang)
        for d in policy.scorecard.dimensions:
            name = (d.label or d.label_en) if zh else (d.label_en or d.label)
            labels[d.score_name] = (name or d.key) + ("得分" if zh else " score")
    return labels


def _moves_up(policy: Policy, current: str, values: Mapping[str, Any],
              types: Mapping[str, ValueType],
              aggregates: Mapping[tuple[str, str], float | None], lang: str) -> list[Step]:
    above: list[Tier] = list(policy.tiers[: policy.rank(current)])
    steps = []
    for tier in reversed(above):
        assert tier.rule is not None
        steps.append(Step(tier.key, tier.display(lang),
                          shortfalls(tier.rule, values, types, aggregates)))
    return steps


def reasons_for(explanation: Explanation) -> list[str]:
    """Short reasons in words, as shown in listings and the grading table's 备注 column."""
    lang = explanation.lang
    zh = is_zh(lang)
    lines: list[str] = []
    fired = explanation.checks[-1] if explanation.checks else None
    if explanation.clusters is not None:
        lines.append(_cluster_text(explanation, explanation.clusters))
    elif fired is not None and fired.rule is not None:
        detail = "; ".join(_condition_text(c, explanation.labels, lang)
                           for c in fired.deciding)
        lines.append(f"{fired.label}: {detail}" if detail else f"{fired.label}: {fired.rule}")
    elif fired is not None:
        lines.append(f"{fired.label}: " + ("未满足更高等级的条件" if zh
                                            else "no higher tier's rule holds"))
    if explanation.basis == "hysteresis":
        computed = next((c.label for c in explanation.checks
                         if c.tier == explanation.computed_tier), explanation.computed_tier)
        if zh:
            lines.append(f"本期计算为{computed}，连续{explanation.downgrade_streak}/"
                         f"{explanation.downgrade_after}期后才降级，暂保持{explanation.tier_label}")
        else:
            lines.append(f"computed {computed} for {explanation.downgrade_streak} of "
                         f"{explanation.downgrade_after} runs needed to downgrade; stays "
                         f"{explanation.tier_label}")
    if explanation.basis == "override" and explanation.override is not None:
        o = explanation.override
        until = f" until {o.until.isoformat()}" if o.until else ""
        lines.append(f"{'人工调整' if zh else 'override'} → {explanation.tier_label}"
                     f" ({o.created_by}: {o.reason}{until})")
    if explanation.moves_up:
        lines.append(explanation.moves_up_text()[0])
    return lines


def _cluster_text(explanation: Explanation, note: ClusterNote) -> str:
    """'高价值客户: 聚类中心 年度消费金额 ¥52.1万, …; 本客户 …' (or why not clustered)."""
    zh = is_zh(explanation.lang)
    label = explanation.labels.get(explanation.computed_tier, explanation.computed_tier)
    if not note.clustered:
        return (f"{label}: 窗口内没有订单，未参与聚类，归入最后一级" if zh
                else f"{label}: no orders in the window, not clustered; the last tier")
    centre = note.centres.get(explanation.computed_tier, {})

    def shown(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{metric_label(f, explanation.lang)} "
                         f"{formatting.value(f, values.get(f), explanation.lang)}"
                         for f in note.features)
    if zh:
        return f"{label}: 自动聚类，最接近该类中心（{shown(centre)}）；本客户 {shown(note.values)}"
    return (f"{label}: clustered, nearest to this tier's centre ({shown(centre)}); "
            f"this customer {shown(note.values)}")


_READABLE_OPERATORS = ((">=", "≥"), ("<=", "≤"), ("!=", "≠"), ("<>", "≠"), ("==", "="))


def _condition_text(condition: Condition, labels: Mapping[str, str], lang: str) -> str:
    """'年度消费金额 ≥ 100万 (¥120.00万)': the test in words people read, and the value seen."""
    if condition.name is None:
        return condition.text
    label = labels.get(condition.name) or metric_label(condition.name, lang)
    text = condition.text.replace(condition.name, label, 1)
    for written, shown in _READABLE_OPERATORS:
        text = text.replace(f" {written} ", f" {shown} ")
    return f"{text} ({formatting.value(condition.name, condition.left, lang)})"


def _step_text(step: Step, labels: Mapping[str, str], lang: str) -> str:
    zh = is_zh(lang)
    if step.shortfalls is None:
        return (f"升至{step.label}需满足其规则中的非数值条件" if zh
                else f"reaching {step.label} needs conditions other than a metric threshold")
    parts = []
    for s in step.shortfalls:
        metric = METRICS.get(s.name)
        label = labels.get(s.name) or metric_label(s.name, lang)
        op = dict(_READABLE_OPERATORS).get(s.op, s.op)
        rising = s.op in (">=", ">")
        if metric is not None and metric.money and s.current is not None and rising:
            gap = formatting.money(s.target - s.current, lang)
            parts.append(f"{label}还差{gap}" if zh else f"{gap} more {label.lower()}")
        else:
            now = formatting.value(s.name, s.current, lang)
            goal = formatting.value(s.name, s.target, lang)
            parts.append(f"{label}需{op} {goal}（当前{now}）" if zh
                         else f"{label.lower()} {op} {goal} (now {now})")
    if zh:
        return f"升至{step.label}: " + "；".join(parts)
    return f"needs {' and '.join(parts)} to reach {step.label}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):          # a policy's Playbook, Cadence, Warnings
        return _jsonable(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value
