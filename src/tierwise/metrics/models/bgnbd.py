"""BG/NBD: how many purchases a customer will make, and whether they are still a customer.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2), 275–284. While alive, a customer buys at rate λ
(λ ~ Gamma(r, α) across customers); after every purchase they drop out with probability p
(p ~ Beta(a, b)). A customer's history is summarised by x = frequency (repeat purchases),
t_x = recency and T = age, all in the same time unit (see ``tierwise.metrics.models.summary``).

The likelihood depends on a customer only through (x, t_x, T), so fitting on the distinct
triples weighted by their counts is exact and much smaller than fitting on every customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from tierwise.errors import ModelError
from tierwise.metrics.models.fitting import FloatArray, maximise

# Fewer repeat buyers than this leave the dropout process (a, b) unidentified.
MIN_REPEAT_BUYERS = 10


@dataclass(frozen=True)
class BetaGeo:
    """Fitted BG/NBD parameters; ``log_likelihood`` is the total over ``n_customers``."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: float

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> BetaGeo:
        """Maximum-likelihood fit (FHL 2005 eq. 6); ``weights`` count customers per row."""
        x, t_x, age, w = _as_data(frequency, recency, T, weights)
        repeat_buyers = float(w[x > 0].sum())
        if repeat_buyers < MIN_REPEAT_BUYERS:
            raise ModelError(
                f"BG/NBD needs at least {MIN_REPEAT_BUYERS} repeat buyers (customers with "
                f"frequency > 0) to fit; the data has {repeat_buyers:g}"
            )
        total = float(w.sum())
        # Start at r = a = b = 1 and α at the mean age: a purchase rate of order 1/age.
        start = [1.0, max(float(np.average(age, weights=w)), 1e-3), 1.0, 1.0]
        params, ll = maximise(lambda p: _log_likelihood(p, x, t_x, age, w), start,
                              total=total, model="BG/NBD")
        r, alpha, a, b = (float(v) for v in params)
        return cls(r=r, alpha=alpha, a=a, b=b, log_likelihood=float(ll), n_customers=total)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive | x, t_x, T) (Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD
        model", note 021, eq. 2): 1 / (1 + δ_{x>0} a/(b+x−1) ((α+T)/(α+t_x))^(r+x)).

        A customer with no repeat purchase cannot have dropped out (dropout happens only
        right after a purchase), so P(alive) = 1 for x = 0.
        """
        x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
        log_odds_dead = (self.r + x) * np.log((self.alpha + age) / (self.alpha + t_x)) + np.log(
            self.a / (self.b + np.maximum(x, 1.0) - 1.0)
        )
        return np.asarray(np.where(x > 0, expit(-log_odds_dead), 1.0), dtype=np.float64)

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005 eq. 10).

        (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
        divided by 1 + δ_{x>0} a/(b+x−1) · ((α+T)/(α+t_x))^(r+x).
        """
        x, t_x, age, span = (
            np.asarray(v, dtype=np.float64) for v in (frequency, recency, T, t)
        )
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        c = a + b + x - 1.0
        z = span / (alpha + age + span)
        log_hyp = _log_hyp2f1(r + x, b + x, c, z)
        bracket = -np.expm1(log_hyp + (r + x) * np.log((alpha + age) / (alpha + age + span)))
        dead_odds = np.where(
            x > 0,
            a / (b + np.maximum(x, 1.0) - 1.0)
            * ((alpha + age) / (alpha + t_x)) ** (r + x),
            0.0,
        )
        return np.asarray(c / (a - 1.0) * bracket / (1.0 + dead_odds), dtype=np.float64)


def fit_bgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> BetaGeo:
    """Same as ``BetaGeo.fit``."""
    return BetaGeo.fit(frequency, recency, T, weights)


def _as_data(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    x, t_x, age = (np.asarray(v, dtype=np.float64).ravel() for v in (frequency, recency, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (len(x) == len(t_x) == len(age) == len(w)):
        raise ModelError("frequency, recency, T and weights must have the same length")
    if len(x) == 0:
        raise ModelError("no customers to fit")
    bad = (x < 0) | (t_x < 0) | (t_x > age) | (w < 0) | ((x > 0) & (t_x <= 0))
    if np.any(bad | ~np.isfinite(x + t_x + age + w)):
        raise ModelError(
            f"{int(np.count_nonzero(bad))} rows are not valid histories: need frequency ≥ 0, "
            "0 ≤ recency ≤ T, recency > 0 when frequency > 0, and finite non-negative weights"
        )
    return x, t_x, age, w


def _log_likelihood(
    params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray, w: FloatArray
) -> tuple[float, FloatArray]:
    """Weighted total log-likelihood (FHL 2005 eq. 6) and its gradient in log-parameters.

    ln L = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
           + ln[(α+T)^−(r+x) + δ_{x>0} a/(b+x−1) (α+t_x)^−(r+x)]
    The last term is a log-sum-exp of two logs, which stays finite for large x and T.
    """
    r, alpha, a, b = params
    rx = r + x
    repeat = x > 0
    b_x1 = b + np.maximum(x, 1.0) - 1.0  # b + x − 1, kept positive where x = 0 (unused there)
    log_stay = -rx * np.log(alpha + age)  # alive throughout (0, T]
    log_gone = np.where(repeat, np.log(a) - np.log(b_x1) - rx * np.log(alpha + t_x), -np.inf)
    log_sum = np.logaddexp(log_stay, log_gone)
    ll = gammaln(rx) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b) + log_sum
    # Shares of the two terms in the sum, for the chain rule through the log-sum-exp.
    s_stay = np.exp(log_stay - log_sum)
    s_gone = 1.0 - s_stay
    d_r = (digamma(rx) - digamma(r) + np.log(alpha)
           - s_stay * np.log(alpha + age) - s_gone * np.log(alpha + t_x))
    d_alpha = r / alpha - rx * (s_stay / (alpha + age) + s_gone / (alpha + t_x))
    d_ab = digamma(a + b) - digamma(a + b + x)
    d_a = d_ab + s_gone / a
    d_b = d_ab + digamma(b + x) - digamma(b) - s_gone / b_x1
    grad = np.array([w @ d_r, w @ d_alpha, w @ d_a, w @ d_b]) * params  # d/d(log θ) = θ d/dθ
    return float(w @ ll), grad


def _log_hyp2f1(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """ln ₂F₁(a, b; c; z) for 0 ≤ z < 1, through Euler's transformation where the series
    overflows: ₂F₁(a, b; c; z) = (1−z)^(c−a−b) ₂F₁(c−a, c−b; c; z)."""
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, z)))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        result = np.log(hyp2f1(a, b, c, z))
        bad = ~np.isfinite(result)     # rare: only there is the second series worth its cost
        if bad.any():
            a, b, c, z = a[bad], b[bad], c[bad], z[bad]
            result[bad] = np.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * np.log1p(-z)
    return np.asarray(result, dtype=np.float64)
