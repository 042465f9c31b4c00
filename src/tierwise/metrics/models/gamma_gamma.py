"""Gamma-Gamma spend model, and customer lifetime value with BG/NBD.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
Analysis", Journal of Marketing Research 42(4), 415–430, and Fader & Hardie, "The Gamma-Gamma
Model of Monetary Value" (2013, note 025). A customer's purchase values are Gamma(p, ν)
around their mean p/ν, and ν ~ Gamma(q, γ) across customers. The average spend is assumed
independent of the purchase process, so it is fitted on repeat buyers only: x = frequency
(repeat purchases) and m = their mean value (``tierwise.metrics.models.summary``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from tierwise.errors import ModelError
from tierwise.metrics.models.bgnbd import MIN_REPEAT_BUYERS, BetaGeo
from tierwise.metrics.models.fitting import FloatArray, maximise

# lifetimes' periods per month: 4.345 weeks (freq "W") or 30 days (freq "D").
_PERIODS_PER_MONTH = {7: 4.345, 1: 30.0}


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters p, q, γ (``gamma``; lifetimes calls it v)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    n_customers: float

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> GammaGamma:
        """Maximum-likelihood fit on the repeat buyers (rows with frequency > 0) (note 025
        eq. 3); other rows are ignored, as the model says nothing about them."""
        x, m, w = _repeat_buyers(frequency, monetary_value, weights)
        # p = q = 1 and γ at the mean spend, so the start's implied mean spend is the right size.
        start = [1.0, 1.0, float(np.average(m, weights=w))]
        total = float(w.sum())
        params, ll = maximise(lambda p: _log_likelihood(p, x, m, w), start,
                              total=total, model="Gamma-Gamma")
        p, q, gamma = (float(v) for v in params)
        return cls(p=p, q=q, gamma=gamma, log_likelihood=float(ll), n_customers=total)

    def conditional_expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """E[mean purchase value | x, m] (note 025 eq. 5; FHL 2005 eq. 5): a weighted mean of
        the population mean pγ/(q−1) and the customer's own mean m, the weight on m being
        px/(px+q−1). A customer with no repeat purchase gets the population mean."""
        if self.q <= 1.0:
            raise ModelError(
                f"the fitted q = {self.q:.3g} ≤ 1 means the mean purchase value is infinite; "
                "there is no expected average value"
            )
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        own = self.p * x / (self.p * x + self.q - 1.0)
        population = self.p * self.gamma / (self.q - 1.0)
        return np.asarray((1.0 - own) * population + own * m, dtype=np.float64)


def fit_gamma_gamma(
    frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
) -> GammaGamma:
    """Same as ``GammaGamma.fit``."""
    return GammaGamma.fit(frequency, monetary_value, weights)


def clv(
    bgnbd: BetaGeo,
    gg: GammaGamma,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    months: int = 12,
    period_days: int = 7,
    discount_rate_monthly: float = 0.01,
    margin: float = 1.0,
    periods_per_month: float | None = None,
) -> FloatArray:
    """Discounted value of the next ``months`` months, as lifetimes'
    ``GammaGamma.customer_lifetime_value`` computes it:

        Σ_{i=1..months} E[purchases in month i] · E[value] / (1 + d)^i

    with E[purchases in month i] from BG/NBD (FHL 2005 eq. 10, differenced) and E[value]
    from Gamma-Gamma, times ``margin``. A month is 4.345 weekly periods or 30 daily ones,
    as in lifetimes, and 30 / ``period_days`` periods otherwise, unless
    ``periods_per_month`` says.
    """
    per_month = periods_per_month or _PERIODS_PER_MONTH.get(period_days, 30.0 / period_days)
    value = gg.conditional_expected_average_value(frequency, monetary_value)
    purchases = discounted_purchases(bgnbd, frequency, recency, T, months=months,
                                     periods_per_month=per_month,
                                     discount_rate_monthly=discount_rate_monthly)
    return np.asarray(margin * value * purchases, dtype=np.float64)


def discounted_purchases(
    bgnbd: BetaGeo,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    months: int,
    periods_per_month: float,
    discount_rate_monthly: float,
) -> FloatArray:
    """Σ_{i=1..months} E[purchases in month i] / (1 + d)^i: CLV without the value per order.

    It depends on the history (x, t_x, T) alone, so a caller can compute it once per
    distinct history.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    x = np.asarray(frequency, dtype=np.float64)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)     # nothing is expected in no time
    for month in range(1, months + 1):
        # Expected purchases are cumulative in t: the month's share is the difference.
        cumulative = bgnbd.expected_purchases(month * periods_per_month, frequency, recency, T)
        total += (cumulative - previous) / (1.0 + discount_rate_monthly) ** month
        previous = cumulative
    return total


def _repeat_buyers(
    frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.asarray(monetary_value, dtype=np.float64).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (len(x) == len(m) == len(w)):
        raise ModelError("frequency, monetary_value and weights must have the same length")
    repeat = x > 0
    x, m, w = x[repeat], m[repeat], w[repeat]
    if float(w.sum()) < MIN_REPEAT_BUYERS:
        raise ModelError(
            f"Gamma-Gamma needs at least {MIN_REPEAT_BUYERS} repeat buyers (frequency > 0) to "
            f"fit; the data has {float(w.sum()):g}"
        )
    bad = ~np.isfinite(m) | (m <= 0) | ~np.isfinite(w) | (w < 0)
    if np.any(bad):
        raise ModelError(
            f"{int(np.count_nonzero(bad))} repeat buyers have a monetary value that is not "
            "positive (or a bad weight); Gamma-Gamma models positive spend only"
        )
    return x, m, w


def _log_likelihood(
    params: FloatArray, x: FloatArray, m: FloatArray, w: FloatArray
) -> tuple[float, FloatArray]:
    """Weighted total log-likelihood of the mean spends (note 025 eq. 3) and its gradient
    in log-parameters:

    ln f(m | x) = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m + px ln x
                  − (px+q) ln(γ + mx)
    """
    p, q, gamma = params
    px = p * x
    log_pool = np.log(gamma + m * x)
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
          + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * log_pool)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_pool)
    d_q = digamma(px + q) - digamma(q) + np.log(gamma) - log_pool
    d_gamma = q / gamma - (px + q) / (gamma + m * x)
    grad = np.array([w @ d_p, w @ d_q, w @ d_gamma]) * params  # d/d(log θ) = θ d/dθ
    return float(w @ ll), grad
