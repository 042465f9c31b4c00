"""Model metrics in grading runs: p_alive, expected_orders_12m, expected_order_value and
predicted_clv come from BG/NBD and Gamma-Gamma fitted as of the run date, rules and explain
read them, and a model that cannot be fitted leaves them null with a reason.

Data: the CDNOW sample (2,357 customers, 1997–1998) imported into a workspace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from tierwise.metrics.models import BetaGeo, GammaGamma, clv, rfm_summary, triples
from tierwise.workspace import Workspace

AS_OF = dt.date(1997, 9, 30)        # the end of the published 39-week calibration period
DAYS_PER_MONTH = 365.25 / 12

CHURN_POLICY = """
name: 流失预警
tiers:
  - key: keep
    label: 稳定客户
    label_en: Steady
    when: "p_alive >= 80% and predicted_clv >= 50"
  - key: at_risk
    label: 流失风险
    label_en: At risk
    when: "p_alive < 50%"
  - key: other
    label: 其他
    label_en: Other
models:
  clv_months: 12
  discount_rate: {rate}
  margin: {margin}
  period: {period}
"""


def write_policy(folder: Path, *, rate: str = "10%", margin: str = "100%",
                 period: str = "day") -> Path:
    path = folder / f"churn-{rate.strip('%')}-{margin.strip('%')}-{period}.yaml"
    path.write_text(CHURN_POLICY.format(rate=rate, margin=margin, period=period),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cdnow_files(tmp_path_factory: pytest.TempPathFactory,
                cdnow_orders: pd.DataFrame) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cdnow")
    orders = cdnow_orders.assign(order_id=[f"O{i}" for i in range(len(cdnow_orders))],
                                 customer_id=cdnow_orders.customer_id.astype(str))
    orders.to_parquet(folder / "orders.parquet")
    # One prospect who never bought: the models have nothing to say about them.
    ids = [*sorted(orders.customer_id.unique()), "PROSPECT"]
    pd.DataFrame({"customer_id": ids}).to_parquet(folder / "customers.parquet")
    return folder / "customers.parquet", folder / "orders.parquet"


@pytest.fixture
def cdnow_ws(tmp_path: Path, cdnow_files: tuple[Path, Path]) -> Iterator[Workspace]:
    with Workspace.init(tmp_path / "ws") as ws:
        ws.import_files("customers", [cdnow_files[0]])
        ws.import_files("orders", [cdnow_files[1]])
        yield ws


def snapshot(ws: Workspace, run_id: int | None = None) -> pd.DataFrame:
    return ws.assignments(run_id).to_pandas().set_index("customer_id")


def direct_predictions(orders: pd.DataFrame) -> pd.DataFrame:
    """The same metrics computed straight from the model classes, customer by customer."""
    con = ibis.duckdb.connect()
    summary = con.to_pyarrow(rfm_summary(ibis.memtable(orders), AS_OF, period_days=1))
    s = summary.to_pandas().set_index("customer_id")
    counts = con.to_pyarrow(triples(ibis.memtable(summary))).to_pandas()
    bgnbd = BetaGeo.fit(counts.frequency, counts.recency, counts["T"], counts.n)
    spend = GammaGamma.fit(s.frequency, s.monetary_value)
    monthly = 1.1 ** (1 / 12) - 1
    return pd.DataFrame({
        "p_alive": bgnbd.p_alive(s.frequency, s.recency, s["T"]),
        "expected_orders_12m": bgnbd.expected_purchases(365.25, s.frequency, s.recency, s["T"]),
        "expected_order_value": spend.conditional_expected_average_value(s.frequency,
                                                                         s.monetary_value),
        "predicted_clv": clv(bgnbd, spend, s.frequency, s.recency, s["T"], s.monetary_value,
                             months=12, periods_per_month=DAYS_PER_MONTH,
                             discount_rate_monthly=monthly),
    }, index=s.index)


def test_a_run_gives_every_buyer_the_model_metrics_the_models_compute(
        cdnow_ws: Workspace, cdnow_orders: pd.DataFrame, tmp_path: Path) -> None:
    cdnow_ws.grade(as_of=AS_OF, policy=str(write_policy(tmp_path)))
    graded = snapshot(cdnow_ws)
    orders = cdnow_orders.assign(customer_id=cdnow_orders.customer_id.astype(str))
    expected = direct_predictions(orders)
    assert len(expected) == 2357 - 8           # eight sample customers bought for $0 only
    for metric in expected.columns:
        np.testing.assert_allclose(graded.loc[expected.index, metric], expected[metric],
                                   rtol=1e-6, err_msg=metric)
    assert graded.p_alive.dropna().between(0, 1).all()
    assert graded.p_alive.isna().sum() == 1 + 8    # the prospect and the $0-only customers


def test_the_fitted_parameters_are_recorded_with_the_run_in_days(
        cdnow_ws: Workspace, tmp_path: Path) -> None:
    summary = cdnow_ws.grade(as_of=AS_OF, policy=str(write_policy(tmp_path)))
    models = cdnow_ws.run(summary.run_id).models
    assert models is not None and models["notes"] == {}
    assert models["customers"] == 2349 and models["repeat_buyers"] == 946
    fitted = models["bgnbd"]
    # The published fit is in weeks on all 2,357 customers; in days α is 7 times larger and
    # leaving out the eight $0-only customers moves the parameters by well under 2%.
    assert fitted["r"] == pytest.approx(0.2426, rel=0.02)
    assert fitted["alpha_days"] == pytest.approx(4.4136 * 7, rel=0.02)
    assert fitted["a"] == pytest.approx(0.7929, rel=0.02)
    assert fitted["b"] == pytest.approx(2.4257, rel=0.02)
    assert models["gamma_gamma"]["p"] == pytest.approx(6.25, rel=0.01)
    assert models["settings"] == {"clv_months": 12, "discount_rate": 0.1, "margin": 1.0,
                                  "period": "day", "purchases": "positive"}


def test_weekly_histories_are_fewer_and_fit_the_published_weekly_model(
        cdnow_ws: Workspace, tmp_path: Path) -> None:
    """`period: week` counts purchases in whole weeks (lifetimes' freq="W"): the histories
    the fit runs on are bounded by weeks, not by customers, and the parameters stay near
    the published fit."""
    as_of = AS_OF
    orders = cdnow_ws.tables().orders
    backend = ibis.duckdb.from_connection(cdnow_ws.store())
    daily = backend.execute(triples(rfm_summary(orders, as_of, period_days=1)).count())
    weekly = backend.execute(triples(rfm_summary(orders, as_of, period_days=7,
                                                 whole_periods=True)).count())
    assert weekly < daily * 0.7        # 660 against 1,016 on this sample
    summary = cdnow_ws.grade(as_of=as_of, policy=str(write_policy(tmp_path, period="week")))
    models = cdnow_ws.run(summary.run_id).models
    assert models is not None and models["settings"]["period"] == "week"
    fitted = models["bgnbd"]
    # Purchases in one week count once: the purchase rate r/α falls (0.285/46.2 per day
    # against 0.243/30.9), the repeat-buying shape stays that of the published fit.
    assert fitted["r"] / fitted["alpha_days"] < 0.2426 / (4.4136 * 7)
    assert fitted["a"] == pytest.approx(0.7929, rel=0.25)
    assert fitted["b"] == pytest.approx(2.4257, rel=0.25)
    scored = snapshot(cdnow_ws).dropna(subset=["p_alive"])    # the 2,349 who bought
    assert len(scored) == 2349
    assert scored.p_alive.between(0, 1).all() and (scored.expected_orders_12m >= 0).all()


def test_rules_read_the_model_metrics(cdnow_ws: Workspace, tmp_path: Path) -> None:
    cdnow_ws.grade(as_of=AS_OF, policy=str(write_policy(tmp_path)))
    graded = snapshot(cdnow_ws)
    keep = graded[graded.tier == "keep"]
    at_risk = graded[graded.tier == "at_risk"]
    assert len(keep) > 0 and len(at_risk) > 0
    assert (keep.p_alive >= 0.8).all() and (keep.predicted_clv >= 50).all()
    assert (at_risk.p_alive < 0.5).all()


def test_margin_and_discount_rate_come_from_the_policy(cdnow_ws: Workspace,
                                                       tmp_path: Path) -> None:
    full = cdnow_ws.grade(as_of=AS_OF, policy=str(write_policy(tmp_path))).run_id
    half = cdnow_ws.grade(as_of=AS_OF, policy=str(write_policy(tmp_path, margin="50%"))).run_id
    undiscounted = cdnow_ws.grade(as_of=AS_OF,
                                  policy=str(write_policy(tmp_path, rate="0%"))).run_id
    a, b, c = (snapshot(cdnow_ws, r).predicted_clv.dropna() for r in (full, half, undiscounted))
    # Each run fits again; DuckDB's parallel sums may add in another order, so the fitted
    # parameters (and CLV) agree to ~1e-11, not to the last bit.
    np.testing.assert_allclose(b, a * 0.5, rtol=1e-9)
    assert (c >= a).all() and (c > a).any()


def test_explain_says_why_a_model_metric_is_missing_for_a_prospect(
        cdnow_ws: Workspace, tmp_path: Path) -> None:
    cdnow_ws.grade(as_of=AS_OF, policy=str(write_policy(tmp_path)))
    prospect = cdnow_ws.explain("PROSPECT", lang="en")
    assert prospect.metrics["p_alive"] is None
    assert prospect.tier == "other"
    assert "no purchase by the as-of date" in prospect.model_notes["predicted_clv"]
    buyer = cdnow_ws.explain("1", lang="zh")
    assert buyer.metrics["p_alive"] is not None and buyer.model_notes == {}


def test_too_few_repeat_buyers_leave_the_metrics_null_with_the_reason(
        tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "small", policy=str(DATA / "policy.yaml")) as ws:
        for kind in ("customers", "orders"):
            ws.import_files(kind, [DATA / f"{kind}.csv"])
        summary = ws.grade(as_of=dt.date(2025, 6, 30), policy=str(write_policy(tmp_path)))
        notes = ws.run(summary.run_id).models["notes"]  # type: ignore[index]
        assert set(notes) == {"p_alive", "expected_orders_12m", "expected_order_value",
                              "predicted_clv"}
        assert "at least 10 repeat buyers" in notes["p_alive"]
        assert {t.tier: t.customers for t in summary.tiers}["other"] == summary.customers
        explained = ws.explain("C1", lang="zh")
        assert explained.model_notes["p_alive"].startswith("模型无法拟合")


def test_a_policy_without_model_metrics_fits_no_model(cdnow_ws: Workspace) -> None:
    summary = cdnow_ws.grade(as_of=AS_OF)
    assert cdnow_ws.run(summary.run_id).models is None
    assert "p_alive" not in cdnow_ws.assignments().column_names


def test_model_settings_are_validated(tmp_path: Path) -> None:
    from tierwise.errors import PolicyError
    from tierwise.policy.loading import load_policy_text

    text = CHURN_POLICY.format(rate="10%", margin="-5", period="day")
    with pytest.raises(PolicyError, match="margin"):
        load_policy_text(text, source="p.yaml")


def test_a_run_counting_every_order_reproduces_the_published_fit(
        cdnow_ws: Workspace, cdnow_orders: pd.DataFrame, tmp_path: Path) -> None:
    """``models: {purchases: all}``: every order row is a purchase, as the published BG/NBD
    table counts them, so the eight customers whose only orders are $0 have one purchase
    and P(alive) 1, and the fit is the published one (α in days is 7 × α in weeks)."""
    policy = write_policy(tmp_path)
    policy.write_text(policy.read_text(encoding="utf-8") + "  purchases: all\n",
                      encoding="utf-8")
    summary = cdnow_ws.grade(as_of=AS_OF, policy=str(policy))
    models = cdnow_ws.run(summary.run_id).models
    assert models is not None and models["customers"] == 2357
    fitted = models["bgnbd"]
    assert f"{fitted['r']:.3f}" == "0.243" and f"{fitted['a']:.3f}" == "0.793"
    assert f"{fitted['b']:.3f}" == "2.426" and f"{fitted['alpha_days'] / 7:.3f}" == "4.414"
    free_only = cdnow_orders.groupby("customer_id").amount.max().loc[lambda m: m <= 0].index
    graded = snapshot(cdnow_ws, summary.run_id)
    assert len(free_only) == 8
    assert (graded.loc[[str(c) for c in free_only], "p_alive"] == 1.0).all()
