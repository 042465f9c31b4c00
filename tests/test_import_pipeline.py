"""import_files: files -> validated canonical tables, rejects, idempotent merges."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from tierwise.data.ingest import ImportResult, Kind, import_files
from tierwise.data.store import customer_attribute_columns, ensure_schema
from tierwise.errors import InputError

ORDER_HEADER = ["订单号", "客户编号", "下单日期", "金额"]


# --- helpers ---------------------------------------------------------------------------------


def store_in_memory() -> duckdb.DuckDBPyConnection:
    """A store as used for grading straight from files: in memory, schema only."""
    connection = duckdb.connect()
    ensure_schema(connection)
    return connection


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return store_in_memory()


def write_csv(path: Path, rows: Sequence[Sequence[object]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    *paths: Path | str,
    tmp_path: Path,
    **options: object,
) -> ImportResult:
    return import_files(con, kind, list(paths), rejects_dir=tmp_path / "rejects", **options)


def table(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def read_rejects(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "rejects must carry a BOM so Excel reads UTF-8"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def counts(result: ImportResult) -> tuple[int, int, int, int]:
    return result.accepted, result.updated, result.unchanged, result.rejected


# --- reading files of every format -----------------------------------------------------------


def test_gbk_csv_with_chinese_headers_imports_orders(con, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "订单.csv",
        [
            [*ORDER_HEADER, "产品名称", "销售渠道", "备注"],
            ["A1", "C1", "2025/3/7", "￥1,234.50", "螺丝", "线下", "老客户"],
            ["A2", "C2", "2025年3月8日", "1.2万", "", "电商", ""],
        ],
        encoding="gbk",
    )
    result = run(con, "orders", path, tmp_path=tmp_path)

    assert counts(result) == (2, 0, 0, 0)
    assert result.files[0].rows == 2
    assert result.files[0].mapping == {
        "订单号": "order_id",
        "客户编号": "customer_id",
        "下单日期": "order_date",
        "金额": "amount",
        "产品名称": "product",
        "销售渠道": "channel",
        "备注": "ignored",
    }
    assert table(con, "SELECT * FROM orders ORDER BY order_id") == [
        ("A1", "C1", dt.date(2025, 3, 7), 1234.5, None, None, "螺丝", None, "线下"),
        ("A2", "C2", dt.date(2025, 3, 8), 12000.0, None, None, None, None, "电商"),
    ]
    assert result.rejects_path is None


def test_utf8_csv_with_bom_and_english_headers_imports(con, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        [["Order ID", "Customer ID", "Order Date", "Amount"], ["A1", "C1", "2025-03-07", "-500"]],
        encoding="utf-8-sig",
    )
    result = run(con, "orders", path, tmp_path=tmp_path)
    assert counts(result) == (1, 0, 0, 0)
    assert table(con, "SELECT order_id, amount FROM orders") == [("A1", -500.0)]


def test_xlsx_with_chinese_headers_and_date_cells_imports(con, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(ORDER_HEADER)
    sheet.append(["A1", "C1", dt.datetime(2025, 3, 7), 1234.5])
    sheet.append(["A2", "C1", dt.datetime(2025, 3, 8, 14, 30), 88])
    sheet.append(["A3", "C2", 45723, "(500)"])  # an Excel serial that lost its date format
    sheet.append(["A4", "C2", "2025-13-45", 10])
    path = tmp_path / "orders.xlsx"
    workbook.save(path)

    result = run(con, "orders", path, tmp_path=tmp_path)

    assert counts(result) == (3, 0, 0, 1)
    assert table(con, "SELECT order_id, order_date, amount FROM orders ORDER BY 1") == [
        ("A1", dt.date(2025, 3, 7), 1234.5),
        ("A2", dt.date(2025, 3, 8), 88.0),
        ("A3", dt.date(2025, 3, 7), -500.0),
    ]
    assert result.rejects_path is not None
    [reject] = read_rejects(result.rejects_path)
    assert (reject["row"], reject["column"]) == ("5", "下单日期")  # the row Excel shows
    assert reject["reason"] == "not a date: '2025-13-45'"


def test_parquet_files_import_from_a_glob_with_typed_columns(con, tmp_path: Path) -> None:
    for part, (order_id, amount) in enumerate([("A1", 10.0), ("A2", 20.5)]):
        pq.write_table(
            pa.table(
                {
                    "order_id": [order_id],
                    "customer_id": ["C1"],
                    "order_date": [dt.date(2025, 1, part + 1)],
                    "amount": [amount],
                    "cost": [None],
                }
            ),
            tmp_path / f"part-{part}.parquet",
        )
    result = run(con, "orders", str(tmp_path / "part-*.parquet"), tmp_path=tmp_path)

    assert counts(result) == (2, 0, 0, 0)
    assert [report.path for report in result.files] == [
        str(tmp_path / "part-0.parquet"),
        str(tmp_path / "part-1.parquet"),
    ]
    assert table(con, "SELECT order_id, order_date, amount, cost FROM orders ORDER BY 1") == [
        ("A1", dt.date(2025, 1, 1), 10.0, None),
        ("A2", dt.date(2025, 1, 2), 20.5, None),
    ]


def test_a_folder_of_files_imports_every_supported_file(con, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "jan.csv", [ORDER_HEADER, ["A1", "C1", "2025-01-05", "1"]])
    write_csv(folder / "feb.csv", [ORDER_HEADER, ["A2", "C1", "2025-02-05", "2"]])
    (folder / "readme.md").write_text("not data", encoding="utf-8")
    result = run(con, "orders", folder, tmp_path=tmp_path)
    assert result.accepted == 2
    assert len(result.files) == 2


def test_a_file_backed_store_keeps_the_import(tmp_path: Path) -> None:
    database = tmp_path / "store.duckdb"
    with duckdb.connect(str(database)) as con:
        ensure_schema(con)
        path = write_csv(tmp_path / "o.csv", [ORDER_HEADER, ["A1", "C1", "2025-01-05", "1"]])
        run(con, "orders", path, tmp_path=tmp_path)
    with duckdb.connect(str(database)) as con:
        assert table(con, "SELECT order_id FROM orders") == [("A1",)]
        assert table(con, "SELECT count(*) FROM duckdb_tables() WHERE temporary") == [(0,)]


# --- rejected rows ---------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_reasons_and_good_rows_still_import(con, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        [
            ORDER_HEADER,
            ["A1", "C1", "2025-03-07", "100"],  # row 2: good
            ["A2", "", "2025-03-07", "100"],  # row 3: no customer
            ["A3", "C1", "2025-03-07", "abc"],  # row 4: not an amount
            ["A4", "C1", "2025-13-45", "100"],  # row 5: not a date
            ["A5", "C1", "", ""],  # row 6: two problems
            ["A6", "C1", "2025-03-07"],  # row 7: a value short
            ["A7", "C2", "2025-03-07", "5"],  # row 8 and 9: same id, different content
            ["A7", "C2", "2025-03-07", "6"],
            ["A8", "C3", "2025-03-08", "7"],  # row 10: good
        ],
    )
    result = run(con, "orders", path, tmp_path=tmp_path)

    assert counts(result) == (2, 0, 0, 7)
    assert table(con, "SELECT order_id FROM orders ORDER BY 1") == [("A1",), ("A8",)]
    assert result.rejects_path is not None
    rejects = read_rejects(result.rejects_path)
    assert [(r["row"], r["column"], r["reason"]) for r in rejects] == [
        ("3", "客户编号", "missing required value"),
        ("4", "金额", "not an amount: 'abc'"),
        ("5", "下单日期", "not a date: '2025-13-45'"),
        ("6", "下单日期, 金额", "下单日期: missing required value; 金额: missing required value"),
        ("7", "", "expected 4 values, found 3"),
        ("8", "订单号", "duplicate order_id in this import with different content"),
        ("9", "订单号", "duplicate order_id in this import with different content"),
    ]
    assert list(rejects[0]) == ["file", "row", "column", "reason", *ORDER_HEADER]
    assert rejects[1]["file"] == str(path)
    assert [rejects[1][h] for h in ORDER_HEADER] == ["A3", "C1", "2025-03-07", "abc"]


def test_rejects_file_is_named_by_time_kind_and_file(con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "华东订单.csv", [ORDER_HEADER, ["A1", "C1", "x", "1"]])
    result = run(con, "orders", path, tmp_path=tmp_path)
    assert result.rejects_path is not None
    assert result.rejects_path.parent == tmp_path / "rejects"
    assert re.fullmatch(r"\d{8}-\d{6}-orders-华东订单\.csv", result.rejects_path.name)


def test_identical_duplicates_in_one_import_count_once_as_unchanged(con, tmp_path: Path) -> None:
    row = ["A1", "C1", "2025-03-07", "100"]
    path = write_csv(tmp_path / "orders.csv", [ORDER_HEADER, row, row, [" A1 ", *row[1:]]])
    result = run(con, "orders", path, tmp_path=tmp_path)
    assert counts(result) == (1, 0, 2, 0)
    assert table(con, "SELECT count(*) FROM orders") == [(1,)]


def test_blank_rows_are_not_rows(con, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "订单号,客户编号,下单日期,金额\nA1,C1,2025-03-07,1\n,,,\n\n  , ,,\n", encoding="utf-8"
    )
    result = run(con, "orders", path, tmp_path=tmp_path)
    assert counts(result) == (1, 0, 0, 0)
    assert result.files[0].rows == 1


# --- re-importing ----------------------------------------------------------------------------


def test_reimporting_the_same_file_changes_nothing(con, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        [ORDER_HEADER, ["A1", "C1", "2025-03-07", "100"], ["A2", "C2", "2025-03-08", "200"]],
    )
    first = run(con, "orders", path, tmp_path=tmp_path)
    before = table(con, "SELECT * FROM orders ORDER BY order_id")
    again = run(con, "orders", path, tmp_path=tmp_path)

    assert counts(first) == (2, 0, 0, 0)
    assert counts(again) == (0, 0, 2, 0)
    assert again.created_customers == []
    assert table(con, "SELECT * FROM orders ORDER BY order_id") == before
    assert table(con, "SELECT count(*) FROM customers") == [(2,)]


def test_an_order_whose_content_changed_is_updated(con, tmp_path: Path) -> None:
    old = write_csv(tmp_path / "v1.csv", [ORDER_HEADER, ["A1", "C1", "2025-03-07", "100"]])
    new = write_csv(
        tmp_path / "v2.csv",
        [ORDER_HEADER, ["A1", "C1", "2025-03-07", "-100"], ["A2", "C1", "2025-03-09", "5"]],
    )
    run(con, "orders", old, tmp_path=tmp_path)
    result = run(con, "orders", new, tmp_path=tmp_path)

    assert counts(result) == (1, 1, 0, 0)
    assert table(con, "SELECT order_id, amount FROM orders ORDER BY 1") == [
        ("A1", -100.0),
        ("A2", 5.0),
    ]


# --- strict mode and unreadable files --------------------------------------------------------


def test_strict_mode_fails_on_any_bad_row_and_writes_nothing_but_the_rejects(
    con, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        [ORDER_HEADER, ["A1", "C1", "2025-03-07", "100"], ["A2", "C1", "2025-03-07", "abc"]],
    )
    with pytest.raises(InputError) as failure:
        run(con, "orders", path, tmp_path=tmp_path, strict=True)

    message = str(failure.value)
    assert "1 row(s) rejected" in message
    assert f"{path}, row 3, column '金额': not an amount: 'abc'" in message
    assert table(con, "SELECT count(*) FROM orders") == [(0,)]
    assert table(con, "SELECT count(*) FROM customers") == [(0,)]
    [rejects] = (tmp_path / "rejects").iterdir()
    assert str(rejects) in message
    assert [r["row"] for r in read_rejects(rejects)] == ["3"]


def test_strict_mode_with_only_good_rows_imports(con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", [ORDER_HEADER, ["A1", "C1", "2025-03-07", "1"]])
    assert run(con, "orders", path, tmp_path=tmp_path, strict=True).accepted == 1


@pytest.mark.parametrize(
    ("make_bad_file", "message"),
    [
        (lambda d: d / "missing.csv", "file not found"),
        (lambda d: write_csv(d / "bad.csv", [["客户", "说明"], ["x", "y"]]), "no column for"),
        (lambda d: _write_bytes(d / "bad.csv", b"\x00\x01binary"), "not a text file"),
        (lambda d: _write_bytes(d / "bad.csv", b"a,b\n\xff\xfe\xfa\n"), "neither UTF-8 nor GBK"),
        (lambda d: _write_bytes(d / "bad.xlsx", b"not a zip"), "cannot open as an Excel"),
        (lambda d: _write_bytes(d / "bad.parquet", b"not parquet"), "cannot read as a Parquet"),
        (lambda d: _write_bytes(d / "bad.csv", b""), "empty"),
    ],
)
def test_an_unreadable_file_fails_the_whole_import_and_writes_nothing(
    con, tmp_path: Path, make_bad_file, message: str
) -> None:
    good = write_csv(tmp_path / "good.csv", [ORDER_HEADER, ["A1", "C1", "2025-03-07", "1"]])
    bad = make_bad_file(tmp_path)
    with pytest.raises(InputError, match=message) as failure:
        run(con, "orders", good, bad, tmp_path=tmp_path)
    assert str(bad) in str(failure.value)
    assert table(con, "SELECT count(*) FROM orders") == [(0,)]
    assert table(con, "SELECT count(*) FROM customers") == [(0,)]
    assert not (tmp_path / "rejects").exists()


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_column_map_fixes_headers_that_do_not_match(con, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv", [["单号", "买家", "日期", "实收"], ["A1", "C1", "2025-03-07", "9"]]
    )
    result = run(
        con, "orders", path, tmp_path=tmp_path, column_map={"买家": "customer_id", "实收": "amount"}
    )
    assert result.accepted == 1
    assert table(con, "SELECT customer_id, amount FROM orders") == [("C1", 9.0)]


def test_a_column_map_naming_a_missing_column_fails_and_names_the_file(con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", [ORDER_HEADER, ["A1", "C1", "2025-03-07", "9"]])
    with pytest.raises(InputError, match=r"orders\.csv: --map names column '买家'"):
        run(con, "orders", path, tmp_path=tmp_path, column_map={"买家": "customer_id"})
    assert table(con, "SELECT count(*) FROM orders") == [(0,)]


# --- customers -------------------------------------------------------------------------------


def test_orders_for_unknown_customers_create_placeholders(con, tmp_path: Path) -> None:
    write_csv(tmp_path / "c.csv", [["客户编号", "客户名称"], ["C1", "华东贸易"]])
    run(con, "customers", tmp_path / "c.csv", tmp_path=tmp_path)
    path = write_csv(
        tmp_path / "o.csv",
        [ORDER_HEADER, ["A1", "C1", "2025-03-07", "1"], ["A2", "C9", "2025-03-07", "2"]],
    )
    result = run(con, "orders", path, tmp_path=tmp_path)

    assert result.created_customers == ["C9"]
    assert table(con, "SELECT customer_id, name, placeholder FROM customers ORDER BY 1") == [
        ("C1", "华东贸易", False),
        ("C9", None, True),
    ]


def test_importing_a_placeholder_customer_with_real_data_clears_placeholder(
    con, tmp_path: Path
) -> None:
    orders = write_csv(tmp_path / "o.csv", [ORDER_HEADER, ["A1", "C9", "2025-03-07", "1"]])
    run(con, "orders", orders, tmp_path=tmp_path)
    customers = write_csv(tmp_path / "c.csv", [["客户编号", "客户名称"], ["C9", "西南机电"]])
    result = run(con, "customers", customers, tmp_path=tmp_path)

    assert counts(result) == (0, 1, 0, 0)
    assert table(con, "SELECT customer_id, name, placeholder FROM customers") == [
        ("C9", "西南机电", False)
    ]


def test_customers_are_upserted_and_empty_cells_do_not_erase_values(con, tmp_path: Path) -> None:
    header = ["客户编号", "客户名称", "行业", "合作开始日期"]
    first = write_csv(
        tmp_path / "v1.csv",
        [header, ["C1", "华东贸易", "制造", "2020/1/15"], ["C2", "西南机电", "零售", ""]],
    )
    second = write_csv(
        tmp_path / "v2.csv",
        [header, ["C1", "", "批发", ""], ["C2", "西南机电", "零售", ""], ["C3", "新客", "", ""]],
    )
    run(con, "customers", first, tmp_path=tmp_path)
    result = run(con, "customers", second, tmp_path=tmp_path)

    assert counts(result) == (1, 1, 1, 0)
    assert table(con, "SELECT customer_id, name, industry, since FROM customers ORDER BY 1") == [
        ("C1", "华东贸易", "批发", dt.date(2020, 1, 15)),
        ("C2", "西南机电", "零售", None),
        ("C3", "新客", None, None),
    ]
    assert table(con, "SELECT bool_or(placeholder) FROM customers") == [(False,)]


def test_extra_customer_columns_become_attribute_columns(con, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "v1.csv", [["客户编号", "员工人数", "客户名称"], ["C1", "120", "华东贸易"]]
    )
    result = run(con, "customers", first, tmp_path=tmp_path)
    assert result.files[0].mapping["员工人数"] == "attribute:员工人数"
    assert customer_attribute_columns(con) == ["员工人数"]

    # A later file without the column keeps the value; another attribute is added.
    second = write_csv(tmp_path / "v2.csv", [["客户编号", "信用等级"], ["C1", "AA"], ["C2", "B"]])
    run(con, "customers", second, tmp_path=tmp_path)
    assert customer_attribute_columns(con) == ["员工人数", "信用等级"]
    assert table(con, 'SELECT customer_id, "员工人数", "信用等级" FROM customers ORDER BY 1') == [
        ("C1", "120", "AA"),
        ("C2", None, "B"),
    ]


def test_conflicting_customer_rows_in_one_import_are_rejected(con, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "c.csv", [["编号", "名称"], ["C1", "甲"], ["C1", "乙"], ["C2", "丙"]]
    )
    result = run(con, "customers", path, tmp_path=tmp_path)
    assert counts(result) == (1, 0, 0, 2)
    assert result.rejects_path is not None
    assert {r["reason"] for r in read_rejects(result.rejects_path)} == {
        "duplicate customer_id in this import with different content"
    }


# --- interactions ----------------------------------------------------------------------------


def test_interactions_import_with_chinese_types_and_satisfaction(con, tmp_path: Path) -> None:
    header = ["客户编号", "拜访日期", "方式", "满意度", "备注"]
    path = write_csv(
        tmp_path / "i.csv",
        [
            header,
            ["C1", "2025-03-07", "拜访", "4分", "谈续约"],
            ["C1", "2025-03-08", "投诉", "2", ""],
            ["C2", "2025-03-09", "微信", "", ""],
            ["C2", "2025-03-09", "电话", "7", ""],
            ["C2", "", "", "", "没有日期和类型"],
        ],
    )
    result = run(con, "interactions", path, tmp_path=tmp_path)

    assert counts(result) == (3, 0, 0, 2)
    assert result.created_customers == ["C1", "C2"]
    assert table(
        con, "SELECT customer_id, date, type, satisfaction, note FROM interactions ORDER BY date"
    ) == [
        ("C1", dt.date(2025, 3, 7), "visit", 4.0, "谈续约"),
        ("C1", dt.date(2025, 3, 8), "complaint", 2.0, None),
        ("C2", dt.date(2025, 3, 9), "微信", None, None),
    ]
    assert result.rejects_path is not None
    assert [(r["row"], r["column"], r["reason"]) for r in read_rejects(result.rejects_path)] == [
        ("5", "满意度", "satisfaction must be 1–5: '7'"),
        ("6", "拜访日期, 方式", "拜访日期: missing required value; 方式: missing required value"),
    ]


def test_reimporting_identical_interactions_is_a_no_op(con, tmp_path: Path) -> None:
    header = ["客户编号", "日期", "类型", "备注"]
    path = write_csv(
        tmp_path / "i.csv",
        [header, ["C1", "2025-03-07", "拜访", ""], ["C1", "2025-03-07", "拜访", "second visit"]],
    )
    first = run(con, "interactions", path, tmp_path=tmp_path)
    again = run(con, "interactions", path, tmp_path=tmp_path)
    assert counts(first) == (2, 0, 0, 0)
    assert counts(again) == (0, 0, 2, 0)
    ids = table(con, "SELECT interaction_id FROM interactions")
    assert len({i for (i,) in ids}) == 2


def test_progress_reports_each_step(con, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "o.csv", [ORDER_HEADER, ["A1", "C1", "2025-03-07", "1"]])
    messages: list[str] = []
    run(con, "orders", path, tmp_path=tmp_path, progress=messages.append)
    assert messages[0] == f"reading {path}"
    assert "merging orders" in messages


def test_grading_straight_from_files_works_on_a_fresh_in_memory_store(tmp_path: Path) -> None:
    con = duckdb.connect()  # no workspace: schema, then all three kinds from files
    ensure_schema(con)
    customers = write_csv(tmp_path / "c.csv", [["客户编号", "客户名称"], ["C1", "华东贸易"]])
    orders = write_csv(tmp_path / "o.csv", [ORDER_HEADER, ["A1", "C1", "2025-03-07", "100"]])
    visits = write_csv(
        tmp_path / "i.csv", [["客户编号", "日期", "类型"], ["C1", "2025-03-08", "拜访"]]
    )

    for kind, path in (("customers", customers), ("orders", orders), ("interactions", visits)):
        assert run(con, kind, path, tmp_path=tmp_path).accepted == 1  # type: ignore[arg-type]

    assert table(
        con,
        "SELECT c.name, o.amount, i.type FROM customers c "
        "JOIN orders o USING (customer_id) JOIN interactions i USING (customer_id)",
    ) == [("华东贸易", 100.0, "visit")]


def test_typed_parquet_values_are_checked_too(con, tmp_path: Path) -> None:
    """Typed columns skip text parsing, but a NaN amount, a missing date and a numeric
    customer id are handled like their text forms."""
    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({
        "order_id": ["T1", "T2", "T3", "T4"],
        "customer_id": [101, 102, 103, 104],
        "order_date": pa.array([dt.date(2025, 3, 7), None, dt.date(2025, 3, 9),
                                dt.date(2025, 3, 10)]),
        "amount": [100.0, 50.0, float("nan"), 20.0],
    }), path)
    result = run(con, "orders", str(path), tmp_path=tmp_path)
    assert (result.accepted, result.rejected) == (2, 2)
    assert result.rejects_path is not None
    reasons = {row["row"]: row["reason"] for row in read_rejects(result.rejects_path)}
    assert reasons == {"3": "missing required value", "4": "not an amount: 'nan'"}
    stored = con.execute("SELECT order_id, customer_id, order_date FROM orders "
                         "ORDER BY order_id").fetchall()
    assert stored == [("T1", "101", dt.date(2025, 3, 7)), ("T4", "104", dt.date(2025, 3, 10))]


def test_a_file_of_headers_alone_changes_nothing(tmp_path: Path) -> None:
    """An empty orders export imported as customers by mistake must not add order_id,
    order_date and amount as customer attributes for good."""
    from tierwise.data import store

    con = store.connect()
    before = customer_attribute_columns(con)
    empty = tmp_path / "orders.csv"
    empty.write_text("order_id,customer_id,order_date,amount\n", encoding="utf-8")
    result = import_files(con, "customers", [empty], rejects_dir=tmp_path / "rejects")
    assert (result.accepted, result.updated, result.rejected) == (0, 0, 0)
    assert customer_attribute_columns(con) == before
