"""Policy files: validation errors name the line and field; presets load; hashing."""

from __future__ import annotations

import pytest

from tierwise.errors import PolicyError
from tierwise.policy.loading import load_policy_text
from tierwise.policy.model import parse_quantity
from tierwise.policy.presets import PRESETS, preset_text

GOOD = """\
name: 客户等级
tiers:
  - {key: vip, label: VIP客户, when: "annual_spend >= 100万 and tenure_years >= 5"}
  - {key: important, label: 重要客户, when: "annual_spend >= 50万"}
  - {key: potential, label: 潜在客户}
"""


def problems(text: str) -> str:
    with pytest.raises(PolicyError) as raised:
        load_policy_text(text, source="p.yaml")
    return str(raised.value)


def test_a_valid_policy_lists_tiers_best_first() -> None:
    policy = load_policy_text(GOOD)
    assert policy.keys == ["vip", "important", "potential"]
    assert policy.tier("vip").display() == "VIP客户"
    assert policy.rank("potential") == 2
    assert policy.used_metrics() == ["annual_spend", "tenure_years"]


def test_hash_ignores_comments_and_layout_but_not_content() -> None:
    reformatted = "# 注释\n" + GOOD.replace("{key: potential, label: 潜在客户}",
                                            "key: potential\n    label: 潜在客户")
    assert load_policy_text(reformatted).hash == load_policy_text(GOOD).hash
    assert load_policy_text(GOOD.replace("50万", "60万")).hash != load_policy_text(GOOD).hash


def test_unknown_field_names_line_and_field() -> None:
    message = problems(GOOD.replace('when: "annual_spend >= 50万"', 'wehn: "x"'))
    assert "line 4: tiers[1].wehn: unknown field" in message


def test_missing_name_is_reported() -> None:
    assert "name: required field is missing" in problems(GOOD.replace("name: 客户等级\n", ""))


def test_syntax_error_in_a_rule_names_its_line_and_column() -> None:
    message = problems(GOOD.replace("annual_spend >= 50万", "annual_spend >= and 5"))
    assert "line 4: tiers[1] (important).when" in message
    assert "column" in message


def test_unknown_metric_suggests_the_closest_name() -> None:
    message = problems(GOOD.replace("annual_spend >= 50万", "anual_spend >= 50万"))
    assert "line 4" in message and "anual_spend" in message and "annual_spend" in message


def test_customer_attributes_are_known_when_given() -> None:
    text = GOOD.replace("annual_spend >= 50万", "员工人数 >= 500")
    assert "员工人数" in problems(text)
    load_policy_text(text, attributes=["员工人数"])


def test_only_the_last_tier_may_omit_its_rule() -> None:
    assert "the last tier takes everyone else" in problems(
        GOOD.replace("{key: potential, label: 潜在客户}",
                     '{key: potential, label: 潜在客户, when: "order_count > 0"}'))
    assert "needs a 'when' rule" in problems(
        GOOD.replace(', when: "annual_spend >= 50万"', ""))


def test_duplicate_tier_keys() -> None:
    assert "unique: vip" in problems(GOOD.replace("key: important", "key: vip"))


def test_yaml_syntax_error_gives_the_line() -> None:
    assert "line 2: not valid YAML" in problems("name: x y\n  bad: indent\ntiers: []\n")


def test_scorecard_factors_are_checked() -> None:
    text = GOOD + """\
scorecard:
  dimensions:
    - key: value
      factors:
        - {metric: annual_spend, bins: [[50万, 70], [10万, 40]]}
        - {metric: industry, linear: [0, 1]}
        - {metric: annaul_spend, percentile: true}
"""
    message = problems(text)
    assert "bins must be in increasing order" in message
    text = text.replace("[[50万, 70], [10万, 40]]", "[[10万, 40], [50万, 70]]")
    message = problems(text)
    assert "line 11" in message and "'industry' is not a number" in message
    assert "line 12" in message and "unknown metric 'annaul_spend'" in message


def test_hysteresis_must_be_at_least_one_run() -> None:
    assert "downgrade_after" in problems(GOOD + "hysteresis: {downgrade_after: 0}\n")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_valid(name: str) -> None:
    policy = load_policy_text(preset_text(name), source=name)
    assert policy.tiers[-1].when is None


@pytest.mark.parametrize(("text", "value"), [
    ("10万", 100_000), ("1.5亿", 150_000_000), ("80%", 0.8), ("1_000_000", 1_000_000),
    (3, 3.0), ("-50%", -0.5),
])
def test_quantities_in_policies(text: object, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


def test_rule_errors_are_reported_with_structural_errors() -> None:
    text = GOOD.replace('when: "annual_spend >= 50万"', 'when: "anual_spend >= 50万", colour: red')
    message = problems(text)
    assert "tiers[1].colour: unknown field" in message
    assert "unknown name 'anual_spend'" in message


def test_a_control_character_is_a_policy_error_not_a_crash() -> None:
    from tierwise.errors import PolicyError
    from tierwise.policy.loading import load_policy_text

    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy_text("name: x\x1f\ntiers: []\n")
