"""What differs between the engines an Ibis expression runs on: DuckDB (embedded, the
default) and Apache Spark. Everything else — metrics, scores, rules, tiers — is the same
Ibis code on both (tierwise.metrics, tierwise.grading)."""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir


def is_spark(backend: Any) -> bool:
    return str(getattr(backend, "name", "")) == "pyspark"


def materialise(backend: Any, name: str, expr: ir.Table) -> ir.Table:
    """Compute ``expr`` once and keep it for the run: a temporary table on DuckDB; on Spark,
    which has no temporary tables, a temporary view held in Spark's cache."""
    if is_spark(backend):
        backend.create_view(name, expr, overwrite=True)
        backend._session.table(name).cache().count()
        return backend.table(name)
    return backend.create_table(name, expr, temp=True)


def release(backend: Any, name: str) -> None:
    """Drop what :func:`materialise` made (and Spark's cached copy of it)."""
    if is_spark(backend):
        if name in backend.list_tables():
            backend._session.catalog.uncacheTable(name)
        backend.drop_view(name, force=True)
        return
    backend.drop_table(name, force=True)
