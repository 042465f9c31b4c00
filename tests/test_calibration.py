"""Specification of `tierwise policy calibrate` (tierwise.grading.calibration): thresholds on one
metric
move so that each tier's share of customers lands in its target range, and the policy is
written back with its comments, layout and the rest of every rule untouched."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from tierwise.cli import main
from tierwise.demo.synthetic import generate
from tierwise.grading.calibration import (
    Calibration,
    CalibrationError,
    _Counter,
    _plans,
    calibrate,
    parse_targets,
    write_number,
)
from tierwise.policy.loading import load_policy_file, load_policy_text
from tierwise.policy.model import Policy
from tierwise.policy.presets import preset_text
from tierwise.workspace import Workspace

END = dt.date(2025, 6, 30)
PRESET = preset_text("value-tiers")
# The value-tiers preset with thresholds far from its targets on the demo data.
OFF_TARGET = (PRESET.replace('"annual_spend >= 100万 and', '"annual_spend >= 300万 and')
              .replace('"annual_spend >= 50万 or (annual_spend >= 30万',
                       '"annual_spend >= 20万 or (annual_spend >= 12万')
              .replace('"annual_spend >= 10万"', '"annual_spend >= 2万"'))
CALIBRATED_COMMENT = re.compile(
    r"# calibrated 2025-06-30 on annual_spend: was [\d.万/]+ \(share \d+\.\d%\), "
    r"now [\d.万/]+ \(share \d+\.\d%, target \d+–\d+%\)")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with 600 generated customers and four years of orders up to END."""
    folder = tmp_path_factory.mktemp("calibration") / "ws"
    data = generate(600, seed=11, end=END)
    with Workspace.init(folder) as ws:
        for kind in ("customers", "orders", "interactions"):
            path = folder / f"{kind}.parquet"
            pq.write_table(getattr(data, kind), path)
            ws.import_files(kind, [path])
    return folder


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template workspace for a test that writes to it."""
    return Path(shutil.copytree(template, tmp_path / "ws"))


def calibrated(root: Path, policy_text: str, **options: object) -> Calibration:
    (root / "trial.yaml").write_text(policy_text, encoding="utf-8")
    with Workspace(root) as ws:
        policy, text = ws.policy("trial.yaml")
        return calibrate(ibis.duckdb.from_connection(ws.store()), ws.tables(), policy, text,
                         **options)  # type: ignore[arg-type]


def by_key(result: Calibration) -> dict[str, object]:
    return {t.key: t for t in result.tiers}


def significant_digits(literal: str) -> int:
    return len(re.sub(r"[^\d]", "", literal).strip("0"))


# -- what calibration achieves ----------------------------------------------------------------

def test_every_tier_lands_in_its_target_share(root: Path) -> None:
    result = calibrated(root, OFF_TARGET, metric="annual_spend")
    vip, important, ordinary, potential = result.tiers
    assert [t.key for t in result.tiers] == ["vip", "important", "ordinary", "potential"]
    for tier in (vip, important, ordinary):
        assert tier.target is not None
        assert not tier.target[0] <= tier.old_share <= tier.target[1]   # off target before
        assert tier.target[0] <= tier.new_share <= tier.target[1]       # on target after
        assert tier.status == "calibrated" and tier.met is True
    assert potential.status == "remainder" and potential.met is True   # what is left: 20–30%
    assert sum(t.new_share for t in result.tiers) == pytest.approx(1.0)
    assert result.customers == 600 and result.as_of == END             # latest order date


def test_targets_default_to_the_policys_target_share(root: Path) -> None:
    result = calibrated(root, OFF_TARGET, metric="annual_spend")
    assert [t.target for t in result.tiers] == [(0.05, 0.10), (0.15, 0.20), (0.40, 0.50),
                                                (0.20, 0.30)]


def test_new_thresholds_are_round_numbers_written_in_the_users_unit(root: Path) -> None:
    result = calibrated(root, OFF_TARGET, metric="annual_spend")
    for tier in result.tiers[:-1]:
        for literal, value in zip(tier.new_thresholds, tier.new_values, strict=True):
            assert re.fullmatch(r"\d+(\.\d+)?万", literal), literal
            assert significant_digits(literal) <= 3
            assert load_policy_text(result.text).tier(tier.key).when.count(literal) == 1
            assert value == pytest.approx(float(literal.removesuffix("万")) * 10_000)


def test_several_comparisons_of_the_metric_move_together_keeping_their_ratio(
        root: Path) -> None:
    important = by_key(calibrated(root, OFF_TARGET, metric="annual_spend"))["important"]
    assert important.old_thresholds == ("20万", "12万")                 # 12万 = 0.6 × 20万
    first, second = important.new_values
    assert first != 200_000 and second / first == pytest.approx(0.6, rel=0.05)


def test_numbers_of_different_sign_do_not_scale_only_the_first_moves(root: Path) -> None:
    policy = OFF_TARGET.replace("annual_spend >= 12万 and", "annual_spend >= 0 and")
    important = by_key(calibrated(root, policy, metric="annual_spend"))["important"]
    assert important.old_thresholds == ("20万", "0")
    assert important.new_thresholds[0] != "20万" and important.new_thresholds[1] == "0"
    assert important.note.startswith("only 20万 moved")


def test_a_tier_already_on_target_keeps_its_thresholds(root: Path) -> None:
    result = calibrated(root, PRESET, metric="annual_spend")          # demo data fits the preset
    assert {t.status for t in result.tiers[:-1]} == {"kept"}
    assert result.text == PRESET                                      # nothing to rewrite


def test_given_targets_replace_the_policys_and_other_tiers_keep_their_rules(
        root: Path) -> None:
    result = calibrated(root, PRESET, metric="annual_spend", targets={"vip": (0.02, 0.03)})
    vip, important, ordinary, potential = result.tiers
    assert 0.02 <= vip.new_share <= 0.03 and vip.status == "calibrated"
    assert important.status == ordinary.status == "fixed" and important.target is None
    assert result.policy.tier("important").when == load_policy_text(PRESET).tier(
        "important").when
    assert potential.target is None and potential.met is None


def test_upper_bounds_move_the_other_way(root: Path) -> None:
    """ABC's `spend_share_above < 80%`: a lower threshold lets fewer customers in."""
    result = calibrated(root, preset_text("abc"), metric="spend_share_above",
                        targets={"A": (0.15, 0.25), "B": (0.20, 0.30)})
    a, b, _ = result.tiers
    assert a.old_thresholds == ("80%",) and b.old_thresholds == ("95%",)
    assert 0.15 <= a.new_share <= 0.25 and 0.20 <= b.new_share <= 0.30
    assert a.new_values[0] < 0.8
    assert all(t.endswith("%") for t in a.new_thresholds + b.new_thresholds)


def test_a_score_can_be_calibrated(root: Path) -> None:
    rules = load_policy_text(PRESET)
    by_score = PRESET
    for tier, rule in zip(rules.tiers, ("score >= 90", "score >= 80", "score >= 70"),
                          strict=False):
        by_score = by_score.replace(f'"{tier.when}"', f'"{rule}"')
    result = calibrated(root, by_score, metric="score")
    assert all(t.met for t in result.tiers), [(t.key, t.new_share, t.note) for t in result.tiers]
    assert [t.status for t in result.tiers] == ["calibrated"] * 3 + ["remainder"]


def test_an_unreachable_target_is_reported_for_its_tier_not_hidden(root: Path) -> None:
    # 600 customers: shares move in steps of 1/600, so no threshold gives 33.30–33.31%.
    policy = ("name: loyalty\ntiers:\n"
              "  - {key: loyal, when: \"active_months >= 12\", target_share: [0.3330, 0.3331]}\n"
              "  - {key: other}\n")
    result = calibrated(root, policy, metric="active_months")
    loyal = result.tiers[0]
    assert loyal.status == "unmet" and loyal.met is False
    assert "not reachable" in loyal.note and "33.3–33.31%" in loyal.note
    assert "the share jumps from" in loyal.note                       # ties on whole months
    assert ", not met)" in result.text                                # the comment says so too
    load_policy_text(result.text)                                     # still a valid policy


# -- the written policy -------------------------------------------------------------------------

def test_the_written_policy_keeps_comments_layout_and_the_rest_of_each_rule(root: Path) -> None:
    result = calibrated(root, OFF_TARGET, metric="annual_spend")
    old_lines = OFF_TARGET.splitlines()
    new_lines = result.text.splitlines()
    notes = [line for line in new_lines if line.lstrip().startswith("# calibrated")]
    assert len(notes) == 3 and all(CALIBRATED_COMMENT.fullmatch(n.strip()) for n in notes)
    assert [line for line in new_lines if line not in notes] != old_lines  # numbers changed …
    kept = [line for line in new_lines if line not in notes]
    assert len(kept) == len(old_lines)
    for old, new in zip(old_lines, kept, strict=True):
        if old != new:                                             # … and only the numbers
            assert old.lstrip().startswith("when:")
            assert re.sub(r"[\d.]+万", "N", old) == re.sub(r"[\d.]+万", "N", new)
    # the comment sits right above the rule it explains, indented like it
    for i, line in enumerate(new_lines):
        if line in notes:
            below = new_lines[i + 1]
            assert below.lstrip().startswith("when:")
            assert len(line) - len(line.lstrip()) == len(below) - len(below.lstrip())
    assert "# 5–10% of customers, ≥50% of profit" in result.text
    assert "potential_score >= 80" in result.policy.tier("important").when


def test_calibrating_again_replaces_the_earlier_comment(root: Path) -> None:
    first = calibrated(root, OFF_TARGET, metric="annual_spend", targets={"vip": (0.02, 0.03)})
    second = calibrated(root, first.text, metric="annual_spend", targets={"vip": (0.06, 0.08)})
    assert second.text.count("# calibrated") == 1
    assert f"was {first.tiers[0].new_thresholds[0]} " in second.text


def test_regrading_with_the_written_policy_gives_the_reported_shares(root: Path) -> None:
    result = calibrated(root, OFF_TARGET, metric="annual_spend")
    (root / "calibrated.yaml").write_text(result.text, encoding="utf-8")
    with Workspace(root) as ws:
        summary = ws.grade(policy="calibrated.yaml", as_of=result.as_of)
    assert {t.tier: t.customer_share for t in summary.tiers} == pytest.approx(
        {t.key: t.new_share for t in result.tiers}, abs=1e-12)
    assert [t.target_share for t in summary.tiers] == [t.target for t in result.tiers]


# -- the search itself ------------------------------------------------------------------------

@pytest.mark.parametrize("when", [
    "x >= 5", "x > 5", "5 < x", "x <= 5", "not x < 5", "not (x >= 5)",
    "x >= 5 and y = 1", "x >= 5 or y = 1", "x >= -2 or y is null",
    "x >= 4 or (x >= 2 and y = 1)", "not (x < 4 and (x < 2 or y != 1))",
])
def test_the_shares_the_search_reads_are_those_the_rules_give(when: str) -> None:
    """One GROUP BY of each customer's critical threshold stands in for counting the rule at
    every candidate threshold; it must agree with the rule, ties, nulls and NaN included."""
    con = ibis.duckdb.connect()
    table = con.create_table("m", pa.table({
        "x": [1.0, 2.0, 2.0, 3.5, 4.0, 5.0, 5.0, 6.0, 8.0, -2.0, None, math.nan, 10.0, 2.5],
        "y": [1.0, 0.0, 1.0, 1.0, None, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, None, 1.0]}))
    types = {"x": "number", "y": "number"}
    policy = Policy.model_validate({"name": "t", "tiers": [
        {"key": "t", "when": when, "target_share": [0.2, 0.3]}, {"key": "rest"}]})
    plan = _plans(policy, "x", {"t": (0.2, 0.3)})["t"]
    counter = _Counter(con, table, types, {})
    values, shares = counter.sweep(plan, None)
    assert len(values) > 3
    real = counter.shares([plan.text(plan.values(float(v))) for v in values], None)
    assert list(shares) == pytest.approx(real, abs=1e-12)


def test_targets_are_written_as_fractions_or_percents() -> None:
    assert parse_targets("vip=0.05:0.10, important=15%:20%") == {
        "vip": (0.05, 0.10), "important": (0.15, 0.20)}
    for bad in ("vip=5%", "vip:5%:10%", "=1:2", "vip=a:b", ""):
        with pytest.raises(CalibrationError, match="--target"):
            parse_targets(bad)


def test_numbers_are_written_the_way_users_write_them() -> None:
    assert write_number(620_000, "万") == "62万"
    assert write_number(623_000, "万") == "62.3万"
    assert write_number(8_000, "万") == "8000"            # under one 万: plain
    assert write_number(0.23, "%") == "23%"
    assert write_number(-0.1, "%") == "-10%"
    assert write_number(1.5e8, "亿") == "1.5亿"
    assert write_number(95.5) == "95.5"


# -- bad input ----------------------------------------------------------------------------------

def test_bad_input_is_refused_with_a_message_that_says_what_to_fix(root: Path) -> None:
    with pytest.raises(CalibrationError, match="unknown metric 'anual_spend' — did you mean "
                                               "'annual_spend'"):
        calibrated(root, PRESET, metric="anual_spend")
    with pytest.raises(CalibrationError, match=r"unknown tier 'vp'.*did you mean 'vip'"):
        calibrated(root, PRESET, metric="annual_spend", targets={"vp": (0.1, 0.2)})
    with pytest.raises(CalibrationError, match="low <= high"):
        calibrated(root, PRESET, metric="annual_spend", targets={"vip": (0.2, 0.1)})
    with pytest.raises(CalibrationError, match=r"tier 'vip': its rule does not compare "
                                               r"tenure_years with a number"):
        calibrated(root, PRESET, metric="tenure_years")
    with pytest.raises(CalibrationError, match="not a number"):
        calibrated(root, PRESET, metric="first_order_date")
    ranged = PRESET.replace('"annual_spend >= 10万"',
                            '"annual_spend >= 10万 and annual_spend < 50万"')
    with pytest.raises(CalibrationError, match="bounds annual_spend from both sides"):
        calibrated(root, ranged, metric="annual_spend")
    with pytest.raises(CalibrationError, match="clusters customers instead"):
        calibrated(root, preset_text("auto"), metric="annual_spend")


# -- command line -------------------------------------------------------------------------------

def cli(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1 and "Traceback" not in result.output
    return result


def test_cli_writes_a_calibrated_copy_of_the_workspace_policy(root: Path) -> None:
    (root / "policy.yaml").write_text(OFF_TARGET, encoding="utf-8")
    result = cli("policy", "calibrate", "--metric", "annual_spend", "-w", str(root))
    written = root / "policy.calibrated.yaml"
    assert f"wrote {written}" in result.stdout
    for words in ("VIP客户", "原阈值", "新阈值", "目标占比", "300万", "5–10% ✓", "已校准"):
        assert words in result.stdout
    assert load_policy_file(written).name == "价值分级"
    assert (root / "policy.yaml").read_text(encoding="utf-8") == OFF_TARGET   # left alone


def test_cli_json_and_english_and_explicit_targets(root: Path, tmp_path: Path) -> None:
    config = root / "tierwise.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("language: zh", "language: en"),
                      encoding="utf-8")
    output = tmp_path / "new.yaml"
    args = ("policy", "calibrate", "--metric", "annual_spend", "--policy", "value-tiers",
            "--target", "vip=2%:3%,important=0.10:0.12", "--as-of", "2025-03-31",
            "-o", str(output), "-w", str(root))
    data = json.loads(cli(*args, "--format", "json").stdout)
    assert data["as_of"] == "2025-03-31" and data["output"] == str(output)
    assert [t["status"] for t in data["tiers"]] == ["calibrated", "calibrated", "fixed",
                                                    "remainder"]
    assert data["tiers"][0]["met"] is True and data["tiers"][0]["target"] == [0.02, 0.03]
    table = cli(*args).stdout
    assert "Old threshold" in table and "VIP" in table and "calibrated" in table
    assert load_policy_file(output).tier("vip").when != load_policy_text(PRESET).tier("vip").when


def test_cli_refuses_bad_input_clearly(root: Path) -> None:
    w = ("-w", str(root))
    cases = {
        ("--metric", "anual_spend"): "did you mean 'annual_spend'",
        ("--metric", "annual_spend", "--target", "vp=1%:2%"): "unknown tier 'vp'",
        ("--metric", "annual_spend", "--target", "vip=5"): "expected key=low:high",
        ("--metric", "annual_spend", "--target", "vip=5%:x"): "fractions or percents",
        ("--metric", "order_count"): "does not compare order_count with a number",
        ("--metric", "annual_spend", "--policy", "nope.yaml"): "no policy file or preset",
    }
    for args, message in cases.items():
        result = cli("policy", "calibrate", *args, *w, ok=False)
        assert message in result.stderr, (args, result.stderr)
    assert not list(root.glob("*.calibrated.yaml"))


def test_grade_summary_shows_each_tiers_share_against_its_target(root: Path) -> None:
    table = cli("grade", "-w", str(root)).stdout
    assert "目标占比" in table and "5–10%" in table and "15–20%" in table
