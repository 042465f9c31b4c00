"""Managing who has access: API tokens listed, expiring and revoked, users deactivated and
given new passwords — in the library, the command line and the API, audited; a revoked
token and a deactivated user's session stop working at once."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tierwise.appdb import schema
from tierwise.cli import main
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace

PASSWORD = "correct horse battery"


@pytest.fixture
def client(ws: Workspace) -> Iterator[TestClient]:
    for name, role in (("boss", "admin"), ("王芳", "rep"), ("李娜", "rep")):
        users.add_user(ws.appdb, name, role, PASSWORD)
    with TestClient(create_app(ws.root)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    form = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert form is not None
    return client.post("/login", data={"name": name, "password": password,
                                       "csrf": form.group(1)},
                       follow_redirects=False).status_code


def test_a_revoked_token_stops_at_once(ws: Workspace, client: TestClient) -> None:
    token = ws.create_token("王芳", "excel")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    [info] = ws.tokens("王芳")
    assert info.label == "excel" and info.last_used_at is not None and info.usable
    gone = client.delete(f"/api/v1/tokens/{info.id}", headers=bearer(token))
    assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    [row] = ws.audit_log(action="token revoked")
    assert (row.user, row.interface, row.target) == ("王芳", "api", "王芳")


def test_a_token_with_an_expiry_stops_by_itself(ws: Workspace, client: TestClient) -> None:
    made = client.post("/api/v1/tokens", headers=bearer(ws.create_token("boss", "admin")),
                       json={"label": "erp", "expires_days": 30})
    assert made.status_code == 200
    token = made.json()["token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    k = schema.api_tokens
    with ws.appdb.begin() as connection:        # thirty days later
        connection.execute(k.update().where(k.c.label == "erp").values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert not next(t for t in ws.tokens("boss") if t.label == "erp").usable
    too_long = client.post("/api/v1/tokens", headers=bearer(token), json={"label": "x"})
    assert too_long.status_code == 401
    bad = client.post("/api/v1/tokens", headers=bearer(ws.create_token("boss", "b")),
                      json={"label": "x", "expires_days": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "expires_days"


def test_a_rep_sees_and_revokes_only_their_own_tokens(ws: Workspace,
                                                     client: TestClient) -> None:
    mine, theirs = ws.create_token("王芳", "mine"), ws.create_token("李娜", "theirs")
    listed = client.get("/api/v1/tokens", headers=bearer(mine)).json()
    assert [t["label"] for t in listed] == ["mine"]
    assert client.get("/api/v1/tokens", headers=bearer(mine),
                      params={"user": "李娜"}).status_code == 403
    other = ws.tokens("李娜")[0].id
    assert client.delete(f"/api/v1/tokens/{other}", headers=bearer(mine)).status_code == 404
    assert client.get("/api/v1/me", headers=bearer(theirs)).status_code == 200
    admin = bearer(ws.create_token("boss", "admin"))
    assert {t["user"] for t in client.get("/api/v1/tokens", headers=admin).json()} == {
        "王芳", "李娜", "boss"}
    assert client.delete(f"/api/v1/tokens/{other}", headers=admin).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(theirs)).status_code == 401


def test_a_deactivated_users_session_and_tokens_stop_at_once(ws: Workspace,
                                                            client: TestClient) -> None:
    token = ws.create_token("王芳", "phone")
    assert sign_in(client, "王芳") == 303
    assert client.get("/api/v1/me").status_code == 200            # the session cookie
    admin = bearer(ws.create_token("boss", "admin"))
    off = client.put("/api/v1/users/王芳/active", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert sign_in(client, "王芳") == 401
    on = client.put("/api/v1/users/王芳/active", headers=admin, json={"active": True})
    assert on.status_code == 200
    assert client.get("/api/v1/me").status_code == 401          # old sessions stay ended
    assert sign_in(client, "王芳") == 303
    actions = [(e.action, e.target, e.interface) for e in ws.audit_log()
               if e.action.startswith("user ")]
    assert actions == [("user activated", "王芳", "api"), ("user deactivated", "王芳", "api")]


def test_admins_alone_manage_users_and_not_themselves(ws: Workspace,
                                                     client: TestClient) -> None:
    rep = bearer(ws.create_token("王芳", "t"))
    assert client.get("/api/v1/users", headers=rep).status_code == 403
    assert client.put("/api/v1/users/李娜/active", headers=rep,
                      json={"active": False}).status_code == 403
    admin = bearer(ws.create_token("boss", "admin"))
    assert [u["name"] for u in client.get("/api/v1/users", headers=admin).json()] == [
        "boss", "李娜", "王芳"]
    own = client.put("/api/v1/users/boss/active", headers=admin, json={"active": False})
    assert own.status_code == 400 and "yourself" in own.json()["error"]["message"]
    missing = client.put("/api/v1/users/nobody/active", headers=admin, json={"active": False})
    assert missing.status_code == 400 and "no user 'nobody'" in missing.json()["error"]["message"]


def test_a_new_password_ends_the_users_sessions(ws: Workspace, client: TestClient) -> None:
    assert sign_in(client, "王芳") == 303
    admin = bearer(ws.create_token("boss", "admin"))
    short = client.put("/api/v1/users/王芳/password", headers=admin, json={"password": "x"})
    assert short.status_code == 422 and short.json()["error"]["field"] == "password"
    done = client.put("/api/v1/users/王芳/password", headers=admin,
                      json={"password": "a new long password"})
    assert done.status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    assert sign_in(client, "王芳") == 401
    assert sign_in(client, "王芳", "a new long password") == 303
    assert ws.audit_log(action="password")[0].target == "王芳"


def test_the_command_line_lists_revokes_deactivates_and_resets(ws: Workspace) -> None:
    runner = CliRunner()
    where = ["-w", str(ws.root)]
    users.add_user(ws.appdb, "张伟", "rep", PASSWORD)
    token = runner.invoke(main, ["user", "token", "张伟", "--label", "excel", "--expires", "7",
                                 *where]).output.strip()
    assert token.startswith("tw_") and users.token_user(ws.appdb, token) is not None
    listed = json.loads(runner.invoke(main, ["user", "tokens", "张伟", "--format", "json",
                                             *where]).output)
    assert [(t["label"], t["usable"]) for t in listed] == [("excel", True)]
    assert listed[0]["expires_at"] is not None
    table = runner.invoke(main, ["user", "tokens", *where]).output
    assert "excel" in table and "usable" in table
    revoked = runner.invoke(main, ["user", "revoke", str(listed[0]["id"]), *where])
    assert revoked.exit_code == 0 and users.token_user(ws.appdb, token) is None
    assert runner.invoke(main, ["user", "revoke", "999", *where]).exit_code == 1
    assert runner.invoke(main, ["user", "deactivate", "张伟", *where]).exit_code == 0
    assert not users.get_user(ws.appdb, "张伟").active
    assert runner.invoke(main, ["user", "activate", "张伟", *where]).exit_code == 0
    reset = runner.invoke(main, ["user", "password", "张伟", "--password", "another long one",
                                 *where])
    assert reset.exit_code == 0
    assert users.authenticate(ws.appdb, "张伟", "another long one", client="t").name == "张伟"
    assert runner.invoke(main, ["user", "token", "张伟", "--expires", "0", *where]).exit_code == 1
    logged = [(e.action, e.interface) for e in ws.audit_log(limit=5)]
    assert logged == [("password", "cli"), ("user activated", "cli"),
                      ("user deactivated", "cli"), ("token revoked", "cli"), ("token", "cli")]
    with ws.appdb.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(
            schema.api_tokens)).scalar_one() == 1


def test_admins_manage_people_and_tokens_on_the_users_page(ws: Workspace,
                                                          client: TestClient) -> None:
    rep_token = ws.create_token("王芳", "excel")
    rep = TestClient(client.app)
    with rep:
        assert sign_in(rep, "王芳") == 303
        assert rep.get("/users").status_code == 403
        assert "/users" not in rep.get("/tasks").text
        assert sign_in(client, "boss") == 303
        page = client.get("/users")
        assert page.status_code == 200
        assert "用户与权限" in page.text and "王芳" in page.text and "excel" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        forged = client.post("/users/王芳/active", data={"active": "0"})
        assert forged.status_code == 403
        off = client.post("/users/王芳/active", data={"active": "0", "csrf": csrf.group(1)},
                          follow_redirects=False)
        assert off.status_code == 303 and rep.get("/api/v1/me").status_code == 401
        [info] = ws.tokens("王芳")
        done = client.post(f"/tokens/{info.id}/revoke", data={"csrf": csrf.group(1)},
                           follow_redirects=False)
        assert done.status_code == 303 and users.token_user(ws.appdb, rep_token) is None
        assert "已吊销" in client.get("/users").text and "已停用" in client.get("/users").text
        assert client.post("/tokens/99999999999999999999/revoke",
                           data={"csrf": csrf.group(1)}).status_code == 404
    assert [e.interface for e in ws.audit_log(limit=2)] == ["web", "web"]
