"""What one file may ask of the machine is bounded at the edge: an .xlsx whose parts would
inflate to hundreds of megabytes (a zip bomb) and a file with thousands of columns are
refused with the file named and what to do, before anything is unpacked or staged — in
`tierwise import`, the upload preview and the import."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from tierwise.data import store
from tierwise.data.ingest import import_files
from tierwise.data.ingest.preview import preview
from tierwise.data.ingest.readers import MAX_COLUMNS, MAX_XLSX_PART_BYTES
from tierwise.errors import InputError


def zip_bomb(path: Path) -> Path:
    """A small, valid-looking workbook whose shared strings inflate past the bound."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["订单号", "客户编号", "下单日期", "订单金额"])
    sheet.append(["O1", "C1", "2025-06-01", 100])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for part in source.infolist():
            target.writestr(part, source.read(part.filename))
        padding = " " * (MAX_XLSX_PART_BYTES + (1 << 20))
        target.writestr("xl/sharedStrings.xml",
                        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
                        f'main"><si><t>{padding}</t></si></sst>')
    return path


def test_a_zip_bomb_workbook_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "订单.xlsx")
    assert bomb.stat().st_size < 1 << 20                 # small on disk
    started = time.monotonic()
    with pytest.raises(InputError, match=r"xl/sharedStrings\.xml unpacks to 65 MB, over the "
                                         r"64 MB") as caught:
        import_files(store.connect(), "orders", [bomb], rejects_dir=tmp_path / "rejects")
    assert caught.value.file == str(bomb) and time.monotonic() - started < 5
    with pytest.raises(InputError, match="save the sheet as CSV"):
        preview(bomb, "orders")


def test_a_file_with_too_many_columns_is_refused_at_once(tmp_path: Path) -> None:
    wide = tmp_path / "客户.csv"
    header = ["客户编号"] + [f"属性{i}" for i in range(MAX_COLUMNS + 10)]
    wide.write_text(",".join(header) + "\n" + ",".join(["C1"] + ["x"] * (MAX_COLUMNS + 10))
                    + "\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(InputError, match=f"has {MAX_COLUMNS + 11:,} columns, more than the "
                                         f"{MAX_COLUMNS:,}"):
        import_files(store.connect(), "customers", [wide], rejects_dir=tmp_path / "rejects")
    assert time.monotonic() - started < 5


def test_a_file_that_is_not_a_workbook_says_so(tmp_path: Path) -> None:
    fake = tmp_path / "orders.xlsx"
    fake.write_text("order_id,customer_id\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot open as an Excel \.xlsx file"):
        import_files(store.connect(), "orders", [fake], rejects_dir=tmp_path / "rejects")
