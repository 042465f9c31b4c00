"""One policy, two engines: the metrics, lifecycle stages, scores and tiers of a policy are
the same Ibis expressions on DuckDB and on Apache Spark (local mode), and give the same
results — identical tiers, counts and dates, sums equal to 1e-9 relative.

The Spark session (tests/conftest.py) starts once for the test run (about 10 s; Java 17 is
on every machine). Without pyspark the tests skip, unless TIERWISE_REQUIRE_SPARK is set (as
in CI)."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import pytest

from tests.conftest import DATA
from tierwise.data.tables import CanonicalTables
from tierwise.grading.run import evaluation
from tierwise.workspace import Workspace

KINDS = ("customers", "orders", "interactions", "payments")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Path]]:
    """tests/data imported into a workspace, and its canonical tables as Parquet files."""
    folder = tmp_path_factory.mktemp("parity")
    os.environ.pop("TIERWISE_DATABASE_URL", None)
    with Workspace.init(folder / "ws", policy=str(DATA / "policy.yaml")) as ws:
        for kind in KINDS:
            ws.import_files(kind, [DATA / f"{kind}.csv"])
        for kind in KINDS:
            ws.store().execute(f"COPY {kind} TO '{folder / kind}.parquet' (FORMAT parquet)")
        yield ws, folder


def graded(backend: Any, tables: CanonicalTables, ws: Workspace, policy_ref: str,
           as_of: dt.date) -> list[dict[str, Any]]:
    policy, _ = ws.policy(policy_ref)
    with evaluation(backend, tables, policy, as_of) as ev:
        frame = ev.graded.order_by("customer_id").to_pyarrow()
    return frame.to_pylist()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime | dt.date):
        return a.date() == (b.date() if isinstance(b, dt.datetime) else b)
    return bool(a == b)


@pytest.mark.parametrize("policy_ref", [str(DATA / "policy.yaml"), "value-tiers", "rfm", "abc"])
@pytest.mark.parametrize("as_of", [dt.date(2025, 6, 30), dt.date(2026, 2, 28)])
def test_duckdb_and_spark_grade_alike(spark: Any, book: tuple[Workspace, Path],
                                      policy_ref: str, as_of: dt.date) -> None:
    ws, folder = book
    for kind in KINDS:
        spark.read.parquet(str(folder / f"{kind}.parquet")).createOrReplaceTempView(kind)
    on_spark = ibis.pyspark.connect(spark)
    expected = graded(ibis.duckdb.from_connection(ws.store()), ws.tables(), ws, policy_ref,
                      as_of)
    found = graded(on_spark, CanonicalTables.of_store(on_spark, "spark"), ws, policy_ref, as_of)
    assert [r["customer_id"] for r in found] == [r["customer_id"] for r in expected]
    for left, right in zip(expected, found, strict=True):
        different = {k: (left[k], right.get(k)) for k in left
                     if not same(left[k], right.get(k))}
        assert different == {}, left["customer_id"]
