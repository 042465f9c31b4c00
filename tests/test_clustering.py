"""The auto preset: k-means clusters of customers, ranked by value and named as tiers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pytest

from tierwise.data import store
from tierwise.data.ingest import import_files
from tierwise.data.tables import CanonicalTables
from tierwise.errors import PolicyError
from tierwise.grading.clustering import ClusteringError, cluster_tiers, with_cluster_tiers
from tierwise.metrics.per_customer import Window, customer_metrics
from tierwise.policy.loading import load_policy_text
from tierwise.policy.presets import PRESETS, preset_text

AS_OF = dt.date(2025, 6, 30)

THREE_TIERS = """\
name: 三级聚类
tiers:
  - {key: top, label: 高价值客户}
  - {key: middle, label: 一般客户}
  - {key: bottom, label: 低活跃客户}
clustering: {features: [recency_days, order_count, annual_spend, margin], seed: 7}
"""
POLICY = load_policy_text(THREE_TIERS)

# (recency_days, order_count, annual_spend, margin) around three clear centres
GROUPS = {
    "big": (5, 20, 1_000_000.0, 0.30),
    "mid": (40, 6, 50_000.0, 0.20),
    "small": (200, 1, 800.0, 0.10),
}


def metric_rows(per_group: int = 6) -> list[dict[str, Any]]:
    rows = []
    for group, (recency, orders, spend, margin) in GROUPS.items():
        for i in range(per_group):
            rows.append({"customer_id": f"{group}-{i:02d}", "recency_days": recency + i,
                         "order_count": orders + i % 2, "annual_spend": spend * (1 + i / 20),
                         "margin": margin + i / 100})
    rows += [{"customer_id": f"prospect-{i}", "recency_days": None, "order_count": 0,
              "annual_spend": 0.0, "margin": None} for i in range(3)]
    return rows


SCHEMA = pa.schema([("customer_id", pa.string()), ("recency_days", pa.int64()),
                    ("order_count", pa.int64()), ("annual_spend", pa.float64()),
                    ("margin", pa.float64())])


@pytest.fixture
def backend() -> Iterator[Any]:
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


def metrics_table(backend: Any, rows: list[dict[str, Any]], name: str = "metrics") -> ir.Table:
    return backend.create_table(name, pa.Table.from_pylist(rows, schema=SCHEMA), overwrite=True)


def tiers_of(result: Any) -> dict[str, str]:
    a = result.assignments
    return dict(zip(a["customer_id"].to_pylist(), a["computed_tier"].to_pylist(), strict=True))


def test_clusters_take_the_tiers_best_first_by_mean_annual_spend(backend: Any) -> None:
    result = cluster_tiers(backend, metrics_table(backend, metric_rows()), POLICY)
    tiers = tiers_of(result)
    assert {tiers[f"big-{i:02d}"] for i in range(6)} == {"top"}
    assert {tiers[f"mid-{i:02d}"] for i in range(6)} == {"middle"}
    assert {tiers[f"small-{i:02d}"] for i in range(6)} == {"bottom"}
    assert [c.tier for c in result.centres] == ["top", "middle", "bottom"]
    means = [c.value_mean for c in result.centres]
    assert means == sorted(means, reverse=True)
    assert [c.size for c in result.centres] == [6, 6, 6]


def test_centres_are_in_the_metrics_own_units(backend: Any) -> None:
    result = cluster_tiers(backend, metrics_table(backend, metric_rows()), POLICY)
    top = result.centres[0].centre
    assert list(top) == ["recency_days", "order_count", "annual_spend", "margin"]
    # log features come back as the members' geometric mean, linear ones as their mean
    assert top["annual_spend"] == pytest.approx(1_000_000 * 1.12, rel=0.02)
    assert top["recency_days"] == pytest.approx(7.3, abs=0.5)
    # margin is clipped to its 1st–99th percentiles first, which trims the top member a hair
    assert top["margin"] == pytest.approx(0.325, abs=0.005)
    assert result.to_json()["centres"][0]["tier"] == "top"


def test_rerunning_gives_identical_assignments_and_centres(backend: Any) -> None:
    table = metrics_table(backend, metric_rows())
    first, second = cluster_tiers(backend, table, POLICY), cluster_tiers(backend, table, POLICY)
    assert first.assignments.equals(second.assignments)
    assert first.centres == second.centres


def test_row_order_of_the_input_does_not_change_the_result(backend: Any) -> None:
    rows = metric_rows()
    forward = cluster_tiers(backend, metrics_table(backend, rows, "a"), POLICY)
    backward = cluster_tiers(backend, metrics_table(backend, rows[::-1], "b"), POLICY)
    assert forward.assignments.equals(backward.assignments)
    assert forward.centres == backward.centres


def test_customers_without_orders_go_to_the_last_tier(backend: Any) -> None:
    result = cluster_tiers(backend, metrics_table(backend, metric_rows()), POLICY)
    assert {tiers_of(result)[f"prospect-{i}"] for i in range(3)} == {"bottom"}
    assert result.unclustered == 3
    assert result.centres[-1].size == 6            # the cluster only, not the prospects


def test_margin_is_left_out_when_no_customer_has_cost_data(backend: Any) -> None:
    rows = [{**row, "margin": None} for row in metric_rows()]
    result = cluster_tiers(backend, metrics_table(backend, rows), POLICY)
    assert result.features == ["recency_days", "order_count", "annual_spend"]
    assert result.dropped == ["margin"]
    assert "margin" not in result.centres[0].centre
    assert tiers_of(result)["big-00"] == "top"


def test_unknown_margins_are_imputed_with_the_median(backend: Any) -> None:
    rows = [{**row, "margin": None} if row["customer_id"].endswith("0") else row
            for row in metric_rows()]
    result = cluster_tiers(backend, metrics_table(backend, rows), POLICY)
    assert result.features == ["recency_days", "order_count", "annual_spend", "margin"]
    assert tiers_of(result)["big-00"] == "top" and tiers_of(result)["small-00"] == "bottom"


def test_a_few_extreme_margins_do_not_take_a_tier_of_their_own(backend: Any) -> None:
    """Refund-heavy accounts can have margins like −4,870%; margin is not log-transformed,
    so unclipped they would form a cluster alone and squeeze everyone else into the rest."""
    rows = metric_rows(40)
    rows[0] = {**rows[0], "margin": -48.7}            # a big customer, margin −4,870%
    result = cluster_tiers(backend, metrics_table(backend, rows), POLICY)
    assert [c.size for c in result.centres] == [40, 40, 40]
    assert tiers_of(result)["big-00"] == "top"


def test_fewer_distinct_customers_than_tiers_is_a_clear_error(backend: Any) -> None:
    rows = metric_rows(1)
    rows[1] = {**rows[0], "customer_id": "twin"}   # same metrics as big-00: one point
    with pytest.raises(ClusteringError, match=r"3 tiers needs at least 3 customers.*found 2"):
        cluster_tiers(backend, metrics_table(backend, rows), POLICY)
    prospects = [r for r in metric_rows() if r["order_count"] == 0]
    with pytest.raises(ClusteringError, match="found 0"):
        cluster_tiers(backend, metrics_table(backend, prospects), POLICY)


def test_the_computed_tier_joins_back_onto_the_metrics(backend: Any) -> None:
    table = metrics_table(backend, metric_rows())
    graded = with_cluster_tiers(table, cluster_tiers(backend, table, POLICY))
    rows = backend.to_pyarrow(graded.order_by("customer_id")).to_pylist()
    assert len(rows) == 21
    assert set(table.columns) < set(rows[0])
    by_id = {r["customer_id"]: r["computed_tier"] for r in rows}
    assert by_id["big-03"] == "top" and by_id["prospect-0"] == "bottom"


def test_metrics_computed_from_orders_without_cost_cluster_on_rfm(tmp_path: Path) -> None:
    spec = {f"c{i:02d}": (1 + i % 7, 1_000.0 * (i + 1) ** 2, 3 * i) for i in range(24)}
    orders = pd.DataFrame([
        {"order_id": f"{c}-{n}", "customer_id": c, "amount": total / count,
         "order_date": AS_OF - dt.timedelta(days=recency + 5 * n)}
        for c, (count, total, recency) in spec.items() for n in range(count)])
    customers = pd.DataFrame({"customer_id": [*spec, "never"]})
    con = store.connect()
    try:
        for kind, frame in (("customers", customers), ("orders", orders)):
            frame.to_parquet(tmp_path / f"{kind}.parquet")
            import_files(con, kind, [tmp_path / f"{kind}.parquet"], rejects_dir=tmp_path)
        backend = ibis.duckdb.from_connection(con)
        s = CanonicalTables.of_store(backend, "test")
        metrics = customer_metrics(s.customers, s.orders, s.interactions, Window(AS_OF))
        table = backend.create_table("metrics", metrics, temp=True)
        policy = load_policy_text(preset_text("auto"), source="auto")
        result = cluster_tiers(backend, table, policy)
    finally:
        con.close()
    assert result.dropped == ["margin"]
    tiers = tiers_of(result)
    assert tiers["never"] == "dormant" and tiers["c23"] == "high"
    assert len(tiers) == 25 and set(tiers.values()) == set(policy.keys)


def test_the_auto_preset_loads_as_four_clustered_tiers() -> None:
    assert "auto" in PRESETS
    policy = load_policy_text(preset_text("auto"), source="auto")
    assert policy.name == "自动分级"
    assert policy.keys == ["high", "mid", "low", "dormant"]
    assert policy.clustering is not None and policy.clustering.seed == 0
    assert policy.clustering.log_features == ("recency_days", "order_count", "annual_spend")
    assert policy.used_metrics() == ["recency_days", "order_count", "annual_spend", "margin"]


def problems(text: str) -> str:
    with pytest.raises(PolicyError) as raised:
        load_policy_text(text, source="p.yaml")
    return str(raised.value)


def test_with_clustering_no_tier_may_have_a_rule() -> None:
    text = THREE_TIERS.replace("{key: top, label: 高价值客户}",
                               '{key: top, label: 高价值客户, when: "annual_spend > 0"}')
    assert "remove 'when' from top" in problems(text)


def test_clustering_needs_at_least_two_tiers() -> None:
    text = "name: x\ntiers:\n  - {key: only}\nclustering: {}\n"
    assert "at least 2 tiers" in problems(text)


def test_clustering_features_are_numeric_metrics() -> None:
    message = problems(THREE_TIERS.replace("order_count, annual", "order_cnt, annual"))
    assert "line 6: clustering.features" in message
    assert "'order_cnt'" in message and "'order_count'" in message
    assert "not features: margin" in problems(
        THREE_TIERS.replace("seed: 7", "seed: 7, log: [margin]").replace(", margin]", "]"))


def test_log_defaults_to_the_count_money_and_day_features() -> None:
    text = "name: x\ntiers:\n  - {key: a}\n  - {key: b}\nclustering: {}\n"
    clustering = load_policy_text(text).clustering
    assert clustering is not None
    assert clustering.log_features == ("recency_days", "order_count", "annual_spend")


# --- grading with the auto preset --------------------------------------------------------

@pytest.fixture(scope="module")
def auto_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tierwise.demo.export_files import write_files
    from tierwise.demo.synthetic import generate
    from tierwise.workspace import Workspace

    folder = tmp_path_factory.mktemp("auto")
    files = write_files(generate(400, seed=3, end=AS_OF), folder / "data")
    with Workspace.init(folder / "ws", policy="auto") as ws:
        for kind in ("customers", "orders", "interactions"):
            ws.import_files(kind, [files[kind]])
        yield ws


def test_grading_with_the_auto_preset_records_the_centres(auto_ws: Any) -> None:
    summary = auto_ws.grade(as_of=AS_OF)
    stored = auto_ws.run(summary.run_id).models
    assert [c["tier"] for c in stored["clusters"]["centres"]] == ["high", "mid", "low",
                                                                  "dormant"]
    by_tier = {t.tier: t for t in summary.tiers}
    assert sum(t.customers for t in summary.tiers) == summary.customers
    per_customer = {k: t.revenue / t.customers for k, t in by_tier.items() if t.customers}
    assert per_customer["high"] == max(per_customer.values())
    again = auto_ws.grade(as_of=AS_OF)
    first, second = auto_ws.assignments(summary.run_id), auto_ws.assignments(again.run_id)
    assert first["tier"].to_pylist() == second["tier"].to_pylist()


def test_explain_shows_the_centres_and_the_customers_own_values(auto_ws: Any) -> None:
    summary = auto_ws.grade(as_of=AS_OF)
    snapshot = auto_ws.assignments(summary.run_id)
    buyer = next(r for r in snapshot.to_pylist() if (r["order_count"] or 0) > 0)
    explained = auto_ws.explain(buyer["customer_id"], lang="en")
    assert explained.clusters is not None and explained.checks == []
    assert set(explained.clusters.centres) == {"high", "mid", "low", "dormant"}
    assert explained.clusters.values["order_count"] == buyer["order_count"]
    assert "clustered, nearest to this tier's centre" in explained.reasons()[0]
    json_form = explained.to_json()
    assert json_form["clusters"]["features"][:3] == ["recency_days", "order_count",
                                                     "annual_spend"]
