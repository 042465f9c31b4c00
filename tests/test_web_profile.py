"""The customer profile at speed: the page and GET /api/v1/customers/{id} show the metrics the
run kept, read from the copy of the latest run the server keeps in memory, and compute the
metrics the run left out only when asked (?metrics=all); any other value is refused.

Data: tests/data graded as of 2025-06-30 and 2025-07-31 (test_web's app_ws); policy: annual
spend and tenure, so a run leaves most of the vocabulary out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.test_web import app_ws, sign_in, token  # noqa: F401  (app_ws is a fixture)
from tierwise.web import create_app
from tierwise.workspace import Workspace


@pytest.fixture
def client(app_ws: Workspace) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(app_ws.root)) as test_client:
        yield test_client


def test_the_profile_shows_what_the_run_kept_and_offers_the_rest(client: TestClient) -> None:
    sign_in(client, "经理")
    stored = client.get("/customers/C1")
    assert stored.status_code == 200 and 'id="all-metrics"' in stored.text
    every = client.get("/customers/C1?metrics=all")
    assert every.status_code == 200 and 'id="all-metrics"' not in every.text
    assert "查看时计算" in every.text or "computed now" in every.text


def test_the_api_profile_computes_left_out_metrics_only_when_asked(
        client: TestClient, app_ws: Workspace) -> None:  # noqa: F811
    manager = token(app_ws, "经理")
    stored = client.get("/api/v1/customers/C1", headers=manager).json()
    every = client.get("/api/v1/customers/C1?metrics=all", headers=manager).json()
    assert stored["tier"] == every["tier"] == app_ws.explain("C1").tier
    assert not stored["computed_now"] and every["computed_now"]
    assert set(stored["metrics"]) < set(every["metrics"])
    assert stored["history"] == every["history"]


def test_an_unknown_metrics_choice_is_refused_naming_the_field(
        client: TestClient, app_ws: Workspace) -> None:  # noqa: F811
    manager = token(app_ws, "经理")
    answer = client.get("/api/v1/customers/C1?metrics=everything", headers=manager)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "metrics"
    sign_in(client, "经理")
    page = client.get("/customers/C1?metrics=%00")
    assert page.status_code == 400 and "metrics" in page.text
