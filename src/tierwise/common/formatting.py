"""How numbers and values are shown to people: ¥ and 万/亿 in Chinese, plain grouping in English."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import METRICS, stage_label


def money(value: float | None, lang: str = "zh") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if is_zh(lang):
        if amount >= 1e8:
            return f"{sign}¥{amount / 1e8:,.2f}亿"
        if amount >= 1e4:
            return f"{sign}¥{amount / 1e4:,.2f}万"
    return f"{sign}¥{amount:,.2f}"


def share(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.1f}%"


def value(name: str, raw: Any, lang: str = "zh") -> str:
    """A metric or attribute value as a person reads it."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return "—"
    metric = METRICS.get(name)
    if name == "stage":
        return stage_label(str(raw), lang)
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if metric is not None and metric.money:
        return money(float(raw), lang)
    if metric is not None and metric.unit == "%":
        return share(float(raw))
    if isinstance(raw, float):
        # two decimals at most, so that a threshold like mean(r_score) = 2.968 is not shown
        # as 3.0, which a score of 3 would seem to miss
        return f"{raw:,.2f}".rstrip("0").rstrip(".")
    return str(raw)
