"""Whatever a signed-in person types into a form or a URL, the workbench answers with a
message naming the field (4xx), never a 500: dates, numbers and ids are checked where they
come in, an upload's name is made safe, and a rule too long or nested too deep is refused by
the grammar with a clear error (in the policy page, the API and `tierwise policy check`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.test_web import PASSWORD, sign_in
from tierwise.cli import main
from tierwise.errors import ExpressionError
from tierwise.policy.syntax import MAX_NESTING, parse_rule
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace

DEEP = "(" * 3000 + "annual_spend > 1" + ")" * 3000


@pytest.fixture
def signed_in(ws: Workspace) -> Iterator[tuple[TestClient, str]]:
    ws.grade(as_of=dt.date(2025, 6, 30))
    users.add_user(ws.appdb, "boss", "admin", PASSWORD)
    with TestClient(create_app(ws.root), raise_server_exceptions=False) as client:
        csrf = sign_in(client, "boss")
        yield client, csrf


@pytest.mark.parametrize(("path", "form", "field"), [
    ("/customers/C1/interactions", {"type": "visit", "satisfaction": "abc"}, "satisfaction"),
    ("/customers/C1/interactions", {"type": "visit", "satisfaction": "9"}, "satisfaction"),
    ("/customers/C1/interactions", {"type": "visit", "date": "yesterday"}, "date"),
    ("/customers/C1/override", {"tier": "vip", "reason": "x", "until": "31/12/2026"}, "until"),
    ("/runs", {"as_of": "bad"}, "as_of"),
])
def test_a_bad_form_value_is_a_400_naming_its_field(signed_in: tuple[TestClient, str],
                                                    path: str, form: dict[str, str],
                                                    field: str) -> None:
    client, csrf = signed_in
    answer = client.post(path, data={**form, "csrf": csrf})
    assert answer.status_code == 400 and f"{field}:" in answer.text


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/runs?a=x&b=y", 400),
    ("GET", "/runs?a=1&b=99999999999999999999", 400),
    ("GET", "/customers?page=99999999999999999999999", 200),
    ("GET", "/audit?since=2026-02-30", 400),
    ("POST", "/tasks/99999999999999999999/done", 404),
    ("POST", "/tokens/0/revoke", 404),
])
def test_out_of_range_ids_pages_and_dates_are_answered(signed_in: tuple[TestClient, str],
                                                       method: str, path: str,
                                                       status: int) -> None:
    client, csrf = signed_in
    data: Any = {"csrf": csrf} if method == "POST" else None
    assert client.request(method, path, data=data).status_code == status


@pytest.mark.parametrize("name", ["..", "x" * 300 + ".csv", "a\\..\\..\\evil.csv",
                                  "订单\n导出.csv"])
def test_an_uploads_name_is_made_safe(signed_in: tuple[TestClient, str], ws: Workspace,
                                     name: str) -> None:
    client, csrf = signed_in
    answer = client.post("/import", data={"kind": "orders", "csrf": csrf},
                         files={"file": (name, b"order_id,customer_id,order_date,amount\n"
                                                b"X1,C1,2025-06-01,100\n")})
    if name == "..":
        assert answer.status_code == 400 and "file:" in answer.text
        return
    assert answer.status_code == 200
    kept = [p.name for p in (ws.root / "uploads").iterdir()]
    assert len(kept) == 1 and len(kept[0]) <= 120 and kept[0].endswith(".csv")
    assert "\n" not in kept[0] and "\\" not in kept[0]


def test_a_rule_too_deep_or_too_long_is_refused_by_the_grammar() -> None:
    with pytest.raises(ExpressionError, match="at most 4,000"):
        parse_rule(DEEP)
    nested = "(" * (MAX_NESTING + 1) + "annual_spend > 1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(ExpressionError, match=f"nested more than {MAX_NESTING} deep") as caught:
        parse_rule(nested)
    assert caught.value.column == MAX_NESTING + 1
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_rule("not " * 900 + "annual_spend > 1")
    assert parse_rule(" and ".join(["annual_spend > 1"] * 190)).names == {"annual_spend"}


def test_a_deep_rule_is_an_error_everywhere_not_a_crash(signed_in: tuple[TestClient, str],
                                                        ws: Workspace, tmp_path: Path) -> None:
    client, csrf = signed_in
    text = (ws.root / "policy.yaml").read_text(encoding="utf-8")
    deep = text.replace("when: ", f"when: {DEEP} or ", 1)
    assert deep != text
    page = client.post("/policy", data={"text": deep, "action": "check", "csrf": csrf})
    assert page.status_code == 400 and "at most 4,000" in page.text
    api = client.post("/api/v1/policy/check", json={"text": deep},
                      headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200 and api.json()["valid"] is False
    path = tmp_path / "deep.yaml"
    path.write_text(deep, encoding="utf-8")
    checked = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert checked.exit_code == 1 and "Traceback" not in checked.output
    assert "at most 4,000" in checked.output
