"""The browser setup works end to end: Debian's chromium through Playwright, with JS, clicks,
screenshots and Chinese text rendered with a real CJK font (not boxes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browser import cjk_font_families

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>客户分级</title>
<style>body { font: 24px sans-serif; } #cjk { font-size: 48px; }</style></head>
<body>
  <h1 id="cjk">客户分级 VIP客户</h1>
  <p id="status">等待中</p>
  <button id="go" onclick="document.getElementById('status').textContent = '已升级为VIP客户'">
    升级</button>
</body></html>
""".encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    """A tiny local HTTP server on 127.0.0.1 (random port) serving PAGE."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _fonts_used(page: Any, selector: str) -> set[str]:
    """The platform fonts Chromium actually drew the element's text with (DevTools CSS)."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        cdp.send("CSS.enable")
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    return {font["familyName"] for font in fonts if font["glyphCount"] > 0}


def test_chromium_runs_js_and_renders_chinese(browser: Any, page_url: str,
                                              screenshots_dir: Path) -> None:
    cjk = cjk_font_families()
    assert cjk, ("fontconfig knows no font for Chinese (it would render as boxes): "
                 "apt-get install -y fonts-wqy-microhei")
    context = browser.new_context(viewport={"width": 800, "height": 400}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(page_url)
        assert page.title() == "客户分级"
        assert page.text_content("#status") == "等待中"
        page.click("#go")
        page.wait_for_function(
            "document.getElementById('status').textContent === '已升级为VIP客户'",
            timeout=5000)

        shot = screenshots_dir / "browser_setup.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # Chinese glyphs come from a CJK font, not from a fallback drawing boxes.
        used = _fonts_used(page, "#cjk")
        assert used & cjk, f"Chinese text drawn with {sorted(used)}, none of them a CJK font"
    finally:
        context.close()
