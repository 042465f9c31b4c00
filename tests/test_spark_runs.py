"""Recorded runs on Spark (``engine: spark``): the same run as the embedded engine records —
tiers, bases, streaks, changes, summaries — with the assignments written by Spark as a
``runs/assignments/run_id=N`` dataset; sources read where they live (Parquet and CSV files
with Chinese headers, a Spark table, PostgreSQL and MariaDB over JDBC), bad rows set aside
and counted; bad settings and unreachable sources fail with their name and leave no run.

One Spark session serves the test run (tests/conftest.py); workspaces are shared per module
because a run on Spark takes seconds even for a handful of customers. Without pyspark the
tests skip, unless TIERWISE_REQUIRE_SPARK is set (as in CI)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import DATA
from tests.test_model_metrics import cdnow_files  # noqa: F401  (a fixture, used by name)
from tests.test_sql_sources import (  # noqa: F401  (fixtures, used by name)
    AS_OF,
    graded_from_csv,
    mariadb_erp,
    postgres_erp,
    tiers,
)
from tierwise.cli import main
from tierwise.data.engines import DEBIAN_JDBC_JARS
from tierwise.errors import WorkspaceError
from tierwise.record.runs import RunSummary
from tierwise.workspace import Workspace

FIRST, SECOND = dt.date(2025, 6, 30), dt.date(2026, 2, 28)
KINDS = ("customers", "orders", "interactions", "payments")
COMPARED = ("tier", "computed_tier", "basis", "change", "downgrade_streak", "score",
            "policy_tier", "stage", "annual_spend", "order_count", "complaints_12m",
            "interactions_12m", "satisfaction_avg", "tenure_years")
SPARK_ENGINE = {"name": "spark", "master": "local[2]",
                "settings": {"spark.sql.shuffle.partitions": 4}}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                 abs_tol=1e-12)
    return bool(a == b)


def by_customer(ws: Workspace, run_id: int) -> dict[str, dict[str, Any]]:
    return {row["customer_id"]: row for row in ws.assignments(run_id).to_pylist()}


def differences(expected: dict[str, dict[str, Any]],
                found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per customer, the compared columns whose values differ (empty when all agree)."""
    assert sorted(found) == sorted(expected)
    result = {}
    for customer, left in expected.items():
        right = found[customer]
        different = {c: (left.get(c), right.get(c)) for c in COMPARED
                     if not same(left.get(c), right.get(c))}
        if different:
            result[customer] = different
    return result


def assert_same_summary(expected: RunSummary, found: RunSummary) -> None:
    assert found.customers == expected.customers
    assert found.changes == expected.changes
    assert [(t.tier, t.customers) for t in found.tiers] == \
        [(t.tier, t.customers) for t in expected.tiers]
    for left, right in zip(expected.tiers, found.tiers, strict=True):
        assert math.isclose(right.revenue, left.revenue, rel_tol=1e-9, abs_tol=1e-9), left.tier


def leftovers(ws: Workspace) -> list[str]:
    """Staging datasets or files a run left behind."""
    return sorted(str(p.relative_to(ws.root)) for p in ws.runs_dir.rglob("*")
                  if p.name.startswith(("_staging-", ".staging-")))


@pytest.fixture(scope="module")
def environment() -> Iterator[None]:
    """conftest's isolation, for module-scoped workspaces."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TIERWISE_WORKSPACE", raising=False)
        patch.delenv("TIERWISE_DATABASE_URL", raising=False)
        patch.setenv("TIERWISE_USER", "tester")
        yield


# -- 1 and 6: recorded runs on both engines -------------------------------------------------

@dataclass
class Pair:
    duckdb: Workspace
    spark: Workspace
    on_duckdb: list[RunSummary]
    on_spark: list[RunSummary]
    cli_json: dict[str, Any]


@pytest.fixture(scope="module")
def pair(spark: Any, environment: None,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """tests/data in two workspaces, graded as of FIRST then SECOND (which continues FIRST),
    with the same override before the second run: one with the embedded engine, one on Spark
    — its first run from the command line (--engine spark), its second from tierwise.yaml's
    ``engine:``."""
    folder = tmp_path_factory.mktemp("pair")
    for name in ("duckdb", "spark"):
        with Workspace.init(folder / name, policy=str(DATA / "policy.yaml")) as ws:
            for kind in KINDS:
                ws.import_files(kind, [DATA / f"{kind}.csv"])  # type: ignore[arg-type]
    result = CliRunner().invoke(main, ["grade", "--engine", "spark", "--as-of", FIRST.isoformat(),
                                       "--format", "json", "-w", str(folder / "spark")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    cli_json = json.loads(result.stdout)
    with Workspace(folder / "duckdb") as on_duckdb, Workspace(folder / "spark") as on_spark:
        on_spark._set_config("engine", SPARK_ENGINE)
        first_duckdb = on_duckdb.grade(as_of=FIRST, engine="duckdb")
        first_spark = on_spark.run(cli_json["run_id"])
        for ws in (on_duckdb, on_spark):
            ws.override("C3", "vip", reason="战略客户")
        second_duckdb, second_spark = on_duckdb.grade(as_of=SECOND), on_spark.grade(as_of=SECOND)
        # The first Spark run's summary as the command line gave it.
        first = RunSummary(run_id=first_spark.id, as_of=first_spark.as_of,
                           policy_name=first_spark.policy_name,
                           policy_hash=first_spark.policy_hash,
                           customers=cli_json["customers"], tiers=[],
                           changes=cli_json["changes"])
        yield Pair(on_duckdb, on_spark, [first_duckdb, second_duckdb], [first, second_spark],
                   cli_json)


def test_the_command_line_records_a_spark_run(pair: Pair) -> None:
    record = pair.spark.run(pair.cli_json["run_id"])
    assert record.engine == "spark"
    assert record.snapshot == f"runs/assignments/run_id={record.id}/*.parquet"
    assert record.as_of == FIRST
    assert pair.cli_json["customers"] == pair.on_duckdb[0].customers == record.customers
    duckdb_tiers = [(t.tier, t.customers) for t in pair.on_duckdb[0].tiers]
    assert [(t["tier"], t["customers"]) for t in pair.cli_json["tiers"]] == duckdb_tiers
    for left, right in zip(pair.on_duckdb[0].tiers, pair.cli_json["tiers"], strict=True):
        assert math.isclose(right["revenue"], left.revenue, rel_tol=1e-9), left.tier
    assert pair.cli_json["changes"] == pair.on_duckdb[0].changes == record.changes


@pytest.mark.parametrize("index", [0, 1], ids=["first", "second"])
def test_runs_on_spark_and_duckdb_agree(pair: Pair, index: int) -> None:
    on_duckdb, on_spark = pair.on_duckdb[index], pair.on_spark[index]
    if on_spark.tiers:                       # the first one came from the command line
        assert_same_summary(on_duckdb, on_spark)
    assert on_spark.changes == on_duckdb.changes
    assert differences(by_customer(pair.duckdb, on_duckdb.run_id),
                       by_customer(pair.spark, on_spark.run_id)) == {}
    duckdb_record, spark_record = pair.duckdb.run(on_duckdb.run_id), pair.spark.run(on_spark.run_id)
    assert (duckdb_record.engine, spark_record.engine) == ("duckdb", "spark")
    assert spark_record.snapshot == f"runs/assignments/run_id={spark_record.id}/*.parquet"
    assert spark_record.changes == on_duckdb.changes
    assert spark_record.aggregates == pytest.approx(duckdb_record.aggregates, rel=1e-9)


def test_the_second_run_continues_the_first_on_spark(pair: Pair) -> None:
    first, second = pair.on_spark
    assert pair.spark.run(second.run_id).previous_run_id == first.run_id
    rows = by_customer(pair.spark, second.run_id)
    # C2 bought nothing in the second window: it keeps its tier one more run
    # (downgrade_after: 2), on its first step of the streak.
    assert (rows["C2"]["computed_tier"], rows["C2"]["tier"],
            rows["C2"]["downgrade_streak"]) == ("potential", "important", 1)
    assert second.changes["unchanged"] > 0 and second.changes["new"] >= 1
    # The tasks of a run that graded the workspace's own store, as on DuckDB.
    assert second.tasks is not None and pair.on_duckdb[1].tasks is not None
    assert second.tasks.__dict__ == pair.on_duckdb[1].tasks.__dict__
    assert sorted((t.kind, t.customer_id) for t in pair.spark.tasks()) == \
        sorted((t.kind, t.customer_id) for t in pair.duckdb.tasks())


def test_an_override_is_honoured_on_spark(pair: Pair) -> None:
    c3 = by_customer(pair.spark, pair.on_spark[1].run_id)["C3"]
    assert c3["tier"] == "vip" and c3["computed_tier"] != "vip"
    assert c3["override_id"] is not None
    assert c3["basis"] == by_customer(pair.duckdb, pair.on_duckdb[1].run_id)["C3"]["basis"]
    explained = pair.spark.explain("C3", pair.on_spark[1].run_id, lang="en")
    assert explained.tier == "vip"


def test_spark_runs_leave_only_their_partitions(pair: Pair) -> None:
    assignments = pair.spark.runs_dir / "assignments"
    assert sorted(p.name for p in assignments.iterdir()) == \
        sorted(f"run_id={s.run_id}" for s in pair.on_spark)
    assert leftovers(pair.spark) == [] and leftovers(pair.duckdb) == []
    # The assignments dataset reads as one table partitioned by run.
    dataset = pa_dataset.dataset(assignments, format="parquet", partitioning="hive")
    assert dataset.count_rows() == sum(s.customers for s in pair.on_spark)


# -- 2 and 3: sources where they live: files with Chinese headers, a Spark table ------------

CUSTOMER_MAP = {"编号": "customer_id", "名称": "name", "电话": "contact", "所属行业": "industry",
                "区域": "region", "企业规模": "size", "建档日期": "since", "负责人": "owner"}
ORDER_MAP = {"单据编号": "order_id", "客户": "customer_id", "单据日期": "order_date",
             "价税合计": "amount", "成本": "cost", "毛利": "profit"}
INTERACTION_MAP = {"客户": "customer_id", "发生日期": "date", "方式": "type",
                   "评分": "satisfaction", "说明": "note"}
BAD_ORDERS = [["O90", "C2", "2025-05-01", "", "", ""],              # no amount
              ["O91", "C2", "2025-13-45", "70000", "", ""]]         # no such date


def _renamed_csv(source: Path, target: Path, headers: list[str],
                 extra: list[list[str]] | None = None) -> None:
    with source.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows([*rows, *(extra or [])])


@dataclass
class Lake:
    duckdb: Workspace
    spark: Workspace
    on_duckdb: RunSummary
    on_spark: RunSummary


@pytest.fixture(scope="module")
def lake(spark: Any, environment: None,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """An ERP's exports with its own Chinese headers — customers as Parquet, orders as CSV
    with two bad rows, interactions as a Spark table (on DuckDB: the same rows as CSV) —
    named in ``sources:`` with ``map:``, graded on Spark and on the embedded engine."""
    folder = tmp_path_factory.mktemp("lake")
    exports = folder / "exports"
    exports.mkdir()
    _renamed_csv(DATA / "customers.csv", exports / "customers.csv", [*CUSTOMER_MAP, "员工人数"])
    customers = pa_csv.read_csv(exports / "customers.csv",
                                convert_options=pa_csv.ConvertOptions(
                                    column_types={"电话": pa.string(), "员工人数": pa.string()}))
    pq.write_table(customers, exports / "客户.parquet")
    _renamed_csv(DATA / "orders.csv", exports / "订单.csv", list(ORDER_MAP), BAD_ORDERS)
    _renamed_csv(DATA / "interactions.csv", exports / "互动.csv", list(INTERACTION_MAP))
    spark.read.option("header", True).csv(str(exports / "互动.csv")) \
        .createOrReplaceTempView("erp_interactions")
    common = {"customers": {"path": str(exports / "客户.parquet"), "map": CUSTOMER_MAP},
              "orders": {"path": "../exports/订单.csv", "map": ORDER_MAP}}
    with Workspace.init(folder / "duckdb", policy=str(DATA / "policy.yaml")) as on_duckdb, \
            Workspace.init(folder / "spark", policy=str(DATA / "policy.yaml")) as on_spark:
        on_duckdb._set_config("sources", {**common, "interactions": {
            "path": str(exports / "互动.csv"), "map": INTERACTION_MAP}})
        on_spark._set_config("sources", {**common, "interactions": {
            "table": "erp_interactions", "map": INTERACTION_MAP}})
        on_spark._set_config("engine", SPARK_ENGINE)
        yield Lake(on_duckdb, on_spark, on_duckdb.grade(as_of=FIRST), on_spark.grade(as_of=FIRST))


def test_files_and_a_spark_table_graded_on_spark_equal_the_embedded_engine(lake: Lake) -> None:
    assert lake.spark.run(lake.on_spark.run_id).engine == "spark"
    assert_same_summary(lake.on_duckdb, lake.on_spark)
    spark_rows = by_customer(lake.spark, lake.on_spark.run_id)
    # The embedded run graded its book and derived tasks, so it also computed what they read
    # (tierwise.metrics.plan); the Spark run of the sources derived none. Every metric the
    # Spark run holds must agree.
    held = set(spark_rows["C1"])
    assert {"annual_spend", "tenure_years"} <= held
    embedded = {customer: {c: v for c, v in row.items() if c in held}
                for customer, row in by_customer(lake.duckdb, lake.on_duckdb.run_id).items()}
    assert differences(embedded, spark_rows) == {}
    assert spark_rows["C1"]["name"] == "华东机械有限公司"           # mapped from 名称
    assert spark_rows["C1"]["员工人数"] == "1200"                   # an attribute kept


def test_bad_rows_are_counted_and_written_with_their_reason(lake: Lake) -> None:
    assert lake.on_spark.rejected_rows == len(BAD_ORDERS)
    folders = [p for p in lake.spark.rejects_dir.iterdir() if p.name.endswith("-orders")]
    assert len(folders) == 1 and folders[0].is_dir()
    rejected = pa_dataset.dataset(folders[0], format="parquet").to_table().to_pylist()
    reasons = {row["order_id"]: row["reason"] for row in rejected}
    assert reasons == {"O90": "missing or invalid amount", "O91": "missing or invalid order_date"}
    # Nothing of the files was copied into the store.
    assert lake.spark.store().execute("SELECT count(*) FROM orders").fetchone() == (0,)


def test_a_spark_table_source_on_the_embedded_engine_names_itself(
        tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml")) as ws:
        ws.import_files("orders", [DATA / "orders.csv"])
        ws._set_config("sources", {"interactions": {"table": "erp_interactions"}})
        with pytest.raises(WorkspaceError, match=r"interactions from Spark table "
                                                 r"erp_interactions.*engine: spark"):
            ws.grade(as_of=FIRST)
        assert ws.runs() == []


# -- 4: SQL sources over JDBC ---------------------------------------------------------------

def _jdbc_jars() -> None:
    missing = [jar for jar in DEBIAN_JDBC_JARS if not os.path.exists(jar)]
    if missing:
        message = (f"{', '.join(missing)} missing: install Debian's libpostgresql-jdbc-java and "
                   "libmariadb-java (scripts/test does)")
        if os.environ.get("TIERWISE_REQUIRE_SPARK"):
            pytest.fail(message + "; TIERWISE_REQUIRE_SPARK is set")
        pytest.skip(message)


def test_an_erp_in_postgresql_and_mariadb_read_over_jdbc_grades_as_on_duckdb(
        spark: Any, postgres_erp: tuple[str, str],   # noqa: F811
        mariadb_erp: tuple[str, str], tmp_path: Path,   # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    _jdbc_jars()
    pg_url, pg_prefix = postgres_erp
    maria_url, maria_prefix = mariadb_erp
    # Spark's JDBC reader, never the connectorx fallback.
    monkeypatch.setattr("tierwise.data.lake.stream_sql", _no_fallback)
    with Workspace.init(tmp_path / "sql", policy=str(DATA / "policy.yaml")) as ws, \
            graded_from_csv(tmp_path / "csv") as from_csv:
        ws._set_config("sources", {
            "customers": {"sql": pg_url, "table": f"{pg_prefix}客户", "map": {
                "客户编号": "customer_id", "客户名称": "name", "合作开始日期": "since"}},
            "orders": {"sql": maria_url, "query": f"SELECT * FROM `{maria_prefix}销售订单`",
                       "map": {"订单号": "order_id", "客户编号": "customer_id",
                               "下单日期": "order_date", "订单金额": "amount", "成本": "cost",
                               "利润": "profit"}}})
        summary = ws.grade(as_of=AS_OF, engine="spark")
        assert ws.run(summary.run_id).engine == "spark"
        assert summary.rejected_rows == 0
        assert tiers(ws) == tiers(from_csv)


def _no_fallback(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the SQL source was read through connectorx, not Spark's JDBC")


# -- 5: bad settings and unreachable sources ------------------------------------------------

@pytest.mark.parametrize(("engine", "message"), [
    ("flink", "engine 'flink' is not known; engines: duckdb, spark"),
    ({"name": "spark", "executors": 4}, "engine: unknown setting 'executors'"),
    ({"name": "spark", "settings": ["spark.executor.memory=8g"]}, "engine.settings"),
    (["spark"], "engine: expected duckdb, spark or a mapping"),
])
def test_bad_engine_settings_name_tierwise_yaml(tmp_path: Path, engine: Any,
                                                message: str) -> None:
    with Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml")) as ws:
        ws.import_files("orders", [DATA / "orders.csv"])
        ws._set_config("engine", engine)
        with pytest.raises(WorkspaceError) as caught:
            ws.grade(as_of=FIRST)
        assert str(caught.value).startswith(str(ws.root / "tierwise.yaml") + ": ")
        assert message in str(caught.value)
        assert ws.runs() == []


def test_an_unreachable_source_on_spark_names_itself_and_leaves_no_run(
        spark: Any, tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml")) as ws:
        ws._set_config("sources", {"orders": {
            "sql": "postgresql://erp:secret@127.0.0.1:1/erp", "table": "销售订单"}})
        with pytest.raises(WorkspaceError) as caught:
            ws.grade(as_of=FIRST, engine="spark")
        message = str(caught.value)
        assert "orders from postgresql://erp:***@127.0.0.1:1/erp (销售订单)" in message
        assert "secret" not in message
        assert ws.runs() == []
        assert list(ws.root.glob("runs/assignments/run_id=*")) == []
        assert leftovers(ws) == []


# -- spark-submit: tierwise as the driver program of a cluster job --------------------------

def test_spark_submit_runs_tierwise_as_its_driver(spark: Any, environment: None,
                                                   tmp_path: Path) -> None:
    """docs/scale.md's command, with --master local[1]: tierwise takes the session
    spark-submit made and records a Spark run like the one made in process."""
    import shutil
    import subprocess
    import sys

    import tierwise.__main__ as entry

    submit = Path(sys.executable).with_name("spark-submit")
    if not submit.exists() and shutil.which("spark-submit") is None:
        pytest.skip("spark-submit is not installed with pyspark here")
    with Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml")) as ws:
        for kind in KINDS:
            ws.import_files(kind, [DATA / f"{kind}.csv"])  # type: ignore[arg-type]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    done = subprocess.run(
        [str(submit if submit.exists() else "spark-submit"), "--master", "local[1]",
         "--conf", "spark.ui.enabled=false", entry.__file__, "grade", "--engine", "spark",
         "--as-of", FIRST.isoformat(), "--format", "json", "-w", str(tmp_path / "ws")],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    with Workspace(tmp_path / "ws") as ws:
        record = ws.run(summary["run_id"])
        assert record.engine == "spark" and record.snapshot is not None
        assert sum(t["customers"] for t in summary["tiers"]) == record.customers == 8
        assert ws.assignments(record.id).num_rows == 8


# -- customer-base models on Spark ------------------------------------------------------------

def test_model_metrics_on_spark_equal_the_embedded_engine(
        spark: Any, environment: None, tmp_path: Path,
        cdnow_files: tuple[Path, Path]) -> None:  # noqa: F811
    """The CDNOW sample graded with p_alive and predicted_clv in its rules: the engine
    summarises the orders into distinct histories, the fit runs on them, and Spark gives the
    same fitted parameters, P(alive), expected orders and CLV as DuckDB."""
    from tests.test_model_metrics import AS_OF as CDNOW_AS_OF
    from tests.test_model_metrics import write_policy

    policy = str(write_policy(tmp_path))
    found = {}
    for engine in ("duckdb", "spark"):
        with Workspace.init(tmp_path / engine) as ws:
            ws.import_files("customers", [cdnow_files[0]])
            ws.import_files("orders", [cdnow_files[1]])
            summary = ws.grade(as_of=CDNOW_AS_OF, policy=policy, engine=engine)
            found[engine] = (ws.run(summary.run_id).models, by_customer(ws, summary.run_id))
    (models_duckdb, rows_duckdb), (models_spark, rows_spark) = found["duckdb"], found["spark"]
    assert models_duckdb is not None and models_spark is not None
    # The histories are whole numbers and the mean values exact sums (decimals): the same
    # fit to the last digit.
    assert models_duckdb == models_spark
    assert rows_duckdb.keys() == rows_spark.keys()
    metrics = ("p_alive", "expected_orders_12m", "expected_order_value", "predicted_clv",
               "tier")
    assert [(customer, m, row[m], rows_spark[customer][m])
            for customer, row in rows_duckdb.items() for m in metrics
            if not same(row[m], rows_spark[customer][m])][:5] == []
