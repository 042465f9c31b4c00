"""Readers: encodings, row numbers as a user sees them, Excel cells and Parquet columns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from tierwise.data.ingest.readers import detect_encoding, expand_paths, open_source
from tierwise.errors import InputError


def rows_of(path: Path, tmp_path: Path) -> tuple[list[str], list[tuple]]:
    """Headers and (row, problem, values...) of a file, ordered by row."""
    con = duckdb.connect()
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    source = open_source(con, path, workdir)
    columns = ", ".join(source.columns.values())
    rows = con.execute(
        f"SELECT __row, __problem, {columns} FROM {source.relation} ORDER BY __row"
    ).fetchall()
    return source.headers, rows


def test_utf8_gbk_and_utf16_text_is_recognised(tmp_path: Path) -> None:
    text = "客户编号,客户名称\nC1,华东贸易\n"
    (tmp_path / "utf8.csv").write_text(text, encoding="utf-8")
    (tmp_path / "bom.csv").write_text(text, encoding="utf-8-sig")
    (tmp_path / "gbk.csv").write_bytes(text.encode("gbk"))
    (tmp_path / "utf16.txt").write_text(text.replace(",", "\t"), encoding="utf-16")
    assert detect_encoding(tmp_path / "utf8.csv") == "utf-8"
    assert detect_encoding(tmp_path / "bom.csv") == "utf-8"
    assert detect_encoding(tmp_path / "gbk.csv") == "gb18030"
    assert detect_encoding(tmp_path / "utf16.txt") == "utf-16"
    for name in ("utf8.csv", "bom.csv", "gbk.csv", "utf16.txt"):
        headers, rows = rows_of(tmp_path / name, tmp_path)
        assert headers == ["客户编号", "客户名称"], name
        assert rows == [(2, None, "C1", "华东贸易")], name


def test_a_binary_file_named_csv_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(InputError, match=r"orders\.csv: not a text file"):
        rows_of(path, tmp_path)


def test_text_in_neither_utf8_nor_gbk_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(b"id,name\n1,\xff\xfe\xff\n")
    with pytest.raises(InputError, match="neither UTF-8 nor GBK"):
        rows_of(path, tmp_path)


def test_csv_row_numbers_count_the_header_blank_lines_and_multi_line_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text('id,note\nA1,one\n\nA2,"two\nlines"\nA3,three\n', encoding="utf-8")
    _, rows = rows_of(path, tmp_path)
    # Record numbers: the header is 1, the blank line 3; the quoted line break stays in one.
    assert rows == [
        (2, None, "A1", "one"),
        (3, None, "", ""),
        (4, None, "A2", "two\nlines"),
        (5, None, "A3", "three"),
    ]


def test_csv_rows_with_the_wrong_number_of_values_are_kept_with_a_problem(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("id,amount\nA1,1\nA2\nA3,3,extra\nA4,4\n", encoding="utf-8")
    _, rows = rows_of(path, tmp_path)
    assert rows == [
        (2, None, "A1", "1"),
        (3, "expected 2 values, found 1", "A2", ""),
        (4, "expected 2 values, found 3", "A3", "3"),
        (5, None, "A4", "4"),
    ]


def test_tab_and_semicolon_delimiters_are_detected(tmp_path: Path) -> None:
    (tmp_path / "tab.txt").write_text("id\tname\nC1\tA, B\n", encoding="utf-8")
    (tmp_path / "semi.csv").write_text("id;name\nC1;A, B\n", encoding="utf-8")
    for name in ("tab.txt", "semi.csv"):
        assert rows_of(tmp_path / name, tmp_path)[1] == [(2, None, "C1", "A, B")]


def test_blank_and_repeated_headers_are_dropped_or_made_unique(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("金额,,金额\n1,,2\n", encoding="utf-8")
    headers, rows = rows_of(path, tmp_path)
    assert headers == ["金额", "金额_2"]
    assert rows == [(2, None, "1", "2")]


def test_excel_cells_become_text_a_user_would_see_with_sheet_row_numbers(
    tmp_path: Path,
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["订单号", "下单日期", "金额", "时间"])
    sheet.append(["A1", dt.date(2025, 3, 7), 1234.5, dt.datetime(2025, 3, 7, 14, 30)])
    sheet.append([None, None, None, None])  # an empty row: skipped, but still row 3
    sheet.append([1001, "2025/3/8", 12000.0, None])
    path = tmp_path / "orders.xlsx"
    workbook.save(path)
    headers, rows = rows_of(path, tmp_path)
    assert headers == ["订单号", "下单日期", "金额", "时间"]
    assert rows == [
        (2, None, "A1", "2025-03-07", "1234.5", "2025-03-07 14:30:00"),
        (4, None, "1001", "2025/3/8", "12000", None),
    ]


def test_excel_header_may_start_below_a_title_row(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet["B3"], sheet["C3"] = "客户编号", "客户名称"
    sheet["B4"], sheet["C4"] = "C1", "华东贸易"
    path = tmp_path / "customers.xlsx"
    workbook.save(path)
    headers, rows = rows_of(path, tmp_path)
    assert headers == ["客户编号", "客户名称"]
    assert rows == [(4, None, "C1", "华东贸易")]


def test_a_file_that_is_not_xlsx_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_text("not a workbook", encoding="utf-8")
    with pytest.raises(InputError, match=r"orders\.xlsx: cannot open as an Excel"):
        rows_of(path, tmp_path)


def test_parquet_columns_keep_their_types_with_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    table = pa.table(
        {
            "order_id": ["A1", "A2"],
            "order_date": [dt.date(2025, 3, 7), dt.date(2025, 3, 8)],
            "amount": [1234.5, -20.0],
        }
    )
    pq.write_table(table, path)
    headers, rows = rows_of(path, tmp_path)
    assert headers == ["order_id", "order_date", "amount"]
    assert rows == [
        (2, None, "A1", dt.date(2025, 3, 7), 1234.5),
        (3, None, "A2", dt.date(2025, 3, 8), -20.0),
    ]


def test_paths_expand_globs_and_folders_in_order(tmp_path: Path) -> None:
    for name in ("b.parquet", "a.parquet", "notes.md"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert expand_paths([tmp_path / "*.parquet"]) == [
        tmp_path / "a.parquet",
        tmp_path / "b.parquet",
    ]
    assert expand_paths([tmp_path]) == [tmp_path / "a.parquet", tmp_path / "b.parquet"]


def test_missing_files_and_empty_globs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        expand_paths([tmp_path / "missing.csv"])
    with pytest.raises(InputError, match="no files match"):
        expand_paths([str(tmp_path / "*.csv")])


def test_old_xls_files_are_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "orders.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match=r"save as \.xlsx"):
        rows_of(path, tmp_path)


def test_a_file_name_with_brackets_is_a_file_not_a_pattern(tmp_path: Path) -> None:
    path = tmp_path / "订单[1].csv"
    path.write_text("id\n1\n", encoding="utf-8")
    assert expand_paths([path]) == [path]


def test_a_utf8_file_with_a_gbk_row_is_refused_naming_the_line(tmp_path: Path) -> None:
    """Read whole as GB18030, its UTF-8 names would turn into 涓婃捣… without a warning."""
    from tierwise.data.ingest.readers import detect_encoding

    path = tmp_path / "客户.csv"
    lines = ["客户编号,客户名称"] + [f"C{i},上海测试有限公司{i}" for i in range(5)]
    content = "\n".join(lines).encode("utf-8") + "\nC9,北京测试有限公司\n".encode("gbk")
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"the file is UTF-8 but line 7 is not") as caught:
        detect_encoding(path)
    assert caught.value.row == 7 and caught.value.file == str(path)


def test_a_gbk_file_is_still_read_as_gbk(tmp_path: Path) -> None:
    from tierwise.data.ingest.readers import detect_encoding

    path = tmp_path / "客户.csv"
    path.write_bytes("客户编号,客户名称\nC1,上海测试有限公司\nC2,北京\n".encode("gbk"))
    assert detect_encoding(path) == "gb18030"
