"""Classification axes (C6): attributes or the lifecycle stage crossed with tiers.

Counts are worked out by hand from tests/data as of 2025-06-30:

    C1 制造业 华东 大型 张伟  vip        growing    spend 1,100,000  profit 275,000
    C2 批发零售 华南 中型 王芳 important  at_risk    spend   600,000  profit 120,000
    C3 物流运输 华北 小型 李娜 potential  churned    spend         0
    C4 信息技术 西南 小型 李娜 potential  potential  spend         0
    C5 (only an order, no customer record: every attribute blank)
                              potential  new        spend    20,000  profit (none)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from tierwise.cli import main
from tierwise.errors import TierwiseError
from tierwise.reports.breakdown import breakdown

TOTAL_SPEND = 1_720_000.0


@pytest.fixture
def graded(ws: Any) -> Any:
    ws.grade(as_of=dt.date(2025, 6, 30))
    return ws


def cli(ws: Any, *args: str, ok: bool = True) -> Result:
    ws.close()                           # the command opens the workspace itself
    result = CliRunner().invoke(main, [*args, "-w", str(ws.root)], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def counts(result: Any) -> dict[tuple[Any, ...], int]:
    """Non-empty cells as {(by-values…, tier): customers}."""
    return {(*key, tier): cell.customers for (key, tier), cell in result.cells.items()
            if cell.customers}


def test_one_axis_counts_revenue_and_profit_per_cell(graded: Any) -> None:
    result = graded.breakdown(["industry"])
    assert result.by == ["industry"]
    assert [k for k, _ in result.tiers] == ["vip", "important", "ordinary", "potential"]
    assert counts(result) == {("制造业", "vip"): 1, ("批发零售", "important"): 1,
                              ("物流运输", "potential"): 1, ("信息技术", "potential"): 1,
                              (None, "potential"): 1}
    vip = result.cell(("制造业",), "vip")
    assert (vip.revenue, vip.profit) == (1_100_000.0, 275_000.0)
    assert result.shares(vip)["revenue_share"] == pytest.approx(1_100_000 / TOTAL_SPEND)
    assert result.shares(vip)["profit_share"] == pytest.approx(275_000 / 395_000)
    blank = result.cell((None,), "potential")
    assert (blank.revenue, blank.profit) == (20_000.0, 0.0)        # no profit counts as 0
    assert result.cell(("制造业",), "potential").customers == 0
    assert result.rows[-1] == (None,)                              # blanks come last
    assert result.value_label("industry", None) == "（未填）"
    total = result.total
    assert (total.customers, total.revenue, total.profit) == (5, TOTAL_SPEND, 395_000.0)
    assert result.tier_total("potential").customers == 3
    assert result.tier_total("potential").revenue == 20_000.0


def test_two_axes(graded: Any) -> None:
    result = graded.breakdown(["size", "owner"])
    assert counts(result) == {("大型", "张伟", "vip"): 1, ("中型", "王芳", "important"): 1,
                              ("小型", "李娜", "potential"): 2, (None, None, "potential"): 1}
    assert result.row_total(("小型", "李娜")).customers == 2


def test_stage_axis_uses_lifecycle_order_and_labels(graded: Any) -> None:
    result = graded.breakdown(["stage"], lang="en")
    assert result.rows == [("potential",), ("churned",), ("new",), ("at_risk",),
                           ("growing",)]
    assert result.cell(("at_risk",), "important").customers == 1
    assert result.key_labels(("at_risk",)) == ["At risk"]
    assert graded.breakdown(["阶段"]).by == ["stage"]              # labels name columns too
    assert graded.breakdown(["行业"]).by == ["industry"]


def test_extra_attributes_are_axes(graded: Any) -> None:
    result = graded.breakdown(["员工人数"])
    assert result.cell(("1200",), "vip").customers == 1


def test_unknown_or_repeated_column_is_a_clear_error(graded: Any) -> None:
    with pytest.raises(TierwiseError, match=r"unknown attribute 'industri' — did you mean "
                                            r"'industry'\? Available: .*region.*stage"):
        graded.breakdown(["industri"])
    with pytest.raises(TierwiseError, match="unknown attribute 'annual_spend'"):
        graded.breakdown(["annual_spend"])                        # a metric, not an axis
    with pytest.raises(TierwiseError, match="named once"):
        graded.breakdown(["region", "地区"])
    with pytest.raises(TierwiseError, match="at least one"):
        graded.breakdown([])


def test_cli_json_gives_every_cell(graded: Any) -> None:
    data = json.loads(cli(graded, "breakdown", "--by", "industry", "--by", "region",
                          "--format", "json").stdout)
    assert data["by"] == ["industry", "region"] and data["run_id"] == 1
    assert data["as_of"] == "2025-06-30"
    assert len(data["cells"]) == 5 * 4                              # rows present × tiers
    vip = next(c for c in data["cells"] if c["key"] == {"industry": "制造业", "region": "华东"}
               and c["tier"] == "vip")
    assert vip == {"key": {"industry": "制造业", "region": "华东"},
                   "label": {"industry": "制造业", "region": "华东"},
                   "tier": "vip", "tier_label": "VIP客户", "customers": 1,
                   "revenue": 1_100_000.0, "profit": 275_000.0, "customer_share": 0.2,
                   "revenue_share": round(1_100_000 / TOTAL_SPEND, 6),
                   "profit_share": round(275_000 / 395_000, 6)}
    blank = [c for c in data["cells"] if c["key"]["industry"] is None]
    assert blank[0]["label"] == {"industry": "（未填）", "region": "（未填）"}
    assert data["total"] == {"customers": 5, "revenue": TOTAL_SPEND, "profit": 395_000.0}
    assert [t["customers"] for t in data["tier_totals"]] == [1, 1, 0, 3]


def test_cli_table_and_csv(graded: Any) -> None:
    table = cli(graded, "breakdown", "--by", "stage").stdout
    assert "风险" in table and "1 · 34.9%" in table and "合计" in table
    english = cli(graded, "breakdown", "--by", "industry", "--lang", "en").stdout
    assert "(blank)" in english and "Industry" in english
    rows = list(csv.DictReader(io.StringIO(
        cli(graded, "breakdown", "--by", "stage", "--format", "csv").stdout)))
    assert len(rows) == 5 * 4
    risky = next(r for r in rows if r["stage"] == "风险" and r["tier"] == "important")
    assert (risky["customers"], risky["revenue"], risky["profit"]) == (
        "1", "600000.0", "120000.0")


def test_cli_unknown_column_is_a_message_not_a_traceback(graded: Any) -> None:
    result = cli(graded, "breakdown", "--by", "regoin", ok=False)
    assert result.exit_code == 1 and "did you mean 'region'" in result.stderr
    assert "Traceback" not in result.output


def test_every_customer_lands_in_exactly_one_cell() -> None:
    from tests.conftest import DATA
    from tierwise.policy.loading import load_policy_file

    policy = load_policy_file(DATA / "policy.yaml")
    n = 21_000
    snapshot = pa.table({
        "customer_id": pa.array([f"C{i}" for i in range(n)]),
        "industry": pa.array([["制造业", "零售", None][i % 3] for i in range(n)]),
        "region": pa.array([f"R{i % 7}" for i in range(n)]),
        "annual_spend": pa.array([float(i % 1000) for i in range(n)]),
        "profit": pa.array([float(i % 10) for i in range(n)]),
        "stage": pa.array(["new"] * n),
        "tier": pa.array([["vip", "important", "ordinary", "potential"][i % 4]
                          for i in range(n)]),
    })
    result = breakdown(snapshot, policy, ["industry", "region"])
    assert result.total.customers == n and len(result.rows) == 3 * 7
    assert sum(c["customers"] for c in result.to_json()["cells"]) == n
