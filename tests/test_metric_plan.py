"""A run computes what it uses (tierwise.metrics.plan): the metrics its policy and its outputs
read, with what they are made of; every planned metric equals the same metric computed with
the whole vocabulary; what a run leaves out, explain computes for the one customer.

Data: tests/data (its policy.yaml reads annual_spend and tenure_years only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA
from tierwise.common.vocabulary import METRICS, MODEL_METRICS
from tierwise.grading.run import run_plan, with_stage
from tierwise.metrics.per_customer import Window, customer_metrics, with_rank_metrics
from tierwise.metrics.plan import COMPLETE, PER_CUSTOMER, RECORD_METRICS, metric_plan
from tierwise.policy.loading import load_policy_file, load_policy_text
from tierwise.record import runs
from tierwise.work.tasks import WORK_METRICS
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)
VOCABULARY = sorted(name for name in METRICS if name not in MODEL_METRICS)


def test_a_plan_holds_what_its_metrics_are_made_of_and_the_records_own() -> None:
    assert metric_plan(["tenure_years"]).metrics == {
        "tenure_years", "first_order_date", *RECORD_METRICS}
    growth = metric_plan(["spend_growth"])
    assert {"annual_spend", "prior_spend"} <= growth.metrics
    assert "order_gap_days" not in growth
    stage = metric_plan(["stage"])
    assert {"recency_days", "previous_order_date", "order_gap_days", "spend_growth",
            "tenure_years", "active_months"} <= stage.metrics
    assert "r_score" not in stage


def test_attributes_scores_and_model_metrics_are_not_planned_here() -> None:
    plan = metric_plan(["size", "score", "value_score", "p_alive"])
    assert plan.metrics == {"first_order_date", *RECORD_METRICS}


def test_all_asks_for_the_whole_vocabulary() -> None:
    assert COMPLETE.is_complete
    assert COMPLETE.metrics == set(VOCABULARY)
    policy = load_policy_text("name: x\nmetrics_shown: all\ntiers: [{key: a}]\n")
    assert run_plan(policy).is_complete
    assert "r_score" in policy.used_metrics() and "p_alive" not in policy.used_metrics()


def test_the_policy_and_the_work_decide_the_plan() -> None:
    policy = load_policy_file(DATA / "policy.yaml")
    assert run_plan(policy).metrics == {"annual_spend", "tenure_years", "first_order_date",
                                        "profit"}
    with_work = run_plan(policy, WORK_METRICS)
    assert set(WORK_METRICS) <= with_work.metrics
    assert not with_work.any_of(["r_score", "lifetime_spend", "satisfaction_avg"])


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    with Workspace.init(tmp_path_factory.mktemp("plan") / "ws") as ws:
        for kind in ("customers", "orders", "interactions", "payments"):
            ws.import_files(kind, [DATA / f"{kind}.csv"])
        yield ibis.duckdb.from_connection(ws.store()), ws.tables()


def _metrics(book: tuple[Any, Any], plan: Any) -> dict[str, dict[str, Any]]:
    backend, s = book
    base = customer_metrics(s.customers, s.orders, s.interactions, Window(AS_OF), s.payments,
                            plan)
    if "stage" in plan:
        base = with_stage(base, load_policy_file(DATA / "policy.yaml"), AS_OF)
    table = with_rank_metrics(backend, backend.create_table("planned", base, temp=True,
                                                            overwrite=True),
                              ranges=1, plan=plan)
    return {row["customer_id"]: row for row in backend.to_pyarrow(table).to_pylist()}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.sets(st.sampled_from(VOCABULARY), max_size=6))
def test_planned_metrics_equal_the_whole_vocabularys_and_nothing_else_is_computed(
        book: tuple[Any, Any], names: set[str]) -> None:
    plan = metric_plan(names)
    complete = _metrics(book, COMPLETE)
    planned = _metrics(book, plan)
    assert planned.keys() == complete.keys()
    some_row = next(iter(planned.values()))
    computed = set(some_row) & set(VOCABULARY)
    assert computed == plan.metrics
    for customer_id, row in planned.items():
        for name in plan.metrics:
            assert row[name] == pytest.approx(complete[customer_id][name]) \
                if isinstance(row[name], float) else row[name] == complete[customer_id][name], \
                (customer_id, name)


def _write_policy(folder: Path, extra: str = "") -> Path:
    path = folder / "two-metrics.yaml"
    path.write_text((DATA / "policy.yaml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def test_a_run_of_the_book_keeps_the_policys_metrics_and_what_its_tasks_read(
        ws: Workspace, tmp_path: Path) -> None:
    lean = ws.grade(as_of=AS_OF, policy=str(_write_policy(tmp_path)))
    columns = set(pq.read_schema(runs.snapshot_path(ws.runs_dir, lean.run_id)).names)
    assert {"annual_spend", "tenure_years", "profit", *WORK_METRICS} <= columns
    assert not columns & {"r_score", "m_score", "spend_share_above", "lifetime_spend",
                          "satisfaction_avg", "margin"}
    full = ws.grade(as_of=AS_OF, policy=str(_write_policy(tmp_path, "metrics_shown: all\n")))
    full_columns = set(pq.read_schema(runs.snapshot_path(ws.runs_dir, full.run_id)).names)
    assert set(VOCABULARY) <= full_columns
    tiers = {r["customer_id"]: r["tier"] for r in ws.assignments(lean.run_id).to_pylist()}
    assert tiers == {r["customer_id"]: r["tier"] for r in ws.assignments(full.run_id).to_pylist()}
    assert lean.to_json()["tiers"] == full.to_json()["tiers"]


def test_graded_files_keep_only_what_the_policy_reads(ws: Workspace, tmp_path: Path) -> None:
    run = ws.grade(as_of=AS_OF, policy=str(_write_policy(tmp_path)), files={
        "orders": [str(DATA / "orders.csv")], "customers": [str(DATA / "customers.csv")]})
    columns = set(pq.read_schema(runs.snapshot_path(ws.runs_dir, run.run_id)).names)
    assert columns & set(VOCABULARY) == {"annual_spend", "tenure_years", "first_order_date",
                                         "profit"}
    assert ws.assignments(run.run_id)["tier"].null_count == 0


def test_explain_computes_what_the_run_left_out_for_the_one_customer(
        ws: Workspace, tmp_path: Path) -> None:
    full = ws.grade(as_of=AS_OF, policy=str(_write_policy(tmp_path, "metrics_shown: all\n")))
    lean = ws.grade(as_of=AS_OF, policy=str(_write_policy(tmp_path)))
    shown = ws.explain("C1", lean.run_id)
    everything = ws.explain("C1", full.run_id)
    assert "lifetime_spend" in shown.computed_now and "annual_spend" not in shown.computed_now
    for name in ("lifetime_spend", "active_months", "satisfaction_avg", "margin"):
        assert shown.metrics[name] == pytest.approx(everything.metrics[name])
    assert everything.computed_now == []
    # The ranks need the whole book: not computed for one customer.
    assert "r_score" not in shown.metrics and "r_score" in everything.metrics
    assert set(PER_CUSTOMER) - {"r_score", "f_score", "m_score", "spend_share_above"} \
        <= set(shown.metrics)
