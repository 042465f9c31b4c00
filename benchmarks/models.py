"""Customer-base models at scale: tierwise against lifetimes (and optionally pymc-marketing).

    .venv/bin/python benchmarks/models.py [--customers 1000000] [--with-pymc] [--data DIR]

1. Generates (once; again only when the size, seed or generator version differ) the orders
   of ``--customers`` customers from the BG/NBD process with Gamma-Gamma spend, with numpy
   and a fixed seed, into ``DIR/orders.parquet`` (customer_id, order_date, amount).
2. Runs each step in its own process and takes its peak RSS and CPU time from ``os.wait4``:

   * tierwise summary: ``rfm_summary`` on DuckDB through Ibis, orders Parquet -> summary
     Parquet, the common input of every fitter below;
   * tierwise fit: BG/NBD on the distinct (frequency, recency, T) triples with their counts,
     Gamma-Gamma on the repeat buyers; also BG/NBD on every customer row, unweighted;
   * tierwise score: P(alive), expected purchases in 52 weeks, 12-month CLV for everyone;
   * lifetimes 0.11.3 in its own venv (``.cache/bench-venvs/lifetimes``, made if missing):
     ``summary_data_from_transaction_data`` on the same orders (a 10% customer sample if the
     whole takes over 10 minutes), BetaGeoFitter and GammaGammaFitter on the same summary,
     and the same three scores;
   * with ``--with-pymc``: pymc-marketing's BetaGeoModel MAP fit with flat priors, in
     ``.cache/bench-venvs/pymc``.
3. Prints the figures, the ratios and the agreement of parameters, summaries and scores, and
   writes them to ``benchmarks/models-results.json``. See benchmarks/README.md.

The file is also the step runner (``--step NAME``): the lifetimes and pymc steps run under
their own venv's Python, so this module imports only the standard library (and
``runner.py``, which does too) at the top.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner import (
    GB,
    emit,
    fmt_bytes,
    machine,
    run_child,
    say,
    source_version,
    timestamp,
    write_results,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = ROOT / ".cache" / "bench-venvs"

# --- the data ---------------------------------------------------------------------------------

GENERATOR_VERSION = 1
SEED = 20251231
FIRST_DAY = dt.date(2023, 1, 1)
AS_OF = dt.date(2025, 12, 31)  # the last day of the data and the models' as-of date
ACQUIRED_UNTIL = dt.date(2025, 6, 30)  # first purchases fall in FIRST_DAY..ACQUIRED_UNTIL
PERIOD_DAYS = 7  # the models count in weeks
# BG/NBD in weeks (Fader, Hardie & Lee 2005 found r 0.243, α 4.41, a 0.793, b 2.43 on CDNOW)
# and Gamma-Gamma spend (CDNOW: p 6.25, q 3.74, γ 15.4): mean purchase value pγ/(q−1) = 30.
TRUE_PARAMS = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 15.0}

HORIZON_WEEKS = 52  # expected purchases over the next 52 weeks
CLV_MONTHS = 12
DISCOUNT_MONTHLY = 0.01
LIFETIMES_SUMMARY_LIMIT = 600.0  # seconds; past this the summary runs on a 10% sample
SAMPLE_EVERY = 10  # the sample: customers whose number ends in 0

LIFETIMES_PACKAGES = ["lifetimes==0.11.3", "pandas<3", "setuptools<82", "pyarrow"]
PYMC_PACKAGES = ["pymc-marketing", "pyarrow"]


class Clock:
    """Named phases of a step, in seconds, in the order they ran."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def __call__(self, name: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started

    def total(self, *names: str) -> float:
        return sum(self.phases[n] for n in names)


def generate(path: Path, customers: int, seed: int) -> dict[str, Any]:
    """Orders of ``customers`` customers from the BG/NBD process, numpy only.

    Customer i makes a first purchase on a day uniform in FIRST_DAY..ACQUIRED_UNTIL, so their
    age T_i runs from 26 to 156 weeks at AS_OF. While alive they buy at rate λ_i ~ Gamma(r,
    rate α) per week, and after each repeat purchase they drop out with probability
    p_i ~ Beta(a, b): the number of repeat purchases they would make in unlimited time is
    J_i ~ Geometric(p_i) on 1, 2, …  In (0, T_i] a Poisson process makes N_i ~ Poisson(λ_i T_i)
    purchases at uniform times, and the customer keeps the first k_i = min(N_i, J_i) of
    them. The k smallest of N uniforms are drawn exactly from exponential spacings:
    U_(j) = S_j / (S_k + G) with S_j the running sum of j standard exponentials and
    G ~ Gamma(N − k + 1). Times become days by rounding up, so a repeat purchase never falls
    on the first purchase day (two on one later day count once, as in real data). Every
    purchase's amount is Gamma(p, rate ν_i) with ν_i ~ Gamma(q, rate γ), in cents.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = TRUE_PARAMS
    rng = np.random.default_rng(seed)
    n = customers
    horizon = (AS_OF - FIRST_DAY).days
    first = rng.integers(0, (ACQUIRED_UNTIL - FIRST_DAY).days + 1, size=n)
    age_weeks = (horizon - first) / 7.0
    rate = rng.gamma(t["r"], 1.0 / t["alpha"], size=n)
    dropout = rng.beta(t["a"], t["b"], size=n)
    possible = rng.poisson(rate * age_weeks)
    kept = np.minimum(possible, rng.geometric(dropout))
    owner = np.repeat(np.arange(n), kept)
    running = np.cumsum(rng.standard_exponential(int(kept.sum())))
    ends = np.cumsum(kept)
    before = np.where(ends - kept > 0, running[np.maximum(ends - kept - 1, 0)], 0.0)
    running -= np.repeat(before, kept)  # running sum within each customer
    last = np.where(kept > 0, running[np.maximum(ends - 1, 0)], 0.0)
    scale = last + rng.gamma(possible - kept + 1.0)
    weeks = age_weeks[owner] * running / scale[owner]
    day = first[owner] + np.minimum(np.ceil(weeks * 7.0).astype(np.int64), horizon - first[owner])
    day = np.maximum(day, first[owner] + 1)

    who = np.concatenate([np.arange(n), owner])
    when = np.concatenate([first, day])
    order = np.lexsort((when, who))
    who, when = who[order], when[order]
    nu = rng.gamma(t["q"], 1.0 / t["gamma"], size=n)
    amount = np.maximum(np.round(rng.gamma(t["p"], 1.0 / nu[who]), 2), 0.01)
    width = len(str(n - 1))
    ids = pa.array([f"C{i:0{width}d}" for i in range(n)], type=pa.string())
    epoch = (FIRST_DAY - dt.date(1970, 1, 1)).days
    table = pa.table({
        "customer_id": pc.take(ids, pa.array(who)),
        "order_date": pa.array((when + epoch).astype(np.int32), type=pa.date32()),
        "amount": pa.array(amount, type=pa.float64()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return {"orders": len(table), "repeat_buyers_true": int(np.count_nonzero(kept)),
            "repeat_purchases": int(kept.sum())}


# --- steps, each in its own process -----------------------------------------------------------


def step_generate(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    made = generate(args.data / "orders.parquet", args.customers, args.seed)
    return {"seconds": time.perf_counter() - started, **made}


def step_tierwise_summary(args: argparse.Namespace) -> dict[str, Any]:
    import ibis

    from tierwise.metrics.models import rfm_summary

    clock = Clock()
    con = ibis.duckdb.connect()
    orders = con.read_parquet(str(args.data / "orders.parquet"))
    expr = rfm_summary(orders, AS_OF, period_days=PERIOD_DAYS)
    out = args.data / "summary.parquet"
    clock("rfm_summary to Parquet (one DuckDB query)", con.to_parquet, expr, str(out))
    check = con.read_parquet(str(out))
    rows = int(check.count().execute())
    repeat = int(check.filter(check.frequency > 0).count().execute())
    return {"seconds": clock.total(*clock.phases), "phases": clock.phases, "customers": rows,
            "repeat_buyers": repeat, "summary": str(out)}


def _record_minimize(module: Any) -> list[dict[str, Any]]:
    """Wrap ``module.minimize`` (scipy's, as imported there) to record its iterations."""
    calls: list[dict[str, Any]] = []
    original = module.minimize

    def recorded(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        result = original(*a, **k)
        calls.append({"nit": int(result.nit), "nfev": int(result.nfev),
                      "seconds": time.perf_counter() - started,
                      "method": str(k.get("method"))})
        return result

    module.minimize = recorded
    return calls


def step_tierwise_fit(args: argparse.Namespace) -> dict[str, Any]:
    import dataclasses

    import ibis
    import numpy as np

    import tierwise.metrics.models.fitting as fitting
    from tierwise.metrics.models import BetaGeo, GammaGamma, triples

    calls = _record_minimize(fitting)
    clock = Clock()
    con = ibis.duckdb.connect()
    summary = con.read_parquet(str(args.data / "summary.parquet"))

    histories = clock("triples: distinct (x, t_x, T) with counts (DuckDB)",
                      lambda: con.to_pyarrow(triples(summary)))
    cols = {c: histories[c].to_numpy() for c in ("frequency", "recency", "T", "n")}
    bgnbd = clock("BG/NBD on the triples, weighted", BetaGeo.fit, cols["frequency"],
                  cols["recency"], cols["T"], cols["n"])
    bgnbd_calls = calls[-1]
    repeat = clock("repeat buyers' frequency and monetary_value (DuckDB)", lambda: con.to_pyarrow(
        summary.filter(summary.frequency > 0).select("frequency", "monetary_value")))
    spend = clock("Gamma-Gamma on the repeat buyers", GammaGamma.fit,
                  repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy())
    spend_calls = calls[-1]
    seconds = clock.total(*clock.phases)

    # For comparison only: BG/NBD on every customer's row, unweighted.
    everyone = clock("(comparison) read all rows", lambda: con.to_pyarrow(
        summary.select("frequency", "recency", "T")))
    rows = {c: everyone[c].to_numpy() for c in ("frequency", "recency", "T")}
    per_row = clock("(comparison) BG/NBD on every customer row, unweighted", BetaGeo.fit,
                    rows["frequency"], rows["recency"], rows["T"])
    per_row_calls = calls[-1]
    params = {"bgnbd": dataclasses.asdict(bgnbd), "gamma_gamma": dataclasses.asdict(spend)}

    # Diagnosis: the BG/NBD optimum to a tight tolerance, on tierwise's own likelihood.
    from tierwise.metrics.models.bgnbd import _log_likelihood

    total = float(np.sum(cols["n"]))
    data = [np.asarray(cols[c], dtype=np.float64) for c in ("frequency", "recency", "T", "n")]

    def objective(log_params: Any) -> tuple[float, Any]:
        ll, grad = _log_likelihood(np.exp(log_params), *data)
        return -ll / total, -grad / total

    start = np.log([1.0, float(np.average(data[2], weights=data[3])), 1.0, 1.0])
    tight = clock("(diagnosis) BG/NBD on the triples, ftol 1e-15, gtol 1e-10",
                  fitting.minimize, objective, start, jac=True, method="L-BFGS-B",
                  bounds=[(-20.0, 20.0)] * 4, options={"ftol": 1e-15, "gtol": 1e-10})
    tight_params = dict(zip(("r", "alpha", "a", "b"), np.exp(tight.x).tolist(), strict=True))
    tight_params["log_likelihood"] = -float(tight.fun) * total
    _, grad_at_fit = objective(np.log([bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b]))
    if not args.diagnosis:
        (args.data / "tierwise-params.json").write_text(json.dumps(params, indent=2))
    same = {k: abs(getattr(per_row, k) / getattr(bgnbd, k) - 1)
            for k in ("r", "alpha", "a", "b", "log_likelihood")}
    return {
        "seconds": seconds, "phases": clock.phases,
        "triples": len(histories), "customers": int(np.sum(cols["n"])),
        "repeat_buyers": len(repeat), "params": params,
        "bgnbd_per_row": dataclasses.asdict(per_row),
        "per_row_vs_triples_max_relative_difference": max(same.values()),
        "bgnbd_tight": tight_params,
        "bgnbd_gradient_per_customer_at_fit": [float(g) for g in grad_at_fit],
        "optimiser": {"bgnbd_triples": bgnbd_calls, "gamma_gamma": spend_calls,
                      "bgnbd_per_row": per_row_calls, "bgnbd_tight": calls[-1]},
    }


def step_tierwise_score(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.special import hyp2f1

    from tierwise.metrics.models import BetaGeo, GammaGamma, clv

    params = json.loads((args.data / "tierwise-params.json").read_text())
    bgnbd, spend = BetaGeo(**params["bgnbd"]), GammaGamma(**params["gamma_gamma"])
    clock = Clock()
    table = clock("read summary (pyarrow)", pq.read_table, args.data / "summary.parquet",
                  columns=["frequency", "recency", "T", "monetary_value"])
    x, t_x, age, m = (table[c].to_numpy() for c in ("frequency", "recency", "T",
                                                     "monetary_value"))
    alive = clock("p_alive", bgnbd.p_alive, x, t_x, age)
    purchases = clock(f"expected_purchases({HORIZON_WEEKS})", bgnbd.expected_purchases,
                      HORIZON_WEEKS, x, t_x, age)
    value = clock(f"clv({CLV_MONTHS} months)", clv, bgnbd, spend, x, t_x, age, m,
                  months=CLV_MONTHS, period_days=PERIOD_DAYS,
                  discount_rate_monthly=DISCOUNT_MONTHLY)
    seconds = clock.total("p_alive", f"expected_purchases({HORIZON_WEEKS})",
                          f"clv({CLV_MONTHS} months)")
    clock("write scores (pyarrow)", pq.write_table, pa.table(
        {"p_alive": alive, "expected_purchases": purchases, "clv": value}),
        args.data / "tierwise-scores.parquet")

    # Where the time goes: scipy's hyp2f1 alone, on expected_purchases' arguments.
    r, alpha, a, b = bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b
    c = a + b + x - 1.0
    z = HORIZON_WEEKS / (alpha + age + HORIZON_WEEKS)
    with np.errstate(all="ignore"):
        direct = clock("(diagnosis) hyp2f1 direct, 1 call per row", hyp2f1,
                       r + x, b + x, c, z)
        clock("(diagnosis) hyp2f1, Euler form, 1 call per row", hyp2f1,
              c - r - x, c - b - x, c, z)
    clock("(diagnosis) conditional_expected_average_value",
          spend.conditional_expected_average_value, x, m)

    # The scores depend on a customer only through (x, t_x, T) (and m for the value, which
    # is linear in the CLV): score each distinct triple once and spread back.
    def distinct() -> tuple[Any, Any]:
        # np.unique(axis=0) takes ~7 s on 1M rows here; a lexsort takes a fraction of that.
        order = np.lexsort((age, t_x, x))
        xs, ts, as_ = x[order], t_x[order], age[order]
        new = np.ones(len(x), dtype=bool)
        new[1:] = (np.diff(xs) != 0) | (np.diff(ts) != 0) | (np.diff(as_) != 0)
        inverse = np.empty(len(x), dtype=np.int64)
        inverse[order] = np.cumsum(new) - 1
        return np.column_stack([xs[new], ts[new], as_[new]]), inverse

    unique, inverse = clock("(triples) distinct triples and inverse (numpy lexsort)", distinct)
    ux, ut, ua = unique.T
    alive_u = clock("(triples) p_alive", bgnbd.p_alive, ux, ut, ua)
    purchases_u = clock(f"(triples) expected_purchases({HORIZON_WEEKS})",
                        bgnbd.expected_purchases, HORIZON_WEEKS, ux, ut, ua)
    # clv = E[value | x, m] * D(x, t_x, T): D from the triples with a unit-free m.
    value_u = spend.conditional_expected_average_value(ux, np.ones_like(ux))
    discounted_u = clock(f"(triples) clv({CLV_MONTHS} months)", clv, bgnbd, spend, ux, ut, ua,
                         np.ones_like(ux), months=CLV_MONTHS, period_days=PERIOD_DAYS,
                         discount_rate_monthly=DISCOUNT_MONTHLY) / value_u
    spread = clock("(triples) spread back to customers",
                   lambda: (alive_u[inverse], purchases_u[inverse],
                            spend.conditional_expected_average_value(x, m)
                            * discounted_u[inverse]))

    def rel(a_: Any, b_: Any) -> float:
        return float(np.max(np.abs(a_ - b_) / np.maximum(np.abs(b_), 1e-300)))

    by_triples = clock.total(*[k for k in clock.phases if k.startswith("(triples)")])
    finite = {name: int(np.count_nonzero(~np.isfinite(v)))
              for name, v in (("p_alive", alive), ("expected_purchases", purchases),
                              ("clv", value))}
    return {
        "seconds": seconds, "phases": clock.phases, "customers": len(x),
        "triples": len(unique), "non_finite_scores": finite,
        "hyp2f1_direct_non_finite": int(np.count_nonzero(~np.isfinite(direct))),
        "by_triples_seconds": by_triples,
        "by_triples_max_relative_difference": {
            "p_alive": rel(spread[0], alive), "expected_purchases": rel(spread[1], purchases),
            "clv": rel(spread[2], value)},
        "means": {"p_alive": float(alive.mean()), "expected_purchases": float(purchases.mean()),
                  "clv": float(value.mean())},
    }


# --- lifetimes and pymc steps (run under their own venvs' Python) ------------------------------


def step_lifetimes_summary(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from lifetimes.utils import summary_data_from_transaction_data

    clock = Clock()

    def read() -> Any:
        table = pq.read_table(args.data / "orders.parquet")
        if args.sample:
            table = table.filter(pc.ends_with(table["customer_id"], "0"))
        return table.to_pandas()

    orders = clock("read orders to pandas", read)
    summary = clock("summary_data_from_transaction_data", summary_data_from_transaction_data,
                    orders, "customer_id", "order_date", monetary_value_col="amount",
                    observation_period_end=AS_OF.isoformat(), freq="D",
                    freq_multiplier=PERIOD_DAYS)
    out = args.data / ("lifetimes-summary-sample.parquet" if args.sample
                       else "lifetimes-summary.parquet")
    clock("write summary Parquet", summary.reset_index().to_parquet, out, index=False)
    return {"seconds": clock.total(*clock.phases), "phases": clock.phases,
            "orders": len(orders), "customers": len(summary), "sample": bool(args.sample),
            "summary": str(out)}


def _lifetimes_models(params: dict[str, dict[str, float]]) -> tuple[Any, Any]:
    """BetaGeoFitter and GammaGammaFitter with the given parameters, ready to predict."""
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bg, gg = params["bgnbd"], params["gamma_gamma"]
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.params_ = pd.Series({k: bg[k] for k in ("r", "alpha", "a", "b")})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.params_ = pd.Series({"p": gg["p"], "q": gg["q"], "v": gg["gamma"]})
    return bgf, ggf


def step_lifetimes_fit(args: argparse.Namespace) -> dict[str, Any]:
    import lifetimes.fitters
    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    calls = _record_minimize(lifetimes.fitters)
    hessian_seconds: list[float] = []
    original_hessian = lifetimes.fitters.hessian

    def timed_hessian(function: Any) -> Any:
        inner = original_hessian(function)

        def run(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                hessian_seconds.append(time.perf_counter() - started)
        return run

    lifetimes.fitters.hessian = timed_hessian
    clock = Clock()
    s = clock("read summary (pandas)", pd.read_parquet, args.data / "summary.parquet")
    bgf = clock("BetaGeoFitter on every customer row",
                BetaGeoFitter(penalizer_coef=0.0).fit, s["frequency"], s["recency"], s["T"])
    bgnbd_calls = {**calls[-1], "hessian_seconds": hessian_seconds[-1]}
    repeat = s[s["frequency"] > 0]
    ggf = clock("GammaGammaFitter on the repeat buyers",
                GammaGammaFitter(penalizer_coef=0.0).fit, repeat["frequency"],
                repeat["monetary_value"])
    spend_calls = {**calls[-1], "hessian_seconds": hessian_seconds[-1]}
    seconds = clock.total(*clock.phases)

    # For comparison only: lifetimes' own weights argument, on the distinct triples.
    grouped = clock("(comparison) triples with pandas groupby", lambda: s.groupby(
        ["frequency", "recency", "T"]).size().rename("n").reset_index())
    weighted = clock("(comparison) BetaGeoFitter on the triples, weighted",
                     BetaGeoFitter(penalizer_coef=0.0).fit, grouped["frequency"],
                     grouped["recency"], grouped["T"], weights=grouped["n"])
    weighted_calls = {**calls[-1], "hessian_seconds": hessian_seconds[-1]}

    n, n_repeat = len(s), len(repeat)

    def bg_params(model: Any, total: int) -> dict[str, float]:
        # lifetimes optimises with time scaled to max(T) = 1, which shifts its stored
        # log-likelihood; evaluate its own likelihood function in weeks instead.
        found = [float(model.params_[k]) for k in ("r", "alpha", "a", "b")]
        data = model.data
        mean = BetaGeoFitter._negative_log_likelihood(
            np.log(found), data["frequency"].to_numpy(), data["recency"].to_numpy(),
            data["T"].to_numpy(), data["weights"].to_numpy(), 0.0)
        return {**dict(zip(("r", "alpha", "a", "b"), found, strict=True)),
                "log_likelihood": -float(mean) * total, "n_customers": float(total)}

    params = {"bgnbd": bg_params(bgf, n),
              "gamma_gamma": {"p": float(ggf.params_["p"]), "q": float(ggf.params_["q"]),
                              "gamma": float(ggf.params_["v"]),
                              "log_likelihood": -float(ggf._negative_log_likelihood_)
                              * n_repeat, "n_customers": float(n_repeat)}}
    (args.data / "lifetimes-params.json").write_text(json.dumps(params, indent=2))
    return {"seconds": seconds, "phases": clock.phases, "customers": n,
            "repeat_buyers": n_repeat, "triples": len(grouped), "params": params,
            "bgnbd_weighted_triples": bg_params(weighted, int(np.sum(grouped["n"]))),
            "optimiser": {"bgnbd_rows": bgnbd_calls, "gamma_gamma": spend_calls,
                          "bgnbd_weighted_triples": weighted_calls}}


def step_lifetimes_score(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    clock = Clock()
    s = clock("read summary (pandas)", pd.read_parquet, args.data / "summary.parquet")
    f, r, t, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]

    def score(params: dict[str, Any], timed: bool) -> pd.DataFrame:
        bgf, ggf = _lifetimes_models(params)
        run = clock if timed else (lambda _name, fn, *a, **k: fn(*a, **k))
        alive = run("conditional_probability_alive", bgf.conditional_probability_alive,
                    f, r, t)
        purchases = run(f"conditional_expected_number_of_purchases_up_to_time"
                        f"({HORIZON_WEEKS})",
                        bgf.conditional_expected_number_of_purchases_up_to_time,
                        HORIZON_WEEKS, f, r, t)
        value = run(f"customer_lifetime_value(time={CLV_MONTHS}, freq='W')",
                    ggf.customer_lifetime_value, bgf, f, r, t, m, time=CLV_MONTHS,
                    freq="W", discount_rate=DISCOUNT_MONTHLY)
        return pd.DataFrame({"p_alive": alive, "expected_purchases": purchases,
                             "clv": value.to_numpy()})

    own = score(json.loads((args.data / "lifetimes-params.json").read_text()), timed=True)
    seconds = clock.total(*[k for k in clock.phases if not k.startswith("read")])
    clock("write scores", own.to_parquet, args.data / "lifetimes-scores.parquet", index=False)
    # The same formulas with tierwise's fitted parameters: the scores must then agree exactly.
    tierwise = json.loads((args.data / "tierwise-params.json").read_text())
    checked = clock("(check) score again with tierwise's parameters", score, tierwise, False)
    checked.to_parquet(args.data / "lifetimes-scores-tierwise-params.parquet", index=False)
    return {"seconds": seconds, "phases": clock.phases, "customers": len(s)}


def step_pymc_fit(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import numpy as np
    import pandas as pd
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    warnings.simplefilter("ignore")
    clock = Clock()
    s = clock("read summary (pandas)", pd.read_parquet, args.data / "summary.parquet",
              columns=["frequency", "recency", "T"])
    s.insert(0, "customer_id", np.arange(len(s)))
    flat = {k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")}
    model = BetaGeoModel(model_config=flat)
    clock("build_model (PyMC graph)", model.build_model, s)
    clock("fit(method='map') (pytensor compile + L-BFGS-B)", model.fit, method="map",
          progressbar=False)
    posterior = model.idata.posterior
    params = {k: float(posterior[k].values.ravel()[0]) for k in ("r", "alpha", "a", "b")}
    return {"seconds": clock.total(*[k for k in clock.phases if not k.startswith("read")]),
            "phases": clock.phases, "customers": len(s), "params": params}


STEPS = {
    "generate": step_generate,
    "tierwise-summary": step_tierwise_summary,
    "tierwise-fit": step_tierwise_fit,
    "tierwise-score": step_tierwise_score,
    "lifetimes-summary": step_lifetimes_summary,
    "lifetimes-fit": step_lifetimes_fit,
    "lifetimes-score": step_lifetimes_score,
    "pymc-fit": step_pymc_fit,
}


# --- running a step in a child process ---------------------------------------------------------


class StepFailed(RuntimeError):
    pass


def run_step(name: str, python: Path | str, args: list[str], *, logs: Path,
             timeout: float | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python models.py --step NAME ARGS`` in its own process (runner.run_child): its
    JSON result plus wall seconds, CPU seconds and peak RSS (ru_maxrss of wait4, the
    kernel's high-water mark for that child alone). Past ``timeout`` seconds the child is
    killed (TimeoutError)."""
    argv = [str(python), str(Path(__file__).resolve()), "--step", name.split(":")[0], *args]
    child = run_child(name, argv, logs=logs, timeout=timeout, sample=False,
                      env={**os.environ, **(env or {})})
    if child.timed_out:
        raise TimeoutError(child.failure())
    if not child.ok:
        raise StepFailed(child.failure())
    result = child.result()
    result["wall_seconds"] = child.wall_seconds
    result["peak_rss_bytes"] = child.peak_rss_bytes
    result["cpu_seconds"] = child.cpu_seconds
    result["load_average_before"] = child.load_before[0]
    say(f"           {result['seconds']:.2f}s (process {child.wall_seconds:.1f}s, "
        f"{result['cpu_seconds']:.1f} CPU s), peak RSS {fmt_bytes(result['peak_rss_bytes'])}")
    return result


def ensure_venv(name: str, packages: list[str], check: str) -> tuple[Path, dict[str, Any]]:
    """``.cache/bench-venvs/NAME`` with ``packages``, made when it is missing or broken.
    ``check`` is Python that prints the versions as JSON."""
    venv = VENVS / name
    python = venv / "bin" / "python"

    def versions() -> dict[str, Any] | None:
        if not python.exists():
            return None
        done = subprocess.run([str(python), "-c", check], capture_output=True, text=True,
                              check=False)
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 \
            else None

    found = versions()
    if found is None:
        say(f"making the {name} venv in {venv}: pip install {' '.join(packages)}")
        started = time.perf_counter()
        VENVS.mkdir(parents=True, exist_ok=True)
        for argv in (["python3", "-m", "venv", str(venv)],
                     [str(python), "-m", "pip", "install", "--quiet", *packages]):
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise StepFailed(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
        found = versions()
        if found is None:
            raise StepFailed(f"the {name} venv was made but does not import its packages")
        found["install_seconds"] = time.perf_counter() - started
    return python, found


# --- the run ----------------------------------------------------------------------------------


def existing(data: Path) -> dict[str, Any] | None:
    try:
        made = json.loads((data / "GENERATED.json").read_text())
    except (OSError, ValueError):
        return None
    orders = data / "orders.parquet"
    if not orders.exists() or orders.stat().st_size != made.get("bytes"):
        return None
    return dict(made)


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else float("inf")


def same_3_significant(a: float, b: float) -> bool:
    """``a`` is within half a unit of the third significant figure of ``b`` (rounding both
    to 3 figures would call 0.73445 and 0.73451 different)."""
    return b != 0 and abs(a - b) <= 0.5 * 10.0 ** (math.floor(math.log10(abs(b))) - 2)


def compare_scores(left: Path, right: Path) -> dict[str, float]:
    """Largest relative difference per score column, row by row (both follow the summary)."""
    import numpy as np
    import pyarrow.parquet as pq

    a, b = pq.read_table(left), pq.read_table(right)
    out = {}
    for column in ("p_alive", "expected_purchases", "clv"):
        x, y = a[column].to_numpy(), b[column].to_numpy()
        out[column] = float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))
    return out


def compare_summaries(tierwise: Path, lifetimes: Path) -> dict[str, Any]:
    """Customers in one summary only, and per column the customers whose values differ."""
    import duckdb

    con = duckdb.connect()
    cols = ["frequency", "recency", "T", "monetary_value"]
    differs = ", ".join(
        f'count(*) FILTER (WHERE abs(l."{c}" - r."{c}") > 1e-9 * greatest(1, abs(r."{c}")))'
        for c in cols)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE l.customer_id IS NULL), "
        f"count(*) FILTER (WHERE r.customer_id IS NULL), count(*), {differs} "
        f"FROM '{tierwise}' l FULL JOIN '{lifetimes}' r USING (customer_id)").fetchone()
    assert row is not None
    con.close()
    return {"only_in_lifetimes": row[0], "only_in_tierwise": row[1], "joined": row[2],
            "differing": dict(zip(cols, row[3:], strict=True)),
            "ok": not any(row[:2]) and not any(row[3:])}


def main() -> None:
    parser = argparse.ArgumentParser(description="customer-base models benchmark")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data" / "models")
    parser.add_argument("--results", type=Path, default=HERE / "models-results.json")
    parser.add_argument("--with-pymc", action="store_true",
                        help="also fit BG/NBD MAP with pymc-marketing (a ~1 GB venv)")
    parser.add_argument("--no-lifetimes", action="store_true", help="tierwise steps only")
    parser.add_argument("--lifetimes-summary-limit", type=float,
                        default=LIFETIMES_SUMMARY_LIMIT, metavar="SECONDS",
                        help="past this, lifetimes' summary is timed on a 1-in-10 customer "
                             "sample instead (default 600)")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--sample", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--diagnosis", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data = args.data.resolve()
    if args.step:
        emit(STEPS[args.step](args), default=float)
        return

    data, logs = args.data, args.data / "logs"
    results: dict[str, Any] = {
        "started": timestamp(), "machine": machine(),
        "customers": args.customers, "seed": args.seed, "as_of": AS_OF.isoformat(),
        "true_params": TRUE_PARAMS, "data": str(data),
        "source": source_version("src/tierwise/metrics/models", "models_changes_uncommitted"),
    }
    results["versions"] = {"tierwise venv": json.loads(subprocess.run(
        [sys.executable, "-c", VERSIONS_TIERWISE], capture_output=True, text=True,
        check=True).stdout)}
    steps: dict[str, dict[str, Any]] = {}
    common = ["--data", str(data), "--customers", str(args.customers), "--seed", str(args.seed)]

    # 1. data
    wanted = {"version": GENERATOR_VERSION, "customers": args.customers, "seed": args.seed,
              "params": TRUE_PARAMS, "as_of": AS_OF.isoformat()}
    found = existing(data)
    if found and all(found.get(k) == v for k, v in wanted.items()):
        say(f"data exists in {data}: {found['customers']:,} customers, "
            f"{found['orders']:,} orders; not generating")
        results["generated"] = found
    else:
        steps["generate"] = run_step("generate", sys.executable, common, logs=logs)
        made = {**wanted, "orders": steps["generate"]["orders"],
                "bytes": (data / "orders.parquet").stat().st_size}
        (data / "GENERATED.json").write_text(json.dumps(made, indent=2))
        results["generated"] = made

    # 2. tierwise
    for step in ("tierwise-summary", "tierwise-fit", "tierwise-score"):
        steps[step] = run_step(step, sys.executable, common, logs=logs)

    # 3. lifetimes, in its own venv
    checks: dict[str, Any] = {}
    if not args.no_lifetimes:
        python, versions = ensure_venv("lifetimes", LIFETIMES_PACKAGES, VERSIONS_LIFETIMES)
        results["versions"]["lifetimes venv"] = versions
        try:
            steps["lifetimes-summary"] = run_step("lifetimes-summary", python, common,
                                                  logs=logs, timeout=args.lifetimes_summary_limit)
        except TimeoutError as error:
            say(f"           {error}; timing a 1-in-{SAMPLE_EVERY} customer sample instead")
            results["lifetimes_summary_full"] = str(error)
            steps["lifetimes-summary"] = run_step("lifetimes-summary:sample", python,
                                                  [*common, "--sample"], logs=logs)
        if not steps["lifetimes-summary"]["sample"]:
            checks["summary_tierwise_vs_lifetimes"] = compare_summaries(
                data / "summary.parquet", Path(steps["lifetimes-summary"]["summary"]))
        for step in ("lifetimes-fit", "lifetimes-score"):
            steps[step] = run_step(step, python, common, logs=logs)
        checks["scores_same_params"] = compare_scores(
            data / "tierwise-scores.parquet", data / "lifetimes-scores-tierwise-params.parquet")
        checks["scores_own_params"] = compare_scores(
            data / "tierwise-scores.parquet", data / "lifetimes-scores.parquet")

    # Diagnosis: the same fit with OpenBLAS on one thread (the likelihoods' `w @ d` dot
    # products and L-BFGS-B call BLAS; see the README).
    steps["tierwise-fit:openblas-1-thread"] = run_step(
        "tierwise-fit:openblas-1-thread", sys.executable, [*common, "--diagnosis"], logs=logs,
        env={"OPENBLAS_NUM_THREADS": "1"})

    # 4. pymc-marketing, optional
    if args.with_pymc:
        try:
            python, versions = ensure_venv("pymc", PYMC_PACKAGES, VERSIONS_PYMC)
            results["versions"]["pymc venv"] = versions
            steps["pymc-fit"] = run_step("pymc-fit", python, common, logs=logs)
        except StepFailed as error:
            say(f"pymc-marketing: {error}")
            results["pymc_error"] = str(error)

    results["steps"], results["checks"] = steps, checks
    results["figures"] = figures(steps)
    results["finished"] = timestamp()
    write_results(args.results, results)
    print(report(results))
    say(f"\nfigures written to {args.results}; step logs in {logs}")


VERSIONS_TIERWISE = ("import json, duckdb, ibis, numpy, scipy, pyarrow; print(json.dumps({m.__name"
                     "__: m.__version__ for m in (duckdb, ibis, numpy, scipy, pyarrow)}))")
VERSIONS_LIFETIMES = ("import json, lifetimes, pandas, numpy, scipy, autograd, pyarrow; "
                      "from importlib.metadata import version; print(json.dumps({m: version(m) "
                      "for m in ('lifetimes', 'pandas', 'numpy', 'scipy', 'autograd', "
                      "'pyarrow')}))")
VERSIONS_PYMC = ("import json, pymc_marketing, pymc, pytensor; "
                 "from importlib.metadata import version; print(json.dumps({m: version(m) "
                 "for m in ('pymc-marketing', 'pymc', 'pytensor', 'numpy', 'scipy', "
                 "'pandas')}))")


# --- figures and the report -------------------------------------------------------------------

PARAMS_BG = ("r", "alpha", "a", "b", "log_likelihood")
PARAMS_GG = ("p", "q", "gamma", "log_likelihood")


def figures(steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fit_t, score_t = steps["tierwise-fit"], steps["tierwise-score"]
    tw = {k: steps[f"tierwise-{k}"]["seconds"] for k in ("summary", "fit", "score")}
    out["tierwise_seconds"] = {**tw, "total": sum(tw.values())}
    out["triples"] = {"customers": fit_t["customers"], "distinct_triples": fit_t["triples"],
                      "customers_per_triple": fit_t["customers"] / fit_t["triples"],
                      "bgnbd_every_row_over_triples_seconds":
                          fit_t["phases"]["(comparison) BG/NBD on every customer row, unweighted"]
                          / fit_t["phases"]["BG/NBD on the triples, weighted"]}
    ph = score_t["phases"]
    per_row = {"p_alive": ph["p_alive"], "expected_purchases":
               ph[f"expected_purchases({HORIZON_WEEKS})"], "clv": ph[f"clv({CLV_MONTHS} months)"]}
    per_triple = {"p_alive": ph["(triples) p_alive"], "expected_purchases":
                  ph[f"(triples) expected_purchases({HORIZON_WEEKS})"],
                  "clv": ph[f"(triples) clv({CLV_MONTHS} months)"]}
    out["tierwise_score_seconds_per_million"] = {
        "customer_rows": {k: v * 1e6 / score_t["customers"] for k, v in per_row.items()},
        "distinct_triples": {k: v * 1e6 / score_t["triples"] for k, v in per_triple.items()}}
    tight = fit_t["bgnbd_tight"]
    if "lifetimes-fit" in steps:
        ls, fit_l = steps["lifetimes-summary"], steps["lifetimes-fit"]
        scale = SAMPLE_EVERY if ls["sample"] else 1  # extrapolated linearly from the sample
        lt = {"summary": ls["seconds"] * scale, "fit": fit_l["seconds"],
              "score": steps["lifetimes-score"]["seconds"]}
        out["lifetimes_seconds"] = {**lt, "total": sum(lt.values()),
                                    "summary_extrapolated_from_sample": bool(ls["sample"])}
        out["lifetimes_over_tierwise"] = {k: out["lifetimes_seconds"][k]
                                          / out["tierwise_seconds"][k]
                                          for k in ("summary", "fit", "score", "total")}
        out["like_for_like_bgnbd"] = {
            "every_row_lifetimes_over_tierwise":
                fit_l["phases"]["BetaGeoFitter on every customer row"]
                / fit_t["phases"]["(comparison) BG/NBD on every customer row, unweighted"],
            "triples_lifetimes_over_tierwise":
                fit_l["phases"]["(comparison) BetaGeoFitter on the triples, weighted"]
                / fit_t["phases"]["BG/NBD on the triples, weighted"]}
        mine, theirs = fit_t["params"], fit_l["params"]
        agreement = {}
        for model, names in (("bgnbd", PARAMS_BG), ("gamma_gamma", PARAMS_GG)):
            for name in names:
                a, b = mine[model][name], theirs[model][name]
                agreement[f"{model}.{name}"] = {
                    "tierwise": a, "lifetimes": b, "relative_difference": relative(a, b),
                    "same_3_significant": same_3_significant(a, b)}
                if model == "bgnbd":
                    agreement[f"{model}.{name}"].update(
                        tight_optimum=tight[name],
                        tierwise_off_optimum=relative(a, tight[name]),
                        lifetimes_off_optimum=relative(b, tight[name]))
        out["parameter_agreement"] = agreement
    one = steps.get("tierwise-fit:openblas-1-thread")
    if one:
        out["tierwise_fit_default_over_openblas_1_thread"] = fit_t["seconds"] / one["seconds"]
    if "pymc-fit" in steps:
        pm = steps["pymc-fit"]["params"]
        out["pymc_agreement"] = {
            k: {"tierwise": fit_t["params"]["bgnbd"][k], "pymc": pm[k],
                "relative_difference": relative(pm[k], fit_t["params"]["bgnbd"][k]),
                "pymc_off_optimum": relative(pm[k], tight[k])}
            for k in ("r", "alpha", "a", "b")}
        out["pymc_over_tierwise_bgnbd_fit"] = (
            steps["pymc-fit"]["seconds"] / fit_t["phases"]["BG/NBD on the triples, weighted"])
    return out


def report(results: dict[str, Any]) -> str:
    steps, fig, checks = results["steps"], results["figures"], results["checks"]
    n = results["customers"]
    orders = results["generated"]["orders"]
    lines = [f"\ncustomer-base models benchmark: {n:,} customers, {orders:,} orders "
             f"({results['machine']['cpus']} CPUs)", ""]
    header = (f"{'step':<58} {'seconds':>9} {'process s':>10} {'CPU s':>7} {'peak RSS':>9} "
              f"{'load':>5}")
    lines += [header, "-" * len(header)]

    def row(label: str, s: dict[str, Any]) -> None:
        lines.append(f"{label:<58} {s['seconds']:>9.2f} {s['wall_seconds']:>10.1f} "
                     f"{s['cpu_seconds']:>7.1f} {s['peak_rss_bytes'] / GB:>8.2f}G "
                     f"{s['load_average_before']:>5.1f}")
        for name, seconds in s.get("phases", {}).items():
            lines.append(f"  {name[:56]:<56} {seconds:>9.2f}")

    fit_t, score_t = steps["tierwise-fit"], steps["tierwise-score"]
    if "generate" in steps:
        row("generate orders (numpy)", steps["generate"])
    row("tierwise summary: rfm_summary, DuckDB via Ibis", steps["tierwise-summary"])
    row(f"tierwise fit: BG/NBD on {fit_t['triples']:,} triples + Gamma-Gamma", fit_t)
    row("tierwise score: p_alive, E[52 weeks], CLV 12 months", score_t)
    if "lifetimes-fit" in steps:
        ls = steps["lifetimes-summary"]
        what = (f"1-in-{SAMPLE_EVERY} sample, {ls['customers']:,} customers" if ls["sample"]
                else f"{ls['orders']:,} orders")
        row(f"lifetimes summary_data_from_transaction_data ({what})", ls)
        row("lifetimes fit: BetaGeoFitter (every row) + GammaGammaFitter", steps["lifetimes-fit"])
        row("lifetimes score: the same three scores", steps["lifetimes-score"])
    if "tierwise-fit:openblas-1-thread" in steps:
        row("(diagnosis) tierwise fit again, OPENBLAS_NUM_THREADS=1",
            steps["tierwise-fit:openblas-1-thread"])
    if "pymc-fit" in steps:
        row("pymc-marketing BetaGeoModel MAP, flat priors (every row)", steps["pymc-fit"])
    elif "pymc_error" in results:
        lines.append(f"pymc-marketing: not run: {results['pymc_error'][:300]}")
    lines.append("")

    tw = fig["tierwise_seconds"]
    if "lifetimes_seconds" in fig:
        lt, ratio = fig["lifetimes_seconds"], fig["lifetimes_over_tierwise"]
        lines.append(f"{'lifetimes / tierwise':<22} {'tierwise s':>10} {'lifetimes s':>12} "
                     f"{'ratio':>8}")
        for k in ("summary", "fit", "score", "total"):
            lines.append(f"{k:<22} {tw[k]:>10.2f} {lt[k]:>12.2f} {ratio[k]:>7.1f}x")
        if lt["summary_extrapolated_from_sample"]:
            lines.append(f"(lifetimes' summary: {SAMPLE_EVERY}x its time on the sample)")
        like = fig["like_for_like_bgnbd"]
        lines.append(f"BG/NBD fit alone, like for like: on every row "
                     f"{like['every_row_lifetimes_over_tierwise']:.1f}x, on the weighted "
                     f"triples {like['triples_lifetimes_over_tierwise']:.1f}x")
        lines.append("")
        lines.append(f"{'parameter':<26} {'true':>6} {'tierwise':>13} {'lifetimes':>13} "
                     f"{'rel. diff':>9} {'3 s.f.':>6} {'tight optimum':>14} "
                     f"{'tw off':>8} {'lt off':>8}")
        for key, v in fig["parameter_agreement"].items():
            true = TRUE_PARAMS.get(key.split(".")[1])
            line = (f"{key:<26} {'' if true is None else f'{true:g}':>6} "
                    f"{v['tierwise']:>13.6g} {v['lifetimes']:>13.6g} "
                    f"{v['relative_difference']:>9.1e} {'yes' if v['same_3_significant'] else 'NO':>6}")  # noqa: E501
            if "tight_optimum" in v:
                line += (f" {v['tight_optimum']:>14.6g} {v['tierwise_off_optimum']:>8.1e} "
                         f"{v['lifetimes_off_optimum']:>8.1e}")
            lines.append(line)
        lines.append("(tight optimum: L-BFGS-B with ftol 1e-15 on tierwise's likelihood; "
                     "'off': relative distance from it)")
    if "pymc_agreement" in fig:
        for key, v in fig["pymc_agreement"].items():
            lines.append(f"pymc bgnbd.{key:<15} {'':>6} {v['tierwise']:>13.6g} "
                         f"{v['pymc']:>13.6g} {v['relative_difference']:>9.1e} {'':>6} "
                         f"{'':>14} {'':>8} {v['pymc_off_optimum']:>8.1e}")
    lines.append("")
    tri = fig["triples"]
    lines.append(f"triples: {tri['distinct_triples']:,} distinct (x, t_x, T) for "
                 f"{tri['customers']:,} customers ({tri['customers_per_triple']:.1f} per "
                 f"triple); BG/NBD on every row takes "
                 f"{tri['bgnbd_every_row_over_triples_seconds']:.1f}x the triples' time; "
                 f"same fit to {fit_t['per_row_vs_triples_max_relative_difference']:.0e}")
    if "tierwise_fit_default_over_openblas_1_thread" in fig:
        lines.append(f"tierwise fit, default OpenBLAS threads / one thread: "
                     f"{fig['tierwise_fit_default_over_openblas_1_thread']:.1f}x")
    per = fig["tierwise_score_seconds_per_million"]
    for label, key in (("customer rows", "customer_rows"),
                       ("distinct triples", "distinct_triples")):
        v = per[key]
        lines.append(f"tierwise scoring, seconds per 1M {label}: p_alive {v['p_alive']:.2f}, "
                     f"expected_purchases {v['expected_purchases']:.2f}, clv {v['clv']:.2f}")
    lines.append(f"scoring through the {score_t['triples']:,} triples and back: "
                 f"{score_t['by_triples_seconds']:.2f} s against {score_t['seconds']:.2f} s; "
                 f"same scores to "
                 f"{max(score_t['by_triples_max_relative_difference'].values()):.0e}")
    for name, check in checks.items():
        lines.append(f"{name}: {check}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
