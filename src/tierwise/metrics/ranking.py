"""Ranks over every customer — RFM quintiles, percentile scores, ABC spend shares — without
an unpartitioned window, which on a cluster funnels every row through one task.

The rank of a value is the number of rows with a smaller one. It is computed on the
distinct values (a distributed GROUP BY), whose running counts are taken range by range:
the values are cut into ``ranges`` ranges at approximate quantiles (only the balance of the
ranges depends on them, never the result), each range is summed on its own (a window
partitioned by range), and each range's offset — the rows in the ranges below it — is a
handful of numbers brought back to the driver. The result is exact on every engine; DuckDB,
one machine, uses a single range.

Quintile scores need no rank per row at all: a score changes at four cut-off values, found
as aggregates over the distinct values, and the score is a comparison with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from tierwise.data.engines import is_spark

MAX_RANGES = 256


def ranges_for(backend: Any) -> int:
    """How many ranges to rank in: one on DuckDB; on Spark, one per shuffle partition."""
    if not is_spark(backend):
        return 1
    partitions = int(backend._session.conf.get("spark.sql.shuffle.partitions", "200"))
    return max(2, min(MAX_RANGES, partitions))


@dataclass(frozen=True)
class Ranked:
    """Distinct keys with ``n`` (rows with the key), ``below`` (rows with a smaller key) and
    ``below_weight`` (their summed weight); ``total`` is the number of rows."""

    table: ir.Table
    total: int


def rank_keys(backend: Any, keys: ir.Table, *, ranges: int) -> Ranked:
    """Rank the ``key`` column of ``keys`` (non-null; with an optional ``weight`` column)."""
    if "weight" not in keys.columns:
        keys = keys.mutate(weight=ibis.literal(0.0, "float64"))
    distinct = keys.group_by("key").aggregate(n=keys.count(), weight=keys.weight.sum())
    if ranges <= 1:
        whole = ibis.window(order_by="key", preceding=None, following=0)
        table = distinct.mutate(
            below=distinct.n.sum().over(whole) - distinct.n,
            below_weight=distinct.weight.sum().over(whole) - distinct.weight)
        total = backend.execute(distinct.n.sum())
        return Ranked(table.select("key", "n", "below", "below_weight"), _int(total))
    bounds = _bounds(backend, distinct, ranges)
    in_range = sum((distinct.key >= b).cast("int64") for b in bounds) if bounds else 0
    bucketed = distinct.mutate(range_no=ibis.literal(0, "int64") + in_range)
    per_range = backend.to_pyarrow(bucketed.group_by("range_no").aggregate(
        n=bucketed.n.sum(), weight=bucketed.weight.sum()).order_by("range_no"))
    offsets, total = _offsets(per_range)
    own = ibis.window(group_by="range_no", order_by="key", preceding=None, following=0)
    running = bucketed.mutate(cum_n=bucketed.n.sum().over(own),
                              cum_weight=bucketed.weight.sum().over(own))
    o = ibis.memtable(offsets)
    joined = running.inner_join(o, running.range_no == o.range_no)
    table = joined.select(
        "key", "n",
        below=joined.offset_n + joined.cum_n - joined.n,
        below_weight=joined.offset_weight + joined.cum_weight - joined.weight)
    return Ranked(table, total)


def _bounds(backend: Any, distinct: ir.Table, ranges: int) -> list[float]:
    quantiles = {f"q{i}": distinct.key.approx_quantile(i / ranges) for i in range(1, ranges)}
    row = backend.to_pyarrow(distinct.aggregate(**quantiles)).to_pylist()[0]
    return sorted({float(v) for v in row.values() if v is not None})


def _offsets(per_range: pa.Table) -> tuple[pa.Table, int]:
    """Each range's offset: the rows (and weight) of every range below it."""
    numbers, weights, offset_n, offset_w = [], [], 0, 0.0
    for n, weight in zip(per_range["n"].to_pylist(), per_range["weight"].to_pylist(),
                         strict=True):
        numbers.append(offset_n)
        weights.append(offset_w)
        offset_n += int(n or 0)
        offset_w += float(weight or 0.0)
    return pa.table({"range_no": per_range["range_no"], "offset_n": pa.array(numbers, pa.int64()),
                     "offset_weight": pa.array(weights, pa.float64())}), offset_n


def quintile_cutoffs(backend: Any, ranked: Ranked) -> list[float | None]:
    """The smallest key whose score is at least 2, 3, 4 and 5, where a score is
    1 + floor(5 × rows below / rows): score ≥ k + 1 exactly when 5 × below ≥ k × total."""
    t = ranked.table
    cuts = {f"c{k}": t.key.min(where=t.below * 5 >= k * ranked.total) for k in range(1, 5)}
    row = backend.to_pyarrow(t.aggregate(**cuts)).to_pylist()[0]
    return [None if row[f"c{k}"] is None else float(row[f"c{k}"]) for k in range(1, 5)]


def quintile(key: ir.NumericValue, cutoffs: Sequence[float | None]) -> ir.IntegerValue:
    """1–5 by the cut-offs of :func:`quintile_cutoffs` (null where key is null)."""
    steps = [(key >= cut).cast("int64") for cut in cutoffs if cut is not None]
    score = ibis.literal(1, "int64")
    for step in steps:
        score = score + step
    return ibis.cases((key.notnull(), score), else_=ibis.null("int64"))


def _int(value: Any) -> int:
    return 0 if value is None or value != value else int(value)
