"""Metrics as of a date, hand-computed on tests/data (as of 2025-06-30, 12-month window).

The window holds orders with 2024-06-30 < order_date <= 2025-06-30; the prior window
2023-06-30 < order_date <= 2024-06-30. Orders after the as-of date count nowhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import pandas as pd
import pytest

from tests.conftest import DATA
from tierwise.api import grade_frames
from tierwise.metrics.per_customer import Window, add_months, customer_metrics, with_rank_metrics
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module", params=[1, 3], ids=["one range", "three ranges"])
def metrics(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """The metrics of tests/data; ranks in one range (as on DuckDB) and in three (as on
    Spark, tierwise.metrics.ranking) give the same values."""
    with Workspace.init(tmp_path_factory.mktemp("metrics") / "ws") as ws:
        for kind in ("customers", "orders", "interactions"):
            ws.import_files(kind, [DATA / f"{kind}.csv"])
        s = ws.tables()
        backend = ibis.duckdb.from_connection(ws.store())
        base = backend.create_table(
            "base", customer_metrics(s.customers, s.orders, s.interactions, Window(AS_OF)),
            temp=True)
        table = with_rank_metrics(backend, base, ranges=request.param)
        rows = backend.to_pyarrow(table).to_pylist()
    return {row["customer_id"]: row for row in rows}


def test_window_includes_the_as_of_date_and_excludes_its_start(metrics: dict) -> None:
    c1 = metrics["C1"]
    # O2 (2024-07-01) and O3 (2025-06-30) count, O1 (2024-06-30) is in the prior window,
    # O4 (2025-07-01) is after the as-of date, O5 is a refund of 100,000.
    assert c1["annual_spend"] == pytest.approx(1_100_000)
    assert c1["order_count"] == 2
    assert c1["avg_order_value"] == pytest.approx(550_000)
    assert c1["prior_spend"] == pytest.approx(500_000)
    assert c1["spend_growth"] == pytest.approx(1.2)
    assert c1["lifetime_spend"] == pytest.approx(1_600_000)
    assert c1["first_order_date"] == dt.date(2024, 6, 30)
    assert c1["last_order_date"] == AS_OF
    assert c1["recency_days"] == 0
    assert c1["active_months"] == 2


def test_profit_from_cost_or_profit_column_and_margin(metrics: dict) -> None:
    assert metrics["C1"]["profit"] == pytest.approx(200_000 + 100_000 - 25_000)
    assert metrics["C1"]["margin"] == pytest.approx(0.25)
    assert metrics["C2"]["profit"] == pytest.approx(120_000)
    assert metrics["C2"]["margin"] == pytest.approx(0.2)


def test_profit_is_null_when_window_orders_have_no_cost_data(metrics: dict) -> None:
    assert metrics["C5"]["profit"] is None
    assert metrics["C5"]["margin"] is None


def test_customer_without_window_orders(metrics: dict) -> None:
    c3 = metrics["C3"]
    assert c3["annual_spend"] == 0
    assert c3["order_count"] == 0
    assert c3["avg_order_value"] is None
    assert c3["margin"] is None
    assert c3["recency_days"] == (AS_OF - dt.date(2024, 1, 5)).days
    assert c3["spend_growth"] == pytest.approx(-1.0)
    # no `since`: tenure counts from the first order
    assert c3["tenure_years"] == pytest.approx((AS_OF - dt.date(2024, 1, 5)).days / 365.25)


def test_customer_with_no_orders_at_all(metrics: dict) -> None:
    c4 = metrics["C4"]
    assert c4["annual_spend"] == 0 and c4["lifetime_spend"] == 0
    assert c4["recency_days"] is None and c4["first_order_date"] is None
    assert c4["r_score"] is None and c4["f_score"] is None and c4["m_score"] is None
    assert c4["spend_share_above"] is None
    assert c4["tenure_years"] == pytest.approx((AS_OF - dt.date(2024, 12, 1)).days / 365.25)


def test_customer_that_did_not_exist_yet_is_left_out(metrics: dict) -> None:
    assert "C6" not in metrics          # since 2025-09-01, after the as-of date, no orders


def test_customer_without_since_exists_from_its_first_order() -> None:
    graded = grade_frames(
        pd.DataFrame({"order_id": ["a", "b"], "customer_id": ["early", "late"],
                      "order_date": [dt.date(2025, 1, 5), dt.date(2025, 7, 5)],
                      "amount": [100.0, 100.0]}),
        pd.DataFrame({"customer_id": ["early", "late", "prospect"]}), as_of=AS_OF)
    assert sorted(graded.tiers()) == ["early", "prospect"]


def test_margin_counts_only_orders_with_cost_data() -> None:
    graded = grade_frames(
        pd.DataFrame({"order_id": ["a", "b"], "customer_id": ["c", "c"],
                      "order_date": [dt.date(2025, 1, 5), dt.date(2025, 2, 5)],
                      "amount": [100_000.0, 100_000.0], "cost": [50_000.0, None]}),
        as_of=AS_OF)
    row = graded.table.to_pylist()[0]
    assert row["profit"] == pytest.approx(50_000)
    assert row["margin"] == pytest.approx(0.5)


def test_tenure_from_since(metrics: dict) -> None:
    assert metrics["C1"]["tenure_years"] == pytest.approx(
        (AS_OF - dt.date(2018, 1, 1)).days / 365.25)


def test_interactions_in_window(metrics: dict) -> None:
    c1 = metrics["C1"]
    assert c1["complaints_12m"] == 1
    assert c1["interactions_12m"] == 2
    assert c1["satisfaction_avg"] == pytest.approx(3.0)
    assert metrics["C2"]["interactions_12m"] == 0       # the call is after the as-of date
    assert metrics["C2"]["satisfaction_avg"] is None


def test_quintile_scores_among_customers_with_orders(metrics: dict) -> None:
    # 4 customers have orders (C1, C2, C3, C5); score = 1 + floor(5 × strictly-worse / 4)
    scores = {c: (metrics[c]["r_score"], metrics[c]["f_score"], metrics[c]["m_score"])
              for c in ("C1", "C2", "C3", "C5")}
    assert scores == {
        "C1": (4, 3, 4),   # most recent; ties with C2 on 2 orders
        "C2": (2, 3, 3),
        "C5": (3, 2, 2),
        "C3": (1, 1, 1),
    }


def test_spend_share_above(metrics: dict) -> None:
    total = 1_100_000 + 600_000 + 20_000
    assert metrics["C1"]["spend_share_above"] == 0
    assert metrics["C2"]["spend_share_above"] == pytest.approx(1_100_000 / total)
    assert metrics["C5"]["spend_share_above"] == pytest.approx(1_700_000 / total)
    assert metrics["C3"]["spend_share_above"] is None      # no positive spend


def test_attributes_are_carried_by_name(metrics: dict) -> None:
    assert metrics["C1"]["industry"] == "制造业"
    assert metrics["C1"]["员工人数"] == "1200"


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2025, 3, 31), -12, dt.date(2024, 3, 31)),
        (dt.date(2024, 2, 29), -12, dt.date(2023, 2, 28)),
        (dt.date(2025, 5, 31), -3, dt.date(2025, 2, 28)),
        (dt.date(2025, 1, 15), 1, dt.date(2025, 2, 15)),
    ],
)
def test_calendar_month_arithmetic(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected
