"""Classification axes (分类 / 分层 / 分级): any customer attribute or the lifecycle stage
crossed with the tiers — customers, revenue (annual_spend) and profit per cell.

Computed with one pyarrow ``group_by`` over the run snapshot, so a million customers take
well under a second; only the (few) cells are handled in Python.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import STAGES, metric_label, stage_label
from tierwise.errors import TierwiseError
from tierwise.grading.explanation import snapshot_attributes
from tierwise.policy.model import Policy

STAGE = "stage"


def blank_label(lang: str) -> str:
    """How a missing attribute value is shown."""
    return "（未填）" if is_zh(lang) else "(blank)"


def axis_columns(snapshot: pa.Table | Sequence[str], policy: Policy) -> list[str]:
    """Columns a snapshot can be broken down or filtered by: its customer attributes and
    the lifecycle stage (never the customer id, metrics, scores or tiers)."""
    columns = snapshot.column_names if isinstance(snapshot, pa.Table) else list(snapshot)
    found = [c for c in snapshot_attributes(columns, policy) if c != "customer_id"]
    if STAGE in columns:
        found.append(STAGE)
    return found


def resolve_column(name: str, available: Sequence[str], *, what: str = "attribute") -> str:
    """``name`` as one of ``available``: the column name itself, or its label in either
    language (行业 → industry, 阶段 → stage). Anything else is an error that lists the
    available names with a did-you-mean."""
    wanted = name.strip()
    if wanted in available:
        return wanted
    folded = wanted.casefold()
    for column in available:
        labels = {column.casefold(), metric_label(column, "zh").casefold(),
                  metric_label(column, "en").casefold()}
        if column == STAGE:
            labels |= {"阶段", "生命周期", "lifecycle"}
        if folded in labels:
            return column
    close = difflib.get_close_matches(wanted, list(available), n=1, cutoff=0.6)
    hint = f" — did you mean {close[0]!r}?" if close else "."
    raise TierwiseError(f"unknown {what} {name!r}{hint} Available: "
                        + ", ".join(available))


@dataclass(frozen=True)
class Cell:
    key: tuple[str | None, ...]        # the by-values (None = blank), in `by` order
    tier: str
    customers: int
    revenue: float
    profit: float


@dataclass
class Breakdown:
    """Per (by-values…, tier) cell: customers, revenue and profit, with shares of the total."""

    by: list[str]
    tiers: list[tuple[str, str]]       # (key, label), best tier first
    rows: list[tuple[str | None, ...]]  # the by-value combinations present, in display order
    cells: dict[tuple[tuple[str | None, ...], str], Cell]
    lang: str = "zh"
    run_id: int | None = None
    as_of: str | None = None

    # -- reading ----------------------------------------------------------------------
    def cell(self, key: tuple[str | None, ...], tier: str) -> Cell:
        return self.cells.get((key, tier)) or Cell(key, tier, 0, 0.0, 0.0)

    @cached_property
    def total(self) -> Cell:
        cells = self.cells.values()
        return Cell((), "", sum(c.customers for c in cells), sum(c.revenue for c in cells),
                    sum(c.profit for c in cells))

    def row_total(self, key: tuple[str | None, ...]) -> Cell:
        cells = [self.cell(key, t) for t, _ in self.tiers]
        return Cell(key, "", sum(c.customers for c in cells), sum(c.revenue for c in cells),
                    sum(c.profit for c in cells))

    def tier_total(self, tier: str) -> Cell:
        cells = [self.cell(k, tier) for k in self.rows]
        return Cell((), tier, sum(c.customers for c in cells), sum(c.revenue for c in cells),
                    sum(c.profit for c in cells))

    def shares(self, cell: Cell) -> dict[str, float | None]:
        total = self.total
        return {"customer_share": _ratio(cell.customers, total.customers),
                "revenue_share": _ratio(cell.revenue, total.revenue),
                "profit_share": _ratio(cell.profit, total.profit)}

    def axis_label(self, column: str) -> str:
        return metric_label(column, self.lang)

    def value_label(self, column: str, value: str | None) -> str:
        if value is None:
            return blank_label(self.lang)
        return stage_label(value, self.lang) if column == STAGE else value

    def key_labels(self, key: tuple[str | None, ...]) -> list[str]:
        return [self.value_label(c, v) for c, v in zip(self.by, key, strict=True)]

    # -- output -----------------------------------------------------------------------
    def cell_json(self, cell: Cell, label: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if cell.key:
            data["key"] = dict(zip(self.by, cell.key, strict=True))
            data["label"] = dict(zip(self.by, self.key_labels(cell.key), strict=True))
        if cell.tier:
            data["tier"] = cell.tier
            data["tier_label"] = label or dict(self.tiers).get(cell.tier, cell.tier)
        data.update({"customers": cell.customers, "revenue": round(cell.revenue, 2),
                     "profit": round(cell.profit, 2)})
        data.update({k: None if v is None else round(v, 6)
                     for k, v in self.shares(cell).items()})
        return data

    def flat_cells(self) -> list[dict[str, Any]]:
        """Every cell of the grid (rows present × tiers), zero cells included."""
        return [self.cell_json(self.cell(key, tier), label)
                for key in self.rows for tier, label in self.tiers]

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "run_id": self.run_id, "as_of": self.as_of, "by": self.by,
            "tiers": [{"tier": k, "label": label} for k, label in self.tiers],
            "cells": self.flat_cells(),
            "rows": [self.cell_json(self.row_total(k)) for k in self.rows],
            "tier_totals": [self.cell_json(self.tier_total(t), label)
                            for t, label in self.tiers],
            "total": {"customers": total.customers, "revenue": round(total.revenue, 2),
                      "profit": round(total.profit, 2)},
        }


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _number(value: Any) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    return float(value)


def breakdown(snapshot: pa.Table, policy: Policy, by: Sequence[str], lang: str = "zh",
              *, run_id: int | None = None, as_of: str | None = None) -> Breakdown:
    """Cross the `by` columns (attributes or ``stage``) with the tiers of a run snapshot."""
    if not by:
        raise TierwiseError("name at least one column to break down by (e.g. --by industry)")
    available = axis_columns(snapshot, policy)
    columns = [resolve_column(name, available) for name in by]
    if len(set(columns)) != len(columns):
        raise TierwiseError(f"each column may be named once: {', '.join(columns)}")
    keyed = {f"__by{i}": pc.cast(snapshot[c], pa.string()) for i, c in enumerate(columns)}
    names = list(keyed)
    revenue = (snapshot["annual_spend"] if "annual_spend" in snapshot.column_names
               else pa.nulls(snapshot.num_rows, pa.float64()))
    profit = (snapshot["profit"] if "profit" in snapshot.column_names
              else pa.nulls(snapshot.num_rows, pa.float64()))
    table = pa.table({**keyed, "__tier": snapshot["tier"],
                      "__revenue": pc.cast(revenue, pa.float64()),
                      "__profit": pc.cast(profit, pa.float64())})
    grouped = table.group_by([*names, "__tier"], use_threads=False).aggregate(
        [([], "count_all"),
         ("__revenue", "sum", pc.ScalarAggregateOptions(min_count=0)),
         ("__profit", "sum", pc.ScalarAggregateOptions(min_count=0))])
    cells: dict[tuple[tuple[str | None, ...], str], Cell] = {}
    data = grouped.to_pydict()
    for i in range(grouped.num_rows):
        key = tuple(data[n][i] for n in names)
        tier = data["__tier"][i]
        cells[(key, tier)] = Cell(key, tier, int(data["count_all"][i]),
                                  _number(data["__revenue_sum"][i]),
                                  _number(data["__profit_sum"][i]))
    tiers = [(t.key, t.display(lang)) for t in policy.tiers]
    known = {k for k, _ in tiers}
    tiers += [(t, t) for t in sorted({t for _, t in cells if t not in known}, key=str)]
    stage_order = {k: i for i, k in enumerate(STAGES)}

    def order(key: tuple[str | None, ...]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for column, value in zip(columns, key, strict=True):
            if column == STAGE:
                parts.append((value is None, stage_order.get(value or "", len(stage_order)),
                              value or ""))
            else:
                parts.append((value is None, value or ""))
        return tuple(parts)

    rows = sorted({key for key, _ in cells}, key=order)
    return Breakdown(columns, tiers, rows, cells, lang=lang, run_id=run_id, as_of=as_of)
