"""End to end in a real browser (Debian's chromium, Playwright): the workbench served by
uvicorn over a workspace on loopback, used the way people use it. Screenshots of the main
pages go to test-output/screenshots.

Data: tests/data graded as of 2025-06-30 and 2025-07-31; owners C1 张伟, C2 王芳, C3/C4 李娜.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.conftest import DATA
from tierwise.web import create_app
from tierwise.work import users
from tierwise.workspace import Workspace

PASSWORD = "correct horse battery"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Workspace]]:
    """The workbench at http://127.0.0.1:PORT over a graded workspace (SQLite)."""
    monkeypatch.delenv("TIERWISE_DATABASE_URL", raising=False)
    ws = Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml"))
    for kind in ("customers", "orders", "interactions"):
        ws.import_files(kind, [DATA / f"{kind}.csv"])
    ws.grade(as_of=dt.date(2025, 6, 30))
    ws.grade(as_of=dt.date(2025, 7, 31))
    for name, role in (("boss", "admin"), ("经理", "manager"), ("王芳", "rep")):
        users.add_user(ws.appdb, name, role, PASSWORD)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ws.root), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", ws
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ws.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{base}/")


def test_a_rep_sees_only_own_customers(site: tuple[str, Workspace], page: Any,
                                       screenshots_dir: Path) -> None:
    base, _ws = site
    sign_in(page, base, "王芳")
    page.goto(f"{base}/customers")
    ids = page.locator("#customer-list tbody tr td:first-child").all_inner_texts()
    assert ids == ["C2"]
    page.screenshot(path=screenshots_dir / "customers-rep.png", full_page=True)
    response = page.goto(f"{base}/customers/C1")
    assert response.status == 404
    assert "C1" not in page.locator("main").inner_text().split("找不到")[0]


def test_a_manager_overrides_a_tier_and_sees_it_in_the_history(
        site: tuple[str, Workspace], page: Any, screenshots_dir: Path) -> None:
    base, ws = site
    sign_in(page, base, "经理")
    page.goto(f"{base}/customers/C2")
    page.select_option("#override-form select[name=tier]", "vip")
    page.fill("#override-form input[name=reason]", "战略合作伙伴")
    page.click("#override-form button.primary")
    page.wait_for_url(f"{base}/customers/C2")
    assert "战略合作伙伴" in page.locator("#overrides").inner_text()
    assert "下次分级生效" in page.locator("#overrides").inner_text()
    ws.grade(as_of=dt.date(2025, 8, 31))
    page.reload()
    assert page.locator("#current-tier").inner_text() == "VIP客户"
    assert "VIP客户" in page.locator("#history li").first.inner_text()
    page.screenshot(path=screenshots_dir / "customer-profile.png", full_page=True)


def test_an_admin_edits_previews_and_applies_the_policy_and_the_next_run_uses_it(
        site: tuple[str, Workspace], page: Any, screenshots_dir: Path) -> None:
    base, ws = site
    sign_in(page, base, "boss")
    page.goto(f"{base}/policy")
    editor = page.locator("textarea[name=text]")
    editor.fill(editor.input_value().replace("annual_spend >= 50万", "annual_spend >=>"))
    page.click("button[value=check]")
    assert "line" in page.locator("#policy-problems").inner_text()
    editor = page.locator("textarea[name=text]")
    looser = editor.input_value().replace("annual_spend >=>", "annual_spend >= 1万")
    editor.fill(looser)
    page.click("button[value=preview]")
    assert page.locator("#what-if").is_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[value=apply]")
    page.wait_for_selector("#policy-saved")
    page.screenshot(path=screenshots_dir / "policy.png", full_page=True)
    page.goto(f"{base}/runs")
    page.fill("input[name=as_of]", "2025-08-31")
    page.click("form[action='/runs'] button.primary")
    page.wait_for_function("() => !document.querySelector('.job-running')", timeout=60_000)
    assert ws.run().as_of == dt.date(2025, 8, 31)
    assert ws.run().policy_text == looser
    page.screenshot(path=screenshots_dir / "runs.png", full_page=True)


def test_an_upload_with_bad_rows_shows_the_rejects(site: tuple[str, Workspace], page: Any,
                                                   tmp_path: Path,
                                                   screenshots_dir: Path) -> None:
    base, _ws = site
    upload = tmp_path / "新订单.csv"
    upload.write_text("订单号,客户编号,下单日期,订单金额\nN1,C1,2025-08-01,1000\n"
                      "N2,C1,不是日期,5\n", encoding="gbk")
    sign_in(page, base, "经理")
    page.goto(f"{base}/import")
    page.select_option("select[name=kind]", "orders")
    page.set_input_files("input[name=file]", str(upload))
    page.click("#upload-form button.primary")
    page.wait_for_selector("#mapping-form")
    assert page.locator("select[name='map:下单日期']").input_value() == "order_date"
    page.screenshot(path=screenshots_dir / "import-mapping.png", full_page=True)
    page.click("#mapping-form button.primary")
    page.wait_for_selector("#import-result")
    assert page.locator("#rejected-count").inner_text() == "1"
    assert "不是日期" in page.locator("#rejects").inner_text()      # the row and its reason
    page.screenshot(path=screenshots_dir / "import-result.png", full_page=True)
    with page.expect_download() as download:
        page.click("text=下载被拒绝的行")
    saved = tmp_path / "rejects.csv"
    download.value.save_as(saved)
    assert "不是日期" in saved.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_main_pages_render_in_chinese_and_english(site: tuple[str, Workspace], page: Any,
                                                       lang: str,
                                                       screenshots_dir: Path) -> None:
    base, _ws = site
    sign_in(page, base, "boss")
    expected = {"zh": ("等级分布与目标占比", "客户"), "en": ("Tier distribution", "Customers")}
    page.goto(f"{base}/?lang={lang}")
    page.wait_for_selector("#chart-distribution .main-svg")
    assert expected[lang][0] in page.locator("main").inner_text()
    page.screenshot(path=screenshots_dir / f"dashboard-{lang}.png", full_page=True)
    for name in ("customers", "tasks", "runs"):
        page.goto(f"{base}/{name}")
        assert page.locator("main").count() == 1
        page.screenshot(path=screenshots_dir / f"{name}-{lang}.png", full_page=True)
    assert expected[lang][1] in page.locator("header nav").inner_text()


def test_an_admin_deactivates_a_rep_and_finds_it_in_the_audit_log(
        site: tuple[str, Workspace], page: Any, browser: Any, screenshots_dir: Path) -> None:
    base, ws = site
    ws.create_token("王芳", "excel")
    rep_context = browser.new_context(locale="zh-CN")
    rep = rep_context.new_page()
    try:
        sign_in(rep, base, "王芳")
        sign_in(page, base, "boss")
        page.goto(f"{base}/users")
        page.screenshot(path=screenshots_dir / "users.png", full_page=True)
        page.locator("#user-list tr", has_text="王芳").locator("button").click()
        page.wait_for_url(f"{base}/users")
        assert "已停用" in page.locator("#user-list tr", has_text="王芳").inner_text()
        rep.goto(f"{base}/tasks")
        assert "/login" in rep.url                   # her session ended at once
        page.goto(f"{base}/audit?user=boss")
        page.screenshot(path=screenshots_dir / "audit.png", full_page=True)
        text = page.locator("#audit-log").inner_text()
        assert "停用用户" in text and "网页" in text
    finally:
        rep_context.close()
