"""The 客户分级表 grading table: 客户基本信息 | 分级指标 | 分级结果 | 备注, one row per customer."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import METRICS, metric_label
from tierwise.errors import TierwiseError
from tierwise.grading.explanation import Explanation
from tierwise.policy.model import Policy

BASIC_FIELDS = ("customer_id", "name", "contact", "industry", "region", "owner")
GROUPS = {
    "zh": ("客户基本信息", "分级指标", "分级结果", "备注"),
    "en": ("Customer", "Grading metrics", "Result", "Notes"),
}
RESULT_HEADERS = {"zh": ("等级", "较上期"), "en": ("Tier", "Change")}
CHANGE_WORDS = {"zh": {"up": "↑ 升级", "down": "↓ 降级", "new": "新", "same": ""},
                "en": {"up": "↑ up", "down": "↓ down", "new": "new", "same": ""}}


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    group: int
    number_format: str | None = None
    width: int = 12


def columns_for(policy: Policy, available: Sequence[str], lang: str) -> list[Column]:
    code = "zh" if is_zh(lang) else "en"
    cols = [Column(f, metric_label(f, code), 0, width=30 if f == "name" else 14)
            for f in BASIC_FIELDS if f in available]
    shown = [m for m in policy.used_metrics() if m in available and m not in BASIC_FIELDS]
    if policy.scorecard is not None:
        shown.append("score")
    labels = _score_labels(policy, code)
    for name in shown:
        header = labels.get(name) or metric_label(name, code)
        cols.append(Column(name, header, 1, number_format(name), 14))
    tier_header, change_header = RESULT_HEADERS[code]
    cols += [Column("tier_label", tier_header, 2, width=12),
             Column("change", change_header, 2, width=10),
             Column("notes", GROUPS[code][3], 3, width=60)]
    return cols


def _score_labels(policy: Policy, code: str) -> dict[str, str]:
    """Headers for the scorecard's dimension scores, from the policy's own labels."""
    if policy.scorecard is None:
        return {}
    suffix = "得分" if code == "zh" else " score"
    return {d.score_name: ((d.label or d.label_en) if code == "zh" else (d.label_en or d.label)
                           or d.key) + suffix
            for d in policy.scorecard.dimensions}


def number_format(name: str) -> str | None:
    metric = METRICS.get(name)
    if metric is None:
        return "0.0" if name.endswith("score") else None
    if metric.money:
        return '"¥"#,##0.00'
    if metric.unit == "%":
        return "0.0%"
    if metric.type == "date":
        return "yyyy-mm-dd"
    return "0.0" if name == "tenure_years" else "#,##0"


def table_rows(explanations: Iterable[Explanation], changes: dict[str, str],
               columns: Sequence[Column], lang: str) -> Iterable[list[Any]]:
    code = "zh" if is_zh(lang) else "en"
    for e in explanations:
        values = {**e.metrics, **e.dimension_scores, "customer_id": e.customer_id,
                  "score": e.score,
                  "tier_label": e.tier_label,
                  "change": CHANGE_WORDS[code].get(changes.get(e.customer_id, ""), ""),
                  "notes": "；".join(e.reasons()) if code == "zh" else "; ".join(e.reasons())}
        yield [cell(values.get(c.name), c) for c in columns]


def cell(value: Any, column: Column) -> Any:
    """Floats rounded as they are shown, so CSV files hold 1100000.0, not 1099999.9999."""
    if not isinstance(value, float):
        return value
    if value != value:
        return None
    return round(value, 4 if column.number_format == "0.0%" else 2)


def write_grading_table(path: Path, columns: Sequence[Column], rows: Iterable[list[Any]], *,
                        title: str, lang: str) -> int:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _write_xlsx(path, columns, rows, title=title, lang=lang)
    if suffix == ".csv":
        return _write_csv(path, columns, rows)
    raise TierwiseError(f"cannot export to {path.name}: use a .xlsx or .csv file name")


# A text cell starting with one of these is a formula to Excel and LibreOffice: a customer
# named =HYPERLINK(...) would run when the sheet is opened (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: Any) -> Any:
    """A CSV value a spreadsheet shows as written: text that would start a formula gets a
    leading apostrophe, which spreadsheets read as "this is text" and do not display."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _write_csv(path: Path, columns: Sequence[Column], rows: Iterable[list[Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # BOM: Excel reads it
        writer = csv.writer(handle)
        writer.writerow([as_text(c.header) for c in columns])
        for row in rows:
            writer.writerow(["" if v is None else as_text(v) for v in row])
            count += 1
    return count


def _write_xlsx(path: Path, columns: Sequence[Column], rows: Iterable[list[Any]], *,
                title: str, lang: str) -> int:
    # Here, not at the top: openpyxl takes a second to import, and most commands never write
    # a workbook.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    code = "zh" if is_zh(lang) else "en"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    fills = ["DDEBF7", "FCE4D6", "E2EFDA", "EDEDED"]
    bold = Font(bold=True)
    center = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for group, name in enumerate(GROUPS[code]):
        spans = [i + 1 for i, c in enumerate(columns) if c.group == group]
        if not spans:
            continue
        sheet.cell(row=1, column=spans[0], value=name)
        if len(spans) > 1:
            sheet.merge_cells(start_row=1, start_column=spans[0], end_row=1, end_column=spans[-1])
        for index in spans:
            for row in (1, 2):
                cell = sheet.cell(row=row, column=index)
                cell.fill = PatternFill("solid", fgColor=fills[group])
                cell.font, cell.alignment, cell.border = bold, center, border
    for index, column in enumerate(columns, start=1):
        sheet.cell(row=2, column=index, value=column.header)
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    count = 0
    for count, values in enumerate(rows, start=1):
        for index, (column, value) in enumerate(zip(columns, values, strict=True), start=1):
            cell = sheet.cell(row=count + 2, column=index, value=value)
            if isinstance(value, str):
                cell.data_type = "s"          # text stays text, never a formula
            if column.number_format and isinstance(value, int | float | dt.date):
                cell.number_format = column.number_format
    sheet.freeze_panes = "C3"
    sheet.auto_filter.ref = f"A2:{get_column_letter(len(columns))}{count + 2}"
    book.save(path)
    return count
