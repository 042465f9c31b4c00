"""Vectorised pieces of the demo tables (numpy and Arrow, no per-row Python loop): exact
quotas, string columns by index, dates, per-day ranks, and the C000123 / SO20250307-000123
ids. Used by :mod:`tierwise.demo.synthetic` and :mod:`tierwise.demo.receivables`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _shuffled_quota(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    """Codes 0..len(shares)-1 in exact proportions (largest remainder), shuffled."""
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - int(counts.sum())
    if rest:
        counts[np.argsort(counts - raw, kind="stable")[:rest]] += 1
    codes = np.repeat(np.arange(len(shares)), counts)
    rng.shuffle(codes)
    return codes


def _take(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(idx))


def _ragged_take(groups: tuple[tuple[str, ...], ...], group: np.ndarray,
                 u: np.ndarray) -> pa.Array:
    """For each row pick uniformly (by ``u`` in [0, 1)) from ``groups[group]``."""
    sizes = np.array([len(g) for g in groups])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = tuple(s for g in groups for s in g)
    within = np.minimum((u * sizes[group]).astype(np.int64), sizes[group] - 1)
    return _take(flat, offsets[group] + within)


def _dates(epoch_days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(epoch_days.astype(np.int32), pa.int32(), mask=mask)
    return arr.cast(pa.date32())


def _group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal (sorted) ``keys``."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    lengths = np.diff(np.concatenate([starts, [n]]))
    return np.arange(n) - np.repeat(starts, lengths)


def _sort_days(day: np.ndarray) -> np.ndarray:
    """Stable argsort of small non-negative day numbers (radix sort when they fit int16)."""
    small = np.int16 if day.size == 0 or int(day.max()) < 32767 else np.int32
    return np.argsort(day.astype(small), kind="stable")


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) ASCII matrix.

    Small ranges (ids, per-day sequence numbers) go through a lookup table of all values,
    which is one gather instead of ``width`` integer divisions per value."""
    values = values.astype(np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    top = int(values.max()) if values.size else 0
    if top >= 4_000_000 or top >= len(values):
        return ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    table = ((np.arange(top + 1)[:, None] // powers) % 10 + 48).astype(np.uint8)
    return _gather_rows(table, values)


def _gather_rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for a (k, w) uint8 matrix, gathering each row as one w-byte item."""
    width = table.shape[1]
    rows = np.ascontiguousarray(table).view(np.dtype((np.void, width)))[index]
    return rows.view(np.uint8).reshape(len(index), width)


def _ascii_strings(*parts: np.ndarray | bytes, n: int) -> pa.Array:
    """A string array from fixed-width ASCII pieces: (n, w) uint8 matrices or constants."""
    cols = [np.broadcast_to(np.frombuffer(p, np.uint8), (n, len(p))) if isinstance(p, bytes)
            else p for p in parts]
    chars = np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((n, 0))
    width = chars.shape[1]
    offsets = np.arange(n + 1, dtype=np.int64) * width
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)),
                                           pa.py_buffer(chars))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _customer_ids(index: np.ndarray, n_customers: int) -> pa.Array:
    """C000123-style ids for 0-based customer positions (wider when there are 10^6+)."""
    width = max(6, len(str(n_customers)))
    return _ascii_strings(b"C", _digits(index + 1, width), n=len(index))


def _width(values: np.ndarray, minimum: int) -> int:
    return max(minimum, len(str(int(values.max())))) if values.size else minimum


def _order_ids(day: np.ndarray, start_day: int, span: int) -> pa.Array:
    """Ids like SO20250307-000123 for rows sorted by ``day``: date, then rank within the day."""
    dates = np.arange(start_day, start_day + span + 1).astype("datetime64[D]")
    ymd = np.char.replace(np.datetime_as_string(dates, unit="D"), "-", "")
    ymd_chars = np.frombuffer(ymd.astype("S8").tobytes(), np.uint8).reshape(-1, 8)
    seq = _group_rank(day) + 1
    return _ascii_strings(b"SO", _gather_rows(ymd_chars, day), b"-", _digits(seq, _width(seq, 6)),
                          n=len(day))


def _mean_one_lognormal(rng: np.random.Generator, sigma: float | np.ndarray,
                        size: int) -> np.ndarray:
    return np.exp(sigma * rng.standard_normal(size) - 0.5 * np.square(sigma))
