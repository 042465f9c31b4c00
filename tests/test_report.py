"""The HTML report (`tierwise report`): one self-contained file, plotly.js inlined once, no
reference to the network, Chinese or English, its text held against a golden file.

Set TIERWISE_UPDATE_GOLDEN=1 to rewrite the golden file after an intended change."""

from __future__ import annotations

import datetime as dt
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_cli import GOLDEN, run
from tests.test_dashboard import TODAY, grade_twice
from tierwise.reports.charts import plotly_js_path
from tierwise.reports.html_report import render_report, write_report
from tierwise.workspace import Workspace

GENERATED_AT = dt.datetime(2025, 8, 10, 9, 30, tzinfo=dt.UTC)


class _Text(HTMLParser):
    """The text a reader sees: outside <script> and <style>, one line per block."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        if tag in ("tr", "p", "div", "h1", "h2", "section", "footer", "title"):
            self.parts.append("\n")
        if tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data.replace("\n", " "))


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = "\n".join(line for line in lines if line)
    # volatile: the version and the time of making
    return re.sub(r"tierwise \S+ (生成于|at) \d{4}-\d\d-\d\d \d\d:\d\d",
                  r"tierwise <version> \1 <time>", text) + "\n"


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [f"<{tag} {name}={value}>" for name, value in attrs
                       if name in ("src", "href", "action", "data") and value
                       and re.match(r"\s*(https?:)?//", value)]


def external_references(html: str) -> list[str]:
    """Tags whose src/href points at the network (plotly.js's own text is not parsed)."""
    parser = _References()
    parser.feed(html)
    return parser.found


@pytest.fixture
def graded(ws: Workspace, tmp_path: Path) -> Workspace:
    grade_twice(ws, tmp_path)
    return ws


def test_the_report_is_one_self_contained_file(graded: Workspace, tmp_path: Path) -> None:
    result = run("report", "-o", str(tmp_path / "报告.html"), "-w", str(graded.root))
    assert "已生成报告" in result.output and "第2次分级" in result.output
    html = (tmp_path / "报告.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    assert external_references(html) == []
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<link\b", html) is None and "@import" not in html
    plotly = plotly_js_path().read_text(encoding="utf-8")
    assert html.count(plotly[:200]) == 1                    # plotly.js inline, once
    assert html.count(plotly[-200:]) == 1
    outside = html.replace(plotly, "")
    assert "http://" not in outside and "https://" not in outside
    assert html.count("Plotly.newPlot(") >= 5                # the five charts
    for label in ("VIP客户", "重要客户", "普通客户", "潜在客户", "帕累托分析", "等级迁移"):
        assert label in html
    assert "¥107.50万" in html                               # C1's profit, as of 07-31
    assert "✗ 未达标" in html and "✓ 达标" in html


def test_an_english_report(graded: Workspace, tmp_path: Path) -> None:
    path = write_report(graded, tmp_path / "report.html", lang="en", today=TODAY)
    html = path.read_text(encoding="utf-8")
    text = visible_text(html)
    assert '<html lang="en">' in html
    for words in ("Customer tiering report", "Tier distribution", "Pareto analysis (ABC)",
                  "Tier migration", "Tier history", "Work by tier", "Important", "On target"):
        assert words in text
    assert "重要客户" not in text
    assert "¥1,074,998.00" in text


def test_a_report_of_one_owner_and_of_a_single_run(ws: Workspace, tmp_path: Path) -> None:
    from tests.test_dashboard import FIRST, dashboard_policy

    ws.grade(as_of=FIRST, policy=dashboard_policy(tmp_path))
    text = visible_text(render_report(ws, owner="张伟", today=TODAY))
    assert "客户经理：张伟" in text and "只有一次分级，暂无迁移。" in text


def test_the_report_text_matches_the_golden_file(graded: Workspace) -> None:
    text = visible_text(render_report(graded, lang="zh", today=TODAY,
                                      generated_at=GENERATED_AT))
    golden = GOLDEN / "report_zh.txt"
    if os.environ.get("TIERWISE_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_reporting_an_unknown_run_is_an_error(graded: Workspace, tmp_path: Path) -> None:
    result = run("report", "--run", "99", "-o", str(tmp_path / "x.html"),
                 "-w", str(graded.root), ok=False)
    assert result.exit_code == 1 and "no run 99" in result.stderr
    assert not (tmp_path / "x.html").exists()
