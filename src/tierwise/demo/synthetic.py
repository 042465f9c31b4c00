"""Synthetic Chinese B2B customer data for `tierwise demo` and the benchmark.

`generate` builds four Arrow tables (customers, orders, interactions, payments) with numpy
only — no per-customer or per-order Python loop — so 100,000 customers and ~3M orders take
seconds. `write_files` writes them the way a Chinese company's exports usually look:
an xlsx customer list, a GBK order CSV, a UTF-8-with-BOM interaction log and a GBK
receivables (应收账款) CSV, plus a GBK list of the sales reps (销售名单) for owner assignment.

The value model: every customer has a latent annual spend ``W`` drawn from a calibrated
heavy-tailed distribution (over the last 12 months about 7.5% spend 100万+, 18% 50–100万,
47% 10–50万 and the rest under 10万 or nothing; the top fifth of customers carry ~74% of
revenue, in line with the VIP/重要/普通/潜在 tiers of seed document 004). Orders follow a
renewal process (gamma-distributed gaps) whose
frequency and ticket size both move with the customer's trajectory (growing, steady,
declining, lapsed, new, prospect), normalised so the expected spend over the last
12 months of activity equals ``W``.

Receivables: one invoice per purchase of the last 18 months, issued on the order date and due
after the customer's payment terms (30 or 60 days, longer for bigger buyers). Most are paid
on or a little before the due date; slow payers (more among declining and lapsed customers)
often pay 10–90 days late; a few recent invoices are partly paid; and about 3% of customers
(more among declining and lapsed ones) stopped paying some time before ``end``, leaving
invoices unpaid well past due. The payments are drawn from their own random stream, so
adding them left the other tables as they were.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

__all__ = ["INDUSTRIES", "INTERACTION_TYPES", "REGIONS", "SIZES", "DemoData", "generate",
           "write_files"]

# --------------------------------------------------------------------------- vocabularies

INDUSTRIES = ("制造业", "批发零售", "医药健康", "建筑工程", "物流运输",
              "信息技术", "食品饮料", "汽车配件", "化工", "教育培训")
_INDUSTRY_WEIGHTS = np.array([0.22, 0.14, 0.08, 0.09, 0.08, 0.11, 0.08, 0.08, 0.07, 0.05])
# Words that go between the brand and 有限公司, per industry.
_INDUSTRY_WORDS: tuple[tuple[str, ...], ...] = (
    ("机械", "精密制造", "重工", "五金制品", "机电设备", "模具"),
    ("商贸", "贸易", "百货", "供应链管理", "商业"),
    ("医药", "生物科技", "医疗器械", "药业", "健康科技"),
    ("建设工程", "建筑", "建材", "装饰工程", "市政工程"),
    ("物流", "运输", "仓储服务", "货运代理", "快运"),
    ("信息技术", "软件", "网络科技", "电子科技", "数据科技"),
    ("食品", "饮品", "餐饮管理", "粮油", "乳业"),
    ("汽车零部件", "汽配", "汽车部件", "车业", "汽车电子"),
    ("化工", "新材料", "精细化工", "涂料", "塑胶"),
    ("教育科技", "培训", "文化传播", "职业技能培训", "教育咨询"),
)
# Profit margin level per industry (before category shift and noise); margins end in 10–40%.
_INDUSTRY_MARGIN = np.array([0.22, 0.13, 0.33, 0.18, 0.15, 0.36, 0.20, 0.21, 0.16, 0.30])
# The category each industry buys most.
_INDUSTRY_MAIN_CATEGORY = np.array([1, 3, 6, 2, 2, 4, 3, 1, 5, 4])

REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
_REGION_WEIGHTS = np.array([0.34, 0.22, 0.16, 0.10, 0.09, 0.05, 0.04])
_REGION_CITIES: tuple[tuple[str, ...], ...] = (
    ("上海", "杭州", "南京", "苏州", "宁波", "无锡", "合肥", "济南", "青岛", "福州", "厦门",
     "温州", "常州"),
    ("广州", "深圳", "东莞", "佛山", "珠海", "中山", "南宁", "海口", "惠州"),
    ("北京", "天津", "石家庄", "太原", "呼和浩特", "唐山", "保定"),
    ("武汉", "长沙", "郑州", "南昌", "洛阳", "宜昌"),
    ("成都", "重庆", "昆明", "贵阳", "绵阳"),
    ("西安", "兰州", "乌鲁木齐", "银川", "西宁"),
    ("沈阳", "大连", "长春", "哈尔滨"),
)
_MUNICIPALITIES = frozenset({"上海", "北京", "天津", "重庆"})

_BRAND_FIRST = "华宏鑫恒盛泰金瑞隆嘉德汇永通新安博创天明达远正信和海中东兴联荣丰佳"
_BRAND_SECOND = "腾达盛昌丰源泰利祥诚辉鼎晟康业宇峰航科润邦驰美迅"
_BRANDS: tuple[str, ...] = tuple(a + b for a in _BRAND_FIRST for b in _BRAND_SECOND if a != b)

SIZES = ("大型", "中型", "小型", "微型")
_SIZE_SHARES = np.array([0.10, 0.24, 0.41, 0.25])  # from the top of the value ranking
_SIZE_EMPLOYEES = ((1000, 20000), (300, 999), (20, 299), (3, 19))

_OWNERS = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄婷", "周杰", "吴敏",
           "徐涛", "孙丽")

_MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152,
                             155, 156, 157, 158, 159, 166, 176, 177, 180, 181, 182, 183,
                             185, 186, 187, 188, 189, 198, 199])

_CATEGORIES = ("电子元器件", "机械配件", "包装材料", "办公耗材", "工业软件", "化工原料",
               "仪器仪表", "技术服务")
_CATEGORY_MARGIN_SHIFT = np.array([0.00, 0.02, -0.04, -0.02, 0.08, -0.03, 0.04, 0.06])
_PRODUCTS: tuple[tuple[str, ...], ...] = (
    ("贴片电阻", "电解电容", "继电器", "连接器"),
    ("轴承", "齿轮组", "液压阀", "传动皮带"),
    ("瓦楞纸箱", "缠绕膜", "气泡袋", "木托盘"),
    ("打印纸", "硒鼓", "文件柜", "劳保用品"),
    ("ERP系统授权", "MES模块", "数据采集平台", "年度软件维护"),
    ("环氧树脂", "工业溶剂", "表面活性剂", "胶粘剂"),
    ("数显卡尺", "压力变送器", "温控仪", "光谱分析仪"),
    ("设备安装调试", "技术咨询", "年度维保服务", "驻场运维"),
)
_PRODUCT_NAMES = tuple(p for ps in _PRODUCTS for p in ps)
_PRODUCT_COUNTS = np.array([len(ps) for ps in _PRODUCTS])
_PRODUCT_OFFSETS = np.concatenate([[0], np.cumsum(_PRODUCT_COUNTS)[:-1]])
_CHANNELS = ("直销", "经销商", "线上商城", "电话销售")

INTERACTION_TYPES = ("visit", "call", "email", "complaint", "survey", "event")
_INTERACTION_LABELS = {"visit": "拜访", "call": "电话", "email": "邮件", "complaint": "投诉",
                       "survey": "调查", "event": "活动"}
_NOTES: tuple[tuple[str, ...], ...] = (
    ("季度业务回顾", "新品介绍", "年度合同洽谈", "现场技术交流", "拜访采购负责人"),
    ("跟进订单交付", "确认报价", "催收回款", "了解下季度需求", "回访使用情况"),
    ("发送报价单", "发送对账单", "节日问候", "寄送产品目录", "确认发票信息"),
    ("交货延迟", "产品质量问题", "发票开具错误", "售后响应慢", "价格调整不满"),
    ("年度满意度调查", "交付满意度回访", "服务质量问卷"),
    ("新品发布会", "行业展会", "客户答谢会", "技术研讨会", "工厂参观"),
)
# Yearly interaction rates by size (大型, 中型, 小型, 微型) for visit, call, email, event.
_RATE_VISIT = np.array([6.0, 3.0, 0.8, 0.2])
_RATE_CALL = np.array([8.0, 5.0, 2.0, 0.8])
_RATE_EMAIL = np.array([10.0, 6.0, 2.5, 1.0])
_RATE_EVENT = np.array([1.5, 1.0, 0.4, 0.15])

# Segments (trajectories) and their shares.
_GROWING, _STEADY, _DECLINING, _LAPSED, _NEW, _PROSPECT = range(6)
_SEGMENT_SHARES = np.array([0.23, 0.42, 0.15, 0.07, 0.08, 0.05])

# Quantile function of the latent annual spend (yuan): log-linear between knots, a Pareto
# tail above the last knot. Calibrated so the realised 12-month spends land in the seed
# document's tiers once prospects, lapsed and new customers are mixed in.
_SPEND_KNOTS_Q = np.array([0.0, 0.05, 0.13, 0.44, 0.73, 0.937])
_SPEND_KNOTS_V = np.array([10_000.0, 45_000.0, 100_000.0, 190_000.0, 500_000.0, 1_000_000.0])
_TAIL_ALPHA = 1.0
_SPEND_CAP = 100_000_000.0
# How loosely lapsed/new/prospect customers are drawn from the low end of the value ranking
# (standard deviation of the noise added to the quantile level before ranking).
_FRINGE_NOISE = 0.3

# Receivables: days of order history invoiced (~18 months); the share of customers on 60-day
# rather than 30-day terms by size (大型, 中型, 小型, 微型); per segment (growing, steady,
# declining, lapsed, new, prospect) the share of slow payers and of customers who stopped
# paying; how often a slow / other payer pays an invoice late.
_INVOICE_DAYS = 548
_NET60_SHARE = np.array([0.6, 0.4, 0.25, 0.15])
_SLOW_PAYER_SHARE = np.array([0.04, 0.04, 0.12, 0.15, 0.04, 0.0])
_DEFAULTER_SHARE = np.array([0.015, 0.015, 0.06, 0.12, 0.015, 0.0])
_LATE_RATE_SLOW, _LATE_RATE_OTHER = 0.3, 0.02

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



@dataclass
class DemoData:
    """The demo tables; see the module docstring for how they are built."""

    customers: pa.Table
    orders: pa.Table
    interactions: pa.Table
    payments: pa.Table


# ------------------------------------------------------------------------------ helpers


def _shuffled_quota(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    """Codes 0..len(shares)-1 in exact proportions (largest remainder), shuffled."""
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - int(counts.sum())
    if rest:
        counts[np.argsort(counts - raw, kind="stable")[:rest]] += 1
    codes = np.repeat(np.arange(len(shares)), counts)
    rng.shuffle(codes)
    return codes


def _spend_quantile(u: np.ndarray) -> np.ndarray:
    """Latent annual spend for quantile levels ``u`` in (0, 1)."""
    body = np.exp(np.interp(u, _SPEND_KNOTS_Q, np.log(_SPEND_KNOTS_V)))
    q_top, v_top = _SPEND_KNOTS_Q[-1], _SPEND_KNOTS_V[-1]
    tail_p = np.clip((1.0 - u) / (1.0 - q_top), 1e-12, 1.0)
    tail = v_top * tail_p ** (-1.0 / _TAIL_ALPHA)
    out: np.ndarray = np.where(u <= q_top, body, np.minimum(tail, _SPEND_CAP))
    return out


def _take(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(idx))


def _ragged_take(groups: tuple[tuple[str, ...], ...], group: np.ndarray,
                 u: np.ndarray) -> pa.Array:
    """For each row pick uniformly (by ``u`` in [0, 1)) from ``groups[group]``."""
    sizes = np.array([len(g) for g in groups])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = tuple(s for g in groups for s in g)
    within = np.minimum((u * sizes[group]).astype(np.int64), sizes[group] - 1)
    return _take(flat, offsets[group] + within)


def _dates(epoch_days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(epoch_days.astype(np.int32), pa.int32(), mask=mask)
    return arr.cast(pa.date32())


def _group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal (sorted) ``keys``."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    lengths = np.diff(np.concatenate([starts, [n]]))
    return np.arange(n) - np.repeat(starts, lengths)


def _sort_days(day: np.ndarray) -> np.ndarray:
    """Stable argsort of small non-negative day numbers (radix sort when they fit int16)."""
    small = np.int16 if day.size == 0 or int(day.max()) < 32767 else np.int32
    return np.argsort(day.astype(small), kind="stable")


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) ASCII matrix.

    Small ranges (ids, per-day sequence numbers) go through a lookup table of all values,
    which is one gather instead of ``width`` integer divisions per value."""
    values = values.astype(np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    top = int(values.max()) if values.size else 0
    if top >= 4_000_000 or top >= len(values):
        return ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    table = ((np.arange(top + 1)[:, None] // powers) % 10 + 48).astype(np.uint8)
    return _gather_rows(table, values)


def _gather_rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for a (k, w) uint8 matrix, gathering each row as one w-byte item."""
    width = table.shape[1]
    rows = np.ascontiguousarray(table).view(np.dtype((np.void, width)))[index]
    return rows.view(np.uint8).reshape(len(index), width)


def _ascii_strings(*parts: np.ndarray | bytes, n: int) -> pa.Array:
    """A string array from fixed-width ASCII pieces: (n, w) uint8 matrices or constants."""
    cols = [np.broadcast_to(np.frombuffer(p, np.uint8), (n, len(p))) if isinstance(p, bytes)
            else p for p in parts]
    chars = np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((n, 0))
    width = chars.shape[1]
    offsets = np.arange(n + 1, dtype=np.int64) * width
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)),
                                           pa.py_buffer(chars))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _customer_ids(index: np.ndarray, n_customers: int) -> pa.Array:
    """C000123-style ids for 0-based customer positions (wider when there are 10^6+)."""
    width = max(6, len(str(n_customers)))
    return _ascii_strings(b"C", _digits(index + 1, width), n=len(index))


def _width(values: np.ndarray, minimum: int) -> int:
    return max(minimum, len(str(int(values.max())))) if values.size else minimum


def _order_ids(day: np.ndarray, start_day: int, span: int) -> pa.Array:
    """Ids like SO20250307-000123 for rows sorted by ``day``: date, then rank within the day."""
    dates = np.arange(start_day, start_day + span + 1).astype("datetime64[D]")
    ymd = np.char.replace(np.datetime_as_string(dates, unit="D"), "-", "")
    ymd_chars = np.frombuffer(ymd.astype("S8").tobytes(), np.uint8).reshape(-1, 8)
    seq = _group_rank(day) + 1
    return _ascii_strings(b"SO", _gather_rows(ymd_chars, day), b"-", _digits(seq, _width(seq, 6)),
                          n=len(day))


def _mean_one_lognormal(rng: np.random.Generator, sigma: float | np.ndarray,
                        size: int) -> np.ndarray:
    return np.exp(sigma * rng.standard_normal(size) - 0.5 * np.square(sigma))


# ---------------------------------------------------------------------------- generate


def generate(n_customers: int = 2000, *, seed: int = 7, end: datetime.date,
             years: int = 4) -> DemoData:
    """Generate ``n_customers`` customers with ``years`` of orders and interactions up to
    ``end`` (inclusive). Deterministic for a given ``seed``, ``end`` and size."""
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    if years < 1:
        raise ValueError(f"years must be at least 1, got {years}")
    rng = np.random.default_rng(seed)
    n = n_customers
    end_day = (end - datetime.date(1970, 1, 1)).days
    span = float(round(years * 365.25))  # days of history; day 0 is the first day of data
    start_day = end_day - span

    # ---- latent value, then segments correlated with it (big accounts rarely lapse)
    u = (rng.permutation(n) + rng.random(n)) / n  # stratified uniforms: stable tier shares
    spend = _spend_quantile(u)
    seg_pool = _shuffled_quota(rng, n, _SEGMENT_SHARES)
    fringe = np.isin(seg_pool, (_LAPSED, _NEW, _PROSPECT))
    n_fringe = int(fringe.sum())
    order = np.argsort(u + rng.normal(0.0, _FRINGE_NOISE, n), kind="stable")
    segment = np.empty(n, dtype=np.int64)
    segment[order[:n_fringe]] = seg_pool[fringe]
    segment[order[n_fringe:]] = seg_pool[~fringe]

    # ---- attributes
    industry = rng.choice(len(INDUSTRIES), n, p=_INDUSTRY_WEIGHTS)
    region = rng.choice(len(REGIONS), n, p=_REGION_WEIGHTS)
    size_rank = np.argsort(np.argsort(-(np.log(spend) + rng.normal(0.0, 0.45, n))))
    size = np.searchsorted(np.cumsum(_SIZE_SHARES) * n, size_rank, side="right")
    size = np.minimum(size, len(SIZES) - 1)
    lo = np.array([e[0] for e in _SIZE_EMPLOYEES])[size]
    hi = np.array([e[1] for e in _SIZE_EMPLOYEES])[size]
    employees = np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))).astype(np.int64)
    employees = np.clip(employees, lo, hi)
    owner = rng.integers(0, len(_OWNERS), n)

    # ---- trajectories: growth g (per year), active interval [s, e] in days from data start
    g = np.select(
        [segment == _GROWING, segment == _DECLINING, segment == _NEW, segment == _LAPSED],
        [rng.uniform(0.15, 0.6, n), rng.uniform(-0.7, -0.2, n), rng.uniform(0.0, 0.4, n),
         rng.uniform(-0.4, 0.05, n)],
        rng.uniform(-0.1, 0.1, n),
    )
    # Lapsed customers stop ordering 6–18 months before the end (less with short history).
    e = np.where(segment == _LAPSED, span - rng.uniform(183.0, max(min(548.0, span - 120.0),
                                                                   184.0), n), span)
    # Relationship start ("since"): established customers mostly early in the data, ~15%
    # from before it; new ones within the last year; prospects within the last two years.
    since = np.select(
        [segment == _NEW, segment == _PROSPECT],
        [span - rng.uniform(20.0, 350.0, n), span - rng.uniform(0.0, 730.0, n)],
        np.where(rng.random(n) < 0.15, -rng.uniform(1.0, 5 * 365.0, n),
                 rng.random(n) ** 1.6 * np.maximum(e - 480.0, 30.0)),
    )
    lag = np.where(rng.random(n) < 0.5, 0.0, rng.exponential(45.0, n))
    s = np.clip(since + lag, 0.0, None)
    s = np.where(segment == _NEW, np.minimum(s, span - 5.0), np.minimum(s, e - 90.0))
    s = np.clip(s, 0.0, None)
    active = segment != _PROSPECT

    # ---- order process: intensity f0*exp(h*tau), ticket a0*exp(h*tau), tau years to e
    z = (np.log(spend) - np.log(250_000.0)) / 1.2
    f0 = np.clip(np.exp(np.log(8.0) + 0.55 * z + rng.normal(0.0, 0.4, n)), 1.0, 60.0)
    h = g / 2.0
    g_safe = np.where(np.abs(g) < 1e-6, 1e-6, g)
    a0 = spend * g_safe / (f0 * -np.expm1(-g_safe))  # expected spend over the last year = W
    tau_s = (s - e) / 365.25  # <= 0
    h_safe = np.where(np.abs(h) < 1e-9, 1e-9, h)
    lam_total = np.where(active, f0 * -np.expm1(h_safe * tau_s) / h_safe, 0.0)
    shape = rng.uniform(1.5, 6.0, n)  # regularity of the buyer: gamma-distributed gaps

    slots = np.where(active, np.ceil(lam_total + 3.5 * np.sqrt(lam_total) + 4.0), 0)
    slots = slots.astype(np.int64)
    owner_of_slot = np.repeat(np.arange(n), slots)
    gaps = rng.standard_gamma(shape[owner_of_slot]) / shape[owner_of_slot]
    first_slot = np.concatenate([[0], np.cumsum(slots)[:-1]])
    starts = first_slot[slots > 0]
    gaps[starts] *= rng.random(len(starts))  # random phase at the start
    cum = np.cumsum(gaps)
    base = np.repeat(cum[starts] - gaps[starts], slots[slots > 0])
    lam = cum - base
    keep = lam < lam_total[owner_of_slot]
    oc = owner_of_slot[keep]
    lam = lam[keep]
    tau = np.log(np.exp(h_safe[oc] * tau_s[oc]) + h_safe[oc] * lam / f0[oc]) / h_safe[oc]

    # Every buyer has at least one order; a lapsed customer's last order is at its stop date.
    counts = np.bincount(oc, minlength=n)
    extra = np.flatnonzero(active & ((counts == 0) | (segment == _LAPSED)))
    extra_tau = np.where(segment[extra] == _LAPSED, 0.0,
                         tau_s[extra] * rng.random(len(extra)))
    oc = np.concatenate([oc, extra])
    tau = np.concatenate([tau, extra_tau])
    day = np.clip(np.floor(e[oc] + tau * 365.25), 0, span).astype(np.int64)
    m = len(oc)
    amount = a0[oc] * np.exp(h[oc] * tau) * _mean_one_lognormal(rng, 0.45, m)
    amount = np.round(np.maximum(amount, 50.0), 2)

    main_cat = _INDUSTRY_MAIN_CATEGORY[industry]
    second_cat = rng.integers(0, len(_CATEGORIES), n)
    r = rng.random(m)
    category = np.where(r < 0.55, main_cat[oc],
                        np.where(r < 0.8, second_cat[oc], rng.integers(0, len(_CATEGORIES), m)))
    product = _PRODUCT_OFFSETS[category] + np.minimum(
        (rng.random(m) * _PRODUCT_COUNTS[category]).astype(np.int64), _PRODUCT_COUNTS[category] - 1)
    margin = (_INDUSTRY_MARGIN[industry[oc]] + _CATEGORY_MARGIN_SHIFT[category]
              + rng.normal(0.0, 0.03, m))
    margin = np.clip(margin - 0.03 * (size[oc] == 0), 0.10, 0.40)  # big buyers squeeze price
    cost = np.round(amount * (1.0 - margin), 2)
    channel_main = np.select([size == 0, size == 1, size == 2],
                             [np.zeros(n, np.int64), rng.choice(2, n, p=[0.7, 0.3]),
                              rng.choice(4, n, p=[0.3, 0.4, 0.2, 0.1])],
                             rng.choice(4, n, p=[0.05, 0.35, 0.4, 0.2]))
    channel = np.where(rng.random(m) < 0.85, channel_main[oc],
                       rng.integers(0, len(_CHANNELS), m))

    # ---- refunds: ~2% of all rows, partial or full returns dated after the original
    # (a lapsed customer's returns come before its stop date, so it stays silent after it).
    eligible = np.flatnonzero(day < e[oc] - 3)
    n_ref = min(len(eligible), round(m * 0.02 / 0.98))
    src = np.sort(rng.choice(eligible, n_ref, replace=False))
    frac = np.where(rng.random(n_ref) < 0.35, 1.0, rng.uniform(0.05, 0.8, n_ref))
    ref_day = np.minimum(day[src] + 3 + np.floor(rng.exponential(20.0, n_ref)),
                         np.floor(e[oc[src]]))
    oc = np.concatenate([oc, oc[src]])
    day = np.concatenate([day, ref_day.astype(np.int64)])
    amount = np.concatenate([amount, -np.round(amount[src] * frac, 2)])
    cost = np.concatenate([cost, -np.round(cost[src] * frac, 2)])
    category = np.concatenate([category, category[src]])
    product = np.concatenate([product, product[src]])
    channel = np.concatenate([channel, channel[src]])

    # ---- sort by date, number within the day
    srt = _sort_days(day)
    oc, day, amount, cost = oc[srt], day[srt], amount[srt], cost[srt]
    category, product, channel = category[srt], product[srt], channel[srt]
    epoch = (start_day + day).astype(np.int64)
    order_id = _order_ids(day, int(start_day), int(span))
    customer_id = _customer_ids(np.arange(n), n)

    orders = pa.table({
        "order_id": order_id,
        "customer_id": _customer_ids(oc, n),
        "order_date": _dates(epoch),
        "amount": pa.array(amount, pa.float64()),
        "cost": pa.array(cost, pa.float64()),
        "product": _take(_PRODUCT_NAMES, product),
        "category": _take(_CATEGORIES, category),
        "channel": _take(_CHANNELS, channel),
    })

    # ---- customers table
    since_epoch = np.floor(start_day + since).astype(np.int64)
    first_order = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_order, oc, epoch)
    since_epoch = np.where(active, np.minimum(since_epoch, first_order), since_epoch)
    since_missing = rng.random(n) < 0.03
    customers = pa.table({
        "customer_id": customer_id,
        "name": _company_names(rng, industry, region, size),
        "contact": _mobiles(rng, n),
        "industry": _take(INDUSTRIES, industry),
        "region": _take(REGIONS, region),
        "size": _take(SIZES, size),
        "since": _dates(since_epoch, since_missing),
        "owner": _take(_OWNERS, owner),
        "员工人数": pc.cast(pa.array(employees), pa.string()),
    })

    interactions = _interactions(rng, segment, size, since, s, e, span, start_day)
    payments = _payments(np.random.default_rng([seed, 1]), orders, oc, epoch, amount,
                         segment, size, end_day)
    return DemoData(customers=customers, orders=orders, interactions=interactions,
                    payments=payments)


def _company_names(rng: np.random.Generator, industry: np.ndarray, region: np.ndarray,
                   size: np.ndarray) -> pa.Array:
    """Unique names like 上海华腾机械有限公司 / 深圳市优品电子科技有限公司.

    A name is city + brand + industry word (+ 市 after non-municipal cities, and 有限公司 or
    股份有限公司); uniqueness is enforced on the (city, brand, word) triple, redrawing
    clashes, so no two customers differ only by 市 or by the company form."""
    n = len(industry)
    cities = tuple(c for group in _REGION_CITIES for c in group)
    city_n = np.array([len(g) for g in _REGION_CITIES])
    city_off = np.concatenate([[0], np.cumsum(city_n)[:-1]])
    words = tuple(w for ws in _INDUSTRY_WORDS for w in ws)
    word_n = np.array([len(ws) for ws in _INDUSTRY_WORDS])
    word_off = np.concatenate([[0], np.cumsum(word_n)[:-1]])
    n_brands, n_words = len(_BRANDS), len(words)

    city = np.zeros(n, np.int64)
    brand = np.zeros(n, np.int64)
    word = np.zeros(n, np.int64)
    done = np.zeros(0, np.int64)
    todo = np.arange(n)
    for _ in range(100):
        k = len(todo)
        city[todo] = city_off[region[todo]] + rng.integers(0, city_n[region[todo]])
        brand[todo] = rng.integers(0, n_brands, k)
        word[todo] = word_off[industry[todo]] + rng.integers(0, word_n[industry[todo]])
        order = np.concatenate([done, todo])
        key = (city[order] * n_brands + brand[order]) * n_words + word[order]
        _, first = np.unique(key, return_index=True)  # first occurrence wins: `done` first
        ok = np.zeros(len(order), dtype=bool)
        ok[first] = True
        done, todo = order[ok], order[~ok]
        if not len(todo):
            break

    municipal = np.array([c in _MUNICIPALITIES for c in cities])
    with_shi = ~municipal[city] & (rng.random(n) < 0.5)
    listed = rng.random(n) < np.where(size == 0, 0.45, 0.08)
    names = pc.binary_join_element_wise(
        _take(cities, city), _take(("", "市"), with_shi.astype(np.int64)),
        _take(_BRANDS, brand), _take(words, word),
        _take(("有限公司", "股份有限公司"), listed.astype(np.int64)), "")
    if len(todo):  # more customers than names: number the leftovers as branches
        branch = np.zeros(n, np.int64)
        branch[todo] = np.arange(1, len(todo) + 1)
        suffix = pc.binary_join_element_wise(
            pc.cast(pa.array(branch), pa.string()), "分公司", "")
        names = pc.if_else(pa.array(branch > 0),
                           pc.binary_join_element_wise(names, suffix, ""), names)
    return names


def _mobiles(rng: np.random.Generator, n: int) -> pa.Array:
    """Masked mobile numbers like 138****1234."""
    prefix = pc.cast(pa.array(rng.choice(_MOBILE_PREFIXES, n)), pa.string())
    tail = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10_000, n)), pa.string()),
                        width=4, padding="0")
    return pc.binary_join_element_wise(prefix, "****", tail, "")


def _interactions(rng: np.random.Generator, segment: np.ndarray,
                  size: np.ndarray, since: np.ndarray, s: np.ndarray, e: np.ndarray,
                  span: float, start_day: float) -> pa.Table:
    """Visits, calls and emails scale with size; complaints are more frequent and survey
    scores lower for declining and lapsed customers; prospects only get sales contacts."""
    n = len(segment)
    prospect = segment == _PROSPECT
    lo = np.where(prospect, np.clip(since, 0.0, span), np.clip(np.minimum(since, s), 0.0, span))
    hi = np.where(segment == _LAPSED, np.minimum(e + 60.0, span), span)
    years = np.maximum(hi - lo, 1.0) / 365.25
    declining = segment == _DECLINING
    lapsed = segment == _LAPSED
    rates = np.stack([
        np.where(prospect, 1.0, _RATE_VISIT[size]),
        np.where(prospect, 2.0, _RATE_CALL[size]),
        np.where(prospect, 2.0, _RATE_EMAIL[size]),
        np.where(prospect, 0.0, 0.25 * np.where(declining, 4.0, np.where(lapsed, 2.5, 1.0))),
        np.where(prospect, 0.0, 0.8),
        np.where(prospect, 0.3, _RATE_EVENT[size]),
    ], axis=1)
    counts = rng.poisson(rates * years[:, None])  # (n, 6)
    cust = np.repeat(np.tile(np.arange(n), 6), counts.T.ravel())
    kind = np.repeat(np.repeat(np.arange(6), n), counts.T.ravel())
    k = len(cust)
    day = np.floor(lo[cust] + rng.random(k) * (hi[cust] + 1.0 - lo[cust])).astype(np.int64)
    day = np.clip(day, 0, np.floor(hi[cust]).astype(np.int64))

    survey = kind == 4
    mood = np.select([declining[cust], lapsed[cust]], [2.9, 3.3], 4.1)
    score = np.clip(np.round(mood + rng.normal(0.0, 0.8, k)), 1.0, 5.0)
    no_answer = ~survey | (rng.random(k) < 0.15)

    srt = _sort_days(day)
    cust, kind, day, score, no_answer = cust[srt], kind[srt], day[srt], score[srt], no_answer[srt]
    note_u = rng.random(k)
    return pa.table({
        "customer_id": _customer_ids(cust, n),
        "date": _dates((start_day + day).astype(np.int64)),
        "type": _take(INTERACTION_TYPES, kind),
        "satisfaction": pa.array(score, pa.float64(), mask=no_answer),
        "note": _ragged_take(_NOTES, kind, note_u),
    })


def _payments(rng: np.random.Generator, orders: pa.Table, oc: np.ndarray, epoch: np.ndarray,
              amount: np.ndarray, segment: np.ndarray, size: np.ndarray,
              end_day: int) -> pa.Table:
    """Invoices for the purchases of the last ~18 months (see the module docstring).

    ``oc``, ``epoch`` and ``amount`` are the orders' customer positions, dates (days since
    1970) and amounts, in the rows' order; invoice ids are the order ids with AR for SO."""
    n = len(segment)
    terms = np.where(rng.random(n) < _NET60_SHARE[size], 60, 30)
    slow = rng.random(n) < _SLOW_PAYER_SHARE[segment]
    defaulter = rng.random(n) < _DEFAULTER_SHARE[segment]
    stop_back = np.floor(rng.uniform(0.0, 90.0, n)).astype(np.int64)

    rows = np.flatnonzero((amount > 0) & (epoch > end_day - _INVOICE_DAYS))
    c, issued = oc[rows], epoch[rows]
    k = len(rows)
    due = issued + terms[c]
    early = np.floor(rng.exponential(6.0, k)).astype(np.int64)
    late = rng.random(k) < np.where(slow[c], _LATE_RATE_SLOW, _LATE_RATE_OTHER)
    lateness = rng.integers(10, 91, k)
    pay_day = np.where(late, due + lateness, np.maximum(due - early, issued + 1))
    # A few invoices of the last weeks (not yet or just due) are partly paid so far.
    partial = ((due >= end_day - 30) & (issued < end_day - 3)
               & (rng.random(k) < 0.1))
    part_day = issued + 1 + np.floor(rng.random(k) * (end_day - issued)).astype(np.int64)
    part_amount = np.round(amount[rows] * rng.uniform(0.3, 0.9, k), 2)
    # Defaulters stopped paying up to 90 days before their last invoice that is more than 30
    # days past due at the end, so each of them has at least one such invoice.
    old_enough = issued <= end_day - terms[c] - 31
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, c[old_enough], issued[old_enough])
    stop = np.where(defaulter & (latest > np.iinfo(np.int64).min), latest - stop_back,
                    np.iinfo(np.int64).max)
    unpaid = issued >= stop[c]

    paid = ((pay_day <= end_day) | partial) & ~unpaid
    paid_day = np.where(partial, part_day, pay_day)
    paid_amount = np.where(partial, part_amount, amount[rows])
    return pa.table({
        "invoice_id": pc.utf8_replace_slice(orders["order_id"].take(pa.array(rows)), 0, 2,
                                            "AR").combine_chunks(),
        "customer_id": orders["customer_id"].take(pa.array(rows)).combine_chunks(),
        "invoice_date": _dates(issued),
        "due_date": _dates(due),
        "amount": pa.array(amount[rows], pa.float64()),
        "paid_date": _dates(paid_day, ~paid),
        "paid_amount": pa.array(paid_amount, pa.float64(), mask=~paid),
    })


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
