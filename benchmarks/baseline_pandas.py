"""The pandas baseline: tierwise's metrics, value-tiers scorecard and tiers, the way an analyst
would write them in a notebook (read the files, filter, ``groupby().agg()``, ``merge``,
``rank``, ``cumsum``, ``np.select``).

Deliberately the straightforward version, not a tuned one: no categorical keys, no
``observed=True`` tricks, no chunking. Same semantics as ``baseline_sql`` (checked against it
on the same slice by ``run.py``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd


def _quintile(values: pd.Series, population: pd.Series) -> pd.Series:
    """1 + floor(5 × (customers strictly worse) / n) among the population; higher is better."""
    scored = population & values.notna()
    worse = values[scored].rank(method="min") - 1
    score = 1 + np.floor(5 * worse / scored.sum())
    return score.reindex(values.index).astype("Int64")


def _bins(values: pd.Series, bins: list[tuple[float, float]]) -> np.ndarray:
    """Score of the highest bin a value reaches; 0 below the first bin or when missing."""
    conditions = [values >= at_least for at_least, _ in reversed(bins)]
    return np.select(conditions, [score for _, score in reversed(bins)], default=0.0)


def _linear(values: pd.Series, worst: float, best: float) -> pd.Series:
    return (((values - worst) / (best - worst)).clip(0.0, 1.0) * 100.0).fillna(0.0)


def grade_pandas(customers_path: str, orders_paths: list[str], as_of: dt.date,
                 out: str) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.perf_counter()

    orders = pd.concat([pd.read_parquet(p) for p in orders_paths], ignore_index=True)
    customers = pd.read_parquet(customers_path)
    # The customers of these orders. (A merge, not ``customers[customers.customer_id.isin(
    # orders.customer_id)]``: with pandas 3's pyarrow-backed strings that isin took 40 s here.)
    customers = customers.merge(orders[["customer_id"]].drop_duplicates(), on="customer_id")
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    customers["since"] = pd.to_datetime(customers["since"])
    timings["read"] = time.perf_counter() - started

    day = pd.Timestamp(as_of)
    start = day - pd.DateOffset(months=12)
    prior_start = day - pd.DateOffset(months=24)

    ordered_later = orders.loc[orders["order_date"] > day, "customer_id"].unique()
    orders = orders[orders["order_date"] <= day].copy()
    orders["profit"] = orders["amount"] - orders["cost"]
    in_window = orders["order_date"] > start
    window = orders[in_window].copy()
    paid = window[window["amount"] > 0].copy()
    paid["month"] = paid["order_date"].dt.to_period("M")
    prior = orders[(orders["order_date"] > prior_start) & ~in_window]

    window["costed_amount"] = window["amount"].where(window["profit"].notna())
    spend = window.groupby("customer_id").agg(
        annual_spend=("amount", "sum"), profit=("profit", "sum"),
        costed_spend=("costed_amount", "sum"), window_orders=("amount", "size"),
        profit_known=("profit", "count"))
    spend["profit"] = spend["profit"].where(spend["profit_known"] > 0)  # SQL: sum of nulls
    frequency = paid.groupby("customer_id").agg(
        order_count=("amount", "size"), active_months=("month", "nunique"))
    lifetime = orders.groupby("customer_id").agg(
        lifetime_spend=("amount", "sum"), first_order_date=("order_date", "min"))
    last = (orders[orders["amount"] > 0].groupby("customer_id")["order_date"].max()
            .rename("last_order_date"))
    prior_spend = prior.groupby("customer_id")["amount"].sum().rename("prior_spend")

    df = (customers
          .merge(spend, on="customer_id", how="left")
          .merge(frequency, on="customer_id", how="left")
          .merge(lifetime, on="customer_id", how="left")
          .merge(last, on="customer_id", how="left")
          .merge(prior_spend, on="customer_id", how="left"))
    has_orders = df["first_order_date"].notna()
    existed = np.where(df["since"].notna(), df["since"] <= day,
                       ~df["customer_id"].isin(ordered_later))
    df = df[has_orders | existed].copy()
    has_orders = df["first_order_date"].notna()

    any_profit_data = orders["profit"].notna().any()
    df["annual_spend"] = df["annual_spend"].fillna(0.0)
    df["order_count"] = df["order_count"].fillna(0).astype("int64")
    df["profit"] = np.where(df["window_orders"].fillna(0) == 0,
                            0.0 if any_profit_data else np.nan, df["profit"])
    df["avg_order_value"] = np.where(df["order_count"] > 0,
                                     df["annual_spend"] / df["order_count"].replace(0, 1),
                                     np.nan)
    df["recency_days"] = (day - df["last_order_date"]).dt.days
    df["lifetime_spend"] = df["lifetime_spend"].fillna(0.0)
    df["tenure_years"] = (day - df["since"].fillna(df["first_order_date"])).dt.days / 365.25
    df["active_months"] = df["active_months"].fillna(0).astype("int64")
    df["prior_spend"] = df["prior_spend"].fillna(0.0)
    df["spend_growth"] = np.where(
        df["prior_spend"] > 0,
        (df["annual_spend"] - df["prior_spend"]) / df["prior_spend"].replace(0, 1), np.nan)
    costed = df["costed_spend"].fillna(0.0)
    df["margin"] = np.where(costed > 0, df["profit"] / costed.replace(0, 1), np.nan)
    df = df.drop(columns=["costed_spend", "profit_known"])
    df["complaints_12m"] = 0
    df["interactions_12m"] = 0
    df["satisfaction_avg"] = np.nan

    df["r_score"] = _quintile(-df["recency_days"], has_orders)
    df["f_score"] = _quintile(df["order_count"], has_orders)
    df["m_score"] = _quintile(df["annual_spend"], has_orders)
    positive = df[df["annual_spend"] > 0].sort_values(["annual_spend", "customer_id"],
                                                      ascending=[False, True])
    above = positive["annual_spend"].cumsum() - positive["annual_spend"]
    df["spend_share_above"] = above / positive["annual_spend"].sum()
    timings["metrics"] = time.perf_counter() - started - timings["read"]

    df["value_score"] = (
        _bins(df["annual_spend"], [(0, 0), (1e5, 40), (5e5, 70), (1e6, 100)]) * 0.6
        + _bins(df["order_count"], [(1, 20), (4, 50), (12, 80), (24, 100)]) * 0.2
        + _bins(df["margin"], [(0, 20), (0.1, 50), (0.2, 80), (0.3, 100)]) * 0.2)
    df["stability_score"] = (
        _bins(df["tenure_years"], [(0, 20), (1, 50), (3, 75), (5, 100)]) * 0.6
        + _linear(df["active_months"].astype("float64"), 0.0, 12.0) * 0.4)
    df["potential_score"] = (
        df["size"].map({"大型": 100.0, "中型": 70.0, "小型": 40.0, "微型": 20.0})
        .fillna(0.0) * 0.4
        + _linear(df["spend_growth"], -0.5, 0.5) * 0.6)
    df["score"] = (df["value_score"] * 0.5 + df["stability_score"] * 0.3
                   + df["potential_score"] * 0.2)
    df["tier"] = np.select(
        [(df["annual_spend"] >= 1e6) & (df["stability_score"] >= 50),
         (df["annual_spend"] >= 5e5)
         | ((df["annual_spend"] >= 3e5) & (df["potential_score"] >= 80)),
         df["annual_spend"] >= 1e5],
        ["vip", "important", "ordinary"], default="potential")
    timings["scores_and_tiers"] = (time.perf_counter() - started - timings["read"]
                                   - timings["metrics"])

    df.to_parquet(out, index=False)
    timings["write"] = (time.perf_counter() - started - timings["read"] - timings["metrics"]
                        - timings["scores_and_tiers"])
    return {
        "orders": len(orders),
        "customers": len(df),
        "tiers": {str(k): int(v) for k, v in df["tier"].value_counts().items()},
        "phases": {k: round(v, 3) for k, v in timings.items()},
        "output": out,
    }
