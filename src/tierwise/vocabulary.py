"""The public vocabulary of policies: metric names, their types and meanings (zh-CN / en).

Rules, explain, exports and the web pages all read names and labels from here, so a metric
is described once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tierwise.i18n import is_zh

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
        # Customer-base models (tierwise.models): computed only when a policy uses them.
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
