"""Payments (invoices → receivables): import, validation, re-import, and the credit-risk
metrics overdue_amount, overdue_days and receivable_amount as of a date.

tests/data/payments.csv (GBK, Chinese headers) holds, by hand:

    V1  P1  issued 01-01  due 01-31  10,000  paid in full 03-15      (paid late)
    V2  P1  issued 02-01  due 03-03   5,000  2,000 paid 04-10        (partially paid, late)
    V3  P2  issued 01-10  due 02-09   8,000  paid in full 02-01      (paid before due)
    V4  P2  issued 03-01  due 05-30   3,000  unpaid                  (not yet due until 05-30)
    V5  P3  issued 04-05  due 04-20   7,000  unpaid                  (issued after 03-31)

all in 2025; P4 is a customer without invoices. An invoice is overdue as of D when its due
date lies before D and part of it is unpaid as of D (payments after D do not count).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.conftest import DATA
from tests.test_import_pipeline import store_in_memory, write_csv
from tierwise.api import grade_frames
from tierwise.cli import main
from tierwise.common.vocabulary import METRICS
from tierwise.data import store
from tierwise.data.ingest import ImportResult, import_files
from tierwise.data.store import ensure_schema
from tierwise.data.tables import CanonicalTables
from tierwise.metrics.per_customer import Window, customer_metrics
from tierwise.workspace import Workspace

PAYMENTS = DATA / "payments.csv"
HEADER = ["应收单号", "客户编号", "开票日期", "到期日", "应收金额", "回款日期", "回款金额"]
RISK_POLICY = """\
name: 信用风险
tiers:
  - {key: risk, label: 信用风险客户, label_en: Credit risk, when: "overdue_days > 30"}
  - {key: ok, label: 正常客户, label_en: OK}
"""


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return store_in_memory()


def run(con: duckdb.DuckDBPyConnection, path: Path, tmp_path: Path) -> ImportResult:
    return import_files(con, "payments", [path], rejects_dir=tmp_path / "rejects")


def counts(result: ImportResult) -> tuple[int, int, int, int]:
    return result.accepted, result.updated, result.unchanged, result.rejected


def read_rejects(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def metrics_as_of(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dict[str, dict[str, Any]]:
    s = CanonicalTables.of_store(ibis.duckdb.from_connection(con), "test")
    table = customer_metrics(s.customers, s.orders, s.interactions, Window(as_of), s.payments)
    rows = ibis.duckdb.from_connection(con).to_pyarrow(table).to_pylist()
    return {row["customer_id"]: row for row in rows}


def credit(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row["overdue_amount"], row["overdue_days"], row["receivable_amount"]


@pytest.fixture
def book(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    customers = write_csv(tmp_path / "客户.csv", [["客户编号", "客户名称"], ["P4", "无发票公司"]])
    import_files(con, "customers", [customers], rejects_dir=tmp_path / "rejects")
    run(con, PAYMENTS, tmp_path)
    return con


# --- import ----------------------------------------------------------------------------------


def test_gbk_csv_with_chinese_headers_imports_invoices(con, tmp_path: Path) -> None:
    result = run(con, PAYMENTS, tmp_path)

    assert counts(result) == (5, 0, 0, 0)
    assert result.files[0].mapping == {
        "应收单号": "invoice_id",
        "客户编号": "customer_id",
        "开票日期": "invoice_date",
        "到期日": "due_date",
        "应收金额(元)": "amount",
        "回款日期": "paid_date",
        "回款金额": "paid_amount",
    }
    assert con.execute("SELECT * FROM payments ORDER BY invoice_id").fetchall() == [
        ("V1", "P1", dt.date(2025, 1, 1), dt.date(2025, 1, 31), 10000.0, dt.date(2025, 3, 15),
         None),
        ("V2", "P1", dt.date(2025, 2, 1), dt.date(2025, 3, 3), 5000.0, dt.date(2025, 4, 10),
         2000.0),
        ("V3", "P2", dt.date(2025, 1, 10), dt.date(2025, 2, 9), 8000.0, dt.date(2025, 2, 1),
         8000.0),
        ("V4", "P2", dt.date(2025, 3, 1), dt.date(2025, 5, 30), 3000.0, None, None),
        ("V5", "P3", dt.date(2025, 4, 5), dt.date(2025, 4, 20), 7000.0, None, None),
    ]
    # Unknown customers are created as placeholders, as orders do.
    assert result.created_customers == ["P1", "P2", "P3"]


@pytest.mark.parametrize("headers", [
    ["发票号", "客户编号", "开票日期", "付款期限", "发票金额", "付款日期", "已付金额"],
    ["单据号", "客户ID", "发票日期", "应收日期", "金额", "收款日期", "已收金额"],
    ["invoice_id", "customer_id", "invoice_date", "due_date", "amount", "paid_date",
     "paid_amount"],
])
def test_common_headers_map_without_a_column_map(con, tmp_path: Path,
                                                 headers: list[str]) -> None:
    path = write_csv(tmp_path / "应收.csv", [headers, ["F1", "C1", "2025-01-01", "2025-02-01",
                                                        "100", "2025-02-03", "100"]])
    result = run(con, path, tmp_path)
    assert counts(result) == (1, 0, 0, 0)
    assert list(result.files[0].mapping.values()) == [
        "invoice_id", "customer_id", "invoice_date", "due_date", "amount", "paid_date",
        "paid_amount"]


def test_each_kind_of_bad_invoice_is_rejected_with_file_row_column_and_reason(
        con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "应收.csv", [
        HEADER,
        ["B1", "C1", "2025-03-01", "2025-02-01", "100", "", ""],            # due before issued
        ["B2", "C1", "2025-03-01", "2025-04-01", "100", "2025-02-28", ""],  # paid before issued
        ["B3", "C1", "2025-03-01", "2025-04-01", "-100", "", ""],           # negative amount
        ["B4", "C1", "2025-03-01", "2025-04-01", "0", "", ""],              # nothing invoiced
        ["B5", "C1", "2025-03-01", "2025-04-01", "100", "2025-03-05", "150"],  # overpaid
        ["B6", "C1", "2025-03-01", "2025-04-01", "100", "2025-03-05", "-5"],   # negative paid
        ["B7", "C1", "2025-03-01", "2025-04-01", "100", "", "50"],          # paid, but when?
        ["B8", "C1", "2025-03-01", "", "100", "", ""],                      # no due date
        ["B9", "C1", "2025-03-01", "下月底", "100", "", ""],                 # not a date
        ["G1", "C1", "", "2025-04-01", "100", "2025-03-05", "100"],         # good: no issue date
        ["G2", "C1", "2025-03-01", "2025-03-01", "100", "2025-03-01", "0"],  # good: due at once
    ])

    result = run(con, path, tmp_path)

    assert counts(result) == (2, 0, 0, 9)
    assert result.rejects_path is not None
    found = [(r["file"], r["row"], r["column"], r["reason"])
             for r in read_rejects(result.rejects_path)]
    file = str(path)
    assert found == [
        (file, "2", "到期日", "due date 2025-02-01 is before the invoice date 2025-03-01"),
        (file, "3", "回款日期", "paid date 2025-02-28 is before the invoice date 2025-03-01"),
        (file, "4", "应收金额", "amount must be more than 0: -100.0"),
        (file, "5", "应收金额", "amount must be more than 0: 0.0"),
        (file, "6", "回款金额", "paid amount 150.0 is more than the invoice amount 100.0"),
        (file, "7", "回款金额", "paid amount is negative: -5.0"),
        (file, "8", "回款金额", "paid amount without a paid date"),
        (file, "9", "到期日", "missing required value"),
        (file, "10", "到期日", "not a date: '下月底'"),
    ]
    assert con.execute("SELECT invoice_id FROM payments ORDER BY 1").fetchall() == [
        ("G1",), ("G2",)]


def test_a_row_with_several_problems_names_each_column(con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "应收.csv", [
        HEADER, ["B1", "C1", "2025-03-01", "2025-02-01", "-1", "", ""]])
    result = run(con, path, tmp_path)
    assert result.rejects_path is not None
    [reject] = read_rejects(result.rejects_path)
    assert reject["column"] == "应收金额, 到期日"
    assert reject["reason"] == ("应收金额: amount must be more than 0: -1.0; 到期日: due date "
                                "2025-02-01 is before the invoice date 2025-03-01")


def test_reimport_changes_nothing_and_a_paid_invoice_counts_as_updated(
        con, tmp_path: Path) -> None:
    run(con, PAYMENTS, tmp_path)
    assert counts(run(con, PAYMENTS, tmp_path)) == (0, 0, 5, 0)

    lines = PAYMENTS.read_bytes().decode("gbk").replace(
        "V4,P2,2025-03-01,2025-05-30,3000,,", "V4,P2,2025-03-01,2025-05-30,3000,2025-06-02,")
    now_paid = tmp_path / "应收-更新.csv"
    now_paid.write_bytes((lines + "V6,P4,2025-06-01,2025-07-01,900,,\n").encode("gbk"))

    assert counts(run(con, now_paid, tmp_path)) == (1, 1, 4, 0)
    assert con.execute(
        "SELECT paid_date, paid_amount FROM payments WHERE invoice_id = 'V4'"
    ).fetchall() == [(dt.date(2025, 6, 2), None)]
    assert con.execute("SELECT count(*) FROM payments").fetchone() == (6,)


def test_the_same_invoice_twice_with_different_content_is_rejected(con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "应收.csv", [
        HEADER,
        ["D1", "C1", "2025-03-01", "2025-04-01", "100", "", ""],
        ["D1", "C1", "2025-03-01", "2025-04-01", "100", "2025-03-09", ""],
    ])
    result = run(con, path, tmp_path)
    assert counts(result) == (0, 0, 0, 2)


def test_an_older_store_gains_an_empty_payments_table(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE customers (customer_id VARCHAR NOT NULL, name VARCHAR, "
                "contact VARCHAR, industry VARCHAR, region VARCHAR, size VARCHAR, "
                "owner VARCHAR, since DATE, placeholder BOOLEAN NOT NULL DEFAULT false)")
    old.execute("INSERT INTO customers (customer_id) VALUES ('C1')")
    old.close()

    con = store.connect(path)
    assert con.execute("SELECT count(*) FROM payments").fetchone() == (0,)
    assert con.execute("SELECT customer_id FROM customers").fetchall() == [("C1",)]
    con.close()


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_are_in_the_vocabulary_with_labels() -> None:
    assert METRICS["overdue_amount"].label("zh") == "逾期金额"
    assert METRICS["overdue_amount"].label("en") == "Overdue amount"
    assert METRICS["overdue_amount"].money
    assert METRICS["overdue_days"].label("zh") == "最长逾期天数"
    assert METRICS["receivable_amount"].label("zh") == "应收余额"
    assert METRICS["receivable_amount"].money


def test_as_of_march_1_an_unpaid_invoice_past_due_is_overdue(book) -> None:
    m = metrics_as_of(book, dt.date(2025, 3, 1))
    # V1 is paid only on 03-15: all 10,000 overdue, 29 days after 01-31; V2 is not yet due.
    assert credit(m["P1"]) == (10_000, 29, 15_000)
    # V3 was paid before it was due; V4 (issued 03-01) is open but not due.
    assert credit(m["P2"]) == (0, 0, 3_000)
    assert credit(m["P3"]) == (0, 0, 0)  # V5 is issued after the date
    assert credit(m["P4"]) == (0, 0, 0)


def test_as_of_march_31_a_late_payment_clears_and_another_invoice_falls_due(book) -> None:
    m = metrics_as_of(book, dt.date(2025, 3, 31))
    assert credit(m["P1"]) == (5_000, 28, 5_000)  # V1 paid 03-15; V2 due 03-03, unpaid
    assert credit(m["P2"]) == (0, 0, 3_000)
    assert credit(m["P3"]) == (0, 0, 0)


def test_as_of_april_30_a_partial_payment_leaves_the_rest_overdue(book) -> None:
    m = metrics_as_of(book, dt.date(2025, 4, 30))
    assert credit(m["P1"]) == (3_000, 58, 3_000)  # 2,000 of V2's 5,000 paid on 04-10
    assert credit(m["P2"]) == (0, 0, 3_000)       # V4 due 05-30
    assert credit(m["P3"]) == (7_000, 10, 7_000)  # V5 due 04-20


def test_as_of_july_1_days_overdue_keep_growing(book) -> None:
    m = metrics_as_of(book, dt.date(2025, 7, 1))
    assert credit(m["P1"]) == (3_000, 120, 3_000)
    assert credit(m["P2"]) == (3_000, 32, 3_000)
    assert credit(m["P3"]) == (7_000, 72, 7_000)


def test_on_the_due_date_an_invoice_is_not_yet_overdue(book) -> None:
    m = metrics_as_of(book, dt.date(2025, 1, 31))
    assert credit(m["P1"]) == (0, 0, 10_000)
    assert credit(metrics_as_of(book, dt.date(2025, 2, 1))["P1"]) == (10_000, 1, 15_000)


def test_metrics_are_null_before_any_invoice_or_without_payments_data(
        book, con, tmp_path: Path) -> None:
    assert credit(metrics_as_of(book, dt.date(2024, 12, 31))["P4"]) == (None, None, None)

    empty = duckdb.connect()
    ensure_schema(empty)
    write = write_csv(tmp_path / "c.csv", [["客户编号"], ["C1"]])
    import_files(empty, "customers", [write], rejects_dir=tmp_path / "rejects")
    assert credit(metrics_as_of(empty, dt.date(2025, 3, 1))["C1"]) == (None, None, None)

    s = CanonicalTables.of_store(ibis.duckdb.from_connection(empty), "test")
    without = customer_metrics(s.customers, s.orders, s.interactions, Window(dt.date(2025, 3, 1)))
    [row] = ibis.duckdb.from_connection(empty).to_pyarrow(without).to_pylist()
    assert credit(row) == (None, None, None)


# --- grading ---------------------------------------------------------------------------------


def test_a_rule_on_overdue_days_grades_a_customer_into_a_tier(tmp_path: Path) -> None:
    policy = tmp_path / "risk.yaml"
    policy.write_text(RISK_POLICY, encoding="utf-8")
    with Workspace.init(tmp_path / "ws", policy=str(policy)) as ws:
        ws.import_files("customers", [DATA / "customers.csv"])
        ws.import_files("orders", [DATA / "orders.csv"])
        ws.import_files("payments", [PAYMENTS])

        run_april = ws.grade(as_of=dt.date(2025, 4, 30))
        tiers = dict(zip(*(ws.assignments(run_april.run_id)[c].to_pylist()
                           for c in ("customer_id", "tier")), strict=True))
        assert tiers["P1"] == "risk"   # 58 days overdue
        assert tiers["P3"] == "ok"     # 10 days
        assert tiers["P2"] == "ok" and tiers["C1"] == "ok"

        run_march = ws.grade(as_of=dt.date(2025, 3, 31))
        snapshot = ws.assignments(run_march.run_id).to_pandas().set_index("customer_id")
        assert snapshot.loc["P1", "overdue_days"] == 28
        assert snapshot.loc["P1", "tier"] == "ok"


def test_grading_from_files_and_frames_takes_payments(tmp_path: Path) -> None:
    policy = tmp_path / "risk.yaml"
    policy.write_text(RISK_POLICY, encoding="utf-8")
    with Workspace.init(tmp_path / "ws", policy=str(policy)) as ws:
        summary = ws.grade(as_of=dt.date(2025, 4, 30), files={  # only P1 is over 30 days
            "orders": [str(DATA / "orders.csv")], "payments": [str(PAYMENTS)]})
        assert [(t.tier, t.customers) for t in summary.tiers] == [("risk", 1), ("ok", 5)]

    orders = pd.DataFrame({"订单号": ["O1"], "客户编号": ["P1"], "下单日期": ["2025-01-05"],
                           "金额": [100.0]})
    payments = pd.DataFrame({"发票号": ["F1", "F2"], "客户编号": ["P1", "P2"],
                             "到期日": ["2025-02-01", "2025-04-01"], "金额": [100.0, 50.0]})
    graded = grade_frames(orders, payments=payments, policy=policy, as_of=dt.date(2025, 4, 15))
    rows = {r["customer_id"]: r for r in graded.table.to_pylist()}
    assert (rows["P1"]["overdue_days"], rows["P1"]["tier"]) == (73, "risk")
    assert (rows["P2"]["overdue_amount"], rows["P2"]["tier"]) == (50.0, "ok")


def test_cli_imports_payments(tmp_path: Path) -> None:
    folder = str(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(main, ["init", folder]).exit_code == 0
    result = runner.invoke(main, ["import", "payments", str(PAYMENTS), "-w", folder])
    assert result.exit_code == 0, result.output
    assert "payments: accepted 5, updated 0, unchanged 0, rejected 0" in result.stdout
