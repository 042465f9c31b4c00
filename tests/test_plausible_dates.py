"""Dates a book cannot hold are refused where they come in: an order dated 9999-12-31 (a
typo, a placeholder) is a rejected row with its reason, not the as-of date of every later
run; a run as of such a date is refused naming the field; and a run whose work cannot be
written leaves no run behind."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.test_web import finished_job
from tierwise.errors import InputError, WorkspaceError
from tierwise.web import create_app
from tierwise.work import tasks as work_tasks
from tierwise.work import users
from tierwise.workspace import Workspace


def orders_file(folder: Path, *rows: str) -> Path:
    path = folder / "orders-more.csv"
    path.write_text("订单号,客户编号,下单日期,订单金额\n" + "".join(r + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_an_order_dated_9999_is_rejected_with_its_reason(ws: Workspace, tmp_path: Path) -> None:
    result = ws.import_files("orders", [orders_file(
        tmp_path, "B1,C1,9999-12-31,100", "B2,C1,1899-12-31,100", "B3,C1,2025-08-01,100")])
    assert (result.accepted, result.rejected) == (1, 2)
    assert result.rejects_path is not None
    with result.rejects_path.open(encoding="utf-8-sig") as handle:
        rejects = {row["订单号"]: row for row in csv.DictReader(handle)}
    assert set(rejects) == {"B1", "B2"}
    latest = (dt.date.today().replace(year=dt.date.today().year + 1)
              if (dt.date.today().month, dt.date.today().day) != (2, 29) else None)
    reason = rejects["B1"]["reason"]
    assert reason.startswith("date outside the plausible range 1900-01-01 – ")
    assert reason.endswith(": 9999-12-31") and (latest is None or latest.isoformat() in reason)
    assert rejects["B1"]["column"] == "下单日期"
    summary = ws.grade()
    assert summary.as_of == dt.date(2025, 8, 1)       # the latest plausible order


def test_the_range_is_a_setting(ws: Workspace, tmp_path: Path) -> None:
    ws._set_config("import", {"earliest_date": "2020-01-01", "years_ahead": 0})
    result = ws.import_files("orders", [orders_file(tmp_path, "B1,C1,2019-12-31,100")])
    assert result.rejected == 1
    ws._set_config("import", {"years_ahead": "two"})
    with pytest.raises(WorkspaceError, match=r"import\.years_ahead: expected a whole number"):
        ws.import_files("orders", [orders_file(tmp_path, "B2,C1,2025-01-01,100")])
    ws._set_config("import", {"earliest_date": "1.1.1900"})
    with pytest.raises(WorkspaceError, match=r"import\.earliest_date: expected a date"):
        ws.grade()


def test_a_run_as_of_an_implausible_date_is_refused_and_records_nothing(ws: Workspace) -> None:
    with pytest.raises(InputError, match="as-of date 9999-12-31 is outside") as caught:
        ws.grade(as_of=dt.date(9999, 12, 31))
    assert caught.value.column == "as_of" and ws.runs() == []


def test_an_implausible_date_already_in_the_store_stops_the_run(ws: Workspace) -> None:
    """Data imported before the check existed: the run says which date and what to do."""
    ws.store().execute("INSERT INTO orders (order_id, customer_id, order_date, amount) "
                       "VALUES ('OLD', 'C1', DATE '9999-12-31', 100)")
    with pytest.raises(InputError, match="latest order's date: fix that order or give --as-of"):
        ws.grade()
    assert ws.runs() == []
    assert ws.grade(as_of=dt.date(2025, 6, 30)).as_of == dt.date(2025, 6, 30)


def test_a_run_whose_tasks_cannot_be_written_leaves_no_run(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ws.grade(as_of=dt.date(2025, 6, 30))

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("task sync failed")

    monkeypatch.setattr(work_tasks, "sync_tasks", broken)
    with pytest.raises(RuntimeError, match="task sync failed"):
        ws.grade(as_of=dt.date(2025, 7, 31))
    assert [r.id for r in ws.runs()] == [first.run_id]
    assert sorted(p.name for p in ws.runs_dir.glob("run-*.parquet")) == [
        f"run-{first.run_id:06d}.parquet"]
    assert [e.target for e in ws.audit_log(action="run")] == [f"run {first.run_id}"]
    monkeypatch.undo()
    again = ws.grade(as_of=dt.date(2025, 7, 31))        # the retry is a normal run
    assert again.previous_run_id == first.run_id and again.tasks is not None


def test_the_api_refuses_an_implausible_as_of_and_keeps_server_errors_private(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    users.add_user(ws.appdb, "经理", "manager", "correct horse battery")
    token = users.create_token(ws.appdb, users.get_user(ws.appdb, "经理"), "t")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(ws.root)) as client:
        refused = client.post("/api/v1/runs", headers=headers, json={"as_of": "9999-12-31"})
        assert refused.status_code == 400
        assert refused.json()["error"]["field"] == "as_of"

        def leaky(*_: object, **__: object) -> None:
            raise RuntimeError("SELECT … amount 1234567 of 王芳's customer")

        monkeypatch.setattr(work_tasks, "sync_tasks", leaky)
        job = client.post("/api/v1/runs", headers=headers, json={"as_of": "2025-06-30"}).json()
        state = finished_job(client, job["id"], headers)
    assert state["status"] == "failed" and state["run_id"] is None
    assert "1234567" not in state["error"] and "nothing was recorded" in state["error"]
    assert ws.runs() == []


def test_amounts_beyond_the_plausible_bound_and_bad_groupings_are_rejected(
        ws: Workspace, tmp_path: Path) -> None:
    """Two orders of 1e308 made a customer's spend infinite; "1,2,3" read as 123."""
    result = ws.import_files("orders", [orders_file(
        tmp_path, "B1,C1,2025-06-01,1e308", "B2,C1,2025-06-01,\"1,2,3\"",
        "B3,C1,2025-06-01,\"1,234,567\"", "B4,C1,2025-06-01,2万亿",
        "B5,C1,2025-06-01,\"¥12,000.50\"")])
    assert (result.accepted, result.rejected) == (2, 3)
    assert result.rejects_path is not None
    with result.rejects_path.open(encoding="utf-8-sig") as handle:
        reasons = {row["订单号"]: row["reason"] for row in csv.DictReader(handle)}
    assert reasons["B1"].startswith("amount beyond the plausible bound ±1e+12")
    assert reasons["B2"] == "not an amount: '1,2,3'"
    assert reasons["B4"].startswith("amount beyond the plausible bound")
    stored = dict(ws.store().execute(
        "SELECT order_id, amount FROM orders WHERE order_id IN ('B3', 'B5')").fetchall())
    assert stored == {"B3": 1234567.0, "B5": 12000.5}
    ws._set_config("import", {"max_amount": 1e6})
    assert ws.import_files("orders", [orders_file(tmp_path, "B6,C1,2025-06-01,2000000")]
                           ).rejected == 1
    ws._set_config("import", {"max_amount": -1})
    with pytest.raises(WorkspaceError, match=r"import\.max_amount: expected a number above 0"):
        ws.import_files("orders", [orders_file(tmp_path, "B7,C1,2025-06-01,1")])
