"""What the workbench sends besides content: no page can be framed (clickjacking), types are
not sniffed, signed-in pages are not cached, and a redirect after a form goes only to a path
on this site (no open redirect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.test_web import PASSWORD, sign_in
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace


@pytest.fixture
def client(ws: Workspace) -> Iterator[TestClient]:
    ws.grade(as_of=dt.date(2025, 6, 30))
    users.add_user(ws.appdb, "经理", "manager", PASSWORD)
    with TestClient(create_app(ws.root)) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/login", "/", "/customers", "/api/v1/me", "/openapi.json"])
def test_no_response_may_be_framed_or_sniffed_or_cached(client: TestClient, path: str) -> None:
    sign_in(client, "经理")
    response = client.get(path)
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_static_files_may_be_cached(client: TestClient) -> None:
    response = client.get("/static/app.css")
    assert response.status_code == 200 and "cache-control" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(("back", "lands"), [
    ("/customers/C2", "/customers/C2"),
    ("//evil.example/", "/tasks"),
    ("/\\evil.example/", "/tasks"),
    ("https://evil.example/", "/tasks"),
    ("/\t/evil.example", "/tasks"),
    ("", "/tasks"),
])
def test_marking_a_task_done_redirects_only_within_the_site(ws: Workspace, client: TestClient,
                                                            back: str, lands: str) -> None:
    csrf = sign_in(client, "经理")
    task = ws.tasks()[0]
    done = client.post(f"/tasks/{task.id}/done", data={"csrf": csrf, "back": back},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == lands
