"""Playbooks: each tier's service level in the policy (服务标准) — contact cadence, channels,
who serves the account, benefits and events — and explain showing it for the customer."""

from __future__ import annotations

import pytest

from tierwise.errors import PolicyError
from tierwise.policy.loading import load_policy_text
from tierwise.policy.model import Cadence
from tierwise.policy.presets import preset_text
from tierwise.workspace import Workspace

TIERS = """
name: 服务
tiers:
  - {key: vip, label: VIP客户, when: "annual_spend >= 100万"}
  - {key: rest, label: 其他}
"""


@pytest.mark.parametrize(("text", "count", "unit"), [
    ("1 month", 1, "month"), ("3 months", 3, "month"), ("2 weeks", 2, "week"),
    ("30 days", 30, "day"), ("1 quarter", 3, "month"), ("1 year", 12, "month"),
    ("每月", 1, "month"), ("每季度", 3, "month"), ("3个月", 3, "month"),
    ("every 2 weeks", 2, "week"),
])
def test_cadences_are_written_the_way_people_say_them(text: str, count: int, unit: str) -> None:
    cadence = Cadence.parse(text)
    assert (cadence.count, cadence.unit) == (count, unit)


def test_cadence_reads_back_in_both_languages() -> None:
    assert Cadence.parse("3 months").describe("zh") == "每季度"
    assert Cadence.parse("2 weeks").describe("en") == "every 2 weeks"


def test_channels_become_interaction_types() -> None:
    policy = load_policy_text(
        TIERS + "playbooks:\n  vip: {cadence: 每月, channels: [拜访, 视频会议, phone]}\n")
    assert policy.playbooks["vip"].channels == ("visit", "video", "call")


@pytest.mark.parametrize(("block", "message"), [
    ("  vip: {cadence: sometimes}\n", "a cadence is like '1 month'"),
    ("  vip: {channels: [飞鸽传书]}\n", "unknown channel '飞鸽传书'"),
    ("  gold: {cadence: 1 month}\n", "playbooks name tiers the policy does not have: gold"),
])
def test_bad_playbooks_are_refused(block: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy_text(TIERS + "playbooks:\n" + block)


def test_value_tiers_carries_the_seed_004_service_levels() -> None:
    policy = load_policy_text(preset_text("value-tiers"))
    vip, important = policy.playbooks["vip"], policy.playbooks["important"]
    assert (vip.cadence, vip.channels) == (Cadence(count=1, unit="month"), ("visit", "video"))
    assert important.cadence == Cadence(count=3, unit="month")
    assert vip.owner_role.startswith("专属服务团队") and vip.owner_role_en
    assert "新品发布会" in vip.events
    assert set(policy.playbooks) == set(policy.keys)


def test_explain_shows_the_service_level_of_the_customers_tier(ws: Workspace,
                                                                tmp_path: object) -> None:
    ws.grade(policy="value-tiers")
    vip = next(row["customer_id"] for row in ws.assignments().to_pylist()
               if row["tier"] == "vip")
    zh = ws.explain(vip, lang="zh").service_level()
    assert zh[0] == "沟通频率：每月至少一次（拜访、视频会议）"
    assert zh[1].startswith("服务团队：专属服务团队")
    en = ws.explain(vip, lang="en").service_level()
    assert en[0] == "Contact every month at least (visit, video call)"


def test_explain_as_json_carries_the_playbook(ws: Workspace) -> None:
    """`tierwise explain ID --format json` under a policy with playbooks (it used to fail:
    a Playbook is not plain JSON)."""
    import json

    from click.testing import CliRunner

    from tierwise.cli import main

    ws.grade(policy="value-tiers")
    vip = next(row["customer_id"] for row in ws.assignments().to_pylist()
               if row["tier"] == "vip")
    result = CliRunner().invoke(main, ["explain", vip, "--format", "json", "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["playbook"]["cadence"]["count"] == 1 and "visit" in shown["playbook"]["channels"]
