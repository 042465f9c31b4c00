"""The web app and the REST API over a real workspace, on SQLite and on PostgreSQL: who may
see and do what (admin, manager, rep), sign-in, CSRF, the login limit, JSON errors, and the
main pages in Chinese and English.

Data: tests/data graded as of 2025-06-30 and 2025-07-31. Owners: C1 张伟, C2 王芳, C3/C4 李娜.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.conftest import DATA
from tierwise.record.audit import audit_entries
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace

PASSWORD = "correct horse battery"


@pytest.fixture
def app_ws(ws: Workspace) -> Workspace:
    ws.grade(as_of=dt.date(2025, 6, 30))
    ws.grade(as_of=dt.date(2025, 7, 31))
    for name, role in (("boss", "admin"), ("经理", "manager"), ("王芳", "rep")):
        users.add_user(ws.appdb, name, role, PASSWORD)
    return ws


@pytest.fixture
def client(app_ws: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(app_ws.root)) as test_client:
        yield test_client


def token(ws: Workspace, name: str) -> dict[str, str]:
    made = users.create_token(ws.appdb, users.get_user(ws.appdb, name), "test")
    return {"Authorization": f"Bearer {made}"}


def finished_job(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """A background run's state once it is no longer running (at most a minute)."""
    for _ in range(600):
        state: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if state["status"] != "running":
            return state
        time.sleep(0.1)
    return state


def login_form(client: TestClient) -> str:
    """Open the sign-in form; its CSRF token (the matching cookie stays in the client)."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; the session's CSRF token, read off a page."""
    response = client.post("/login", data={"name": name, "password": password,
                                           "csrf": login_form(client)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get("/tasks")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


# -- the API --------------------------------------------------------------------------------

def test_the_api_needs_a_token_or_a_session(client: TestClient) -> None:
    response = client.get("/api/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("sign in")
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer tw_nope"})
    assert bad.status_code == 401


def test_a_rep_sees_only_own_customers_everywhere(client: TestClient,
                                                  app_ws: Workspace) -> None:
    rep, manager = token(app_ws, "王芳"), token(app_ws, "经理")
    mine = client.get("/api/v1/customers", headers=rep).json()
    assert {c["customer_id"] for c in mine["customers"]} == {"C2"} and mine["total"] == 1
    everyone = client.get("/api/v1/customers", headers=manager).json()
    assert everyone["total"] == 5
    # Filters, search and sort cannot reach past the scope.
    assert client.get("/api/v1/customers?owner=张伟", headers=rep).json()["total"] == 0
    assert client.get("/api/v1/customers?q=C1", headers=rep).json()["total"] == 0
    # Guessing an id gives the same 404 as an id that does not exist.
    other = client.get("/api/v1/customers/C1", headers=rep)
    assert other.status_code == 404
    assert client.get("/api/v1/customers/NOPE", headers=rep).status_code == 404
    assert client.get("/api/v1/customers/C2", headers=rep).status_code == 200
    tasks = client.get("/api/v1/tasks", headers=rep).json()
    assert tasks and {t["owner"] for t in tasks} == {"王芳"}
    assert client.post("/api/v1/customers/C1/interactions", headers=rep,
                       json={"type": "电话"}).status_code == 404
    # Nor do the book's counts reach a rep through the runs or a what-if.
    assert client.get("/api/v1/runs", headers=rep).json()[0]["tiers"] is None
    assert client.post("/api/v1/policy/what-if", headers=rep,
                       json={"text": "name: x"}).status_code == 403


def test_customer_list_filters_sorts_and_pages(client: TestClient, app_ws: Workspace) -> None:
    manager = token(app_ws, "经理")
    page = client.get("/api/v1/customers?per_page=2&page=2&sort=-annual_spend",
                      headers=manager).json()
    assert (page["total"], page["pages"], len(page["customers"])) == (5, 3, 2)
    spends = [c["annual_spend"] for c in client.get(
        "/api/v1/customers?sort=-annual_spend", headers=manager).json()["customers"]]
    assert spends == sorted(spends, reverse=True)
    vip = client.get("/api/v1/customers?tier=vip", headers=manager).json()
    assert {c["tier"] for c in vip["customers"]} == {"vip"}
    bad = client.get("/api/v1/customers?sort=password", headers=manager)
    assert bad.status_code == 400 and "cannot sort" in bad.json()["error"]["message"]
    invalid = client.get("/api/v1/customers?per_page=0", headers=manager)
    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "per_page"


def test_overrides_by_role_and_in_the_history(client: TestClient, app_ws: Workspace) -> None:
    rep, manager = token(app_ws, "王芳"), token(app_ws, "经理")
    body = {"tier": "vip", "reason": "战略客户"}
    assert client.post("/api/v1/customers/C2/override", headers=rep,
                       json=body).status_code == 403
    made = client.post("/api/v1/customers/C2/override", headers=manager, json=body)
    assert made.status_code == 201
    unknown = client.post("/api/v1/customers/C2/override", headers=manager,
                          json={"tier": "platinum", "reason": "x"})
    assert unknown.status_code == 400
    app_ws.grade(as_of=dt.date(2025, 8, 31))
    profile = client.get("/api/v1/customers/C2", headers=manager).json()
    assert profile["tier"] == "vip" and profile["history"][-1]["basis"] == "override"
    # The override came through the API as the manager; the run after it, from the library
    # as the person at the command line: both audited.
    newest = audit_entries(app_ws.appdb)[:2]
    assert [(e.action, e.interface) for e in newest] == [("run", "cli"), ("override", "api")]
    assert (newest[1].user, newest[1].target) == ("经理", "C2")


def test_a_session_write_needs_the_csrf_token(client: TestClient) -> None:
    csrf = sign_in(client, "经理")
    body = {"tier": "vip", "reason": "x"}
    assert client.post("/api/v1/customers/C2/override", json=body).status_code == 403
    assert client.post("/api/v1/customers/C2/override", json=body,
                       headers={"X-CSRF-Token": csrf}).status_code == 201
    # A form without the token is refused too.
    assert client.post("/customers/C2/override", data=body).status_code == 403


def test_logins_are_limited_and_audited(client: TestClient, app_ws: Workspace) -> None:
    assert client.post("/login", data={"name": "boss", "password": PASSWORD}).status_code \
        == 403                                   # no sign-in form behind it: login CSRF
    for _ in range(users.LOGIN_FAILURES_ALLOWED):
        wrong = client.post("/login", data={"name": "boss", "password": "guess",
                                            "csrf": login_form(client)})
        assert wrong.status_code == 401 and "密码错误" in wrong.text
    locked = client.post("/login", data={"name": "boss", "password": PASSWORD,
                                         "csrf": login_form(client)})
    assert locked.status_code == 401 and "too many" in locked.text
    actions = [e.action for e in audit_entries(app_ws.appdb)]
    assert actions.count("login failed") == users.LOGIN_FAILURES_ALLOWED + 1


def test_passwords_are_stored_as_argon2_hashes(app_ws: Workspace) -> None:
    import sqlalchemy as sa

    from tierwise.appdb import schema

    with app_ws.appdb.connect() as connection:
        stored = connection.execute(sa.select(schema.users.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in stored)


def test_policy_check_what_if_and_save_by_role(client: TestClient, app_ws: Workspace) -> None:
    admin, manager = token(app_ws, "boss"), token(app_ws, "经理")
    text = (DATA / "policy.yaml").read_text(encoding="utf-8")
    broken = client.post("/api/v1/policy/check", headers=manager,
                         json={"text": text.replace("annual_spend >= 50万", "annual_spend >=")})
    assert broken.json()["valid"] is False and "line" in broken.json()["problems"][0]
    looser = text.replace("annual_spend >= 50万", "annual_spend >= 1万")
    preview = client.post("/api/v1/policy/what-if", headers=manager, json={"text": looser})
    assert preview.status_code == 200 and preview.json()["dry_run"] is True
    assert client.put("/api/v1/policy", headers=manager, json={"text": looser}).status_code == 403
    saved = client.put("/api/v1/policy", headers=admin, json={"text": looser})
    assert saved.status_code == 200
    assert client.get("/api/v1/policy", headers=manager).json()["text"] == looser
    assert client.get("/api/v1/policy/versions", headers=admin).json()[0]["saved_by"] == "boss"
    run = app_ws.grade(as_of=dt.date(2025, 8, 31))
    assert run.policy_hash == saved.json()["hash"]


def test_import_previews_imports_and_keeps_the_rejects(client: TestClient,
                                                       app_ws: Workspace,
                                                       tmp_path: Path) -> None:
    manager, rep = token(app_ws, "经理"), token(app_ws, "王芳")
    content = "订单号,客户编号,下单日期,订单金额\nN1,C1,2025-08-01,1000\nN2,C1,不是日期,5\n"
    files = {"file": ("新订单.csv", content.encode("gbk"), "text/csv")}
    assert client.post("/api/v1/imports", headers=rep, data={"kind": "orders"},
                       files=files).status_code == 403
    shown = client.post("/api/v1/imports/preview", headers=manager, data={"kind": "orders"},
                        files=files).json()
    assert shown["mapping"]["下单日期"] == "order_date" and len(shown["rows"]) == 2
    result = client.post("/api/v1/imports", headers=manager, data={"kind": "orders"},
                         files=files).json()
    assert (result["accepted"], result["rejected"]) == (1, 1)
    rejects = client.get(f"/api/v1/imports/rejects/{result['rejects']}", headers=manager)
    assert rejects.status_code == 200 and "不是日期" in rejects.text
    assert client.get("/api/v1/imports/rejects/..%2Ftierwise.yaml",
                      headers=manager).status_code == 404


def test_runs_start_in_the_background(client: TestClient, app_ws: Workspace) -> None:
    manager, rep = token(app_ws, "经理"), token(app_ws, "王芳")
    assert client.post("/api/v1/runs", headers=rep, json={}).status_code == 403
    started = client.post("/api/v1/runs", headers=manager, json={"as_of": "2025-08-31"})
    assert started.status_code == 202
    state = finished_job(client, started.json()["id"], manager)
    assert state["status"] == "done", state
    assert client.get("/api/v1/runs", headers=rep).json()[0]["id"] == state["run_id"]


def test_dashboard_and_audit_as_json(client: TestClient, app_ws: Workspace) -> None:
    admin, rep = token(app_ws, "boss"), token(app_ws, "王芳")
    whole = client.get("/api/v1/dashboard", headers=admin).json()
    mine = client.get("/api/v1/dashboard", headers=rep).json()
    assert whole["overview"]["customers"] == 5 and mine["overview"]["customers"] == 1
    assert client.get("/api/v1/audit", headers=rep).status_code == 403
    assert client.get("/api/v1/audit", headers=admin).status_code == 200


def test_openapi_document(client: TestClient, app_ws: Workspace) -> None:
    assert client.get("/openapi.json").status_code == 401          # for signed-in users
    assert client.get("/docs", follow_redirects=False).status_code == 303
    document = client.get("/openapi.json", headers=token(app_ws, "王芳")).json()
    assert "/api/v1/customers" in document["paths"]
    assert all(path.startswith("/api/v1") for path in document["paths"])


# -- the pages ------------------------------------------------------------------------------

def test_pages_need_sign_in_and_render_in_both_languages(client: TestClient) -> None:
    assert client.get("/customers", follow_redirects=False).status_code == 303
    sign_in(client, "经理")
    zh = client.get("/?lang=zh")
    assert zh.status_code == 200 and "目标占比" in zh.text and "仪表盘" in zh.text
    assert "/static/plotly.min.js" in zh.text and "cdn" not in zh.text.lower()
    en = client.get("/?lang=en")
    assert "Target share" in en.text and "Dashboard" in en.text
    assert client.get("/customers").status_code == 200        # the language cookie stays
    for path in ("/customers", "/customers/C1", "/tasks", "/runs", "/policy", "/import"):
        page = client.get(path)
        assert page.status_code == 200, path
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_a_rep_s_pages_show_only_own_customers(client: TestClient) -> None:
    sign_in(client, "王芳")
    listed = client.get("/customers").text
    assert "C2" in listed and "/customers/C1" not in listed
    assert client.get("/customers/C1").status_code == 404
    assert client.get("/import").status_code == 403
    export = client.get("/customers.xlsx")
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    ids = {row[0] for row in sheet.iter_rows(values_only=True)}
    assert "C2" in ids and "C1" not in ids


def test_logging_an_interaction_and_marking_a_task_done_from_the_pages(
        client: TestClient, app_ws: Workspace) -> None:
    csrf = sign_in(client, "王芳")
    logged = client.post("/customers/C2/interactions", data={
        "csrf": csrf, "type": "call", "date": "2025-08-01", "note": "季度回访"},
        follow_redirects=False)
    assert logged.status_code == 303
    assert "季度回访" in client.get("/customers/C2").text
    task = next(t for t in app_ws.tasks(owner="王芳"))
    done = client.post(f"/tasks/{task.id}/done", data={"csrf": csrf, "note": "已处理"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert task.id not in {t.id for t in app_ws.tasks(owner="王芳")}

