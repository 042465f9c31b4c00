"""Backtest: each period end graded like a run (hysteresis chained, nothing recorded), then
tier stability, flapping, next-12-month revenue by tier and Pareto concentration.

The data is small enough to check every figure by hand: A orders ¥100 on the 10th of every
month from 2024-01 to 2025-06; D orders ¥10 on 2024-02-15, 04-15 and 06-15, so with
"active = bought in the last 31 days" D flaps active/lapsed every month."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import run
from tierwise.errors import TierwiseError
from tierwise.grading.backtest import Backtest, period_ends
from tierwise.workspace import Workspace

POLICY = """
name: 活跃度
tiers:
  - {{key: active, label: 活跃, when: "recency_days <= 31"}}
  - {{key: lapsed, label: 沉睡}}
hysteresis:
  downgrade_after: {after}
"""
ENDS = period_ends("2024-01", "2024-06")


def write_data(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["订单号,客户编号,下单日期,订单金额"]
    for i in range(18):
        year, month = 2024 + i // 12, i % 12 + 1
        lines.append(f"A{i},A,{year}-{month:02d}-10,100")
    lines += ["D1,D,2024-02-15,10", "D2,D,2024-04-15,10", "D3,D,2024-06-15,10"]
    orders = folder / "orders.csv"
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    customers = folder / "customers.csv"
    customers.write_text("客户编号,客户名称\nA,甲公司\nD,丁公司\n", encoding="utf-8")
    return customers, orders


def write_policy(folder: Path, after: int = 1) -> Path:
    path = folder / f"active-{after}.yaml"
    path.write_text(POLICY.format(after=after), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("backtest")
    customers, orders = write_data(folder / "data")
    with Workspace.init(folder / "ws", policy=str(write_policy(folder))) as workspace:
        workspace.import_files("customers", [customers])
        workspace.import_files("orders", [orders])
        yield workspace


@pytest.fixture(scope="module")
def result(ws: Workspace) -> Backtest:
    [monthly] = ws.backtest(ENDS)
    return monthly


def test_period_ends_are_month_or_quarter_ends() -> None:
    assert period_ends("2024-11", "2025-02") == [
        dt.date(2024, 11, 30), dt.date(2024, 12, 31), dt.date(2025, 1, 31),
        dt.date(2025, 2, 28)]
    assert period_ends("2024-01", "2024-12", "quarter") == [
        dt.date(2024, 3, 31), dt.date(2024, 6, 30), dt.date(2024, 9, 30),
        dt.date(2024, 12, 31)]
    with pytest.raises(TierwiseError, match="--from must be a month like 2025-01"):
        period_ends("2024/01", "2024-06")
    with pytest.raises(TierwiseError, match="before"):
        period_ends("2024-06", "2024-01")


def test_stability_and_flapping(result: Backtest) -> None:
    kept = [p.kept for p in result.periods]
    # Period 1 has no period before; then A keeps its tier every month and D changes.
    assert kept == [None, 1.0, 0.5, 0.5, 0.5, 0.5]
    assert result.stability == pytest.approx(0.6)
    assert (result.flaps, result.flapping_customers) == (3, 1)
    assert [p.customers for p in result.periods] == [1, 2, 2, 2, 2, 2]   # D exists from Feb


def test_a_backtest_records_no_run(ws: Workspace, result: Backtest) -> None:
    assert ws.runs() == [] and not any(ws.runs_dir.glob("*.parquet"))


def test_hysteresis_is_chained_from_period_to_period(tmp_path: Path, ws: Workspace) -> None:
    [held] = ws.backtest(ENDS, policies=[str(write_policy(tmp_path, after=2))])
    assert (held.flaps, held.stability) == (0, 1.0)


def test_next_twelve_months_revenue_by_tier(result: Backtest) -> None:
    # The data ends 2025-06-10, so only periods up to 2024-05-31 have a full next 12 months.
    assert [p.complete for p in result.periods] == [True] * 5 + [False]
    active, lapsed = result.tiers
    # Active per customer: 1200 (A alone), 610 (A and D), 1200, 605, 1200.
    assert active.revenue_next_12m == pytest.approx((1200 + 610 + 1200 + 605 + 1200) / 5)
    assert lapsed.revenue_next_12m == pytest.approx((20 + 10) / 2)
    assert active.lift == pytest.approx((1 + 1 + 1200 / 610 + 1 + 1200 / 605) / 5)
    assert active.captured == pytest.approx((1 + 1 + 1200 / 1220 + 1 + 1200 / 1210) / 5)
    assert lapsed.captured == pytest.approx(1.0)
    assert result.periods[-1].top_lift is None
    assert active.share == pytest.approx((1 + 1 + 0.5 + 1 + 0.5 + 1) / 6)   # D active or not


def test_pareto_share_of_the_top_fifth(result: Backtest) -> None:
    # One customer: the top 20% (rounded up to one customer) hold everything; with D, A's
    # trailing spend over the total.
    assert result.periods[0].pareto_top20 == 1.0
    assert result.periods[1].pareto_top20 == pytest.approx(200 / 210)


def test_cli_compares_two_policies_in_table_and_json(tmp_path: Path) -> None:
    customers, orders = write_data(tmp_path / "data")
    folder = str(tmp_path / "cli")
    run("init", folder, "--policy", str(write_policy(tmp_path)))
    run("import", "customers", str(customers), "-w", folder)
    run("import", "orders", str(orders), "-w", folder)
    held = str(write_policy(tmp_path, after=2))
    table = run("backtest", "--from", "2024-01", "--to", "2024-06", "--compare", held,
                "-w", folder).output
    assert "回测 活跃度" in table and "对比" in table and "反复升降" in table
    data = json.loads(run("backtest", "--from", "2024-01", "--to", "2024-06", "--compare",
                          held, "--format", "json", "-w", folder).output)
    assert data["periods"][0] == "2024-01-31" and len(data["periods"]) == 6
    first, second = data["policies"]
    assert (first["flaps"], second["flaps"]) == (3, 0)
    bad = run("backtest", "--from", "2024-13", "--to", "2024-06", "-w", folder, ok=False)
    assert bad.exit_code != 0 and "--from must be a month" in bad.output
