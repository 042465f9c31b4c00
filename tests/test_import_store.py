"""The store schema: canonical tables, no key indexes, extra customer attributes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tierwise.data.ingest import import_files
from tierwise.data.store import customer_attribute_columns, ensure_schema
from tierwise.errors import InputError


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    return con.execute(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()


def test_schema_has_the_canonical_tables_and_columns() -> None:
    con = duckdb.connect()
    ensure_schema(con)
    assert columns(con, "customers") == [
        ("customer_id", "VARCHAR", False),
        ("name", "VARCHAR", True),
        ("contact", "VARCHAR", True),
        ("industry", "VARCHAR", True),
        ("region", "VARCHAR", True),
        ("size", "VARCHAR", True),
        ("owner", "VARCHAR", True),
        ("since", "DATE", True),
        ("placeholder", "BOOLEAN", False),
    ]
    assert columns(con, "orders") == [
        ("order_id", "VARCHAR", False),
        ("customer_id", "VARCHAR", False),
        ("order_date", "DATE", False),
        ("amount", "DOUBLE", False),
        ("cost", "DOUBLE", True),
        ("profit", "DOUBLE", True),
        ("product", "VARCHAR", True),
        ("category", "VARCHAR", True),
        ("channel", "VARCHAR", True),
    ]
    assert columns(con, "interactions") == [
        ("interaction_id", "VARCHAR", False),
        ("customer_id", "VARCHAR", False),
        ("date", "DATE", False),
        ("type", "VARCHAR", False),
        ("satisfaction", "DOUBLE", True),
        ("note", "VARCHAR", True),
    ]


def test_schema_has_no_key_indexes_so_large_stores_stay_small_in_memory() -> None:
    con = duckdb.connect()
    ensure_schema(con)
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)
    assert con.execute(
        "SELECT count(*) FROM duckdb_constraints() "
        "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    ).fetchone() == (0,)


def test_ensure_schema_is_idempotent_and_keeps_data() -> None:
    con = duckdb.connect()
    ensure_schema(con)
    con.execute("INSERT INTO customers (customer_id) VALUES ('C1')")
    ensure_schema(con)
    assert con.execute("SELECT customer_id, placeholder FROM customers").fetchall() == [
        ("C1", False)
    ]
    assert customer_attribute_columns(con) == []


def test_a_failed_strict_customers_import_adds_no_attribute_column(tmp_path: Path) -> None:
    con = duckdb.connect()
    ensure_schema(con)
    path = tmp_path / "customers.csv"
    path.write_text("客户编号,员工人数,合作开始日期\nC1,120,2020-01-01\nC2,80,someday\n", "utf-8")
    with pytest.raises(InputError, match="row 3, column '合作开始日期': not a date: 'someday'"):
        import_files(con, "customers", [path], rejects_dir=tmp_path, strict=True)
    assert customer_attribute_columns(con) == []
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (0,)


def test_an_unknown_kind_is_an_input_error(tmp_path: Path) -> None:
    con = duckdb.connect()
    ensure_schema(con)
    with pytest.raises(InputError, match="unknown import kind 'products'"):
        import_files(con, "products", [tmp_path], rejects_dir=tmp_path)  # type: ignore[arg-type]
