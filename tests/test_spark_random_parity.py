"""Parity on random books: Hypothesis draws customers, orders (refunds, same-day orders,
orders after the date, missing costs) and interactions; DuckDB and Spark grade them alike
under the value-tiers preset (its scorecard, RFM quintiles and lifecycle stages)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_spark_parity import KINDS, graded, same
from tierwise.data.tables import CanonicalTables
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)
DAYS = st.integers(min_value=-1200, max_value=40).map(lambda d: AS_OF + dt.timedelta(days=d))


@st.composite
def books(draw: Any) -> dict[str, list[dict[str, Any]]]:
    n = draw(st.integers(min_value=2, max_value=25))
    customers = [{"customer_id": f"R{i}", "name": f"客户{i}",
                  "industry": draw(st.sampled_from(["制造业", "零售", None])),
                  "since": draw(st.one_of(st.none(), DAYS))} for i in range(n)]
    orders = []
    for k in range(draw(st.integers(min_value=1, max_value=120))):
        amount = draw(st.one_of(st.integers(min_value=1, max_value=2_000_000),
                                st.integers(min_value=-50_000, max_value=-1)))
        cost = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=abs(amount))))
        orders.append({"order_id": f"O{k}", "customer_id": f"R{draw(st.integers(0, n - 1))}",
                       "order_date": draw(DAYS), "amount": float(amount),
                       "cost": None if cost is None else float(cost)})
    interactions = [{"customer_id": f"R{draw(st.integers(0, n - 1))}", "date": draw(DAYS),
                     "type": draw(st.sampled_from(["visit", "call", "complaint"]))}
                    for _ in range(draw(st.integers(min_value=0, max_value=20)))]
    return {"customers": customers, "orders": orders, "interactions": interactions}


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=6, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(book=books())
def test_random_books_grade_alike_on_duckdb_and_spark(spark: Any, tmp_path_factory: Any,
                                                      book: dict[str, Any]) -> None:
    folder: Path = tmp_path_factory.mktemp("random")
    os.environ.pop("TIERWISE_DATABASE_URL", None)
    with Workspace.init(folder / "ws") as ws:
        for kind, rows in book.items():
            if rows:
                path = folder / f"{kind}.parquet"
                pq.write_table(pa.Table.from_pylist(rows), path)
                ws.import_files(kind, [path])      # type: ignore[arg-type]
        for kind in KINDS:
            ws.store().execute(f"COPY {kind} TO '{folder / kind}.parquet' (FORMAT parquet)")
            spark.read.parquet(str(folder / f"{kind}.parquet")).createOrReplaceTempView(kind)
        on_spark = ibis.pyspark.connect(spark)
        expected = graded(ibis.duckdb.from_connection(ws.store()), ws.tables(), ws,
                          "value-tiers", AS_OF)
        found = graded(on_spark, CanonicalTables.of_store(on_spark, "spark"), ws, "value-tiers",
                       AS_OF)
    assert [r["customer_id"] for r in found] == [r["customer_id"] for r in expected]
    for left, right in zip(expected, found, strict=True):
        different = {k: (left[k], right.get(k)) for k in left
                     if not same(left[k], right.get(k))}
        assert different == {}, left["customer_id"]
