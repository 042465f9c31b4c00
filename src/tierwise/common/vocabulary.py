"""The public vocabulary of policies: metric names, their types and meanings (zh-CN / en).

Rules, explain, exports and the web pages all read names and labels from here, so a metric
is described once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tierwise.common.i18n import is_zh

ValueType = Literal["number", "string", "date", "boolean"]


@dataclass(frozen=True)
class Metric:
    name: str
    type: ValueType
    zh: str
    en: str
    money: bool = False
    unit: str = ""

    def label(self, lang: str = "zh") -> str:
        return self.zh if is_zh(lang) else self.en


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("annual_spend", "number", "年度消费金额", "Annual spend", money=True),
        Metric("order_count", "number", "购买次数", "Orders"),
        Metric("avg_order_value", "number", "单次消费金额", "Average order value", money=True),
        Metric("profit", "number", "利润", "Profit", money=True),
        Metric("margin", "number", "利润率", "Margin", unit="%"),
        Metric("recency_days", "number", "距最近购买天数", "Days since last order", unit="days"),
        Metric("lifetime_spend", "number", "累计消费金额", "Lifetime spend", money=True),
        Metric("first_order_date", "date", "首次购买日期", "First order date"),
        Metric("last_order_date", "date", "最近购买日期", "Last order date"),
        Metric("tenure_years", "number", "合作年限", "Years as customer", unit="years"),
        Metric("active_months", "number", "活跃月数", "Active months"),
        Metric("spend_growth", "number", "消费增长率", "Spend growth", unit="%"),
        Metric("prior_spend", "number", "上期消费金额", "Prior-window spend", money=True),
        Metric("prior_order_count", "number", "上期购买次数", "Prior-window orders"),
        Metric("order_gap_days", "number", "购买间隔中位数", "Median days between orders",
               unit="days"),
        Metric("complaints_12m", "number", "投诉次数", "Complaints"),
        Metric("interactions_12m", "number", "互动次数", "Interactions"),
        Metric("satisfaction_avg", "number", "平均满意度", "Average satisfaction"),
        Metric("r_score", "number", "R分(最近购买)", "R score (recency)"),
        Metric("f_score", "number", "F分(购买频次)", "F score (frequency)"),
        Metric("m_score", "number", "M分(消费金额)", "M score (monetary)"),
        Metric(
            "spend_share_above",
            "number",
            "排名更高客户的消费占比",
            "Share of spend held by higher-ranked customers",
            unit="%",
        ),
        # Receivables as of the date (payments imports); NULL when no invoices were imported.
        Metric("overdue_amount", "number", "逾期金额", "Overdue amount", money=True),
        Metric("overdue_days", "number", "最长逾期天数", "Days overdue", unit="days"),
        Metric("receivable_amount", "number", "应收余额", "Receivable", money=True),
        Metric("previous_order_date", "date", "上一次购买日期", "Order date before the last"),
        # Lifecycle stage (tierwise.grading.lifecycle): potential, new, growing, loyal, stable,
        # at_risk, churned, reactivated.
        Metric("stage", "string", "生命周期阶段", "Lifecycle stage"),
        # Customer-base models (tierwise.metrics.models): computed only when a policy uses them.
        Metric("p_alive", "number", "仍活跃概率", "P(alive)", unit="%"),
        Metric("expected_orders_12m", "number", "未来12个月预计购买次数",
               "Expected orders, next 12 months"),
        Metric("expected_order_value", "number", "预计单次消费金额", "Expected order value",
               money=True),
        Metric("predicted_clv", "number", "预测客户终身价值", "Predicted CLV", money=True),
    ]
}

# Metrics that come from the customer-base models rather than from plain aggregates.
MODEL_METRICS = ("p_alive", "expected_orders_12m", "expected_order_value", "predicted_clv")

# Canonical customer fields: also usable in rules by name.
CUSTOMER_FIELDS: dict[str, tuple[ValueType, str, str]] = {
    "customer_id": ("string", "客户编号", "Customer ID"),
    "name": ("string", "客户名称", "Name"),
    "contact": ("string", "联系方式", "Contact"),
    "industry": ("string", "行业", "Industry"),
    "region": ("string", "地区", "Region"),
    "size": ("string", "客户规模", "Size"),
    "since": ("date", "合作开始日期", "Customer since"),
    "owner": ("string", "客户经理", "Account manager"),
}

# Interaction types (canonical; imports map 拜访/电话/… onto them) as people read them.
INTERACTION_LABELS: dict[str, tuple[str, str]] = {
    "visit": ("拜访", "visit"), "video": ("视频会议", "video call"), "call": ("电话", "call"),
    "email": ("邮件", "e-mail"), "event": ("活动", "event"), "survey": ("回访", "survey"),
    "complaint": ("投诉", "complaint"),
}


def interaction_label(kind: str, lang: str = "zh") -> str:
    zh, en = INTERACTION_LABELS.get(kind, (kind, kind))
    return zh if is_zh(lang) else en


# Aggregate functions a rule may apply to a metric; evaluated over all graded customers.
AGGREGATES = ("mean", "median", "min", "max")


def metric_label(name: str, lang: str = "zh") -> str:
    """A human label for a metric, field, score or attribute name."""
    if name in METRICS:
        return METRICS[name].label(lang)
    if name in CUSTOMER_FIELDS:
        _, zh, en = CUSTOMER_FIELDS[name]
        return zh if is_zh(lang) else en
    if name == "score":
        return "综合得分" if is_zh(lang) else "Score"
    return name


@dataclass(frozen=True)
class Stage:
    key: str
    zh: str
    en: str

    def label(self, lang: str = "zh") -> str:
        return self.zh if is_zh(lang) else self.en


STAGES: dict[str, Stage] = {s.key: s for s in [
    Stage("potential", "潜在", "Potential"),
    Stage("churned", "流失", "Churned"),
    Stage("reactivated", "回流", "Reactivated"),
    Stage("new", "新客", "New"),
    Stage("at_risk", "风险", "At risk"),
    Stage("growing", "成长", "Growing"),
    Stage("loyal", "忠诚", "Loyal"),
    Stage("stable", "稳定", "Stable"),
]}


def stage_label(key: str | None, lang: str = "zh") -> str:
    return STAGES[key].label(lang) if key in STAGES else (key or "—")
