"""Audit as a core event: every write goes through the library, and the library records who
did it, when, through which interface (cli, web, api, schedule) and from where, so the CLI,
the schedule and the web app leave the same rows. The web app acts as the signed-in person."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.conftest import DATA
from tests.test_web import PASSWORD, finished_job, login_form
from tierwise.cli import main
from tierwise.record import runs as record_runs
from tierwise.record.audit import Actor, audit_entries
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace


def new_rows(ws: Workspace, before: int) -> list:
    """The audit rows written since ``before`` rows existed, oldest first."""
    rows = list(reversed(audit_entries(ws.appdb, None)))
    return rows[before:]


def count(ws: Workspace) -> int:
    return len(audit_entries(ws.appdb, None))


def test_a_cli_override_leaves_one_row_with_the_person_and_the_interface(ws: Workspace) -> None:
    ws.grade(as_of=dt.date(2025, 6, 30))
    before = count(ws)
    result = CliRunner().invoke(main, ["override", "C2", "vip", "--reason", "战略客户",
                                       "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    [row] = new_rows(ws, before)
    assert (row.user, row.interface, row.action, row.target) == ("tester", "cli", "override",
                                                                  "C2")
    assert row.detail == "vip: 战略客户" and row.address     # the host it came from


def test_a_cli_import_leaves_one_row_naming_the_file_and_the_counts(ws: Workspace) -> None:
    before = count(ws)
    result = CliRunner().invoke(main, ["import", "orders", str(DATA / "orders.csv"),
                                       "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    [row] = new_rows(ws, before)
    assert (row.user, row.interface, row.action) == ("tester", "cli", "import")
    assert row.target == "orders: orders.csv" and "accepted 0" in row.detail


def test_a_scheduled_run_leaves_one_row_as_the_schedule(ws: Workspace) -> None:
    ws._set_config("schedule", {"every": "month", "day": 1, "at": "06:00"})
    before = count(ws)
    [outcome] = ws.run_due(now=dt.datetime(2025, 7, 1, 7, 0))
    [row] = new_rows(ws, before)
    assert (row.action, row.interface, row.user) == ("run", "schedule", "tester")
    assert row.target == f"run {outcome.run_id}" and "2025-06-30" in row.detail
    assert ws.run(outcome.run_id).created_by == "tester"


def test_a_run_that_fails_while_recording_leaves_no_run_and_no_audit_row(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.grade(as_of=dt.date(2025, 3, 31))      # the failing run continues it: it has moves
    before, runs = count(ws), len(ws.runs())

    def broken(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(record_runs, "_insert_changes", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ws.grade(as_of=dt.date(2025, 6, 30))
    assert new_rows(ws, before) == [] and len(ws.runs()) == runs


@pytest.fixture
def client(ws: Workspace) -> TestClient:
    ws.grade(as_of=dt.date(2025, 6, 30))
    for name, role in (("boss", "admin"), ("经理", "manager"), ("王芳", "rep")):
        users.add_user(ws.appdb, name, role, PASSWORD)
    return TestClient(create_app(ws.root))


def bearer(ws: Workspace, name: str) -> dict[str, str]:
    made = users.create_token(ws.appdb, users.get_user(ws.appdb, name), "test")
    return {"Authorization": f"Bearer {made}"}


def test_a_web_run_is_recorded_as_the_signed_in_person(ws: Workspace,
                                                       client: TestClient) -> None:
    manager = bearer(ws, "经理")
    with client:
        before = count(ws)
        started = client.post("/api/v1/runs", headers=manager, json={"as_of": "2025-07-31"})
        assert started.status_code == 202
        state = finished_job(client, started.json()["id"], manager)
        assert state["status"] == "done", state
    [row] = new_rows(ws, before)
    assert (row.action, row.user, row.interface) == ("run", "经理", "api")
    assert row.target == f"run {state['run_id']}" and row.address == "testclient"
    assert ws.run(state["run_id"]).created_by == "经理"       # not the server's OS user


def test_web_writes_are_audited_once_by_the_library(ws: Workspace, client: TestClient) -> None:
    manager = bearer(ws, "经理")
    with client:
        before = count(ws)
        made = client.post("/api/v1/customers/C2/override", headers=manager,
                           json={"tier": "vip", "reason": "战略客户"})
        assert made.status_code == 201
        removed = client.delete("/api/v1/customers/C2/override", headers=manager)
        assert removed.status_code == 200
    rows = new_rows(ws, before)
    assert [(r.action, r.user, r.interface, r.detail) for r in rows] == [
        ("override", "经理", "api", "vip: 战略客户"), ("override", "经理", "api", "removed")]


def test_admins_read_the_audit_log_on_a_page_and_in_the_api(ws: Workspace,
                                                            client: TestClient) -> None:
    ws.acting_as(Actor("王芳", "web", "10.0.0.7")).log_interaction("C2", "拜访")
    with client:
        rep = bearer(ws, "王芳")
        assert client.get("/api/v1/audit", headers=rep).status_code == 403
        admin = bearer(ws, "boss")
        found = client.get("/api/v1/audit", headers=admin,
                           params={"action": "interaction"}).json()
        assert [(e["user"], e["interface"], e["address"], e["target"]) for e in found] == [
            ("王芳", "web", "10.0.0.7", "C2")]
        client.post("/login", data={"name": "boss", "password": PASSWORD,
                                    "csrf": login_form(client)})
        page = client.get("/audit", params={"user": "王芳"})
        assert page.status_code == 200
        assert "审计日志" in page.text and "记录互动" in page.text and "网页" in page.text
        assert "10.0.0.7" in page.text
        assert client.get("/audit", params={"since": "2025-13-01"}).status_code == 400


def test_a_rep_has_no_audit_page(ws: Workspace, client: TestClient) -> None:
    with client:
        client.post("/login", data={"name": "王芳", "password": PASSWORD,
                                    "csrf": login_form(client)})
        assert client.get("/audit").status_code == 403
        assert "审计日志" not in client.get("/tasks").text


def test_tierwise_audit_reads_the_log_with_filters_and_as_records_the_person(
        ws: Workspace) -> None:
    runner = CliRunner()
    where = ["-w", str(ws.root)]
    assert runner.invoke(main, [*where, "--as", "王芳", "log", "C2", "拜访"]).exit_code == 0
    assert runner.invoke(main, ["log", "C3", "电话", *where]).exit_code == 0
    shown = runner.invoke(main, ["audit", "--user", "王芳", "--format", "json", *where])
    assert shown.exit_code == 0, shown.output
    [entry] = json.loads(shown.output)
    assert (entry["user"], entry["interface"], entry["action"], entry["target"]) == (
        "王芳", "cli", "interaction", "C2")
    table = runner.invoke(main, ["audit", "--action", "interaction", *where])
    assert "记录互动" in table.output and "命令行" in table.output and "tester" in table.output
    rows = list(csv.reader(io.StringIO(
        runner.invoke(main, ["audit", "--since", "2000-01-01", "--format", "csv", *where]
                      ).output)))
    assert rows[0] == ["at", "user", "interface", "address", "action", "target", "detail"]
    assert {r[1] for r in rows[1:]} >= {"王芳", "tester"}
    future = runner.invoke(main, ["audit", "--since", "2999-01-01", "--format", "json", *where])
    assert json.loads(future.output) == []
    bad = runner.invoke(main, ["audit", "--since", "2026-02-30", *where])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
