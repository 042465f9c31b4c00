"""Ranks over all customers without an unpartitioned window (tierwise.metrics.ranking): the rank
of every value and the quintile cut-offs are exact, whatever the number of ranges the
values are cut into — checked against counting by hand, on random values with many ties."""

from __future__ import annotations

import math
from collections.abc import Iterator

import duckdb
import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.metrics.ranking import quintile, quintile_cutoffs, rank_keys


@pytest.fixture(scope="module")
def backend() -> Iterator[object]:
    con = duckdb.connect()
    yield ibis.duckdb.from_connection(con)
    con.close()


values = st.lists(st.one_of(st.integers(-5, 5).map(float),
                            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
                  min_size=1, max_size=60)


@settings(max_examples=40, deadline=None)
@given(keys=values, ranges=st.sampled_from([1, 2, 3, 7]))
def test_every_key_is_ranked_by_the_rows_below_it(backend: object, keys: list[float],
                                                  ranges: int) -> None:
    weights = [abs(k) / 3 for k in keys]
    table = ibis.memtable(pa.table({"key": keys, "weight": weights}))
    ranked = rank_keys(backend, table, ranges=ranges)
    rows = backend.to_pyarrow(ranked.table).to_pylist()  # type: ignore[attr-defined]
    assert ranked.total == len(keys)
    assert sorted(r["key"] for r in rows) == sorted(set(keys))
    for row in rows:
        below = [(k, w) for k, w in zip(keys, weights, strict=True) if k < row["key"]]
        assert row["n"] == keys.count(row["key"])
        assert row["below"] == len(below)
        assert math.isclose(row["below_weight"], sum(w for _, w in below),
                            rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=40, deadline=None)
@given(keys=values, ranges=st.sampled_from([1, 4]))
def test_quintile_cutoffs_give_one_plus_five_times_the_share_below(
        backend: object, keys: list[float], ranges: int) -> None:
    table = ibis.memtable(pa.table({"key": keys}))
    cutoffs = quintile_cutoffs(backend, rank_keys(backend, table, ranges=ranges))
    scores = backend.to_pyarrow(  # type: ignore[attr-defined]
        table.select(key=table.key, score=quintile(table.key, cutoffs))).to_pylist()
    for row in scores:
        below = sum(1 for k in keys if k < row["key"])
        assert row["score"] == 1 + (5 * below) // len(keys)
