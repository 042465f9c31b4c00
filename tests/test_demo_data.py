"""Specification of the synthetic demo data (`tierwise.demo.synthetic`)."""

from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pytest

from tierwise.demo.build import build_demo
from tierwise.demo.export_files import write_files
from tierwise.demo.synthetic import (
    INDUSTRIES,
    INTERACTION_TYPES,
    REGIONS,
    SIZES,
    DemoData,
    generate,
)
from tierwise.policy.loading import load_policy_text
from tierwise.policy.presets import preset_text
from tierwise.work.owners import read_reps
from tierwise.workspace import Workspace

END = datetime.date(2025, 6, 30)
OWNERS = {"张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄婷", "周杰", "吴敏",
          "徐涛", "孙丽"}


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate(2000, seed=7, end=END)


def _sql(data: DemoData, query: str) -> list[tuple]:
    con = duckdb.connect()
    con.register("customers", data.customers)
    con.register("orders", data.orders)
    con.register("interactions", data.interactions)
    con.register("payments", data.payments)
    return con.sql(query).fetchall()


def _last_12_months_spend(data: DemoData, end: datetime.date = END) -> str:
    """SQL for each customer's net spend over the 12 months ending at ``end`` (0 if none)."""
    return f"""
        SELECT c.customer_id, coalesce(sum(o.amount), 0) AS spend
        FROM customers c LEFT JOIN orders o
          ON o.customer_id = c.customer_id
         AND o.order_date > DATE '{end}' - INTERVAL 12 MONTH
         AND o.order_date <= DATE '{end}'
        GROUP BY c.customer_id"""


# ----------------------------------------------------------------------------- shape


def test_same_seed_same_data_other_seed_other_data(data: DemoData) -> None:
    again = generate(2000, seed=7, end=END)
    for name in ("customers", "orders", "interactions", "payments"):
        assert getattr(again, name).equals(getattr(data, name)), name
    other = generate(2000, seed=8, end=END)
    assert not other.orders.equals(data.orders)
    assert not other.customers.equals(data.customers)
    assert not other.payments.equals(data.payments)


def test_schemas(data: DemoData) -> None:
    s = pa.string()
    assert data.customers.schema == pa.schema([
        ("customer_id", s), ("name", s), ("contact", s), ("industry", s), ("region", s),
        ("size", s), ("since", pa.date32()), ("owner", s), ("员工人数", s)])
    assert data.orders.schema == pa.schema([
        ("order_id", s), ("customer_id", s), ("order_date", pa.date32()),
        ("amount", pa.float64()), ("cost", pa.float64()), ("product", s), ("category", s),
        ("channel", s)])
    assert data.interactions.schema == pa.schema([
        ("customer_id", s), ("date", pa.date32()), ("type", s), ("satisfaction", pa.float64()),
        ("note", s)])
    assert data.payments.schema == pa.schema([
        ("invoice_id", s), ("customer_id", s), ("invoice_date", pa.date32()),
        ("due_date", pa.date32()), ("amount", pa.float64()), ("paid_date", pa.date32()),
        ("paid_amount", pa.float64())])
    assert data.customers.num_rows == 2000
    # 2,000 customers make tens of thousands of orders, not a handful.
    assert 30_000 < data.orders.num_rows < 120_000
    assert data.interactions.num_rows > 20_000


def test_no_nulls_except_since_and_satisfaction(data: DemoData) -> None:
    for table in (data.customers, data.orders, data.interactions):
        for name in table.column_names:
            if name not in ("since", "satisfaction"):
                assert table[name].null_count == 0, name


def test_ids_are_unique_and_well_formed(data: DemoData) -> None:
    ids = data.customers["customer_id"].to_pylist()
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"C\d{6}", i) for i in ids)
    order_ids = data.orders["order_id"].to_pylist()
    assert len(set(order_ids)) == len(order_ids)
    assert all(re.fullmatch(r"SO\d{8}-\d{6}", i) for i in order_ids)
    # The id carries the order date.
    dates = data.orders["order_date"].to_pylist()
    assert all(i[2:10] == d.strftime("%Y%m%d") for i, d in zip(order_ids, dates, strict=True))
    known = set(ids)
    assert set(data.orders["customer_id"].to_pylist()) <= known
    assert set(data.interactions["customer_id"].to_pylist()) <= known


def test_amounts_have_two_decimals(data: DemoData) -> None:
    for col in ("amount", "cost"):
        values = data.orders[col].to_pylist()
        assert all(round(v, 2) == v for v in values), col


def test_everything_is_dated_within_the_history(data: DemoData) -> None:
    first = END - datetime.timedelta(days=round(4 * 365.25))
    for table, col in ((data.orders, "order_date"), (data.interactions, "date")):
        dates = table[col].to_pylist()
        assert min(dates) >= first and max(dates) == END, col
    # Changing the end date moves the whole history along.
    later = generate(50, seed=7, end=datetime.date(2026, 1, 15), years=2)
    dates = later.orders["order_date"].to_pylist()
    assert max(dates) <= datetime.date(2026, 1, 15)
    assert min(dates) >= datetime.date(2024, 1, 15)


# --------------------------------------------------------------------- customer master


def test_customer_attributes_use_the_chinese_vocabularies(data: DemoData) -> None:
    c = data.customers
    assert set(c["industry"].to_pylist()) == set(INDUSTRIES)
    assert set(c["region"].to_pylist()) == set(REGIONS)
    assert set(c["size"].to_pylist()) == set(SIZES) == {"大型", "中型", "小型", "微型"}
    assert set(c["owner"].to_pylist()) == OWNERS
    assert all(re.fullmatch(r"1[3-9]\d\*{4}\d{4}", p) for p in c["contact"].to_pylist())
    assert all(e.isdigit() for e in c["员工人数"].to_pylist())


def test_company_names_are_unique_chinese_company_names(data: DemoData) -> None:
    names = data.customers["name"].to_pylist()
    assert len(set(names)) == len(names)
    assert all(n.endswith("有限公司") for n in names)
    assert any(n.endswith("股份有限公司") for n in names)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{8,20}", n) for n in names)
    # Names start with a city of the customer's region.
    assert any(n.startswith("上海") for n in names)
    assert any(re.match(r"[\u4e00-\u9fff]{2,4}市", n) for n in names)


def test_names_stay_unique_at_scale() -> None:
    big = generate(30_000, seed=3, end=END)
    names = big.customers["name"].to_pylist()
    assert len(set(names)) == len(names)


def test_size_and_headcount_follow_spend(data: DemoData) -> None:
    rows = _sql(data, f"""
        WITH s AS ({_last_12_months_spend(data)})
        SELECT size, median(spend), median(CAST("员工人数" AS INTEGER))
        FROM customers JOIN s USING (customer_id) GROUP BY size""")
    by_size = {size: (spend, staff) for size, spend, staff in rows}
    spends = [by_size[s][0] for s in SIZES]  # 大型, 中型, 小型, 微型
    staff = [by_size[s][1] for s in SIZES]
    assert spends == sorted(spends, reverse=True)
    assert staff == sorted(staff, reverse=True)
    assert by_size["大型"][1] >= 1000 and by_size["微型"][1] < 20


def test_since_is_mostly_present_and_not_after_the_first_order(data: DemoData) -> None:
    ((missing, share_before_data, after_first),) = _sql(data, """
        WITH f AS (SELECT customer_id, min(order_date) AS first FROM orders GROUP BY 1)
        SELECT avg((since IS NULL)::INT),
               avg((since < (SELECT min(order_date) FROM orders))::INT),
               count(*) FILTER (WHERE since > first)
        FROM customers LEFT JOIN f USING (customer_id)""")
    assert 0.015 <= missing <= 0.05
    assert share_before_data > 0.05  # some relationships predate the order history
    assert after_first == 0


# ------------------------------------------------------------------------ value model


def test_tier_shares_over_the_last_12_months(data: DemoData) -> None:
    """The usual value tiers: VIP ≥ 100万 5–10%, 重要 50–100万 15–20%,
    普通 10–50万 40–50%, 潜在 < 10万 or nothing 20–30%."""
    ((vip, important, normal, potential),) = _sql(data, f"""
        WITH s AS ({_last_12_months_spend(data)})
        SELECT avg((spend >= 1e6)::INT), avg((spend >= 5e5 AND spend < 1e6)::INT),
               avg((spend >= 1e5 AND spend < 5e5)::INT), avg((spend < 1e5)::INT) FROM s""")
    assert 0.05 <= vip <= 0.10
    assert 0.15 <= important <= 0.20
    assert 0.40 <= normal <= 0.50
    assert 0.20 <= potential <= 0.30


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tier_shares_hold_for_other_seeds(seed: int) -> None:
    other = generate(2000, seed=seed, end=datetime.date(2024, 12, 31))
    ((vip, important, normal, potential),) = _sql(other, f"""
        WITH s AS ({_last_12_months_spend(other, datetime.date(2024, 12, 31))})
        SELECT avg((spend >= 1e6)::INT), avg((spend >= 5e5 AND spend < 1e6)::INT),
               avg((spend >= 1e5 AND spend < 5e5)::INT), avg((spend < 1e5)::INT) FROM s""")
    assert 0.05 <= vip <= 0.10
    assert 0.15 <= important <= 0.20
    assert 0.40 <= normal <= 0.50
    assert 0.20 <= potential <= 0.30


def test_a_fifth_of_customers_carry_most_revenue(data: DemoData) -> None:
    ((top_share,),) = _sql(data, f"""
        WITH s AS ({_last_12_months_spend(data)}),
        r AS (SELECT spend, row_number() OVER (ORDER BY spend DESC) AS rn,
                     count(*) OVER () AS n FROM s)
        SELECT sum(spend) FILTER (WHERE rn <= n * 0.2) / sum(spend) FROM r""")
    assert 0.70 <= top_share <= 0.85


def test_trajectories_prospects_new_and_lapsed(data: DemoData) -> None:
    ((no_orders, new, lapsed, long_gone),) = _sql(data, f"""
        WITH f AS (SELECT customer_id, min(order_date) AS first, max(order_date) AS last
                   FROM orders GROUP BY 1)
        SELECT avg((first IS NULL)::INT),
               avg((first > DATE '{END}' - INTERVAL 12 MONTH)::INT),
               avg((last <= DATE '{END}' - INTERVAL 6 MONTH
                    AND last > DATE '{END}' - INTERVAL 18 MONTH)::INT),
               avg((last <= DATE '{END}' - INTERVAL 19 MONTH)::INT)
        FROM customers LEFT JOIN f USING (customer_id)""")
    assert 0.03 <= no_orders <= 0.07  # prospects
    assert 0.06 <= new <= 0.13  # first order within the last year
    assert 0.05 <= lapsed <= 0.15  # silent for 6–18 months
    assert long_gone < 0.02


def test_growing_and_declining_customers_both_exist(data: DemoData) -> None:
    ((growing, declining),) = _sql(data, f"""
        WITH y AS (
            SELECT customer_id,
                   sum(amount) FILTER (WHERE order_date > DATE '{END}' - INTERVAL 12 MONTH) AS now,
                   sum(amount) FILTER (WHERE order_date <= DATE '{END}' - INTERVAL 24 MONTH
                                       AND order_date > DATE '{END}' - INTERVAL 36 MONTH) AS before
            FROM orders GROUP BY 1)
        SELECT avg((now > 1.5 * before)::INT), avg((now < 0.6 * before)::INT)
        FROM y WHERE before > 0""")
    assert growing > 0.1
    assert declining > 0.1


def test_order_frequency_varies_from_monthly_to_a_few_times_a_year(data: DemoData) -> None:
    ((monthly, occasional),) = _sql(data, f"""
        WITH n AS (SELECT customer_id, count(*) AS k FROM orders
                   WHERE amount > 0 AND order_date > DATE '{END}' - INTERVAL 12 MONTH
                   GROUP BY 1)
        SELECT avg((k >= 12)::INT), avg((k <= 4)::INT) FROM n""")
    assert monthly > 0.1
    assert occasional > 0.1


def test_refunds_are_negative_and_follow_a_purchase(data: DemoData) -> None:
    ((share, worst, refunded_before_buying),) = _sql(data, """
        WITH f AS (SELECT customer_id, min(order_date) AS first FROM orders
                   WHERE amount > 0 GROUP BY 1)
        SELECT avg((amount < 0)::INT), min(amount),
               count(*) FILTER (WHERE amount < 0 AND order_date <= first)
        FROM orders JOIN f USING (customer_id)""")
    assert 0.01 <= share <= 0.03
    assert worst < 0
    assert refunded_before_buying == 0
    # Refunds return goods: cost goes negative with the amount.
    ((bad_cost,),) = _sql(data, "SELECT count(*) FROM orders WHERE amount < 0 AND cost > 0")
    assert bad_cost == 0


def test_margins_are_10_to_40_percent_and_vary_by_industry(data: DemoData) -> None:
    rows = _sql(data, """
        SELECT industry, sum(amount - cost) / sum(amount), min((amount - cost) / amount),
               max((amount - cost) / amount)
        FROM orders JOIN customers USING (customer_id) WHERE amount > 0 GROUP BY 1""")
    margins = [m for _, m, _, _ in rows]
    assert all(lo >= 0.099 and hi <= 0.401 for _, _, lo, hi in rows)
    assert max(margins) - min(margins) > 0.1


# ----------------------------------------------------------------------- interactions


def test_interactions(data: DemoData) -> None:
    i = data.interactions
    assert set(i["type"].to_pylist()) == set(INTERACTION_TYPES)
    rows = _sql(data, """
        SELECT type, count(*), count(satisfaction), min(satisfaction), max(satisfaction)
        FROM interactions GROUP BY 1""")
    by_type = {t: (n, rated, lo, hi) for t, n, rated, lo, hi in rows}
    n, rated, lo, hi = by_type["survey"]
    assert 0.7 * n <= rated < n  # most surveys answered, some not
    assert lo == 1.0 and hi == 5.0
    for t in ("visit", "call", "email", "complaint", "event"):
        assert by_type[t][1] == 0, t
    assert by_type["complaint"][0] < by_type["call"][0] / 3  # a few complaints


def test_big_customers_get_more_attention(data: DemoData) -> None:
    rows = _sql(data, """
        SELECT size, count(*) FILTER (WHERE type IN ('visit', 'call', 'email'))
                     / count(DISTINCT customer_id)
        FROM interactions JOIN customers USING (customer_id) GROUP BY 1""")
    per_customer = dict(rows)
    assert per_customer["大型"] > 2 * per_customer["小型"] > 2 * per_customer["微型"]


def test_shrinking_customers_complain_more_and_score_lower(data: DemoData) -> None:
    rows = _sql(data, f"""
        WITH y AS (
            SELECT customer_id,
                   sum(amount) FILTER (WHERE order_date > DATE '{END}' - INTERVAL 12 MONTH) AS now,
                   sum(amount) FILTER (WHERE order_date <= DATE '{END}' - INTERVAL 24 MONTH
                                       AND order_date > DATE '{END}' - INTERVAL 36 MONTH) AS before
            FROM orders GROUP BY 1),
        g AS (SELECT customer_id, coalesce(now, 0) < 0.5 * before AS shrinking
              FROM y WHERE before > 0)
        SELECT shrinking, avg(satisfaction),
               count(*) FILTER (WHERE type = 'complaint') / count(DISTINCT customer_id)
        FROM interactions JOIN g USING (customer_id) GROUP BY 1""")
    stats = {shrinking: (score, complaints) for shrinking, score, complaints in rows}
    assert stats[True][0] < stats[False][0] - 0.3
    assert stats[True][1] > 1.5 * stats[False][1]


# ------------------------------------------------------------------------ receivables


def test_one_invoice_per_purchase_of_the_last_18_months(data: DemoData) -> None:
    ((orders, invoices, matched),) = _sql(data, f"""
        WITH o AS (SELECT * FROM orders
                   WHERE amount > 0 AND order_date > DATE '{END}' - INTERVAL 548 DAY)
        SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM payments),
               (SELECT count(*) FROM payments p JOIN o
                  ON p.invoice_id = 'AR' || substr(o.order_id, 3)
                 AND p.customer_id = o.customer_id AND p.invoice_date = o.order_date
                 AND p.amount = o.amount)""")
    assert orders == invoices == matched > 10_000
    ids = data.payments["invoice_id"].to_pylist()
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"AR\d{8}-\d{6}", i) for i in ids)


def test_invoices_are_consistent(data: DemoData) -> None:
    ((bad_due, bad_paid_date, bad_amount, paid_after_end, amount_without_date, terms),) = _sql(
        data, f"""
        SELECT count(*) FILTER (WHERE due_date < invoice_date),
               count(*) FILTER (WHERE paid_date < invoice_date),
               count(*) FILTER (WHERE paid_amount > amount OR paid_amount <= 0),
               count(*) FILTER (WHERE paid_date > DATE '{END}'),
               count(*) FILTER (WHERE (paid_date IS NULL) <> (paid_amount IS NULL)),
               list(DISTINCT due_date - invoice_date ORDER BY due_date - invoice_date)
        FROM payments""")
    assert (bad_due, bad_paid_date, bad_amount, paid_after_end, amount_without_date) == (
        0, 0, 0, 0, 0)
    assert terms == [30, 60]
    # A customer keeps its payment terms.
    ((mixed,),) = _sql(data, """
        SELECT count(*) FROM (SELECT customer_id FROM payments GROUP BY 1
                              HAVING count(DISTINCT due_date - invoice_date) > 1)""")
    assert mixed == 0


def test_most_invoices_are_paid_on_time(data: DemoData) -> None:
    ((on_time, late, partial, open_),) = _sql(data, """
        SELECT avg((paid_date <= due_date AND paid_amount = amount)::INT),
               avg((paid_date > due_date)::INT),
               avg((paid_amount < amount)::INT),
               avg((paid_date IS NULL)::INT)
        FROM payments""")
    assert on_time > 0.85
    assert 0.01 < late < 0.08
    assert 0.002 < partial < 0.03
    assert 0.02 < open_ < 0.12
    ((worst_late,),) = _sql(data, "SELECT max(paid_date - due_date) FROM payments")
    assert worst_late <= 90


def test_some_customers_are_overdue_more_among_the_shrinking(data: DemoData) -> None:
    """Overdue as tierwise counts it (metrics.payment_metrics) as of the end."""
    rows = _sql(data, f"""
        WITH o AS (
            SELECT customer_id, max(DATE '{END}' - due_date) AS days
            FROM payments
            WHERE due_date < DATE '{END}'
              AND amount - coalesce(paid_amount, 0) > 0
            GROUP BY 1),
        y AS (
            SELECT customer_id,
                   coalesce(sum(amount) FILTER (
                       WHERE order_date > DATE '{END}' - INTERVAL 12 MONTH), 0) AS now,
                   sum(amount) FILTER (WHERE order_date <= DATE '{END}' - INTERVAL 12 MONTH
                                       AND order_date > DATE '{END}' - INTERVAL 24 MONTH)
                       AS before
            FROM orders GROUP BY 1)
        SELECT now < 0.5 * before AS shrinking, avg((coalesce(days, 0) > 30)::INT), count(*)
        FROM y LEFT JOIN o USING (customer_id) WHERE before > 0 GROUP BY 1""")
    share = {shrinking: s for shrinking, s, _ in rows}
    assert 0.01 < share[False] < 0.07
    assert share[True] > 2 * share[False]
    ((overall,),) = _sql(data, f"""
        SELECT count(DISTINCT customer_id) / 2000 FROM payments
        WHERE due_date < DATE '{END}' - INTERVAL 30 DAY
          AND amount - coalesce(paid_amount, 0) > 0""")
    assert 0.02 < overall < 0.07


# ------------------------------------------------------------------------ write_files


@pytest.fixture(scope="module")
def files(data: DemoData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_files(data, tmp_path_factory.mktemp("demo"))


def test_write_files_names(files: dict[str, Path]) -> None:
    assert set(files) == {"customers", "orders", "interactions", "payments", "reps"}
    assert files["customers"].name == "客户.xlsx"
    assert files["orders"].name == "订单.csv"
    assert files["interactions"].name == "互动记录.csv"
    assert files["payments"].name == "应收账款.csv"
    assert files["reps"].name == "销售名单.csv"
    assert all(p.exists() for p in files.values())


def test_orders_csv_is_gbk_with_chinese_headers(data: DemoData, files: dict[str, Path]) -> None:
    raw = files["orders"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw.decode("gb18030"))))
    assert rows[0] == ["订单号", "客户编号", "下单日期", "订单金额", "成本", "产品", "品类", "渠道"]
    body = rows[1:]
    assert len(body) == data.orders.num_rows
    assert all(re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}", r[2]) for r in body)
    assert all(re.fullmatch(r"-?[¥￥]\d{1,3}(,\d{3})*\.\d{2}", r[3]) for r in body)
    assert any(r[3].startswith("-") for r in body)  # refunds
    # Values round-trip: first row matches the table.
    first = data.orders.slice(0, 1).to_pylist()[0]
    d = first["order_date"]
    assert body[0][:3] == [first["order_id"], first["customer_id"], f"{d.year}/{d.month}/{d.day}"]
    assert float(body[0][3].lstrip("-¥￥").replace(",", "")) == abs(first["amount"])
    assert float(body[0][4]) == first["cost"]
    amounts = [float(r[3].replace("￥", "").replace(",", "")) for r in body]
    assert sum(amounts) == pytest.approx(sum(data.orders["amount"].to_pylist()))


def test_customers_xlsx_has_chinese_headers_and_date_cells(
        data: DemoData, files: dict[str, Path]) -> None:
    ws = openpyxl.load_workbook(files["customers"]).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=False))
    assert [c.value for c in rows[0]] == ["客户编号", "客户名称", "联系方式", "行业", "地区",
                                          "规模", "合作开始日期", "客户经理", "员工人数"]
    assert len(rows) == data.customers.num_rows + 1
    since = [r[6] for r in rows[1:]]
    dated = [c for c in since if c.value is not None]
    assert dated and all(c.is_date for c in dated)
    assert len(dated) < len(since)  # some customers have no start date
    expected = data.customers["since"].to_pylist()
    got = [c.value.date() if isinstance(c.value, datetime.datetime) else c.value
           for c in since]
    assert got == expected
    assert rows[1][0].value == data.customers["customer_id"][0].as_py()
    assert rows[1][1].value == data.customers["name"][0].as_py()


def test_interactions_csv_is_utf8_with_bom(data: DemoData, files: dict[str, Path]) -> None:
    raw = files["interactions"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["客户编号", "日期", "类型", "满意度", "备注"]
    assert len(rows) == data.interactions.num_rows + 1
    assert {r[2] for r in rows[1:]} == {"拜访", "电话", "邮件", "投诉", "调查", "活动"}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r[1]) for r in rows[1:])
    scores = {r[3] for r in rows[1:]}
    assert "" in scores and scores - {""} <= {"1", "2", "3", "4", "5"}


def test_payments_csv_is_gbk_with_chinese_headers(data: DemoData,
                                                  files: dict[str, Path]) -> None:
    raw = files["payments"].read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("gbk"))))
    assert rows[0] == ["应收单号", "客户编号", "开票日期", "到期日", "应收金额", "回款日期",
                       "回款金额"]
    body = rows[1:]
    assert len(body) == data.payments.num_rows
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r[2]) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", r[3])
               for r in body)
    assert all(re.fullmatch(r"\d+\.\d{2}", r[4]) for r in body)
    assert any(r[5] == "" and r[6] == "" for r in body)  # unpaid
    first = data.payments.slice(0, 1).to_pylist()[0]
    assert body[0][:4] == [first["invoice_id"], first["customer_id"],
                           first["invoice_date"].isoformat(), first["due_date"].isoformat()]
    assert float(body[0][4]) == first["amount"]


def test_reps_csv_lists_the_owners_with_capacities_per_tier(files: dict[str, Path]) -> None:
    raw = files["reps"].read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("gbk"))))
    assert rows[0] == ["姓名", "级别", "区域", "在职", "VIP客户容量", "重要客户容量",
                       "普通客户容量", "潜在客户容量"]
    policy = load_policy_text(preset_text("value-tiers"))
    found = read_reps(files["reps"], policy)
    assert found.ignored_columns == []
    reps = {r.name: r for r in found.reps}
    assert set(reps) == OWNERS
    assert {r.region for r in reps.values()} <= set(REGIONS)
    assert [r.name for r in reps.values() if not r.active] == ["赵磊"]
    newcomers = [r for r in reps.values() if r.level == 0]
    assert len(newcomers) == 2 and all(r.cap("vip") == 0 for r in newcomers)
    assert all(r.cap("potential") is None for r in reps.values())  # no limit
    seniors = [r for r in reps.values() if r.level >= 3]
    assert seniors and all(r.cap("vip") > 0 for r in seniors)
    # Room for the 5–10% VIP customers among the active reps, but not much more.
    vip_room = sum(r.cap("vip") or 0 for r in reps.values() if r.active)
    assert 0.075 * 2000 < vip_room < 0.1 * 2000


def test_demo_imports_payments_and_reps(tmp_path: Path) -> None:
    lines: list[str] = []
    _summary, root = build_demo(tmp_path / "demo", n_customers=400, seed=7,
                                today=datetime.date(2025, 7, 15), months=1,
                                report=lines.append)
    imported = [line for line in lines if line.startswith("Imported 应收账款.csv")]
    assert len(imported) == 1
    accepted, rejected = map(int, re.findall(r"accepted (\d+), rejected (\d+)", imported[0])[0])
    assert accepted > 1000 and rejected == 0
    assert any(line.startswith("Imported 销售名单.csv: added 12 reps") for line in lines)
    with Workspace(root) as ws:
        credit = ws.tasks(kind="credit_risk")
        assert 0 < len(credit) < 0.1 * 400
        assert len(ws.reps()) == 12
        proposal = ws.assign()
        assert proposal.accounts == 400
        assert 0 < len(proposal.moves) < proposal.kept
        assert not proposal.unplaced


def test_small_and_edge_inputs() -> None:
    one = generate(1, seed=1, end=END)
    assert one.customers.num_rows == 1
    short = generate(300, seed=1, end=END, years=1)
    assert min(short.orders["order_date"].to_pylist()) >= END - datetime.timedelta(days=366)
    with pytest.raises(ValueError):
        generate(0, end=END)
    with pytest.raises(ValueError):
        generate(10, end=END, years=0)
