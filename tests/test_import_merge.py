"""How an import merges: first import into an empty table, re-imports that write only what
changed, duplicates within one import, and the staging and checks SQL used on their own."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest

from tierwise.data.ingest import ImportResult, import_files
from tierwise.data.ingest.checks import bad_sql, rejects_sql
from tierwise.data.ingest.fields import PLAUSIBLE
from tierwise.data.ingest.readers import open_source
from tierwise.data.ingest.stage import plan_file, stage_sql
from tierwise.data.store import ensure_schema

HEADER = ["订单号", "客户编号", "下单日期", "金额"]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    ensure_schema(connection)
    return connection


def write_csv(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def run(con: duckdb.DuckDBPyConnection, path: Path, tmp_path: Path) -> ImportResult:
    return import_files(con, "orders", [path], rejects_dir=tmp_path / "rejects")


def counts(result: ImportResult) -> tuple[int, int, int, int]:
    return result.accepted, result.updated, result.unchanged, result.rejected


def orders(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute("SELECT order_id, customer_id, amount FROM orders ORDER BY 1").fetchall()


def rejects(result: ImportResult) -> list[tuple[str, str, str]]:
    assert result.rejects_path is not None
    rows = csv.DictReader(io.StringIO(result.rejects_path.read_text(encoding="utf-8-sig")))
    return [(r["row"], r["column"], r["reason"]) for r in rows]


def test_a_reimport_writes_new_and_changed_rows_and_leaves_the_rest(con, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "v1.csv", [
        HEADER, ["A1", "C1", "2025-03-07", "100"], ["A2", "C1", "2025-03-08", "200"],
        ["A3", "C2", "2025-03-09", "300"]])
    assert counts(run(con, first, tmp_path)) == (3, 0, 0, 0)
    second = write_csv(tmp_path / "v2.csv", [
        HEADER,
        ["A1", "C1", "2025-03-07", "100"],       # unchanged
        ["A2", "C1", "2025-03-08", "250"],       # changed amount
        ["A3", "C3", "2025-03-09", "300"],       # changed customer (a new one)
        ["A4", "C9", "2025-03-10", "400"],       # new order, new customer
        ["A4", "C9", "2025-03-10", "400"],       # identical duplicate: one row
        ["A5", "C1", "2025-03-11", "1"],         # conflicting duplicates: both rejected
        ["A5", "C1", "2025-03-11", "2"],
        ["A6", "C1", "not a date", "5"],         # bad value
    ])
    result = run(con, second, tmp_path)

    assert counts(result) == (1, 2, 2, 3)
    assert orders(con) == [("A1", "C1", 100.0), ("A2", "C1", 250.0), ("A3", "C3", 300.0),
                           ("A4", "C9", 400.0)]
    assert result.created_customers == ["C3", "C9"]
    assert rejects(result) == [
        ("7", "订单号", "duplicate order_id in this import with different content"),
        ("8", "订单号", "duplicate order_id in this import with different content"),
        ("9", "下单日期", "not a date: 'not a date'"),
    ]


def test_conflicting_duplicates_across_files_into_an_empty_table_write_neither(
    con, tmp_path: Path
) -> None:
    one = write_csv(tmp_path / "a.csv", [HEADER, ["A1", "C1", "2025-03-07", "1"],
                                         ["B1", "C1", "2025-03-07", "5"]])
    two = write_csv(tmp_path / "b.csv", [HEADER, ["A1", "C1", "2025-03-07", "2"],
                                         ["B1", "C1", "2025-03-07", "5"]])
    result = import_files(con, "orders", [one, two], rejects_dir=tmp_path / "rejects")

    assert counts(result) == (1, 0, 1, 2)
    assert orders(con) == [("B1", "C1", 5.0)]
    assert [f.rows for f in result.files] == [2, 2]


def test_an_unchanged_reimport_creates_no_placeholders_and_writes_nothing(
    con, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "o.csv", [HEADER, ["A1", "C7", "2025-03-07", "1"]])
    assert run(con, path, tmp_path).created_customers == ["C7"]
    version = con.execute("SELECT count(*), sum(amount) FROM orders").fetchall()
    again = run(con, path, tmp_path)

    assert counts(again) == (0, 0, 1, 0)
    assert again.created_customers == []
    assert con.execute("SELECT count(*), sum(amount) FROM orders").fetchall() == version


def test_the_connection_settings_are_its_own_again_after_an_import(con, tmp_path: Path) -> None:
    con.execute("SET preserve_insertion_order = true")
    run(con, write_csv(tmp_path / "o.csv", [HEADER, ["A1", "C1", "2025-03-07", "1"]]), tmp_path)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (True,)


def test_stage_and_checks_read_a_file_in_place_without_importing(tmp_path: Path) -> None:
    """What a grade reading files in place builds on: the stage of a file and its rejects,
    as SQL over the file, nothing written."""
    path = write_csv(tmp_path / "o.csv", [
        HEADER, ["A1", "C1", "2025/3/7", "¥1,200"], ["A2", "", "2025-03-08", "x"]])
    con = duckdb.connect()
    plans = [plan_file(0, open_source(con, path, tmp_path), "orders")]
    stage = stage_sql("orders", plans, [])

    good = con.execute(f"SELECT order_id, order_date::VARCHAR, amount FROM ({stage}) "
                       f"WHERE NOT {bad_sql('orders', PLAUSIBLE)}").fetchall()
    bad = con.execute(f"SELECT __file, __row, __column, __reason FROM "
                      f"({rejects_sql('orders', plans, PLAUSIBLE, f'({stage})')})").fetchall()

    assert good == [("A1", "2025-03-07", 1200.0)]
    assert bad == [(0, 3, "客户编号, 金额",
                    "客户编号: missing required value; 金额: not an amount: 'x'")]
