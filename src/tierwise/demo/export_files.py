"""Writing the synthetic demo data (:mod:`tierwise.demo.synthetic`) as a Chinese company's
exports: an xlsx customer list, GBK and UTF-8-with-BOM CSVs, and the list of sales reps."""

from __future__ import annotations

import csv
import datetime
from pathlib import Path

import pyarrow as pa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from tierwise.demo.synthetic import _INTERACTION_LABELS, _OWNERS, DemoData

__all__ = ["write_files"]

# Sales reps (销售名单.csv): the owners' level, region and whether still employed, and per
# tier of the value-tiers preset the capacity as a share of an average book (customers /
# reps); a missing tier (or None) is an empty cell, no limit.
# The profiles follow _OWNERS: 张伟, 王芳, 李娜, 刘洋, 陈静, 杨帆, 赵磊 (left), 黄婷, 周杰, 吴敏,
# 徐涛, 孙丽.
_REP_PROFILES: tuple[tuple[str, str, bool], ...] = (
    ("资深", "华东", True), ("资深", "华南", True), ("高级", "华北", True),
    ("高级", "华东", True), ("高级", "华中", True), ("中级", "华南", True),
    ("中级", "华北", False), ("中级", "西南", True), ("中级", "华东", True),
    ("中级", "西北", True), ("新人", "东北", True), ("新人", "华东", True),
)
_REP_CAPACITY: dict[str, dict[str, float | None]] = {
    "资深": {"vip": 0.14, "important": 0.30, "ordinary": 0.75},
    "高级": {"vip": 0.12, "important": 0.28, "ordinary": 0.75},
    "中级": {"vip": 0.10, "important": 0.26, "ordinary": 0.75},
    "新人": {"vip": 0.0, "important": 0.15, "ordinary": 0.60},
}
_REP_POLICY = "value-tiers"


# --------------------------------------------------------------------------- write_files

_XLSX_HEADERS = (("客户编号", "customer_id"), ("客户名称", "name"), ("联系方式", "contact"),
                 ("行业", "industry"), ("地区", "region"), ("规模", "size"),
                 ("合作开始日期", "since"), ("客户经理", "owner"), ("员工人数", "员工人数"))
_XLSX_WIDTHS = (10, 34, 14, 10, 8, 8, 14, 10, 10)


def _yuan(amount: float) -> str:
    """￥12,345.60 / -￥1,234.00: the full-width yuan sign, since GBK has no ¥."""
    return f"{'-' if amount < 0 else ''}￥{abs(amount):,.2f}"


def write_files(data: DemoData, folder: Path) -> dict[str, Path]:
    """Write the demo data as a Chinese company's exports and return the paths by table:

    - 客户.xlsx: Chinese headers, 合作开始日期 as real date cells, 员工人数 as text;
    - 订单.csv: GBK, dates like 2025/3/7, amounts like "￥12,345.60", refunds "-￥1,234.00";
    - 互动记录.csv: UTF-8 with BOM, types in Chinese (拜访/电话/邮件/投诉/调查/活动);
    - 应收账款.csv: GBK, one invoice a row, dates like 2025-03-07, plain amounts, 回款日期
      and 回款金额 empty while nothing is paid;
    - 销售名单.csv: GBK, the customers' owners as sales reps (姓名, 级别, 区域, 在职) with
      one capacity column per tier of the value-tiers preset (``VIP客户容量``…; empty: no
      limit), scaled to the number of customers (under "reps")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"customers": folder / "客户.xlsx", "orders": folder / "订单.csv",
             "interactions": folder / "互动记录.csv", "payments": folder / "应收账款.csv",
             "reps": folder / "销售名单.csv"}
    _write_customers_xlsx(data.customers, paths["customers"])
    o = data.orders.to_pydict()
    with paths["orders"].open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["订单号", "客户编号", "下单日期", "订单金额", "成本", "产品", "品类",
                         "渠道"])
        for row in zip(o["order_id"], o["customer_id"], o["order_date"], o["amount"],
                       o["cost"], o["product"], o["category"], o["channel"], strict=True):
            order_id, customer, day, amount, cost, *rest = row
            writer.writerow([order_id, customer, f"{day.year}/{day.month}/{day.day}",
                             _yuan(amount), "" if cost is None else f"{cost:.2f}", *rest])
    i = data.interactions.to_pydict()
    with paths["interactions"].open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["客户编号", "日期", "类型", "满意度", "备注"])
        for customer, day, kind, score, note in zip(
                i["customer_id"], i["date"], i["type"], i["satisfaction"], i["note"],
                strict=True):
            writer.writerow([customer, day.isoformat(), _INTERACTION_LABELS[kind],
                             "" if score is None else f"{score:g}", note or ""])
    _write_payments_csv(data.payments, paths["payments"])
    _write_reps_csv(data.customers.num_rows, paths["reps"])
    return paths


def _write_payments_csv(payments: pa.Table, path: Path) -> None:
    p = payments.to_pydict()
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["应收单号", "客户编号", "开票日期", "到期日", "应收金额", "回款日期",
                         "回款金额"])
        for invoice, customer, issued, due, amount, paid_day, paid in zip(
                p["invoice_id"], p["customer_id"], p["invoice_date"], p["due_date"],
                p["amount"], p["paid_date"], p["paid_amount"], strict=True):
            writer.writerow([invoice, customer, issued.isoformat(), due.isoformat(),
                             f"{amount:.2f}", "" if paid_day is None else paid_day.isoformat(),
                             "" if paid is None else f"{paid:.2f}"])


def _write_reps_csv(n_customers: int, path: Path) -> None:
    """The reps table, with capacities in the tiers of the value-tiers preset."""
    from tierwise.policy.loading import load_policy_text
    from tierwise.policy.presets import preset_text

    tiers = load_policy_text(preset_text(_REP_POLICY), source=_REP_POLICY).tiers
    book = n_customers / len(_REP_PROFILES)          # accounts per rep on average
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["姓名", "级别", "区域", "在职",
                         *[f"{t.label or t.key}容量" for t in tiers]])
        for name, (level, region, active) in zip(_OWNERS, _REP_PROFILES, strict=True):
            shares = _REP_CAPACITY[level]
            caps = [shares.get(t.key) for t in tiers]
            writer.writerow([name, level, region, "是" if active else "否",
                             *["" if c is None else str(max(round(c * book), 1) if c else 0)
                               for c in caps]])


def _write_customers_xlsx(customers: pa.Table, path: Path) -> None:
    """One sheet, bold frozen header, start dates as real date cells (write-only openpyxl)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("客户列表")
    for index, width in enumerate(_XLSX_WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title, _ in _XLSX_HEADERS:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    columns = customers.select([name for _, name in _XLSX_HEADERS]).to_pydict()
    for values in zip(*columns.values(), strict=True):
        row: list[object] = []
        for value in values:
            if isinstance(value, datetime.date):
                cell = WriteOnlyCell(sheet, value=datetime.datetime.combine(value,
                                                                            datetime.time()))
                cell.number_format = "yyyy-mm-dd"
                row.append(cell)
            else:
                row.append(value)
        sheet.append(row)
    book.save(path)
