"""The policy: tiers best first with rules, an optional weighted scorecard, hysteresis.

Pydantic validates the structure; `tierwise.policy.loading` turns its errors into messages
that name the YAML line and field.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.common.vocabulary import METRICS, MODEL_METRICS
from tierwise.policy.expr import Rule, parse_rule
from tierwise.policy.syntax import number_literal

_KEY = r"^[A-Za-z0-9_\-\u4e00-\u9fff]+$"


def parse_quantity(value: Any) -> float:
    """A number as users write it in policies: 10万, 1.5亿, 80%, 1_000_000."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    sign = -1.0 if text.startswith("-") else 1.0
    try:
        return sign * number_literal(text[1:] if text.startswith(("-", "+")) else text)
    except ValueError:
        message = f"expected a number such as 100000, 10万 or 80%, got {value!r}"
        raise ValueError(message) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    key: str = Field(pattern=_KEY)
    label: str = ""
    label_en: str = ""
    when: str | None = None
    description: str = ""
    target_share: tuple[float, float] | None = None

    @field_validator("target_share", mode="before")
    @classmethod
    def _share_range(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and ":" in value:
            value = value.split(":")
        low, high = (parse_quantity(v) for v in value)
        if not 0 <= low <= high <= 1:
            raise ValueError("target_share must be [low, high] fractions with low <= high")
        return (low, high)

    @cached_property
    def rule(self) -> Rule | None:
        return parse_rule(self.when) if self.when else None

    def display(self, lang: str = "zh") -> str:
        if lang.startswith("en"):
            return self.label_en or self.label or self.key
        return self.label or self.label_en or self.key


class Bin(_Strict):
    at_least: float
    score: float = Field(ge=0, le=100)


class Factor(_Strict):
    """One metric scored 0–100, by bins, a category map, a linear range or percentile rank."""

    metric: str
    weight: float = Field(default=1.0, gt=0)
    bins: tuple[Bin, ...] | None = None
    map: dict[str, float] | None = None
    linear: tuple[float, float] | None = None
    percentile: bool = False
    higher_is_better: bool = True  # percentile only; bins and linear say it by their numbers
    missing: float = Field(default=0.0, ge=0, le=100)

    @field_validator("bins", mode="before")
    @classmethod
    def _bins(cls, value: Any) -> Any:
        if value is None:
            return None
        pairs = value.items() if isinstance(value, dict) else value
        bins = []
        for pair in pairs:
            if isinstance(pair, dict):
                bins.append(pair)
                continue
            threshold, score = pair
            bins.append({"at_least": parse_quantity(threshold), "score": parse_quantity(score)})
        return bins

    @field_validator("linear", mode="before")
    @classmethod
    def _linear(cls, value: Any) -> Any:
        if value is None:
            return None
        low, high = (parse_quantity(v) for v in value)
        if low == high:
            raise ValueError("linear needs two different values [worst, best]")
        return (low, high)

    @model_validator(mode="after")
    def _one_method(self) -> Factor:
        methods = [
            self.bins is not None,
            self.map is not None,
            self.linear is not None,
            self.percentile,
        ]
        if sum(methods) != 1:
            raise ValueError("give exactly one of bins, map, linear or percentile: true")
        if self.bins is not None:
            thresholds = [b.at_least for b in self.bins]
            if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
                raise ValueError("bins must be in increasing order of threshold")
        return self


class Dimension(_Strict):
    key: str = Field(pattern=_KEY)
    label: str = ""
    label_en: str = ""
    weight: float = Field(default=1.0, gt=0)
    factors: tuple[Factor, ...] = Field(min_length=1)

    @property
    def score_name(self) -> str:
        return f"{self.key}_score"


class Scorecard(_Strict):
    dimensions: tuple[Dimension, ...] = Field(min_length=1)


class Hysteresis(_Strict):
    downgrade_after: int = Field(default=1, ge=1)


class Models(_Strict):
    """Settings of the customer-base models behind p_alive, expected_orders_12m,
    expected_order_value and predicted_clv (BG/NBD and Gamma-Gamma, see tierwise.metrics.models)."""

    clv_months: int = Field(default=12, ge=1, le=120)   # horizon of predicted_clv
    discount_rate: float = Field(default=0.10, ge=0, le=10)  # per year, e.g. 10%
    margin: float = Field(default=1.0, gt=0, le=10)     # 1: CLV in revenue; 30%: in profit
    # The time unit of the histories the models are fitted on. Daily histories are almost
    # as many as the customers on a large book; weekly ones are at most about W³/6 for W
    # weeks of data however many customers there are (the fit is exact on them either way),
    # at the price of counting orders in the same week once.
    period: Literal["day", "week"] = "day"
    # What counts as a purchase: orders with a positive amount (refunds and ¥0 rows are not;
    # the default), or every order row, as the published BG/NBD results on CDNOW count them
    # (a customer whose only order is $0 then has one purchase and P(alive) 1).
    purchases: Literal["positive", "all"] = "positive"

    @property
    def period_days(self) -> int:
        return 7 if self.period == "week" else 1

    @field_validator("discount_rate", "margin", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        return parse_quantity(value)


# Counts, money and day/year spans are skewed: log1p (signed, for refunds) before standardising.
# Ratios, scores and averages of scales stay linear. `Clustering.log` overrides this.
_LOG_BY_DEFAULT = frozenset({
    "annual_spend", "order_count", "avg_order_value", "profit", "recency_days",
    "lifetime_spend", "tenure_years", "active_months", "prior_spend", "complaints_12m",
    "interactions_12m", "expected_orders_12m", "expected_order_value", "predicted_clv",
    "overdue_amount", "overdue_days", "receivable_amount",
})


def _numeric_metric(name: str) -> str:
    if name in METRICS and METRICS[name].type == "number":
        return name
    numeric = [n for n, m in METRICS.items() if m.type == "number"]
    close = difflib.get_close_matches(name, numeric, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown numeric metric {name!r}{hint}")


class Clustering(_Strict):
    """Automatic grading: k-means on standardised metrics, one cluster per tier.

    Clusters are ranked best first by the mean of `value` among their members (higher is
    better) and take the tiers in order; see tierwise.grading.clustering.
    """

    method: Literal["kmeans"] = "kmeans"
    features: tuple[str, ...] = Field(
        default=("recency_days", "order_count", "annual_spend", "margin"), min_length=1)
    value: str = "annual_spend"
    seed: int = 0
    log: tuple[str, ...] | None = None  # None: the count, money and day features

    @field_validator("features", "log")
    @classmethod
    def _metric_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        duplicates = sorted({n for n in value if value.count(n) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return tuple(_numeric_metric(n) for n in value)

    @field_validator("value")
    @classmethod
    def _value_metric(cls, value: str) -> str:
        return _numeric_metric(value)

    @model_validator(mode="after")
    def _log_subset(self) -> Clustering:
        stray = [n for n in self.log or () if n not in self.features]
        if stray:
            raise ValueError(f"log lists names that are not features: {', '.join(stray)}")
        return self

    @property
    def log_features(self) -> tuple[str, ...]:
        """The features that are log-transformed before standardising."""
        if self.log is not None:
            return self.log
        return tuple(n for n in self.features if n in _LOG_BY_DEFAULT)


_CADENCE_WORDS = {"每周": (1, "week"), "每两周": (2, "week"), "每月": (1, "month"),
                  "每季度": (3, "month"), "每半年": (6, "month"), "每年": (12, "month")}
_CADENCE_UNITS = {"day": "day", "days": "day", "天": "day", "week": "week", "weeks": "week",
                  "周": "week", "month": "month", "months": "month", "个月": "month",
                  "月": "month", "quarter": "quarter", "quarters": "quarter", "季度": "quarter",
                  "year": "year", "years": "year", "年": "year"}


class Cadence(_Strict):
    """How often a tier's customers must be contacted: every `count` `unit`s."""

    count: int = Field(ge=1)
    unit: Literal["day", "week", "month"]

    @classmethod
    def parse(cls, value: Any) -> Cadence:
        """'1 month', '3 months', '2 weeks', '30 days', '1 quarter', '每月', '每季度', '3个月'."""
        text = str(value).strip().lower()
        if text in _CADENCE_WORDS:
            count, unit = _CADENCE_WORDS[text]
            return cls(count=count, unit=unit)       # type: ignore[arg-type]
        match = re.fullmatch(r"(?:every\s+|每)?(\d+)\s*([a-z]+|[\u4e00-\u9fff]+)", text)
        if match is None or match.group(2) not in _CADENCE_UNITS:
            raise ValueError(f"a cadence is like '1 month', '2 weeks', '30 days' or '每季度', "
                             f"not {value!r}")
        count, unit = int(match.group(1)), _CADENCE_UNITS[match.group(2)]
        if unit == "quarter":
            count, unit = count * 3, "month"
        if unit == "year":
            count, unit = count * 12, "month"
        return cls(count=count, unit=unit)   # type: ignore[arg-type]

    def describe(self, lang: str = "zh") -> str:
        if lang.startswith("zh"):
            words = {(1, "month"): "每月", (3, "month"): "每季度", (6, "month"): "每半年",
                     (12, "month"): "每年", (1, "week"): "每周"}
            unit = {"day": "天", "week": "周", "month": "个月"}[self.unit]
            return words.get((self.count, self.unit), f"每{self.count}{unit}")
        return f"every {self.unit}" if self.count == 1 else f"every {self.count} {self.unit}s"


class Warnings(_Strict):
    """When a run raises warning and opportunity tasks (tierwise.work.tasks). The policy's
    ``warnings`` block sets them for every tier; a playbook's ``warnings`` overrides the
    fields it names for its tier. ``null`` switches a test off."""

    contact_ahead_days: int = Field(default=7, ge=0)    # a contact task shows this early
    churn_gap_multiple: float | None = Field(default=3.0, gt=0)   # recency > k × median gap
    churn_frequency_drop: float | None = Field(default=0.5, gt=0, le=1)  # orders down 50%+
    churn_p_alive_below: float | None = Field(default=0.5, gt=0, le=1)   # with the models
    complaint_days: int | None = Field(default=30, ge=1)   # complaints needing a follow-up
    credit_overdue_days: int | None = Field(default=30, ge=0)   # overdue longer than this
    credit_overdue_amount: float = Field(default=0.0, ge=0)     # and by more than this
    upgrade_within: float | None = Field(default=0.1, gt=0, lt=1)  # of the next tier's bar

    @field_validator("churn_gap_multiple", "churn_frequency_drop", "churn_p_alive_below",
                     "credit_overdue_amount", "upgrade_within", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        return None if value is None else parse_quantity(value)


class Playbook(_Strict):
    """A tier's service level (服务标准): contact cadence and channels, who serves the
    account, and what the customer gets. Text fields have a Chinese and an English form."""

    cadence: Cadence | None = None            # contact at least this often
    channels: tuple[str, ...] = ()            # e.g. 拜访, 视频会议, 电话, 邮件
    owner_role: str = ""                      # e.g. 专属服务团队
    owner_role_en: str = ""
    benefits: tuple[str, ...] = ()
    benefits_en: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    events_en: tuple[str, ...] = ()
    warnings: Warnings | None = None          # this tier's thresholds, where they differ

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> Any:
        # Written as people say them (拜访, 视频会议, phone); kept as the canonical
        # interaction types, so a logged 拜访 counts as contact by the 'visit' channel.
        from tierwise.data.ingest.parsing import INTERACTION_TYPES, canonical_interaction_type

        channels = []
        for channel in value or ():
            kind = canonical_interaction_type(str(channel))
            if kind is None:
                raise ValueError(f"unknown channel {channel!r}; use one of "
                                 + ", ".join(sorted(INTERACTION_TYPES)) + " (or 拜访, 电话, …)")
            channels.append(kind)
        return tuple(channels)

    @field_validator("cadence", mode="before")
    @classmethod
    def _cadence(cls, value: Any) -> Any:
        return None if value is None or isinstance(value, dict | Cadence) else Cadence.parse(value)

    def text(self, field: str, lang: str = "zh") -> Any:
        """A text field in the language, falling back to the other one."""
        zh, en = getattr(self, field), getattr(self, f"{field}_en")
        return (en or zh) if lang.startswith("en") else (zh or en)


class Lifecycle(_Strict):
    """Thresholds of the lifecycle stages (tierwise.grading.lifecycle has the order of tests)."""

    churned_after_days: int = Field(default=365, ge=1)
    at_risk_after_days: int = Field(default=120, ge=1)
    at_risk_drop: float = Field(default=0.5, gt=0, le=1)       # spend down by 50% or more
    new_within_days: int = Field(default=90, ge=0)
    growing_growth: float = Field(default=0.2, gt=0)          # spend up by 20% or more
    loyal_after_years: float = Field(default=2.0, ge=0)
    loyal_active_months: int = Field(default=6, ge=0, le=120)

    @field_validator("at_risk_drop", "growing_growth", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        return parse_quantity(value)

    @model_validator(mode="after")
    def _order(self) -> Lifecycle:
        if self.at_risk_after_days >= self.churned_after_days:
            raise ValueError("at_risk_after_days must be less than churned_after_days")
        return self


class Policy(_Strict):
    name: str
    description: str = ""
    window_months: int = Field(default=12, ge=1, le=120)
    tiers: tuple[Tier, ...] = Field(min_length=1)
    scorecard: Scorecard | None = None
    hysteresis: Hysteresis = Hysteresis()
    metrics_shown: tuple[str, ...] = ()    # shown in exports and computed; [all]: every metric
    lifecycle: Lifecycle = Lifecycle()
    playbooks: dict[str, Playbook] = Field(default_factory=dict)   # by tier key
    warnings: Warnings = Warnings()
    models: Models | None = None   # set to compute the model metrics even if no rule uses them
    clustering: Clustering | None = None   # set: tiers come from k-means, not from rules

    @field_validator("metrics_shown", mode="before")
    @classmethod
    def _all_metrics(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _tier_rules(self) -> Policy:
        keys = [t.key for t in self.tiers]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"tier keys must be unique: {', '.join(duplicates)}")
        unknown = sorted(set(self.playbooks) - set(keys))
        if unknown:
            raise ValueError(f"playbooks name tiers the policy does not have: "
                             f"{', '.join(unknown)} (tiers: {', '.join(keys)})")
        if self.clustering is not None:
            return self._cluster_tiers()
        if self.tiers[-1].when is not None:
            raise ValueError("the last tier takes everyone else: remove its 'when'")
        for tier in self.tiers[:-1]:
            if tier.when is None:
                raise ValueError(f"tier {tier.key!r} needs a 'when' rule (only the last has none)")
        return self

    def _cluster_tiers(self) -> Policy:
        ruled = [t.key for t in self.tiers if t.when is not None]
        if ruled:
            raise ValueError("with clustering the clusters decide the tiers: remove 'when' "
                             f"from {', '.join(ruled)}")
        if len(self.tiers) < 2:
            raise ValueError("clustering needs at least 2 tiers (one per cluster)")
        return self

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.tiers]

    def tier(self, key: str) -> Tier:
        for tier in self.tiers:
            if tier.key == key:
                return tier
        raise KeyError(key)

    def warnings_for(self, key: str) -> Warnings:
        """The warning thresholds of one tier: the policy's, with its playbook's overrides."""
        playbook = self.playbooks.get(key)
        own = playbook.warnings if playbook is not None else None
        if own is None:
            return self.warnings
        return self.warnings.model_copy(
            update={name: getattr(own, name) for name in own.model_fields_set})

    def rank(self, key: str) -> int:
        """0 for the best tier."""
        return self.keys.index(key)

    @cached_property
    def hash(self) -> str:
        """Content hash of the policy as understood (comments and layout do not count)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def score_names(self) -> list[str]:
        if self.scorecard is None:
            return []
        return ["score", *(d.score_name for d in self.scorecard.dimensions)]

    def used_metrics(self) -> list[str]:
        """Metric and attribute names the policy reads, in first-use order (for exports)."""
        names: list[str] = list(self.metrics_shown)
        if "all" in names:       # the whole vocabulary (the models only with a models block)
            at = names.index("all")
            names[at:at + 1] = [m for m in METRICS if m not in MODEL_METRICS]
        for tier in self.tiers:
            if tier.rule is not None:
                text = tier.rule.text
                names.extend(sorted(tier.rule.names, key=lambda n: text.find(n) % (len(text) + 1)))
        if self.scorecard is not None:
            names.extend(f.metric for d in self.scorecard.dimensions for f in d.factors)
        if self.clustering is not None:
            names.extend([*self.clustering.features, self.clustering.value])
        if self.models is not None:      # asked for explicitly: shown even if no rule reads them
            names.extend(MODEL_METRICS)
        seen: dict[str, None] = {}
        for name in names:
            seen.setdefault(name, None)
        return list(seen)
