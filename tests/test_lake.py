"""tierwise.data.lake reads sources in place; besides Spark (tests/test_spark_runs.py) the same
code runs on DuckDB, as benchmarks/engines.py uses it: a CSV with Chinese headers is read
as text and cast, like an import."""

from __future__ import annotations

from pathlib import Path

import ibis

from tests.conftest import DATA
from tierwise.data import lake, store
from tierwise.data.sources import Source


def test_a_csv_read_in_place_on_duckdb_gives_the_canonical_orders(tmp_path: Path) -> None:
    con, store_con = store.connect(), store.connect()
    try:
        backend = ibis.duckdb.from_connection(con)
        found = lake.read_lake(backend, [Source("orders", path=str(DATA / "orders.csv"))],
                               root=tmp_path, rejects_dir=tmp_path / "rejects",
                               store_con=store_con)
        orders = backend.to_pyarrow(found.tables.orders.order_by("order_id")).to_pylist()
    finally:
        con.close()
        store_con.close()
    assert found.rejected == 0 and len(orders) == 10
    assert {"order_id", "customer_id", "order_date", "amount"} <= orders[0].keys()
    assert all(isinstance(row["amount"], float) for row in orders)
