"""Uploads are bounded and not kept: a file over the limit (web: max_upload_mb) is a 413
with a clear message, whether its size is declared or only found while copying; the file
is copied to disk in chunks, never read whole; an upload is removed once imported, when its
preview fails, and after a day when it was never confirmed."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.test_web import PASSWORD, sign_in
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace

ORDERS = b"order_id,customer_id,order_date,amount\nX1,C1,2025-06-01,100\n"


@pytest.fixture
def signed_in(ws: Workspace) -> Iterator[tuple[TestClient, str, dict[str, str]]]:
    ws._set_config("web", {"max_upload_mb": 1})
    ws.grade(as_of=dt.date(2025, 6, 30))
    users.add_user(ws.appdb, "boss", "admin", PASSWORD)
    token = users.create_token(ws.appdb, users.get_user(ws.appdb, "boss"), "t")
    with TestClient(create_app(ws.root)) as client:
        csrf = sign_in(client, "boss")
        yield client, csrf, {"Authorization": f"Bearer {token}"}


def big_file() -> bytes:
    row = b"X1,C1,2025-06-01,100\n"
    return b"order_id,customer_id,order_date,amount\n" + row * ((3 << 20) // len(row))


def test_an_upload_over_the_limit_is_a_413(signed_in: tuple[TestClient, str, dict[str, str]],
                                           ws: Workspace) -> None:
    client, csrf, bearer = signed_in
    page = client.post("/import", data={"kind": "orders", "csrf": csrf},
                       files={"file": ("订单.csv", big_file())})
    assert page.status_code == 413 and "1 MB" in page.text
    api = client.post("/api/v1/imports", headers=bearer, data={"kind": "orders"},
                      files={"file": ("订单.csv", big_file())})
    assert api.status_code == 413 and "max_upload_mb" in api.json()["error"]["message"]
    assert not (ws.root / "uploads").exists() or not list((ws.root / "uploads").iterdir())


def test_a_body_without_a_declared_length_is_bounded_while_copied(
        signed_in: tuple[TestClient, str, dict[str, str]], ws: Workspace) -> None:
    client, csrf, _bearer = signed_in
    boundary = "tierwiseboundary"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
             .encode() for k, v in (("kind", "orders"), ("csrf", csrf))]
    body = b"".join(parts) + (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode() + big_file() + (
        f"\r\n--{boundary}--\r\n").encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1 << 16):
            yield body[start:start + (1 << 16)]

    answer = client.post("/import", content=chunks(),
                         headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 413
    assert not list((ws.root / "uploads").iterdir())


def test_an_upload_is_removed_once_imported_or_when_its_preview_fails(
        signed_in: tuple[TestClient, str, dict[str, str]], ws: Workspace) -> None:
    client, csrf, _bearer = signed_in
    step1 = client.post("/import", data={"kind": "orders", "csrf": csrf},
                        files={"file": ("订单.csv", ORDERS)})
    assert step1.status_code == 200
    [kept] = list((ws.root / "uploads").iterdir())
    step2 = client.post("/import", data={"kind": "orders", "csrf": csrf, "upload": kept.name})
    assert step2.status_code == 200 and not kept.exists()
    broken = client.post("/import", data={"kind": "orders", "csrf": csrf},
                         files={"file": ("坏.xlsx", b"not a workbook")})
    assert broken.status_code == 400 and not list((ws.root / "uploads").iterdir())


def test_an_unconfirmed_upload_goes_after_a_day(
        signed_in: tuple[TestClient, str, dict[str, str]], ws: Workspace) -> None:
    client, csrf, _bearer = signed_in
    folder = ws.root / "uploads"
    folder.mkdir(exist_ok=True)
    old = folder / "20250101-000000-旧.csv"
    old.write_bytes(ORDERS)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    client.post("/import", data={"kind": "orders", "csrf": csrf},
                files={"file": ("新.csv", ORDERS)})
    names = [p.name for p in folder.iterdir()]
    assert len(names) == 1 and names[0].endswith("-新.csv")


def test_a_bad_upload_limit_setting_names_it(ws: Workspace) -> None:
    ws._set_config("web", {"max_upload_mb": "lots"})
    with pytest.raises(Exception, match=r"web\.max_upload_mb: expected megabytes"):
        create_app(ws.root)
