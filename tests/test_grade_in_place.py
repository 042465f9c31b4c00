"""Grading files where they are (``tierwise grade --orders FILE``): the files are read and
checked as an import reads and checks them — headers, encodings, parsing, rejects with file,
row, column and reason, repeated keys — graded through views of their good rows, and never
copied into the workspace's store. Data: tests/data."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import DATA
from tierwise.errors import InputError
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)
ORDERS_HEADER = "订单号,客户编号,下单日期,订单金额,成本,利润\n"


@pytest.fixture
def empty(tmp_path: Path) -> Workspace:
    with Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml")) as ws:
        yield ws


def _orders(folder: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path = folder / "订单.csv"
    body = (DATA / "orders.csv").read_text(encoding="utf-8")
    path.write_text(body + "".join(line + "\n" for line in lines), encoding=encoding)
    return path


def _tiers(ws: Workspace, run_id: int) -> dict[str, str]:
    table = ws.assignments(run_id)
    return dict(zip(table["customer_id"].to_pylist(), table["tier"].to_pylist(), strict=True))


def _grade(ws: Workspace, orders: Path, **more: list[str]) -> int:
    files = {"orders": [str(orders)], "customers": [str(DATA / "customers.csv")], **more}
    return ws.grade(as_of=AS_OF, files=files).run_id


def _store_orders(ws: Workspace) -> int:
    row = ws.store().execute("SELECT count(*) FROM orders").fetchone()
    assert row is not None
    return int(row[0])


def test_bad_rows_are_rejected_with_their_reason_and_the_rest_graded(
        empty: Workspace, tmp_path: Path) -> None:
    clean = _grade(empty, _orders(tmp_path))
    bad = _orders(tmp_path, "O90,C2,2025-02-30,800000,,", "O91,C2,2025-03-01,八十万元,,")
    run = empty.grade(as_of=AS_OF, files={"orders": [str(bad)],
                                          "customers": [str(DATA / "customers.csv")]})
    assert run.rejected_rows == 2
    assert _tiers(empty, run.run_id) == _tiers(empty, clean)
    [rejects] = sorted(empty.rejects_dir.glob("*-orders-*.csv"))
    with rejects.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["row"], r["column"]) for r in rows] == [("12", "下单日期"), ("13", "订单金额")]
    assert all(r["file"].endswith("订单.csv") and r["reason"] for r in rows)
    assert _store_orders(empty) == 0                       # nothing was imported


def test_graded_files_equal_the_same_files_imported(empty: Workspace, tmp_path: Path) -> None:
    direct = _grade(empty, _orders(tmp_path))
    for kind in ("customers", "orders"):
        empty.import_files(kind, [DATA / f"{kind}.csv"])
    imported = empty.grade(as_of=AS_OF).run_id
    assert _tiers(empty, direct) == _tiers(empty, imported)
    assert empty.run(direct).data_fingerprint == empty.run(imported).data_fingerprint


def test_a_repeated_order_counts_once_and_a_conflicting_one_is_rejected(
        empty: Workspace, tmp_path: Path) -> None:
    clean = _grade(empty, _orders(tmp_path))
    again = _grade(empty, _orders(tmp_path, "O1,C1,2024-06-30,500000,300000,"))
    assert _tiers(empty, again) == _tiers(empty, clean)
    assert empty.run(again).data_fingerprint == empty.run(clean).data_fingerprint
    # O3 twice with different amounts: which one is right is for the user to say.
    conflicting = empty.grade(as_of=AS_OF, files={
        "orders": [str(_orders(tmp_path, "O3,C1,2025-06-30,900000,300000,"))],
        "customers": [str(DATA / "customers.csv")]})
    assert conflicting.rejected_rows == 2
    assert _tiers(empty, conflicting.run_id)["C1"] != _tiers(empty, clean)["C1"]


def test_gbk_files_with_chinese_headers_and_unknown_customers(
        empty: Workspace, tmp_path: Path) -> None:
    orders = _orders(tmp_path, "O95,C99,2025-05-01,1.2万,,", encoding="gbk")
    run_id = _grade(empty, orders)
    tiers = _tiers(empty, run_id)
    assert tiers["C99"] == "potential"       # ordered, not in the customers file: graded
    assert tiers["C1"] == _tiers(empty, _grade(empty, _orders(tmp_path)))["C1"]


def test_a_file_without_a_needed_column_fails_naming_it_and_leaves_no_run(
        empty: Workspace, tmp_path: Path) -> None:
    broken = tmp_path / "orders.csv"
    broken.write_text("订单号,客户编号,订单金额\nO1,C1,100\n", encoding="utf-8")
    with pytest.raises(InputError, match="order_date"):
        _grade(empty, broken)
    assert empty.runs() == []
