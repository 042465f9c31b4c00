"""Target lists (目标客户名单): the customers of some tiers, stages and attribute values, with
their contact fields, for marketing and service teams.

Filtering is vectorised pyarrow over the run snapshot; the file is written with the grading
table's writers (tierwise.reports.grading_table), so headers, number formats and the frozen
header look the same.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import STAGES, metric_label, stage_label
from tierwise.errors import TierwiseError
from tierwise.policy.model import Policy
from tierwise.reports.breakdown import STAGE, axis_columns, resolve_column
from tierwise.reports.grading_table import Column, cell, number_format, write_grading_table

CONTACT_FIELDS = ("customer_id", "name", "contact", "owner", "industry", "region", "size")
RESULT_FIELDS = ("tier", "tier_label", "stage", "stage_label")
METRIC_FIELDS = ("annual_spend", "profit", "last_order_date", "recency_days")
RESULT_HEADERS = {"tier_label": ("等级", "Tier"), "stage_label": ("生命周期阶段", "Stage")}


def _suggest(wanted: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(wanted, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else "."


def resolve_tier(name: str, policy: Policy) -> str:
    """A tier key from its key or label in either language (vip, VIP客户, VIP)."""
    wanted = name.strip().casefold()
    for tier in policy.tiers:
        if wanted in {tier.key.casefold(), (tier.label or "").casefold(),
                      (tier.label_en or "").casefold()}:
            return tier.key
    raise TierwiseError(f"unknown tier {name!r}{_suggest(name, policy.keys)} Tiers: "
                        + ", ".join(policy.keys))


def resolve_stage(name: str) -> str:
    """A stage key from its key (at-risk = at_risk) or label (风险, At risk)."""
    wanted = name.strip().casefold().replace("-", "_").replace(" ", "_")
    for key, stage in STAGES.items():
        if wanted in {key, stage.zh, stage.en.casefold().replace(" ", "_")}:
            return key
    choices = [f"{k} ({s.zh})" for k, s in STAGES.items()]
    raise TierwiseError(f"unknown stage {name!r}{_suggest(wanted, list(STAGES))} Stages: "
                        + ", ".join(choices))


def target_list(snapshot: pa.Table, policy: Policy, *, tiers: Iterable[str] = (),
                stages: Iterable[str] = (),
                filters: Mapping[str, Iterable[str]] | None = None,
                lang: str = "zh") -> pa.Table:
    """The snapshot's customers in any of `tiers` and any of `stages` whose attributes take
    one of the given values (filters: attribute → values; "" matches a blank value), with
    contact fields, tier and stage (keys and labels) and the spend metrics; best tier first,
    then by annual spend."""
    tier_keys = [resolve_tier(t, policy) for t in tiers]
    stage_keys = [resolve_stage(s) for s in stages]
    available = axis_columns(snapshot, policy)
    conditions: dict[str, list[str]] = {}
    for name, values in (filters or {}).items():
        if name.strip().casefold() in ("tier", "等级"):
            tier_keys += [resolve_tier(v, policy) for v in values]
            continue
        column = resolve_column(name, available)
        if column == STAGE:
            stage_keys += [resolve_stage(v) for v in values]
            continue
        conditions.setdefault(column, []).extend(str(v).strip() for v in values)

    mask = pa.array([True] * snapshot.num_rows, pa.bool_())
    if tier_keys:
        mask = pc.and_(mask, pc.is_in(snapshot["tier"], pa.array(tier_keys, pa.string())))
    if stage_keys:
        mask = pc.and_kleene(mask, pc.fill_null(
            pc.is_in(snapshot[STAGE], pa.array(stage_keys, pa.string())), False))
    for column, values in conditions.items():
        text = pc.cast(snapshot[column], pa.string())
        wanted = [v for v in values if v]
        match = pc.is_in(text, pa.array(wanted, pa.string()))
        if "" in values:
            match = pc.or_(pc.fill_null(match, False), pc.is_null(text))
        mask = pc.and_(mask, pc.fill_null(match, False))
    chosen = snapshot.filter(mask)

    labels = {t.key: t.display(lang) for t in policy.tiers}
    tier_column = chosen["tier"].to_pylist()
    stage_column = (chosen[STAGE].to_pylist() if STAGE in chosen.column_names
                    else [None] * chosen.num_rows)
    extra = [c for c in conditions if c not in CONTACT_FIELDS]
    columns: dict[str, Any] = {}
    for name in (*CONTACT_FIELDS, *extra):
        if name in chosen.column_names:
            columns[name] = chosen[name]
    columns["tier"] = chosen["tier"]
    columns["tier_label"] = pa.array([labels.get(t, t) for t in tier_column], pa.string())
    columns["stage"] = pa.array(stage_column, pa.string())
    columns["stage_label"] = pa.array(
        [stage_label(s, lang) if s else None for s in stage_column], pa.string())
    for name in METRIC_FIELDS:
        if name in chosen.column_names:
            columns[name] = chosen[name]
    result = pa.table(columns)
    rank = pa.array([policy.rank(t) if t in labels else len(labels) for t in tier_column],
                    pa.int64())
    order = pc.sort_indices(
        result.append_column("__rank", rank),
        sort_keys=[("__rank", "ascending"), ("annual_spend", "descending"),
                   ("customer_id", "ascending")]
        if "annual_spend" in result.column_names else
        [("__rank", "ascending"), ("customer_id", "ascending")])
    return result.take(order)


def target_columns(table: pa.Table, lang: str) -> list[Column]:
    """The file's columns: contact fields (group 0), tier and stage (group 2), metrics
    (group 1) — the grading table's groups and number formats."""
    code = "zh" if is_zh(lang) else "en"
    names = table.column_names
    cols = [Column(n, metric_label(n, code), 0, width=30 if n == "name" else 14)
            for n in names if n not in RESULT_FIELDS and n not in METRIC_FIELDS]
    cols += [Column(n, RESULT_HEADERS[n][0 if code == "zh" else 1], 2, width=12)
             for n in ("tier_label", "stage_label")]
    cols += [Column(n, metric_label(n, code), 1, number_format(n), 14)
             for n in METRIC_FIELDS if n in names]
    return cols


def target_rows(table: pa.Table, columns: Sequence[Column]) -> Iterable[list[Any]]:
    for row in table.to_pylist():
        yield [cell(row.get(c.name), c) for c in columns]


def write_target_list(path: str | Path, table: pa.Table, *, lang: str,
                      title: str) -> int:
    """Write a target list to .xlsx or .csv; returns the number of customers."""
    columns = target_columns(table, lang)
    return write_grading_table(Path(path), columns, target_rows(table, columns),
                               title=title, lang=lang)
