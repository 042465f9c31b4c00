"""Synthetic Chinese B2B customer data for `tierwise demo` and the benchmark.

`generate` builds four Arrow tables (customers, orders, interactions, payments) with numpy
only — no per-customer or per-order Python loop — so 100,000 customers and ~3M orders take
seconds. `write_files` writes them the way a Chinese company's exports usually look:
an xlsx customer list, a GBK order CSV, a UTF-8-with-BOM interaction log and a GBK
receivables (应收账款) CSV, plus a GBK list of the sales reps (销售名单) for owner assignment.

The value model: every customer has a latent annual spend ``W`` drawn from a calibrated
heavy-tailed distribution (over the last 12 months about 7.5% spend 100万+, 18% 50–100万,
47% 10–50万 and the rest under 10万 or nothing; the top fifth of customers carry ~74% of
revenue, in line with the usual VIP/重要/普通/潜在 value tiers). Orders follow a
renewal process (gamma-distributed gaps) whose
frequency and ticket size both move with the customer's trajectory (growing, steady,
declining, lapsed, new, prospect), normalised so the expected spend over the last
12 months of activity equals ``W``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tierwise.demo.columns import (
    _customer_ids,
    _dates,
    _mean_one_lognormal,
    _order_ids,
    _ragged_take,
    _shuffled_quota,
    _sort_days,
    _take,
)
from tierwise.demo.receivables import _payments

__all__ = ["INDUSTRIES", "INTERACTION_TYPES", "REGIONS", "SIZES", "DemoData", "generate"]

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
# tail above the last knot. Calibrated so the realised 12-month spends land in the value
# tiers' shares once prospects, lapsed and new customers are mixed in.
_SPEND_KNOTS_Q = np.array([0.0, 0.05, 0.13, 0.44, 0.73, 0.937])
_SPEND_KNOTS_V = np.array([10_000.0, 45_000.0, 100_000.0, 190_000.0, 500_000.0, 1_000_000.0])
_TAIL_ALPHA = 1.0
_SPEND_CAP = 100_000_000.0
# How loosely lapsed/new/prospect customers are drawn from the low end of the value ranking
# (standard deviation of the noise added to the quantile level before ranking).
_FRINGE_NOISE = 0.3



@dataclass
class DemoData:
    """The demo tables; see the module docstring for how they are built."""

    customers: pa.Table
    orders: pa.Table
    interactions: pa.Table
    payments: pa.Table


# ------------------------------------------------------------------------------ helpers


def _spend_quantile(u: np.ndarray) -> np.ndarray:
    """Latent annual spend for quantile levels ``u`` in (0, 1)."""
    body = np.exp(np.interp(u, _SPEND_KNOTS_Q, np.log(_SPEND_KNOTS_V)))
    q_top, v_top = _SPEND_KNOTS_Q[-1], _SPEND_KNOTS_V[-1]
    tail_p = np.clip((1.0 - u) / (1.0 - q_top), 1e-12, 1.0)
    tail = v_top * tail_p ** (-1.0 / _TAIL_ALPHA)
    out: np.ndarray = np.where(u <= q_top, body, np.minimum(tail, _SPEND_CAP))
    return out


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
