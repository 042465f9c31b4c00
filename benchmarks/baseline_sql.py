"""The raw-SQL baseline: tierwise's metrics, value-tiers scorecard and tiers as one DuckDB query.

Hand-written to be the least work that gives the same answer as ``tierwise.metrics.per_customer`` +
``tierwise.grading.scorecard`` + the value-tiers rules (see ``src/tierwise/presets``): one scan
of the orders with filtered aggregates, one join with the customers, the window functions for
the quintiles and the spend share, and CASE expressions for the scorecard and the tiers. It
does none of what a tierwise run adds around that (hysteresis, overrides, the data
fingerprint, the snapshot and the app database).

Semantics copied from tierwise (as of D; window = the 12 calendar months ending D):
orders after D count for nothing but existence (a customer without ``since`` whose orders all
come after D did not exist yet); ``order_count`` and ``active_months`` count positive orders
only; ``margin`` is profit over the spend of orders with cost or profit data; ``profit`` is
null only when no order up to D has profit data; the r/f/m scores are
``1 + floor(5 × (rank − 1) / n)`` among customers with orders (ties share a score);
``spend_share_above`` is the spend of customers ranked above over the total positive spend.
Arithmetic is written in the same order as tierwise's so threshold comparisons on float
scores (``stability_score >= 50``) agree bit for bit.
"""

from __future__ import annotations

import datetime as dt

# The value-tiers preset, by hand. The rules the CASE below implements, as the preset words
# them: run.py warns when the workspace's policy says something else.
RULES = {
    "vip": "annual_spend >= 100万 and stability_score >= 50",
    "important": "annual_spend >= 50万 or (annual_spend >= 30万 and potential_score >= 80)",
    "ordinary": "annual_spend >= 10万",
    "potential": None,
}
_VALUE = """(
      (CASE WHEN annual_spend >= 1000000 THEN 100.0 WHEN annual_spend >= 500000 THEN 70.0
            WHEN annual_spend >= 100000 THEN 40.0 ELSE 0.0 END) * 0.6
    + (CASE WHEN order_count >= 24 THEN 100.0 WHEN order_count >= 12 THEN 80.0
            WHEN order_count >= 4 THEN 50.0 WHEN order_count >= 1 THEN 20.0 ELSE 0.0 END) * 0.2
    + (CASE WHEN margin >= 0.3 THEN 100.0 WHEN margin >= 0.2 THEN 80.0
            WHEN margin >= 0.1 THEN 50.0 WHEN margin >= 0 THEN 20.0 ELSE 0.0 END) * 0.2)"""
_STABILITY = """(
      (CASE WHEN tenure_years >= 5 THEN 100.0 WHEN tenure_years >= 3 THEN 75.0
            WHEN tenure_years >= 1 THEN 50.0 WHEN tenure_years >= 0 THEN 20.0 ELSE 0.0 END) * 0.6
    + coalesce(least(greatest(active_months / 12.0, 0.0), 1.0) * 100.0, 0.0) * 0.4)"""
_POTENTIAL = """(
      (CASE size WHEN '大型' THEN 100.0 WHEN '中型' THEN 70.0 WHEN '小型' THEN 40.0
                 WHEN '微型' THEN 20.0 ELSE 0.0 END) * 0.4
    + coalesce(least(greatest(spend_growth + 0.5, 0.0), 1.0) * 100.0, 0.0) * 0.6)"""


def _add_months(day: dt.date, months: int) -> dt.date:
    import calendar

    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _quintile(value: str) -> str:
    """1–5 among customers with orders; ``value`` is oriented so that higher is better."""
    scored = f"(has_orders AND {value} IS NOT NULL)"
    return (f"CASE WHEN {scored} THEN 1 + floor((rank() OVER (PARTITION BY {scored} "
            f"ORDER BY {value}) - 1) * 5 / sum({scored}::BIGINT) OVER ())::BIGINT END")


def baseline_query(as_of: dt.date, *, customers: str = "customers", orders: str = "orders",
                   interactions: str | None = "interactions") -> str:
    """The SELECT: one row per customer with every metric, the scores and ``tier``.

    ``customers``/``orders``/``interactions`` are relations (table names or subqueries) with
    tierwise's canonical columns; orders need ``profit`` (may be all NULL)."""
    d = f"DATE '{as_of.isoformat()}'"
    start = f"DATE '{_add_months(as_of, -12).isoformat()}'"
    prior_start = f"DATE '{_add_months(as_of, -24).isoformat()}'"
    win = f"(order_date > {start} AND order_date <= {d})"
    profit = "coalesce(profit, amount - cost)"
    interaction_cte = (
        f"""im AS (
        SELECT customer_id,
               count(*) FILTER (WHERE type = 'complaint') AS complaints_12m,
               count(*) AS interactions_12m,
               avg(satisfaction) AS satisfaction_avg
        FROM {interactions} WHERE date <= {d} AND date > {start}
        GROUP BY customer_id)""" if interactions else
        """im AS (SELECT NULL::VARCHAR AS customer_id, NULL::BIGINT AS complaints_12m,
                  NULL::BIGINT AS interactions_12m, NULL::DOUBLE AS satisfaction_avg
           WHERE false)""")
    return f"""
    WITH om AS (
        SELECT customer_id,
               sum(amount) FILTER (WHERE {win}) AS annual_spend,
               count(*) FILTER (WHERE {win} AND amount > 0) AS order_count,
               sum({profit}) FILTER (WHERE {win}) AS profit,
               sum(amount) FILTER (WHERE {win} AND {profit} IS NOT NULL) AS costed_spend,
               count(*) FILTER (WHERE {win}) AS window_orders,
               max(order_date) FILTER (WHERE order_date <= {d} AND amount > 0)
                   AS last_order_date,
               sum(amount) FILTER (WHERE order_date <= {d}) AS lifetime_spend,
               min(order_date) FILTER (WHERE order_date <= {d}) AS first_order_date,
               count(DISTINCT date_trunc('month', order_date))
                   FILTER (WHERE {win} AND amount > 0) AS active_months,
               sum(amount) FILTER (WHERE order_date > {prior_start} AND order_date <= {start})
                   AS prior_spend,
               bool_or({profit} IS NOT NULL) FILTER (WHERE order_date <= {d})
                   AS has_profit_data,
               bool_or(order_date > {d}) AS ordered_later
        FROM {orders}
        GROUP BY customer_id
    ), {interaction_cte},
    base AS (
        SELECT c.*,
               coalesce(om.annual_spend, 0.0) AS annual_spend,
               coalesce(om.order_count, 0) AS order_count,
               CASE WHEN coalesce(om.window_orders, 0) = 0
                    THEN CASE WHEN bool_or(coalesce(om.has_profit_data, false)) OVER ()
                              THEN 0.0 END
                    ELSE om.profit END AS profit,
               om.last_order_date,
               coalesce(om.lifetime_spend, 0.0) AS lifetime_spend,
               om.first_order_date,
               coalesce(om.active_months, 0) AS active_months,
               coalesce(om.prior_spend, 0.0) AS prior_spend,
               coalesce(im.complaints_12m, 0) AS complaints_12m,
               coalesce(im.interactions_12m, 0) AS interactions_12m,
               im.satisfaction_avg,
               date_diff('day', om.last_order_date, {d}) AS recency_days,
               date_diff('day', coalesce(c.since, om.first_order_date), {d}) / 365.25
                   AS tenure_years,
               om.costed_spend,
               om.first_order_date IS NOT NULL AS has_orders
        FROM {customers} c
        LEFT JOIN om USING (customer_id)
        LEFT JOIN im USING (customer_id)
        -- customers with an order by D, else those that existed: since <= D, or no since
        -- and no order after D either (prospects)
        WHERE om.first_order_date IS NOT NULL
           OR (CASE WHEN c.since IS NOT NULL THEN c.since <= {d}
                    ELSE NOT coalesce(om.ordered_later, false) END)
    ), derived AS (
        SELECT *,
               CASE WHEN order_count > 0 THEN annual_spend / order_count END AS avg_order_value,
               CASE WHEN prior_spend > 0 THEN (annual_spend - prior_spend) / prior_spend END
                   AS spend_growth,
               CASE WHEN costed_spend > 0 THEN profit / costed_spend END AS margin
        FROM base
    ), ranked AS (
        SELECT * EXCLUDE (has_orders, costed_spend),
               {_quintile('-recency_days')} AS r_score,
               {_quintile('order_count')} AS f_score,
               {_quintile('annual_spend')} AS m_score,
               CASE WHEN annual_spend > 0 THEN
                   (sum(annual_spend) OVER (PARTITION BY annual_spend > 0
                        ORDER BY annual_spend DESC, customer_id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - annual_spend)
                   / sum(CASE WHEN annual_spend > 0 THEN annual_spend ELSE 0.0 END) OVER ()
               END AS spend_share_above
        FROM derived
    ), scored AS (
        SELECT *, {_VALUE} AS value_score, {_STABILITY} AS stability_score,
               {_POTENTIAL} AS potential_score
        FROM ranked
    )
    SELECT *,
           value_score * 0.5 + stability_score * 0.3 + potential_score * 0.2 AS score,
           CASE WHEN annual_spend >= 1000000 AND stability_score >= 50 THEN 'vip'
                WHEN annual_spend >= 500000
                     OR (annual_spend >= 300000 AND potential_score >= 80) THEN 'important'
                WHEN annual_spend >= 100000 THEN 'ordinary'
                ELSE 'potential' END AS tier
    FROM scored
    """


def store_query(as_of: dt.date) -> str:
    """The baseline over a workspace store (``data/store.duckdb``)."""
    return baseline_query(as_of, customers="(SELECT * EXCLUDE (placeholder) FROM customers)")


def files_query(as_of: dt.date, customers_path: str, orders_paths: list[str]) -> str:
    """The baseline over Parquet files with canonical columns (orders without ``profit``);
    only the customers that appear in the orders are kept (the pandas slice)."""
    files = ", ".join(f"'{p}'" for p in orders_paths)
    orders = f"(SELECT *, NULL::DOUBLE AS profit FROM read_parquet([{files}]))"
    customers = (f"(SELECT * FROM read_parquet('{customers_path}') WHERE customer_id IN "
                 f"(SELECT customer_id FROM {orders}))")
    return baseline_query(as_of, customers=customers, orders=orders, interactions=None)
