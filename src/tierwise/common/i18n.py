"""User-facing words in zh-CN and en, kept in one table so both languages stay in step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MESSAGES: dict[str, tuple[str, str]] = {
    "run_heading": ("第{run}次分级 · 截至 {as_of}", "run {run} · as of {as_of}"),
    "tier": ("等级", "Tier"),
    "reasons": ("说明", "Reasons"),
    "score": ("综合得分", "score"),
    "basis": ("依据", "basis"),
    "basis.policy": ("分级规则", "policy rule"),
    "basis.hysteresis": ("降级缓冲", "hysteresis (downgrade held)"),
    "basis.override": ("人工调整", "manual override"),
    "rules": ("规则检查（从高到低）", "Rules, best tier first"),
    "everyone_else": ("其余客户", "everyone else"),
    "dimension_scores": ("维度得分", "Dimension scores"),
    "metrics": ("指标", "Metrics"),
    "moves_up": ("如何升级", "What would move it up"),
    "computed_now": ("查看时计算（本次分级未用到）", "computed now (the run did not use it)"),
    "override": ("人工调整 #{id}: {tier}，{by} 于 {at} 设置 — {reason}",
                 "Override #{id}: {tier} by {by} at {at} — {reason}"),
    "until": ("（有效至 {until}）", " (until {until})"),
    "history": ("等级历史", "History"),
    "computed": ("（规则计算为{tier}，{basis}）", " (computed {tier}, {basis})"),
}


def is_zh(lang: str) -> bool:
    return lang.startswith("zh")


def phrase(table: Mapping[str, tuple[str, str]], key: str, lang: str, **values: Any) -> str:
    """A (zh, en) pair of a phrase table in the language, with its {placeholders} filled;
    an unknown key reads as itself. Every module with words of its own uses this."""
    zh, en = table.get(key, (key, key))
    text = zh if is_zh(lang) else en
    return text.format(**values) if values else text


def t(key: str, lang: str, **values: Any) -> str:
    return phrase(MESSAGES, key, lang, **values)
