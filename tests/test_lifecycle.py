"""Lifecycle stages: every run gives each customer a stage from its orders as of the date
(potential, new, reactivated, churned, at risk, growing, loyal, stable), customers move both
ways between runs, and the stage is kept in history and shown in explain.

Default thresholds: churned after 365 days without an order, at risk after 120 days or spend
down 50%, new within 90 days of the first order, growing at +20%, loyal after 2 years with
6 active months in the window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from tierwise.errors import PolicyError
from tierwise.policy.loading import load_policy_text
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)
POLICY = """
name: 阶段
tiers:
  - {key: big, label: 大客户, when: "annual_spend >= 1000"}
  - {key: rest, label: 其他}
"""


def monthly(customer: str, first: tuple[int, int], last: tuple[int, int],
            amount: int = 100) -> list[str]:
    year, month = first
    rows = []
    while (year, month) <= last:
        rows.append(f"{customer}-{year}{month:02d},{customer},{year}-{month:02d}-15,{amount}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return rows


ORDERS = [
    "N-1,N,2025-05-01,100",                          # first order 60 days before: new
    "C-1,C,2024-03-01,100",                          # 486 days without an order: churned
    "R-1,R,2022-01-10,100", "R-2,R,2022-03-10,100",  # back after three years: reactivated
    "R-3,R,2025-06-01,100",
    *monthly("A", (2023, 7), (2025, 1)),             # last order 166 days before: at risk
    "G-1,G,2023-08-01,100",                          # spend 100 → 200: growing
    "G-2,G,2025-03-01,100", "G-3,G,2025-06-01,100",
    *monthly("L", (2022, 1), (2025, 6)),             # 3.5 years, every month: loyal
    *monthly("S", (2024, 8), (2025, 6)),             # under two years, no prior spend: stable
]
EXPECTED = {"P": "potential", "N": "new", "C": "churned", "R": "reactivated", "A": "at_risk",
            "G": "growing", "L": "loyal", "S": "stable"}


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    customers = tmp_path / "customers.csv"
    customers.write_text("客户编号,客户名称\n" + "".join(f"{c},{c}公司\n" for c in EXPECTED),
                         encoding="utf-8")
    orders = tmp_path / "orders.csv"
    orders.write_text("订单号,客户编号,下单日期,订单金额\n" + "\n".join(ORDERS) + "\n",
                      encoding="utf-8")
    with Workspace.init(tmp_path / "ws", policy=str(policy)) as workspace:
        workspace.import_files("customers", [customers])
        workspace.import_files("orders", [orders])
        yield workspace


def stages(ws: Workspace, run_id: int | None = None) -> dict[str, str]:
    table = ws.assignments(run_id)
    return dict(zip(table["customer_id"].to_pylist(), table["stage"].to_pylist(), strict=True))


def add_order(ws: Workspace, folder: Path, line: str) -> None:
    extra = folder / "extra.csv"
    extra.write_text(f"订单号,客户编号,下单日期,订单金额\n{line}\n", encoding="utf-8")
    ws.import_files("orders", [extra])


def test_every_customer_gets_the_first_stage_whose_test_holds(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)
    assert stages(ws) == EXPECTED


def test_stages_move_both_ways_and_history_keeps_them(ws: Workspace, tmp_path: Path) -> None:
    ws.grade(as_of=AS_OF)                                  # L loyal
    ws.grade(as_of=dt.date(2025, 12, 31))                  # 199 days without an order
    assert stages(ws)["N"] == "at_risk"                    # new in May, nothing since
    ws.grade(as_of=dt.date(2026, 9, 30))                   # 472 days: churned
    add_order(ws, tmp_path, "L-back,L,2026-10-15,100")
    ws.grade(as_of=dt.date(2026, 10, 31))                  # back after 487 days
    history = ws.explain("L").history
    assert [h.stage for h in history] == ["loyal", "at_risk", "churned", "reactivated"]
    assert stages(ws)["N"] == stages(ws)["S"] == "churned"


def test_thresholds_come_from_the_policy(ws: Workspace, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text(POLICY + "lifecycle: {churned_after_days: 150, at_risk_after_days: 30,"
                      " loyal_after_years: 5}\n", encoding="utf-8")
    ws.grade(as_of=AS_OF, policy=str(strict))
    assert stages(ws)["A"] == "churned"       # 166 days > 150
    assert stages(ws)["L"] == "stable"        # 3.5 years < 5


def test_rules_and_explain_read_the_stage(ws: Workspace, tmp_path: Path) -> None:
    by_stage = tmp_path / "by-stage.yaml"
    by_stage.write_text("""
name: 挽回
tiers:
  - {key: winback, label: 挽回对象, when: "stage in ['at_risk', 'churned']"}
  - {key: rest, label: 其他}
""", encoding="utf-8")
    ws.grade(as_of=AS_OF, policy=str(by_stage))
    tiers = dict(zip(ws.assignments()["customer_id"].to_pylist(),
                     ws.assignments()["tier"].to_pylist(), strict=True))
    assert {c for c, t in tiers.items() if t == "winback"} == {"A", "C"}
    explained = ws.explain("A", lang="zh")
    assert explained.metrics["stage"] == "at_risk"
    assert "生命周期阶段" in explained.reasons()[0] and "风险" in explained.reasons()[0]


def test_lifecycle_settings_are_checked() -> None:
    with pytest.raises(PolicyError, match="at_risk_after_days must be less than"):
        load_policy_text(POLICY + "lifecycle: {churned_after_days: 90, at_risk_after_days: 120}\n")
    with pytest.raises(PolicyError, match="churned_after_days"):
        load_policy_text(POLICY + "lifecycle: {churned_after_days: 0}\n")
