"""Customer-base models reproduce the published CDNOW results.

BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science
24(2): on the 2,357-customer CDNOW sample with a 39-week calibration period, r = 0.243,
α = 4.414, a = 0.793, b = 2.426, log-likelihood −9582.4. Gamma-Gamma: Fader, Hardie & Lee
(2005), "RFM and CLV", and note 025: p = 6.25, q = 3.74, γ = 15.44 on the repeat buyers.

The data ships inside the lifetimes 0.11.3 wheel; the fixture downloads the wheel once into
``.cache/`` and reads the files from the zip. lifetimes itself is never imported.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from tests.conftest import cdnow_dataset
from tierwise.demo.synthetic import generate
from tierwise.errors import TierwiseError
from tierwise.metrics.models import BetaGeo, GammaGamma, ModelError, clv, rfm_summary, triples

CALIBRATION_END = dt.date(1997, 9, 30)  # 39 weeks after the cohort's first purchases


# --- data -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shipped_summary(lifetimes_wheel: zipfile.ZipFile) -> pd.DataFrame:
    """The published calibration summary: ID, frequency, recency, T (weeks, 2 decimals)."""
    return pd.read_csv(io.BytesIO(cdnow_dataset(lifetimes_wheel, "cdnow_customers_summary.csv")))


@pytest.fixture(scope="session")
def con() -> ibis.BaseBackend:
    return ibis.duckdb.connect()


@pytest.fixture(scope="session")
def cdnow_summary(con: ibis.BaseBackend, cdnow_orders: pd.DataFrame) -> pd.DataFrame:
    """rfm_summary on DuckDB, weekly periods, every order row a purchase (as lifetimes)."""
    expr = rfm_summary(ibis.memtable(cdnow_orders), CALIBRATION_END, purchases="all")
    return con.execute(expr).sort_values("customer_id").reset_index(drop=True)


@pytest.fixture(scope="session")
def cdnow_fit(cdnow_summary: pd.DataFrame) -> BetaGeo:
    s = cdnow_summary
    return BetaGeo.fit(s.frequency, s.recency, s["T"])


def assert_published(value: float, published: str) -> None:
    """``value`` rounds to ``published`` at the precision it was published with."""
    exponent = Decimal(published).as_tuple().exponent
    assert isinstance(exponent, int)
    assert value == pytest.approx(float(published), abs=0.5 * 10.0**exponent), published


def assert_sig3(value: float, published: float) -> None:
    assert f"{value:.3g}" == f"{published:.3g}"


# --- the summary ------------------------------------------------------------------------------

def test_summary_follows_lifetimes_conventions(con: ibis.BaseBackend) -> None:
    orders = ibis.memtable(pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "a", "b", "c"],
        "order_date": [dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 8),
                       dt.date(2024, 1, 22), dt.date(2024, 3, 1), dt.date(2024, 1, 15),
                       dt.date(2024, 1, 20)],
        "amount": [10.0, 5.0, 20.0, 40.0, 99.0, 7.0, -7.0],
    }))
    got = con.execute(rfm_summary(orders, dt.date(2024, 1, 29))).set_index("customer_id")
    # Two orders on Jan 1 are one purchase; the March order comes after the as-of date; c has
    # only a refund, which is not a purchase.
    assert sorted(got.index) == ["a", "b"]
    assert got.loc["a"].to_dict() == {"frequency": 2, "recency": 3.0, "T": 4.0,
                                      "monetary_value": 30.0}
    assert got.loc["b"].to_dict() == {"frequency": 0, "recency": 0.0, "T": 2.0,
                                      "monetary_value": 0.0}
    daily = con.execute(rfm_summary(orders, dt.date(2024, 1, 29), period_days=1))
    assert daily.set_index("customer_id").loc["a", "T"] == 28.0


def test_summary_of_cdnow_transactions_is_the_shipped_summary(
    cdnow_summary: pd.DataFrame, shipped_summary: pd.DataFrame
) -> None:
    mine = cdnow_summary.set_index("customer_id")
    shipped = shipped_summary.set_index("ID")
    assert len(mine) == 2357
    assert sorted(mine.index) == sorted(shipped.index)
    mine = mine.loc[shipped.index]
    assert (mine.frequency == shipped.frequency).all()
    # The shipped file rounds weeks to two decimals.
    assert np.abs(mine.recency - shipped.recency).max() < 0.005
    assert np.abs(mine["T"] - shipped["T"]).max() < 0.005


def test_by_default_zero_amount_orders_are_not_purchases(
    con: ibis.BaseBackend, cdnow_orders: pd.DataFrame, cdnow_summary: pd.DataFrame
) -> None:
    positive = con.execute(rfm_summary(ibis.memtable(cdnow_orders), CALIBRATION_END))
    left_out = set(cdnow_summary.customer_id) - set(positive.customer_id)
    free_only = cdnow_orders.groupby("customer_id").amount.max().loc[lambda m: m <= 0]
    assert len(positive) == 2349
    assert left_out == set(free_only.index)


def test_triples_count_customers_per_history(cdnow_summary: pd.DataFrame) -> None:
    got = triples(ibis.memtable(cdnow_summary)).execute()
    assert got.n.sum() == 2357
    assert len(got) == len(cdnow_summary[["frequency", "recency", "T"]].drop_duplicates())


# --- BG/NBD -----------------------------------------------------------------------------------

def test_bgnbd_reproduces_the_published_fit_on_the_shipped_summary(
    shipped_summary: pd.DataFrame,
) -> None:
    s = shipped_summary
    model = BetaGeo.fit(s.frequency, s.recency, s["T"])
    assert_published(model.r, "0.243")
    assert_published(model.alpha, "4.414")
    assert_published(model.a, "0.793")
    assert_published(model.b, "2.426")
    assert_published(model.log_likelihood, "-9582.4")
    assert model.n_customers == 2357


def test_bgnbd_reproduces_the_published_fit_on_the_summary_we_compute(
    cdnow_fit: BetaGeo,
) -> None:
    assert_published(cdnow_fit.r, "0.243")
    assert_published(cdnow_fit.alpha, "4.414")
    assert_published(cdnow_fit.a, "0.793")
    assert_published(cdnow_fit.b, "2.426")
    assert_published(cdnow_fit.log_likelihood, "-9582.4")


def test_fitting_distinct_triples_with_counts_is_exact(
    con: ibis.BaseBackend, cdnow_summary: pd.DataFrame, cdnow_fit: BetaGeo
) -> None:
    histories = con.execute(triples(ibis.memtable(cdnow_summary)))
    assert len(histories) < len(cdnow_summary) / 2
    grouped = BetaGeo.fit(histories.frequency, histories.recency, histories["T"], histories.n)
    for name in ("r", "alpha", "a", "b", "log_likelihood", "n_customers"):
        assert getattr(grouped, name) == pytest.approx(getattr(cdnow_fit, name), rel=1e-6)


def test_p_alive_is_one_without_repeat_purchases(cdnow_fit: BetaGeo) -> None:
    # Customers drop out only right after a purchase, so one who never came back is alive.
    assert np.all(cdnow_fit.p_alive([0, 0, 0], [0.0, 0.0, 0.0], [1.0, 20.0, 38.9]) == 1.0)


def test_p_alive_is_high_for_a_frequent_recent_buyer_and_falls_with_silence(
    cdnow_fit: BetaGeo,
) -> None:
    assert cdnow_fit.p_alive(20, 38.5, 38.9)[()] > 0.95
    silence = cdnow_fit.p_alive(5, [38.0, 30.0, 20.0, 10.0], 38.9)
    assert np.all(np.diff(silence) < 0)
    assert np.all((silence > 0) & (silence < 1))


def test_expected_purchases_start_at_zero_and_grow_with_the_horizon(cdnow_fit: BetaGeo) -> None:
    horizons = np.array([0.0, 1.0, 10.0, 39.0, 52.0, 520.0])
    grows = cdnow_fit.expected_purchases(horizons, 3, 30.0, 38.9)
    assert grows[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(grows) > 0)


def test_new_customer_expects_the_unconditional_eq9_purchases(cdnow_fit: BetaGeo) -> None:
    # With no history (x = t_x = T = 0) eq. 10 reduces to E[X(t)] of eq. 9:
    # (a+b−1)/(a−1) [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))].
    from scipy.special import hyp2f1

    m, t = cdnow_fit, np.array([1.0, 39.0, 78.0])
    eq9 = (m.a + m.b - 1) / (m.a - 1) * (
        1 - (m.alpha / (m.alpha + t)) ** m.r * hyp2f1(m.r, m.b, m.a + m.b - 1, t / (m.alpha + t))
    )
    assert m.expected_purchases(t, 0, 0.0, 0.0) == pytest.approx(eq9, rel=1e-10)


# Five CDNOW customers scored once by lifetimes 0.11.3 (BetaGeoFitter and GammaGammaFitter on
# the same summary), in a scratch environment: customer → x, t_x, T, m, P(alive),
# E[purchases in 10 weeks], E[average value], 12-month CLV at 1 %/month.
LIFETIMES_SCORES = {
    1: (2, 30.428571, 38.857143, 22.345, 0.7266203, 0.35695837, 24.65391871, 36.27397745),
    6: (7, 29.428571, 38.857143, 73.741429, 0.64183474, 1.00286834, 71.46470572, 283.55810792),
    19: (3, 28.285714, 38.714286, 25.076667, 0.69464049, 0.49245541, 26.36543365, 52.74289324),
    20: (0, 0.0, 38.714286, 0.0, 1.0, 0.05438769, 35.17037133, 8.36882806),
    100: (1, 23.857143, 38.285714, 26.22, 0.64699242, 0.17971691, 28.95097447, 21.88774369),
}


@pytest.fixture(scope="session")
def cdnow_spend(cdnow_summary: pd.DataFrame) -> GammaGamma:
    return GammaGamma.fit(cdnow_summary.frequency, cdnow_summary.monetary_value)


def test_scores_agree_with_lifetimes(cdnow_fit: BetaGeo, cdnow_spend: GammaGamma) -> None:
    x, t_x, age, m, alive, purchases, value, lifetime = np.array(list(LIFETIMES_SCORES.values())).T
    # Both fits stop at slightly different optima within the optimisers' tolerance.
    assert cdnow_fit.p_alive(x, t_x, age) == pytest.approx(alive, rel=1e-4)
    assert cdnow_fit.expected_purchases(10, x, t_x, age) == pytest.approx(purchases, rel=1e-4)
    assert cdnow_spend.conditional_expected_average_value(x, m) == pytest.approx(value, rel=1e-4)
    assert clv(cdnow_fit, cdnow_spend, x, t_x, age, m) == pytest.approx(lifetime, rel=1e-4)


def test_bgnbd_needs_repeat_buyers() -> None:
    frequency = np.r_[np.ones(9), np.zeros(500)]
    recency = np.r_[np.full(9, 5.0), np.zeros(500)]
    with pytest.raises(ModelError, match=r"at least 10 repeat buyers.*has 9") as raised:
        BetaGeo.fit(frequency, recency, np.full(509, 30.0))
    assert isinstance(raised.value, TierwiseError)


def test_bgnbd_rejects_impossible_histories() -> None:
    with pytest.raises(ModelError, match="recency ≤ T"):
        BetaGeo.fit([1] * 20, [40.0] * 20, [30.0] * 20)


# --- Gamma-Gamma and CLV ----------------------------------------------------------------------

def test_gamma_gamma_reproduces_the_published_fit(cdnow_spend: GammaGamma) -> None:
    assert_published(cdnow_spend.p, "6.25")
    assert_published(cdnow_spend.q, "3.74")
    assert_published(cdnow_spend.gamma, "15.44")
    assert cdnow_spend.n_customers == 946  # the repeat buyers


def test_gamma_gamma_on_the_shipped_spend_summary(lifetimes_wheel: zipfile.ZipFile) -> None:
    shipped = pd.read_csv(io.BytesIO(cdnow_dataset(
        lifetimes_wheel, "cdnow_customers_summary_with_transactions.csv")))
    model = GammaGamma.fit(shipped.x, shipped.zbar)  # zbar is rounded to cents
    for value, published in ((model.p, 6.25), (model.q, 3.74), (model.gamma, 15.44)):
        assert_sig3(value, published)


def test_gamma_gamma_needs_repeat_buyers_with_positive_spend() -> None:
    with pytest.raises(ModelError, match="at least 10 repeat buyers"):
        GammaGamma.fit([0] * 100 + [2] * 5, [0.0] * 100 + [10.0] * 5)
    with pytest.raises(ModelError, match="1 repeat buyers have a monetary value"):
        GammaGamma.fit([2] * 20, [10.0] * 19 + [0.0])


def test_expected_value_shrinks_own_mean_toward_the_population(cdnow_spend: GammaGamma) -> None:
    population = cdnow_spend.p * cdnow_spend.gamma / (cdnow_spend.q - 1)
    value = cdnow_spend.conditional_expected_average_value([0, 1, 50], [0.0, 200.0, 200.0])
    assert value[0] == pytest.approx(population)
    assert population < value[1] < value[2] < 200.0


def test_clv_is_margin_times_undiscounted_purchases_times_value(
    cdnow_fit: BetaGeo, cdnow_spend: GammaGamma
) -> None:
    x, t_x, age, m = np.array([3.0, 0.0]), np.array([30.0, 0.0]), np.array([38.9, 20.0]), \
        np.array([40.0, 0.0])
    undiscounted = clv(cdnow_fit, cdnow_spend, x, t_x, age, m, discount_rate_monthly=0.0,
                       margin=0.3)
    year = cdnow_fit.expected_purchases(12 * 4.345, x, t_x, age)
    value = cdnow_spend.conditional_expected_average_value(x, m)
    assert undiscounted == pytest.approx(0.3 * year * value, rel=1e-10)
    assert np.all(clv(cdnow_fit, cdnow_spend, x, t_x, age, m, margin=0.3) < undiscounted)


def test_summary_is_an_ibis_expression(cdnow_orders: pd.DataFrame) -> None:
    expr = rfm_summary(ibis.memtable(cdnow_orders), CALIBRATION_END)
    assert isinstance(expr, ir.Table)
    assert list(expr.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]


def test_a_book_where_almost_nobody_drops_out_still_fits() -> None:
    """In the demo book (B2B customers who buy regularly) the optimum lies at the bound
    a → 0: next to no dropout. The fit must finish there, not give up in the line search
    (which once left every model metric of such a run null)."""
    data = generate(2000, seed=7, end=dt.date(2026, 10, 31))
    con = ibis.duckdb.connect()
    summary = con.create_table(
        "demo", rfm_summary(ibis.memtable(data.orders), dt.date(2026, 1, 31), period_days=1))
    counts = con.to_pyarrow(triples(summary)).to_pandas()
    model = BetaGeo.fit(counts.frequency, counts.recency, counts["T"], counts.n)
    assert model.a / (model.a + model.b) < 1e-3        # dropout per purchase: next to none
    alive = model.p_alive(counts.frequency, counts.recency, counts["T"])
    assert np.average(alive, weights=counts.n) > 0.99
