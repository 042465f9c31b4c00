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


def _orders_file(path: Path, ids: list[str], *, extra: bool = False) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"order_id": ids, "customer_id": ["C1"] * len(ids),
               "order_date": ["2025-01-0" + str(i + 1) for i in range(len(ids))],
               "amount": [100.0] * len(ids)}
    if extra:
        columns["渠道"] = ["线上"] * len(ids)
    pq.write_table(pa.table(columns), path)
    return str(path)


def test_parquet_files_with_the_same_columns_are_read_together(tmp_path: Path) -> None:
    """Files given one by one with the same columns are one read (on Spark one schema job
    instead of one per file); a file with other columns is read on its own; every row of
    each is there once."""
    same = [Source("orders", path=_orders_file(tmp_path / f"o{i}.parquet", [f"A{i}", f"B{i}"]))
            for i in range(3)]
    other = Source("orders", path=_orders_file(tmp_path / "x.parquet", ["X1"], extra=True))
    customers = Source("customers", path=str(DATA / "customers.csv"))
    specs = [customers, *same, other]
    groups = lake._read_together(specs, tmp_path)
    assert groups == [[customers], same, [other]]
    con, store_con = store.connect(), store.connect()
    try:
        backend = ibis.duckdb.from_connection(con)
        found = lake.read_lake(backend, specs, root=tmp_path, rejects_dir=tmp_path / "rejects",
                               store_con=store_con)
        ids = sorted(backend.to_pyarrow(found.tables.orders.select("order_id"))["order_id"]
                     .to_pylist())
    finally:
        con.close()
        store_con.close()
    assert ids == ["A0", "A1", "A2", "B0", "B1", "B2", "X1"]


def test_files_with_another_map_are_not_read_together(tmp_path: Path) -> None:
    first = Source("orders", path=_orders_file(tmp_path / "a.parquet", ["A"]))
    second = Source("orders", path=_orders_file(tmp_path / "b.parquet", ["B"]),
                    map={"amount": "amount"})
    assert lake._read_together([first, second], tmp_path) == [[first], [second]]


def test_the_rows_a_run_reads_are_known_for_the_store_and_local_parquet_files(
        tmp_path: Path) -> None:
    files = [Source("orders", path=_orders_file(tmp_path / f"o{i}.parquet", ["A", "B", "C"]))
             for i in range(2)]
    con = store.connect()
    try:
        assert lake.input_rows(files, root=tmp_path, store_con=con) == 6
        assert lake.input_rows([], root=tmp_path, store_con=con) == 0      # an empty store
        csv = Source("orders", path=str(DATA / "orders.csv"))
        assert lake.input_rows([*files, csv], root=tmp_path, store_con=con) is None
    finally:
        con.close()
