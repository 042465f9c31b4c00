"""Canonical fields of each import kind, and how source headers map onto them.

Headers are matched case- and space-insensitively against English and common Chinese names,
so exports from other systems usually import without a column map.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tierwise.errors import InputError

Kind = Literal["customers", "orders", "interactions", "payments"]
KINDS: tuple[Kind, ...] = ("customers", "orders", "interactions", "payments")

FieldType = Literal["text", "date", "amount", "satisfaction", "interaction_type"]

IGNORED = "ignored"
ATTRIBUTE_PREFIX = "attribute:"


EARLIEST_DATE = dt.date(1900, 1, 1)
MAX_AMOUNT = 1e12            # 1万亿: no single order, cost or invoice is larger


@dataclass(frozen=True)
class Plausible:
    """The values a book can plausibly hold. Dates from ``earliest`` to ``years_ahead`` years
    after today (invoices fall due in the future; an order dated 9999-12-31 is a typo or a
    placeholder, and would make every later run grade as of that day); amounts within
    ±``max_amount`` (two orders of 1e308 make a customer's spend infinite). Set in
    tierwise.yaml under ``import:`` as ``earliest_date``, ``years_ahead``, ``max_amount``."""

    earliest: dt.date = EARLIEST_DATE
    years_ahead: int = 1
    max_amount: float = MAX_AMOUNT

    def latest(self, today: dt.date | None = None) -> dt.date:
        day = today or dt.date.today()
        try:
            return day.replace(year=day.year + self.years_ahead)
        except ValueError:                   # 29 February
            return day.replace(year=day.year + self.years_ahead, day=28)

    def holds(self, day: dt.date, today: dt.date | None = None) -> bool:
        return self.earliest <= day <= self.latest(today)

    def describe(self, today: dt.date | None = None) -> str:
        return f"{self.earliest.isoformat()} – {self.latest(today).isoformat()}"


PLAUSIBLE = Plausible()


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool
    aliases: tuple[str, ...]  # in order of preference when several columns match


_CUSTOMER_ID_ALIASES = (
    "customer_id",
    "客户编号",
    "客户ID",
    "客户代码",
    "客户号",
    "customer",
    "customer_no",
    "client_id",
    "cust_id",
    "编号",
    "id",
)

FIELDS: dict[Kind, tuple[Field, ...]] = {
    "customers": (
        Field("customer_id", "text", True, _CUSTOMER_ID_ALIASES),
        Field(
            "name",
            "text",
            False,
            ("name", "客户名称", "客户名", "公司名称", "名称", "customer_name", "company"),
        ),
        Field(
            "contact",
            "text",
            False,
            ("contact", "联系方式", "联系电话", "电话", "手机", "phone", "mobile", "email"),
        ),
        Field("industry", "text", False, ("industry", "行业", "所属行业", "sector")),
        Field(
            "region",
            "text",
            False,
            ("region", "地区", "区域", "省份", "城市", "province", "city", "area"),
        ),
        Field("size", "text", False, ("size", "规模", "企业规模", "客户规模", "company_size")),
        Field(
            "owner",
            "text",
            False,
            ("owner", "客户经理", "负责人", "销售", "业务员", "account_manager", "sales_rep"),
        ),
        Field(
            "since",
            "date",
            False,
            (
                "since",
                "合作开始日期",
                "首次合作日期",
                "开始合作时间",
                "建档日期",
                "customer_since",
                "start_date",
            ),
        ),
    ),
    "orders": (
        Field(
            "order_id",
            "text",
            True,
            ("order_id", "订单号", "订单编号", "单号", "order_no", "order_number", "order"),
        ),
        Field("customer_id", "text", True, _CUSTOMER_ID_ALIASES),
        Field(
            "order_date",
            "date",
            True,
            ("order_date", "订单日期", "下单日期", "日期", "下单时间", "成交日期", "date"),
        ),
        Field(
            "amount",
            "amount",
            True,
            (
                "amount",
                "金额",
                "订单金额",
                "销售额",
                "成交金额",
                "实付金额",
                "order_amount",
                "total",
                "sales",
                "revenue",
            ),
        ),
        Field("cost", "amount", False, ("cost", "成本", "成本金额")),
        Field("profit", "amount", False, ("profit", "利润", "毛利", "毛利润", "gross_profit")),
        Field("product", "text", False, ("product", "产品", "产品名称", "商品", "product_name")),
        Field(
            "category", "text", False, ("category", "品类", "类别", "产品类别", "product_category")
        ),
        Field("channel", "text", False, ("channel", "渠道", "销售渠道", "sales_channel")),
    ),
    "interactions": (
        Field("customer_id", "text", True, _CUSTOMER_ID_ALIASES),
        Field(
            "date",
            "date",
            True,
            ("date", "日期", "时间", "互动日期", "拜访日期", "interaction_date", "visit_date"),
        ),
        Field(
            "type",
            "interaction_type",
            True,
            ("type", "类型", "互动类型", "方式", "interaction_type"),
        ),
        Field(
            "satisfaction",
            "satisfaction",
            False,
            ("satisfaction", "满意度", "评分", "rating", "csat", "score"),
        ),
        Field(
            "note",
            "text",
            False,
            ("note", "备注", "内容", "说明", "notes", "comment", "remark", "description"),
        ),
    ),
    # Invoices (receivables): one row per invoice, updated in place when it gets paid.
    "payments": (
        Field(
            "invoice_id",
            "text",
            True,
            (
                "invoice_id",
                "发票号",
                "发票号码",
                "发票编号",
                "应收单号",
                "单据号",
                "单据编号",
                "invoice_no",
                "invoice_number",
                "invoice",
            ),
        ),
        Field("customer_id", "text", True, _CUSTOMER_ID_ALIASES),
        Field(
            "invoice_date",
            "date",
            False,
            ("invoice_date", "开票日期", "发票日期", "单据日期", "日期", "date"),
        ),
        Field(
            "due_date",
            "date",
            True,
            (
                "due_date",
                "到期日",
                "到期日期",
                "付款期限",
                "应收日期",
                "应收到期日",
                "应付日期",
                "账期到期日",
                "due",
                "payment_due",
            ),
        ),
        Field(
            "amount",
            "amount",
            True,
            (
                "amount",
                "金额",
                "应收金额",
                "发票金额",
                "开票金额",
                "价税合计",
                "invoice_amount",
                "total",
            ),
        ),
        Field(
            "paid_date",
            "date",
            False,
            (
                "paid_date",
                "回款日期",
                "付款日期",
                "收款日期",
                "到账日期",
                "实收日期",
                "payment_date",
                "paid_on",
            ),
        ),
        Field(
            "paid_amount",
            "amount",
            False,
            (
                "paid_amount",
                "回款金额",
                "已付金额",
                "已收金额",
                "收款金额",
                "实收金额",
                "付款金额",
                "payment_amount",
                "paid",
            ),
        ),
    ),
}

# Columns of the customers table that are not import fields: attributes must not reuse them.
RESERVED_CUSTOMER_COLUMNS = ("placeholder",)

_SPACES = re.compile(r"[\s_\-\u3000\ufeff]+")
# A trailing unit such as "金额(元)" or "Amount [CNY]" does not change what a column holds.
_TRAILING_UNIT = re.compile(r"[(\[（【][^)\]）】]*[)\]）】]$")


def normalize_header(header: str) -> str:
    """The form headers are compared in: lower case, no spaces/underscores, no trailing unit."""
    text = _SPACES.sub("", header).lower()
    stripped = _TRAILING_UNIT.sub("", text)
    return stripped or text


def fields_of(kind: Kind) -> tuple[Field, ...]:
    if kind not in FIELDS:
        raise InputError(f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}")
    return FIELDS[kind]


def field_named(kind: Kind, name: str) -> Field:
    for field in fields_of(kind):
        if field.name == name:
            return field
    raise KeyError(name)


def detect_mapping(
    headers: Sequence[str], kind: Kind, column_map: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Map each source header to a canonical field, ``attribute:<name>`` or ``ignored``.

    ``column_map`` (source header -> field) wins over automatic matching; it may also say
    ``attribute:<name>`` (customers) or ``ignored``. Naming a header not in ``headers``, or a
    field the kind does not have, is an InputError.
    """
    fields = fields_of(kind)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for source, target in _resolve_column_map(headers, kind, column_map).items():
        mapping[source] = target
        taken.add(target)

    by_alias = {normalize_header(alias): field.name for field in fields for alias in field.aliases}
    rank = {
        (field.name, normalize_header(alias)): i
        for field in fields
        for i, alias in enumerate(field.aliases)
    }
    candidates: dict[str, list[tuple[int, int, str]]] = {}
    for position, header in enumerate(headers):
        if header in mapping:
            continue
        key = normalize_header(header)
        if key in by_alias and by_alias[key] not in taken:
            name = by_alias[key]
            candidates.setdefault(name, []).append((rank[name, key], position, header))
    for name, found in candidates.items():
        mapping[min(found)[2]] = name  # best alias wins; the other columns fall through

    attribute_names: set[str] = {target.lower() for target in mapping.values()}
    for header in headers:
        if header not in mapping:
            mapping[header] = _unmapped(header, kind, attribute_names)
    return {header: mapping[header] for header in headers}


def _resolve_column_map(
    headers: Sequence[str], kind: Kind, column_map: Mapping[str, str] | None
) -> dict[str, str]:
    resolved: dict[str, str] = {}
    names = {field.name for field in fields_of(kind)}
    by_normal = {normalize_header(header): header for header in headers}
    for source, target in (column_map or {}).items():
        header = source if source in headers else by_normal.get(normalize_header(source))
        if header is None:
            raise InputError(
                f"--map names column {source!r}, which is not in the file "
                f"(columns: {', '.join(headers)})"
            )
        target = target.strip()
        if target.startswith(ATTRIBUTE_PREFIX):
            if kind != "customers":
                raise InputError(f"--map {source}={target}: only customers have attributes")
            target = ATTRIBUTE_PREFIX + _attribute_name(target[len(ATTRIBUTE_PREFIX) :].strip())
        elif target != IGNORED and target not in names:
            raise InputError(
                f"--map {source}={target}: {target!r} is not a field of {kind} "
                f"(fields: {', '.join(sorted(names))}, or {IGNORED})"
            )
        if target != IGNORED and target in resolved.values():
            raise InputError(f"--map maps two columns to {target!r}")
        resolved[header] = target
    return resolved


def _unmapped(header: str, kind: Kind, used: set[str]) -> str:
    if kind != "customers":
        return IGNORED
    name = _attribute_name(header)
    canonical = {field.name for field in FIELDS["customers"]} | set(RESERVED_CUSTOMER_COLUMNS)
    if name.lower() in canonical or name.startswith("__"):
        name = f"{name}_attr"  # a table column, or the import's own work columns, has it
    target = ATTRIBUTE_PREFIX + name
    suffix = 2
    while target.lower() in used:  # DuckDB column names are case-insensitive
        target = f"{ATTRIBUTE_PREFIX}{name}_{suffix}"
        suffix += 1
    used.add(target.lower())
    return target


def _attribute_name(header: str) -> str:
    name = header.strip()
    if not name:
        raise InputError("an attribute needs a name")
    return name


def required_fields(kind: Kind) -> list[Field]:
    return [field for field in fields_of(kind) if field.required]


def missing_required(kind: Kind, mapping: Mapping[str, str]) -> list[Field]:
    mapped = set(mapping.values())
    return [field for field in required_fields(kind) if field.name not in mapped]
