"""Page weight: the dashboard with every asset it loads stays under 1.5 MB on the wire for a
browser that accepts gzip (plotly.js alone is 4.8 MB uncompressed), every asset still comes
from this server (installed packages, no CDN), and a client that does not accept gzip still
gets the plain bytes.

Data: tests/data graded as of 2025-06-30 and 2025-07-31 (test_web's app_ws).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.test_web import app_ws, sign_in  # noqa: F401  (app_ws is a fixture)
from tierwise.reports.charts import plotly_js_path
from tierwise.web import create_app
from tierwise.workspace import Workspace

LIMIT = 1_500_000
ASSET = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"')


@pytest.fixture
def client(app_ws: Workspace) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(app_ws.root)) as test_client:
        yield test_client


def transferred(client: TestClient, path: str, encoding: str) -> dict[str, int]:
    """Bytes on the wire of a page and of each asset it names."""
    page = client.get(path, headers={"Accept-Encoding": encoding})
    assert page.status_code == 200
    sizes = {path: page.num_bytes_downloaded}
    for asset in ASSET.findall(page.text):
        assert asset.startswith("/static/"), f"{asset} is not served from here"
        answer = client.get(asset, headers={"Accept-Encoding": encoding})
        assert answer.status_code == 200, asset
        sizes[asset] = answer.num_bytes_downloaded
    return sizes


def test_the_dashboard_with_its_assets_is_under_1_5_mb_with_gzip(client: TestClient) -> None:
    sign_in(client, "经理")
    sizes = transferred(client, "/", "gzip, deflate")
    assert "/static/plotly.min.js" in sizes
    assert sum(sizes.values()) <= LIMIT, sizes
    plain = transferred(client, "/", "identity")
    assert plain["/static/plotly.min.js"] == plotly_js_path().stat().st_size
    assert sum(plain.values()) > 3 * sum(sizes.values())


def test_plotly_js_comes_compressed_unchanged_and_is_revalidated(client: TestClient) -> None:
    sign_in(client, "经理")
    js = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert js.headers["content-encoding"] == "gzip"
    assert js.content == plotly_js_path().read_bytes()        # decoded: the package's file
    assert "max-age" in js.headers["cache-control"]
    again = client.get("/static/plotly.min.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_pages_and_json_are_compressed_when_accepted_and_plain_otherwise(
        client: TestClient) -> None:
    sign_in(client, "经理")
    for path in ("/customers", "/api/v1/customers", "/static/app.css"):
        packed = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert packed.status_code == 200 and packed.headers.get("content-encoding") == "gzip"
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == packed.content                 # the same, decoded


def test_an_excel_export_is_not_compressed_twice(client: TestClient) -> None:
    sign_in(client, "经理")
    export = client.get("/customers.xlsx", headers={"Accept-Encoding": "gzip"})
    assert export.status_code == 200 and "content-encoding" not in export.headers
    assert export.content[:2] == b"PK"
