"""The dashboard's numbers (tierwise.reports.dashboard) and their charts (tierwise.reports.charts).

Data: tests/data graded as of 2025-06-30 and 2025-07-31 with tests/data/policy.yaml plus
target shares and playbooks. As of 2025-07-31: C1 (张伟) is VIP, C2 (王芳) important, C3 and
C4 (李娜) and C5 (no owner) potential; profit 1,074,998 (C1) and 120,000 (C2)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tests.conftest import DATA
from tierwise.reports import charts
from tierwise.reports import dashboard as db
from tierwise.work.tasks import WARNING_KINDS
from tierwise.workspace import Workspace

TARGETS = {"label_en: VIP,": "label_en: VIP, target_share: [10%, 30%],",
           "label_en: Important,": "label_en: Important, target_share: [20%, 40%],",
           "label_en: Ordinary,": "label_en: Ordinary, target_share: [20%, 50%],"}
PLAYBOOKS = """
playbooks:
  vip: {cadence: 1 month, channels: [拜访]}
  important: {cadence: 3 months, channels: [电话]}
"""
FIRST, SECOND = dt.date(2025, 6, 30), dt.date(2025, 7, 31)
TODAY = dt.date(2025, 8, 10)
OWNERS = ("张伟", "王芳", "李娜")


def dashboard_policy(folder: Path) -> str:
    text = (DATA / "policy.yaml").read_text(encoding="utf-8")
    for old, new in TARGETS.items():
        assert old in text
        text = text.replace(old, new)
    path = folder / "dashboard-policy.yaml"
    path.write_text(text + PLAYBOOKS, encoding="utf-8")
    return str(path)


def grade_twice(ws: Workspace, tmp_path: Path) -> None:
    policy = dashboard_policy(tmp_path)
    ws.grade(as_of=FIRST, policy=policy)
    ws.grade(as_of=SECOND, policy=policy)


@pytest.fixture
def graded(ws: Workspace, tmp_path: Path) -> Workspace:
    grade_twice(ws, tmp_path)
    return ws


def test_distribution_shares_sum_to_one_and_flag_the_targets(graded: Workspace) -> None:
    d = db.distribution(graded)
    assert d.run_id == 2 and d.as_of == SECOND and d.customers == 5
    assert [t.key for t in d.tiers] == ["vip", "important", "ordinary", "potential"]
    assert [t.label for t in d.tiers] == ["VIP客户", "重要客户", "普通客户", "潜在客户"]
    assert [t.customers for t in d.tiers] == [1, 1, 0, 3]
    for field in ("customer_share", "revenue_share", "profit_share"):
        assert sum(getattr(t, field) or 0.0 for t in d.tiers) == pytest.approx(1.0)
    assert [t.target_share for t in d.tiers] == [(0.1, 0.3), (0.2, 0.4), (0.2, 0.5), None]
    assert [t.within_target for t in d.tiers] == [True, True, False, None]
    # the same totals as the run's own summary
    summary = {s["tier"]: s for s in graded.run().summary}
    for t in d.tiers:
        assert t.customers == summary[t.key]["customers"]
        assert t.revenue == pytest.approx(summary[t.key]["revenue"])
        assert t.profit == pytest.approx(summary[t.key]["profit"])
    assert [t.label for t in db.distribution(graded, lang="en").tiers] == [
        "VIP", "Important", "Ordinary", "Potential"]
    payload = json.loads(json.dumps(d.to_json()))
    assert payload["tiers"][0]["target_share"] == [0.1, 0.3]


def test_pareto_runs_from_origin_to_one_with_abc_cut_points(graded: Workspace) -> None:
    p = db.pareto(graded)
    assert p.metric == "profit" and p.customers == 5
    assert (p.customer_share[0], p.value_share[0]) == (0.0, 0.0)
    assert (p.customer_share[-1], p.value_share[-1]) == (1.0, 1.0)
    assert list(p.customer_share) == sorted(p.customer_share)
    assert all(b >= a for a, b in zip(p.value_share, p.value_share[1:], strict=False))
    assert p.value_share[1] == pytest.approx(1_074_998 / 1_194_998)   # C1 alone
    assert (p.cut_80, p.cut_95) == (0.2, 0.4)
    assert p.abc == (1, 1, 3) and p.top_20_share == pytest.approx(1_074_998 / 1_194_998)
    assert p.total == pytest.approx(1_194_998) and p.loss_customers == 0
    assert len(db.pareto(graded, points=3).customer_share) == 3


def test_migration_counts_equal_the_diff(graded: Workspace) -> None:
    m = db.migration(graded)
    assert m is not None and (m.run_a, m.run_b) == (1, 2)
    diff = graded.diff()
    assert m.matrix == diff.matrix
    assert m.unchanged == diff.unchanged
    assert m.upgraded + m.downgraded + m.new + m.gone == len(diff.moves)
    assert m.tiers == ("vip", "important", "ordinary", "potential", None)
    assert sum(map(sum, m.counts)) == 5
    assert db.migration(graded, 2) == m        # one run: against the run it continues
    assert db.migration(graded, owner="李娜").matrix == {("potential", "potential"): 2}


def test_migration_needs_two_runs(ws: Workspace, tmp_path: Path) -> None:
    ws.grade(as_of=FIRST, policy=dashboard_policy(tmp_path))
    assert db.migration(ws) is None
    assert db.dashboard(ws, today=TODAY).migration is None


def test_owner_scope_counts_only_that_owners_customers(graded: Workspace) -> None:
    snapshot = graded.assignments()
    total = db.distribution(graded)
    seen = 0
    for owner in OWNERS:
        mine = snapshot.filter(pc.equal(snapshot["owner"], owner))
        expected = Counter(mine["tier"].to_pylist())
        d = db.distribution(graded, owner=owner)
        assert d.owner == owner and d.customers == mine.num_rows
        assert {t.key: t.customers for t in d.tiers if t.customers} == dict(expected)
        assert sum(t.customer_share or 0.0 for t in d.tiers) == pytest.approx(1.0)
        assert db.pareto(graded, owner=owner).customers == mine.num_rows
        history = db.tier_history(graded, owner=owner)
        assert [r.customers for r in history.runs] == [mine.num_rows, mine.num_rows]
        assert db.overview(graded, owner=owner).customers == mine.num_rows
        seen += mine.num_rows
    assert db.distribution(graded, owner="张伟").tiers[0].customers == 1
    assert db.distribution(graded, owner="nobody").customers == 0
    assert seen == total.customers - 1           # C5 has no owner


def test_tier_history_from_the_run_summaries(graded: Workspace) -> None:
    h = db.tier_history(graded)
    assert [(r.run_id, r.as_of) for r in h.runs] == [(1, FIRST), (2, SECOND)]
    assert h.tiers == ("vip", "important", "ordinary", "potential")
    assert [r.counts for r in h.runs] == [(1, 1, 0, 3), (1, 1, 0, 3)]
    everyone = [sum(db.tier_history(graded, owner=o).runs[1].counts) for o in OWNERS]
    assert sum(everyone) == h.runs[1].customers - 1


def test_work_by_tier_counts_match_the_tasks(graded: Workspace) -> None:
    tiers = dict(zip(graded.assignments()["customer_id"].to_pylist(),
                     graded.assignments()["tier"].to_pylist(), strict=True))
    for owner in (None, *OWNERS):
        work = db.work_by_tier(graded, owner=owner, today=TODAY)
        tasks = graded.tasks(owner=owner)
        by_tier = {t.key: t for t in work.tiers}
        for kind in WARNING_KINDS:
            expected = Counter(tiers.get(t.customer_id) for t in tasks if t.kind == kind)
            assert {k: getattr(t, kind) for k, t in by_tier.items()
                    if getattr(t, kind)} == dict(expected)
        contacts = [t for t in tasks if t.kind == "contact"]
        assert work.total("contact") == len(contacts)
        assert work.total("contact_overdue") == sum(t.overdue(TODAY) for t in contacts)
        assert work.total("warnings_overdue") == sum(
            t.overdue(TODAY) for t in tasks if t.kind in WARNING_KINDS)
    everything = db.work_by_tier(graded, today=TODAY)
    assert everything.total("contact") >= 1 and everything.total("churn_risk") >= 1


def test_the_dashboard_is_json_and_charts(graded: Workspace) -> None:
    whole = db.dashboard(graded, today=TODAY)
    payload = json.loads(json.dumps(whole.to_json(), ensure_ascii=False))
    assert set(payload) == {"overview", "distribution", "pareto", "migration", "history",
                            "work"}
    assert payload["overview"]["customers"] == 5
    figures = [charts.distribution_figure(whole.distribution),
               charts.pareto_figure(whole.pareto),
               charts.history_figure(whole.history), charts.work_figure(whole.work)]
    assert whole.migration is not None
    figures.append(charts.migration_figure(whole.migration))
    for fig in figures:
        parsed = json.loads(charts.figure_json(fig))
        assert parsed["data"] and "Noto Sans CJK SC" in parsed["layout"]["font"]["family"]
        div = charts.figure_div(fig)
        assert div.lstrip().startswith("<div") and "Plotly.newPlot" in div
        assert "<script src" not in div and "cdn" not in div.lower()
    english = charts.distribution_figure(db.distribution(graded, lang="en"))
    assert "Share of customers" in charts.figure_json(english)
    names = {trace.get("name") for trace in json.loads(charts.figure_json(figures[0]))["data"]}
    assert {"客户数占比", "收入占比", "利润占比", "目标占比区间"} <= names


def test_tier_colours_go_from_dark_to_light() -> None:
    colours = charts.tier_colours(4)
    assert len(set(colours)) == 4 and colours[0] == charts.DARKEST
    brightness = [sum(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in colours]
    assert brightness == sorted(brightness)


def test_plotly_js_comes_from_the_installed_package() -> None:
    path = charts.plotly_js_path()
    assert path.name == "plotly.min.js" and path.stat().st_size > 1_000_000
    assert "plotly" in path.parts
