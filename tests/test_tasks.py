"""Tasks: every run of the workspace's book derives the work its tiers ask for, and the task
list is kept in line across runs — a valid task is not duplicated, one whose condition has
cleared is closed with the reason, a task done by hand stays done.

Data: tests/data as of 2025-06-30. C1 (VIP, 张伟) was visited 2025-06-15 after a complaint
on 05-01; C2 (important, 王芳, customer since 2023-01-01) was never contacted before the date
and last ordered 2025-02-10 (140 days: at risk); its call of 2025-07-05 comes later."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.test_cli import run
from tierwise.errors import TierwiseError
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)
PLAYBOOKS = """
playbooks:
  vip: {cadence: 1 month, channels: [拜访]}
  important: {cadence: 3 months, channels: [电话]}
"""


@pytest.fixture
def policy(tmp_path: Path) -> str:
    path = tmp_path / "with-playbooks.yaml"
    path.write_text((DATA / "policy.yaml").read_text(encoding="utf-8") + PLAYBOOKS,
                    encoding="utf-8")
    return str(path)


def open_tasks(ws: Workspace) -> dict[tuple[str, str], int]:
    return {(t.customer_id, t.kind): t.id for t in ws.tasks()}


def test_contact_due_against_the_tiers_cadence(ws: Workspace, policy: str) -> None:
    summary = ws.grade(as_of=AS_OF, policy=policy)
    contact = {t.customer_id: t for t in ws.tasks(kind="contact")}
    # C1: visited 06-15, monthly → due 07-15, beyond the week ahead: no task yet.
    # C2: never contacted, quarterly from 2023-01-01 → long overdue.
    assert set(contact) == {"C2"}
    assert contact["C2"].owner == "王芳" and contact["C2"].due_date == dt.date(2023, 4, 1)
    assert contact["C2"].overdue(AS_OF) and contact["C2"].priority == 2
    assert "上次联系 无记录" in contact["C2"].describe("zh")
    assert summary.tasks is not None and summary.tasks.created == len(ws.tasks())


def test_a_later_run_closes_a_cleared_task_and_raises_a_new_one(ws: Workspace,
                                                                 policy: str) -> None:
    ws.grade(as_of=AS_OF, policy=policy)
    ws.grade(as_of=dt.date(2025, 7, 31), policy=policy)
    contact = {t.customer_id: t for t in ws.tasks(kind="contact")}
    assert set(contact) == {"C1"}                 # 07-15 passed; C2 was called on 07-05
    closed = [t for t in ws.tasks(kind="contact", status="closed")]
    assert [(t.customer_id, t.closed_reason) for t in closed] == [
        ("C2", "condition cleared as of 2025-07-31")]


def test_rerunning_a_date_does_not_duplicate_tasks(ws: Workspace, policy: str) -> None:
    ws.grade(as_of=AS_OF, policy=policy)
    first = open_tasks(ws)
    second_run = ws.grade(as_of=AS_OF, policy=policy)
    assert open_tasks(ws) == first
    assert second_run.tasks is not None and second_run.tasks.created == 0
    # Read back from the app database, nothing compares as changed (dates, nulls, numbers).
    assert (second_run.tasks.updated, second_run.tasks.closed) == (0, 0)


def test_a_task_done_by_hand_stays_done_while_its_condition_lasts(ws: Workspace,
                                                                  policy: str) -> None:
    ws.grade(as_of=AS_OF, policy=policy)
    task = next(t for t in ws.tasks(kind="contact") if t.customer_id == "C2")
    done = ws.task_done(task.id, "已电话联系")
    assert (done.status, done.note) == ("done", "已电话联系")
    ws.grade(as_of=AS_OF, policy=policy)
    assert ("C2", "contact") not in open_tasks(ws)
    ws.grade(as_of=dt.date(2025, 7, 31), policy=policy)        # the call of 07-05 clears it
    ws.grade(as_of=dt.date(2025, 10, 31), policy=policy)       # 07-05 + 3 months: due again
    assert ("C2", "contact") in open_tasks(ws)
    with pytest.raises(TierwiseError, match="is done, not open"):
        ws.task_done(task.id)


def test_complaint_follow_up_until_someone_gets_in_touch(ws: Workspace, policy: str) -> None:
    ws.log_interaction("C3", "投诉", date=dt.date(2025, 6, 20), note="包装破损")
    ws.grade(as_of=AS_OF, policy=policy)
    complaint = next(t for t in ws.tasks(kind="complaint"))
    assert (complaint.customer_id, complaint.owner) == ("C3", "李娜")
    assert complaint.due_date == dt.date(2025, 6, 23)
    assert complaint.describe("zh") == "2025-06-20 的投诉尚未回访"
    ws.log_interaction("C3", "电话", date=dt.date(2025, 6, 25), note="已回访")
    ws.grade(as_of=AS_OF, policy=policy)
    assert ws.tasks(kind="complaint") == []


def test_churn_risk_for_customers_at_risk(ws: Workspace, policy: str) -> None:
    ws.grade(as_of=AS_OF, policy=policy)
    at_risk = {r["customer_id"] for r in ws.assignments().to_pylist()
               if r["stage"] == "at_risk"}
    assert "C2" in at_risk
    assert {t.customer_id for t in ws.tasks(kind="churn_risk")} == at_risk


def test_credit_risk_follows_the_overdue_metric(ws: Workspace, policy: str) -> None:
    ws.import_files("payments", [DATA / "payments.csv"])
    ws.grade(as_of=AS_OF, policy=policy)
    late = {r["customer_id"] for r in ws.assignments().to_pylist()
            if (r["overdue_days"] or 0) > 30}
    # P1: 3,000 left of V2 due 03-03; P2: V4 due 05-30; P3: V5 due 04-20 — all > 30 days.
    assert late == {"P1", "P2", "P3"}
    assert {t.customer_id for t in ws.tasks(kind="credit_risk")} == late


def test_cli_lists_filters_and_marks_done(tmp_path: Path, policy: str) -> None:
    folder = str(tmp_path / "cli")
    run("init", folder, "--policy", policy)
    for kind in ("customers", "orders", "interactions"):
        run("import", kind, str(DATA / f"{kind}.csv"), "-w", folder)
    run("grade", "--as-of", "2025-06-30", "-w", folder)
    listed = json.loads(run("tasks", "--owner", "王芳", "--format", "json", "-w", folder).output)
    assert {t["kind"] for t in listed} >= {"contact", "churn_risk"}
    assert all(t["owner"] == "王芳" for t in listed)
    contact = next(t for t in listed if t["kind"] == "contact")
    assert "上次联系" in contact["text"]
    assert "已完成" in run("tasks", "done", str(contact["id"]), "--note", "已联系",
                         "-w", folder).output
    table = run("tasks", "--kind", "contact", "-w", folder).output
    assert "C2" not in table
    csv_out = run("tasks", "--format", "csv", "--status", "all", "-w", folder).output
    assert csv_out.splitlines()[0].startswith("id,customer_id,kind")


def test_open_tasks_follow_an_owner_change_at_once(ws: Workspace, tmp_path: Path) -> None:
    """A customers file that moves C2 to 李娜: her tasks are hers now, not 王芳's (who would
    otherwise still list and close them), without waiting for the next run."""
    from fastapi.testclient import TestClient

    from tierwise.web import create_app
    from tierwise.work import users

    ws.grade(as_of=dt.date(2025, 6, 30))
    moved = [t for t in ws.tasks() if t.customer_id == "C2"]
    assert moved and {t.owner for t in moved} == {"王芳"}
    change = tmp_path / "owners.csv"
    change.write_text("customer_id,owner\nC2,李娜\n", encoding="utf-8")
    ws.import_files("customers", [change])
    assert {t.owner for t in ws.tasks() if t.customer_id == "C2"} == {"李娜"}
    assert not [t for t in ws.tasks(owner="王芳") if t.customer_id == "C2"]
    for name in ("王芳", "李娜"):
        users.add_user(ws.appdb, name, "rep", "correct horse battery")
    old = users.create_token(ws.appdb, users.get_user(ws.appdb, "王芳"), "t")
    new = users.create_token(ws.appdb, users.get_user(ws.appdb, "李娜"), "t")
    with TestClient(create_app(ws.root)) as client:
        path = f"/api/v1/tasks/{moved[0].id}/done"
        assert client.post(path, headers={"Authorization": f"Bearer {old}"},
                           json={}).status_code == 404
        assert client.post(path, headers={"Authorization": f"Bearer {new}"},
                           json={}).status_code == 200
