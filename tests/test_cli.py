"""The command line as a user runs it: init, import, grade, customers, explain, runs, diff,
override, export, policy. Results on stdout, notes on stderr, errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from tests.conftest import DATA
from tierwise.cli import main

GOLDEN = Path(__file__).parent / "golden"


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def ws(tmp_path: Path) -> str:
    folder = str(tmp_path / "ws")
    run("init", folder, "--policy", str(DATA / "policy.yaml"))
    run("import", "customers", str(DATA / "customers.csv"), "-w", folder)
    run("import", "orders", str(DATA / "orders.csv"), "-w", folder)
    run("import", "interactions", str(DATA / "interactions.csv"), "-w", folder)
    return folder


def test_init_writes_commented_settings_and_an_editable_policy(tmp_path: Path) -> None:
    run("init", str(tmp_path / "w"))
    settings = (tmp_path / "w" / "tierwise.yaml").read_text(encoding="utf-8")
    assert "policy: policy.yaml" in settings and "# " in settings
    assert "VIP客户" in (tmp_path / "w" / "policy.yaml").read_text(encoding="utf-8")
    again = run("init", str(tmp_path / "w"), ok=False)
    assert again.exit_code == 1 and "already a tierwise workspace" in again.stderr


def test_import_reports_counts_and_reimport_changes_nothing(ws: str) -> None:
    result = run("import", "orders", str(DATA / "orders.csv"), "-w", ws)
    assert "accepted 0, updated 0, unchanged 10, rejected 0" in result.stdout


def test_grade_json_is_exactly_one_object_on_stdout(ws: str) -> None:
    result = run("grade", "--as-of", "2025-06-30", "--format", "json", "-w", ws)
    summary = json.loads(result.stdout)
    assert set(summary) == {"run_id", "as_of", "policy", "customers", "tiers", "changes",
                            "tasks"}
    assert set(summary["tasks"]) == {"created", "updated", "closed", "open"}
    assert set(summary["tiers"][0]) == {"tier", "label", "customers", "customer_share",
                                        "revenue", "revenue_share", "profit", "profit_share"}
    assert summary["tiers"][0]["customers"] == 1


def test_grade_table_shows_tiers_and_changes(ws: str) -> None:
    result = run("grade", "--as-of", "2025-06-30", "-w", ws)
    assert "VIP客户" in result.stdout and "潜在客户" in result.stdout
    assert "(first run)" in result.stdout


def test_workspace_from_environment(ws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERWISE_WORKSPACE", ws)
    assert json.loads(run("grade", "--format", "json").stdout)["customers"] == 5


def test_customers_json_and_csv(ws: str) -> None:
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    listed = json.loads(run("customers", "--format", "json", "-w", ws).stdout)
    by_id = {c["customer_id"]: c for c in listed}
    assert by_id["C1"]["tier"] == "vip"
    assert by_id["C1"]["metrics"]["annual_spend"] == pytest.approx(1_100_000)
    assert by_id["C1"]["reasons"][0] == (
        "VIP客户: 年度消费金额 ≥ 100万 (¥110.00万); 合作年限 ≥ 5 (7.49)")
    vip_only = json.loads(run("customers", "--tier", "vip", "--format", "json", "-w", ws).stdout)
    assert [c["customer_id"] for c in vip_only] == ["C1"]
    csv_text = run("customers", "--format", "csv", "-w", ws).stdout
    assert csv_text.splitlines()[0].startswith("customer_id,name,tier")
    assert len(csv_text.splitlines()) == 6


def test_explain_says_which_rule_failed_and_what_moves_the_customer_up(ws: str) -> None:
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    text = run("explain", "C2", "--lang", "en", "-w", ws).stdout
    assert "✗ VIP: annual_spend >= 100万 and tenure_years >= 5" in text
    assert ("needs ¥400,000.00 more annual spend and years as customer ≥ 5 (now 2.49) "
            "to reach VIP") in text
    data = json.loads(run("explain", "C2", "--format", "json", "-w", ws).stdout)
    assert data["tier"] == "important" and data["checks"][0]["holds"] is False
    failed = [c for c in data["checks"][0]["conditions"] if not c["holds"]]
    assert [c["text"] for c in failed] == ["annual_spend >= 100万", "tenure_years >= 5"]
    assert data["history"][0]["tier"] == "important"


def test_unknown_customer_or_run_is_a_clear_error(ws: str) -> None:
    assert "no grading run yet" in run("explain", "C1", "-w", ws, ok=False).stderr
    run("grade", "-w", ws)
    result = run("explain", "NOPE", "-w", ws, ok=False)
    assert result.exit_code == 1 and "'NOPE' is not in run 1" in result.stderr
    assert "Traceback" not in result.output


def test_runs_diff_and_override(ws: str) -> None:
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    out = run("override", "C3", "important", "--reason", "重点培育", "-w", ws).stdout
    assert "applies from the next run" in out
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    runs = json.loads(run("runs", "--format", "json", "-w", ws).stdout)
    assert [r["run_id"] for r in runs] == [1, 2]
    assert runs[0]["data_fingerprint"] == runs[1]["data_fingerprint"]
    assert "100万" in run("policy", "show", "--run", "1", "-w", ws).stdout
    diff = json.loads(run("diff", "--format", "json", "-w", ws).stdout)
    assert diff["moves"] == [{"customer_id": "C3", "from_tier": "potential",
                              "to_tier": "important"}]
    table = run("diff", "1", "2", "-w", ws).stdout
    assert "C3: potential → important" in table
    explained = json.loads(run("explain", "C3", "--format", "json", "-w", ws).stdout)
    assert explained["basis"] == "override" and explained["override"]["reason"] == "重点培育"
    assert "ended 1" in run("override", "C3", "--remove", "-w", ws).stdout


def test_policy_show_check_and_list(tmp_path: Path) -> None:
    assert "spend_share_above < 80%" in run("policy", "show", "abc").stdout
    assert "rfm" in run("policy", "list").stdout
    ok = run("policy", "check", str(DATA / "policy.yaml"), "-w", str(tmp_path))
    assert "OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text((DATA / "policy.yaml").read_text(encoding="utf-8").replace(
        "annual_spend >= 50万", "annual_spend >= "), encoding="utf-8")
    result = run("policy", "check", str(bad), ok=False)
    assert result.exit_code == 1 and "line 4" in result.stderr


def test_export_xlsx_has_the_seed_001_layout(ws: str, tmp_path: Path) -> None:
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    target = tmp_path / "分级表.xlsx"
    assert "wrote 5 customers" in run("export", "-o", str(target), "-w", ws).stdout
    sheet = load_workbook(target).active
    assert sheet is not None
    groups = [sheet.cell(1, c).value for c in range(1, sheet.max_column + 1)]
    assert [g for g in groups if g] == ["客户基本信息", "分级指标", "分级结果", "备注"]
    headers = [sheet.cell(2, c).value for c in range(1, sheet.max_column + 1)]
    assert headers[:6] == ["客户编号", "客户名称", "联系方式", "行业", "地区", "客户经理"]
    assert headers[6:8] == ["年度消费金额", "合作年限"]
    assert headers[-3:] == ["等级", "较上期", "备注"]
    assert sheet.freeze_panes == "C3"
    assert sheet.cell(3, 1).value == "C1" and sheet.cell(3, 9).value == "VIP客户"
    assert sheet.cell(3, 7).number_format == '"¥"#,##0.00'
    assert sheet.merged_cells.ranges


def test_export_csv_matches_the_golden_file(ws: str, tmp_path: Path) -> None:
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    target = tmp_path / "grading.csv"
    run("export", "-o", str(target), "--lang", "en", "-w", ws)
    assert target.read_text(encoding="utf-8-sig") == (
        GOLDEN / "grading_table_en.csv").read_text(encoding="utf-8")


def test_export_to_an_unknown_format_is_refused(ws: str, tmp_path: Path) -> None:
    run("grade", "-w", ws)
    result = run("export", "-o", str(tmp_path / "x.pdf"), "-w", ws, ok=False)
    assert "use a .xlsx or .csv" in result.stderr


def test_file_errors_are_messages_not_tracebacks(ws: str, tmp_path: Path) -> None:
    missing = run("policy", "show", str(tmp_path / "nope.yaml"), ok=False)
    assert missing.exit_code == 1 and "no policy file or preset" in missing.stderr
    run("grade", "-w", ws)
    result = run("export", "-o", str(tmp_path / "no" / "such" / "x.xlsx"), "-w", ws, ok=False)
    assert result.exit_code == 1 and "No such file or directory" in result.stderr


def test_diff_of_one_run_compares_it_with_the_run_it_continues(ws: str) -> None:
    run("grade", "--as-of", "2025-05-31", "-w", ws)
    run("grade", "--as-of", "2025-06-30", "-w", ws)
    diff = json.loads(run("diff", "2", "--format", "json", "-w", ws).stdout)
    assert (diff["run_a"], diff["run_b"]) == (1, 2)
    assert diff["moves"] == [{"customer_id": "C5", "from_tier": None, "to_tier": "potential"}]


def test_export_fills_scorecard_columns_under_their_labels(tmp_path: Path) -> None:
    folder = str(tmp_path / "vt")
    run("init", folder)                                   # value-tiers: has a scorecard
    run("import", "customers", str(DATA / "customers.csv"), "-w", folder)
    run("import", "orders", str(DATA / "orders.csv"), "-w", folder)
    run("grade", "--as-of", "2025-06-30", "-w", folder)
    target = tmp_path / "vt.xlsx"
    run("export", "-o", str(target), "-w", folder)
    sheet = load_workbook(target).active
    assert sheet is not None
    headers = [sheet.cell(2, c).value for c in range(1, sheet.max_column + 1)]
    stability = headers.index("合作稳定性得分") + 1
    assert all(isinstance(sheet.cell(r, stability).value, int | float) for r in range(3, 8))
