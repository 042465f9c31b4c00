"""Warnings and opportunities a run raises as tasks, by thresholds the policy sets for every
tier and a playbook may set for its own: churn risk (recency against the customer's own
rhythm, falling order frequency), credit risk, upgrade candidates near the next tier.

The book, as of 2025-06-30 (window 2024-07-01 … 2025-06-30, prior window the year before):

* R1 (gold) buys every 30 days until 2025-03-02: 120 days without an order, 4 × its gap.
* R2 (gold) bought 8 times in the prior window and twice in this one (down 75%), recently.
* R3 (gold) buys every 30 days up to 2025-06-01: nothing to warn about.
* U1 (silver) spent 95,000 this window, 5% short of gold's 100,000; U2 (silver) 70,000.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tierwise.policy.evaluation import evaluate, to_ibis
from tierwise.policy.expr import parse_rule
from tierwise.policy.loading import PolicyError, load_policy_text
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)
POLICY = """
name: 警示
tiers:
  - {key: gold, label: 金牌, when: "annual_spend >= 100000 or order_count >= 12"}
  - {key: silver, label: 银牌, when: "annual_spend >= 10000"}
  - {key: other, label: 其他}
lifecycle: {at_risk_after_days: 200, churned_after_days: 400}
"""


def _every(start: dt.date, days: int, count: int) -> list[dt.date]:
    return [start + dt.timedelta(days=days * i) for i in range(count)]


def _book(folder: Path) -> tuple[Path, Path]:
    customers = folder / "customers.csv"
    customers.write_text("客户编号,客户名称,客户经理,合作开始日期\n"
                         "R1,甲,张伟,2023-01-01\nR2,乙,张伟,2023-01-01\nR3,丙,王芳,2023-01-01\n"
                         "U1,丁,王芳,2023-01-01\nU2,戊,王芳,2023-01-01\n", encoding="utf-8")
    orders = [("R1", d, 20000) for d in _every(dt.date(2024, 7, 5), 30, 9)]    # to 2025-03-02
    orders += [("R2", d, 9000) for d in _every(dt.date(2023, 7, 10), 40, 8)]   # prior window
    orders += [("R2", d, 60000) for d in (dt.date(2025, 5, 1), dt.date(2025, 6, 20))]
    orders += [("R3", d, 10000) for d in _every(dt.date(2024, 7, 6), 30, 11)]  # to 2025-06-01
    orders += [("U1", dt.date(2025, 3, 1), 45000), ("U1", dt.date(2025, 6, 1), 50000),
               ("U2", dt.date(2025, 6, 1), 70000)]
    path = folder / "orders.csv"
    path.write_text("订单号,客户编号,下单日期,订单金额\n" + "".join(
        f"O{i},{c},{d.isoformat()},{a}\n" for i, (c, d, a) in enumerate(orders)),
        encoding="utf-8")
    return customers, path


@pytest.fixture
def book(tmp_path: Path, database_url: str) -> Workspace:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    ws = Workspace.init(tmp_path / "ws", policy=str(policy))
    customers, orders = _book(tmp_path)
    ws.import_files("customers", [customers])
    ws.import_files("orders", [orders])
    return ws


def _policy_file(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "variant.yaml"
    path.write_text(POLICY + extra, encoding="utf-8")
    return str(path)


def by_kind(ws: Workspace, kind: str) -> dict[str, str]:
    return {t.customer_id: t.describe("zh", {"gold": "金牌"}) for t in ws.tasks(kind=kind)}


def test_churn_risk_when_recency_outruns_the_customers_own_rhythm(book: Workspace) -> None:
    book.grade(as_of=AS_OF)
    metrics = {r["customer_id"]: r for r in book.assignments().to_pylist()}
    assert metrics["R1"]["order_gap_days"] == 30 and metrics["R1"]["recency_days"] == 120
    churn = by_kind(book, "churn_risk")
    assert churn["R1"] == "流失风险：已 120 天未购买，通常每 30 天购买一次"
    assert "R3" not in churn                     # 29 days since its last order: on rhythm


def test_churn_risk_when_order_frequency_falls_against_the_prior_window(
        book: Workspace) -> None:
    book.grade(as_of=AS_OF)
    metrics = {r["customer_id"]: r for r in book.assignments().to_pylist()}
    assert (metrics["R2"]["order_count"], metrics["R2"]["prior_order_count"]) == (2, 8)
    assert by_kind(book, "churn_risk")["R2"] == "流失风险：购买次数从上期 8 次降至 2 次"


def test_a_tiers_playbook_can_set_its_own_thresholds_or_switch_a_test_off(
        book: Workspace, tmp_path: Path) -> None:
    policy = _policy_file(tmp_path, """
warnings: {churn_gap_multiple: 5}
playbooks:
  gold: {warnings: {churn_frequency_drop: null}}
""")
    book.grade(as_of=AS_OF, policy=policy)
    # 120 days is under 5 × 30 now, and gold does not look at frequency at all.
    assert by_kind(book, "churn_risk") == {}


def test_upgrade_candidates_within_reach_of_the_next_tier(book: Workspace) -> None:
    book.grade(as_of=AS_OF)
    tiers = {r["customer_id"]: r["tier"] for r in book.assignments().to_pylist()}
    assert tiers["U1"] == tiers["U2"] == "silver"
    upgrade = by_kind(book, "upgrade")
    assert set(upgrade) == {"U1"}                      # U2 is 30% short
    # Only the thresholds within reach are named: 2 orders of 12 is no near miss.
    assert upgrade["U1"] == "接近升级到 金牌（年度消费金额 ¥9.50万，需 >= ¥10.00万）"
    [task] = book.tasks(kind="upgrade")
    assert task.describe("en", {"gold": "Gold"}).startswith("close to Gold (Annual spend")


def test_upgrade_reach_is_set_per_tier(book: Workspace, tmp_path: Path) -> None:
    policy = _policy_file(tmp_path, "warnings: {upgrade_within: 35%}\n")
    book.grade(as_of=AS_OF, policy=policy)
    assert set(by_kind(book, "upgrade")) == {"U1", "U2"}
    policy = _policy_file(tmp_path, "playbooks:\n  silver: {warnings: {upgrade_within: null}}\n")
    book.grade(as_of=AS_OF, policy=policy)
    assert by_kind(book, "upgrade") == {}


def test_warning_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="churn_frequency_drop"):
        load_policy_text(POLICY + "warnings: {churn_frequency_drop: 150%}\n")
    with pytest.raises(PolicyError, match="upgrade_wihtin"):
        load_policy_text(POLICY + "warnings: {upgrade_wihtin: 10%}\n")
    policy = load_policy_text(POLICY + "warnings: {upgrade_within: 20%}\nplaybooks:\n"
                              "  gold: {warnings: {credit_overdue_days: 60}}\n")
    assert policy.warnings_for("gold").credit_overdue_days == 60
    assert policy.warnings_for("gold").upgrade_within == pytest.approx(0.2)
    assert policy.warnings_for("silver").credit_overdue_days == 30


@pytest.mark.parametrize(("text", "values", "holds"), [
    ("annual_spend >= 100000", {"annual_spend": 91000}, True),
    ("annual_spend >= 100000", {"annual_spend": 89000}, False),
    ("100000 <= annual_spend", {"annual_spend": 91000}, True),
    ("recency_days <= 30", {"recency_days": 32}, True),
    ("recency_days <= 30", {"recency_days": 34}, False),
    ("not (recency_days > 30)", {"recency_days": 32}, True),     # loosened through the not
    ("annual_spend between 100 and 200", {"annual_spend": 95}, True),
    ("margin >= -0.1", {"margin": -0.105}, True),
    ("annual_spend >= 100000 and industry = '制造业'",
     {"annual_spend": 95000, "industry": "零售"}, False),       # only numbers are loosened
])
def test_a_loosened_rule_passes_thresholds_within_the_fraction(
        text: str, values: dict[str, object], holds: bool) -> None:
    import ibis

    rule = parse_rule(text)
    types = {"annual_spend": "number", "recency_days": "number", "margin": "number",
             "industry": "string"}
    assert evaluate(rule, values, types, {}, loosen_by=0.1) is holds   # type: ignore[arg-type]
    table = ibis.memtable({k: [v] for k, v in {"annual_spend": 0.0, "recency_days": 0.0,
                                               "margin": 0.0, "industry": "",
                                               **values}.items()})
    column = to_ibis(rule, table, types, {}, loosen_by=0.1)            # type: ignore[arg-type]
    assert ibis.duckdb.connect().execute(column) .tolist() == [holds]
