"""Target lists (C12): customers of some tiers, stages and attribute values, with contact
fields, on screen or as .xlsx/.csv (tests/data graded as of 2025-06-30; see
tests/test_breakdown.py for who is where)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.test_breakdown import cli
from tierwise.errors import TierwiseError


@pytest.fixture
def graded(ws: Any) -> Any:
    ws.grade(as_of=dt.date(2025, 6, 30))
    return ws


def ids(table: Any) -> list[str]:
    return table["customer_id"].to_pylist()


def test_everyone_best_tier_first_then_by_spend(graded: Any) -> None:
    listed = graded.targets()
    assert ids(listed) == ["C1", "C2", "C5", "C3", "C4"]
    assert listed.column_names[:7] == ["customer_id", "name", "contact", "owner", "industry",
                                       "region", "size"]
    first = listed.to_pylist()[0]
    assert first["contact"] == "138****0001" and first["owner"] == "张伟"
    assert (first["tier"], first["tier_label"]) == ("vip", "VIP客户")
    assert (first["stage"], first["stage_label"]) == ("growing", "成长")
    assert first["annual_spend"] == 1_100_000.0
    assert first["last_order_date"] == dt.date(2025, 6, 30)


def test_tiers_stages_and_attribute_filters(graded: Any) -> None:
    assert ids(graded.targets(tiers=["vip", "important"])) == ["C1", "C2"]
    assert ids(graded.targets(tiers=["VIP客户"])) == ["C1"]             # labels work too
    for stage in ("at-risk", "at_risk", "风险", "At risk"):
        assert ids(graded.targets(stages=[stage])) == ["C2"]
    assert ids(graded.targets(tiers=["potential"], stages=["churned", "new"])) == ["C5", "C3"]
    assert ids(graded.targets(filters={"industry": ["制造业"]})) == ["C1"]
    assert ids(graded.targets(filters={"owner": ["李娜"], "行业": ["物流运输"]})) == ["C3"]
    assert ids(graded.targets(filters={"industry": [""]})) == ["C5"]    # blank values
    assert ids(graded.targets(tiers=["vip"], stages=["at-risk"])) == []
    only = graded.targets(filters={"员工人数": ["300"]})
    assert ids(only) == ["C2"] and "员工人数" in only.column_names     # filtered column shown
    assert ids(graded.targets(filters={"stage": ["流失"]})) == ["C3"]


def test_bad_input_is_a_clear_error(graded: Any) -> None:
    with pytest.raises(TierwiseError, match="unknown tier 'vpi' — did you mean 'vip'"):
        graded.targets(tiers=["vpi"])
    with pytest.raises(TierwiseError, match=r"unknown stage 'risky'.*at_risk \(风险\)"):
        graded.targets(stages=["risky"])
    with pytest.raises(TierwiseError, match="unknown attribute 'industri' — did you mean"):
        graded.targets(filters={"industri": ["制造业"]})


def test_cli_xlsx_has_chinese_headers_formats_and_a_frozen_header(graded: Any,
                                                                  tmp_path: Path) -> None:
    target = tmp_path / "名单.xlsx"
    out = cli(graded, "targets", "--tier", "vip", "--tier", "important", "-o", str(target))
    assert "wrote 2 customers" in out.stdout
    sheet = load_workbook(target).active
    assert sheet is not None
    headers = [sheet.cell(2, c).value for c in range(1, sheet.max_column + 1)]
    assert headers == ["客户编号", "客户名称", "联系方式", "客户经理", "行业", "地区", "客户规模",
                       "等级", "生命周期阶段", "年度消费金额", "利润", "最近购买日期",
                       "距最近购买天数"]
    assert [sheet.cell(r, 1).value for r in (3, 4)] == ["C1", "C2"]
    assert sheet.cell(4, 9).value == "风险"
    assert sheet.cell(3, 10).value == 1_100_000 and sheet.cell(3, 10).number_format == (
        '"¥"#,##0.00')
    assert sheet.cell(3, 12).number_format == "yyyy-mm-dd"
    assert sheet.freeze_panes == "C3"
    assert sheet.max_row == 4


def test_cli_csv_in_english_with_convenience_filters(graded: Any, tmp_path: Path) -> None:
    target = tmp_path / "list.csv"
    cli(graded, "targets", "--stage", "at-risk", "--region", "华南", "--lang", "en",
        "-o", str(target))
    rows = list(csv.reader(target.open(encoding="utf-8-sig")))
    assert rows[0][:8] == ["Customer ID", "Name", "Contact", "Account manager", "Industry",
                           "Region", "Size", "Tier"]
    assert rows[1][:9] == ["C2", "南方贸易有限公司", "139****0002", "王芳", "批发零售", "华南",
                           "中型", "Important", "At risk"]
    assert rows[1][9:] == ["600000.0", "120000.0", "2025-02-10", "140"]
    assert len(rows) == 2
    cli(graded, "targets", "--industry", "制造业", "--where", "owner=张伟", "-o", str(target))
    assert [r[0] for r in csv.reader(target.open(encoding="utf-8-sig"))] == ["客户编号", "C1"]


def test_cli_table_and_errors(graded: Any, tmp_path: Path) -> None:
    table = cli(graded, "targets", "--stage", "风险").stdout
    assert "C2" in table and "139****0002" in table and "C1" not in table
    bad = cli(graded, "targets", "--stage", "atrisk", ok=False)
    assert bad.exit_code == 1 and "unknown stage 'atrisk'" in bad.stderr
    assert "Traceback" not in bad.output
    assert "expected ATTR=VALUE" in cli(graded, "targets", "--where", "x", ok=False).output
    refused = cli(graded, "targets", "-o", str(tmp_path / "x.pdf"), ok=False)
    assert "use a .xlsx or .csv" in refused.stderr
