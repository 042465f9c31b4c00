"""Each built-in preset on a known example, graded from in-memory frames (grade_frames)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tierwise.api import grade_frames

AS_OF = dt.date(2025, 6, 30)


def orders_for(spec: dict[str, tuple[int, float, int]]) -> pd.DataFrame:
    """spec: customer -> (number of orders, total spend, days since the last order)."""
    rows = []
    for customer, (count, total, recency) in spec.items():
        for i in range(count):
            day = AS_OF - dt.timedelta(days=recency + 7 * i)
            rows.append({"order_id": f"{customer}-{i}", "customer_id": customer,
                         "order_date": day, "amount": total / count})
    return pd.DataFrame(rows)


def test_abc_cuts_at_80_and_95_percent_of_spend_including_the_crossing_customer() -> None:
    spends = [500, 200, 100, 80, 50, 30, 20, 10, 5, 5]     # total 1000
    spec = {f"c{i + 1:02d}": (1, float(s), 1) for i, s in enumerate(spends)}
    customers = pd.DataFrame({"customer_id": [*spec, "c11"]})   # c11 never ordered
    graded = grade_frames(orders_for(spec), customers, policy="abc", as_of=AS_OF)
    assert graded.tiers() == {
        "c01": "A", "c02": "A", "c03": "A",            # cumulative 50%, 70%, 80%
        "c04": "B", "c05": "B", "c06": "B",            # 88%, 93%, 96% (crosses 95%)
        "c07": "C", "c08": "C", "c09": "C", "c10": "C", "c11": "C",
    }


def test_rfm_gives_the_eight_classic_segments() -> None:
    # (R high, F high, M high) patterns; with 10 customers the quintile scores' mean is 3,
    # so the top 4 of each dimension are "high".
    spec = {
        "HHH": (10, 1000, 1), "HLH": (1, 900, 2), "LHH": (9, 800, 10), "LLH": (2, 700, 11),
        "HHL": (8, 60, 3), "HLL": (3, 50, 4), "LHL": (7, 40, 12), "LLL": (4, 30, 13),
        "f1": (5, 20, 14), "f2": (6, 10, 15),
    }
    graded = grade_frames(orders_for(spec), policy="rfm", as_of=AS_OF)
    tiers = graded.tiers()
    assert {k: tiers[k] for k in spec if not k.startswith("f")} == {
        "HHH": "important_value", "HLH": "important_develop", "LHH": "important_keep",
        "LLH": "important_retain", "HHL": "general_value", "HLL": "general_develop",
        "LHL": "general_keep", "LLL": "general_retain",
    }
    assert graded.aggregates[("mean", "r_score")] == pytest.approx(3.0)
    assert graded.explain("HLH").tier_label == "重要发展客户"


def test_pyramid_top_middle_bottom() -> None:
    spec = {f"c{i}": (i, float(100 * i * i), 30 - 2 * i) for i in range(1, 11)}
    graded = grade_frames(orders_for(spec), policy="pyramid", as_of=AS_OF)
    tiers = graded.tiers()
    # m_score 5 for the top two spenders, f_score >= 4 for the top four order counts
    assert tiers["c10"] == tiers["c9"] == "top"
    assert {tiers[c] for c in ("c5", "c6", "c7", "c8")} == {"middle"}
    assert {tiers[c] for c in ("c1", "c2", "c3", "c4")} == {"bottom"}


def test_value_tiers_uses_spend_with_stability_and_potential() -> None:
    customers = pa.table({
        "customer_id": ["old_big", "young_big", "rising", "mid", "small", "prospect"],
        "since": pa.array([dt.date(2015, 1, 1), dt.date(2025, 3, 1), dt.date(2022, 1, 1),
                           dt.date(2020, 1, 1), dt.date(2020, 1, 1), dt.date(2024, 1, 1)]),
        "size": ["大型", "大型", "大型", "中型", "小型", "小型"],
    })
    monthly = {"old_big": 110_000.0, "young_big": 400_000.0, "mid": 20_000.0,
               "small": 2_000.0}
    rows = []
    for customer, amount in monthly.items():
        months = 3 if customer == "young_big" else 12
        for m in range(months):
            rows.append({"订单号": f"{customer}-{m}", "客户编号": customer,
                         "下单日期": (AS_OF - dt.timedelta(days=30 * m)).isoformat(),
                         "订单金额": amount})
    # "rising": 35万 this year against 10万 the year before, a large company
    rows += [{"订单号": f"rising-{m}", "客户编号": "rising",
              "下单日期": (AS_OF - dt.timedelta(days=30 * m)).isoformat(),
              "订单金额": 35_000.0} for m in range(10)]
    rows += [{"订单号": "rising-old", "客户编号": "rising", "下单日期": "2024-01-15",
              "订单金额": 100_000.0}]
    graded = grade_frames(pl.DataFrame(rows), customers, policy="value-tiers", as_of=AS_OF)
    tiers = graded.tiers()
    assert tiers["old_big"] == "vip"             # 132万, 10 years, every month
    assert tiers["young_big"] == "important"     # 120万 but new and only 3 active months
    assert tiers["rising"] == "important"        # 35万 with potential_score >= 80
    assert tiers["mid"] == "ordinary"            # 24万
    assert tiers["small"] == "potential"         # 2.4万
    assert tiers["prospect"] == "potential"      # no orders
    young = graded.explain("young_big", lang="en")
    assert young.checks[0].holds is False
    assert len(young.moves_up_text()) == 1            # VIP is the only tier above
    assert "stability" in young.moves_up_text()[0].lower()


def test_frames_with_their_own_column_names_are_mapped() -> None:
    orders = pd.DataFrame({"单据号": ["a"], "客户": ["c1"], "日期": [AS_OF], "销售额": [150_000.0]})
    graded = grade_frames(orders, policy="value-tiers", as_of=AS_OF,
                          column_map={"单据号": "order_id", "客户": "customer_id"})
    assert graded.tiers() == {"c1": "ordinary"}
