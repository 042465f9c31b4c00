"""Automatic grading: k-means clusters of customers, ranked by value and named as tiers.

The engine computes the metrics; only the few feature columns come to Python, as Arrow and
then numpy, where scikit-learn fits k-means. Features are log-transformed where skewed (see
`Clustering.log_features`) and standardised, so that days, counts and money weigh alike.

Only customers who ordered in the window (``order_count > 0``) are clustered: customers
without orders have no recency and no spend to place them, and go to the last tier together
with the lowest cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tierwise.errors import TierwiseError
from tierwise.policy.model import Clustering, Policy

Matrix = npt.NDArray[np.float64]


class ClusteringError(TierwiseError):
    """The customers cannot be clustered into the policy's tiers (too few, no data)."""


@dataclass(frozen=True)
class ClusterCentre:
    """One cluster as a tier: its centre in the metrics' own units (days, orders, money)."""

    tier: str
    size: int                     # clustered customers (not counting those without orders)
    centre: dict[str, float]      # feature -> value, back-transformed from the fitted space
    value_mean: float | None      # mean of the ranking metric among members


@dataclass(frozen=True)
class ClusterResult:
    assignments: pa.Table         # customer_id (string), computed_tier (string), every customer
    centres: list[ClusterCentre]  # one per tier, best first
    features: list[str]           # the features fitted on; all-null ones are left out
    dropped: list[str]            # features left out because no clustered customer has them
    value: str                    # the metric clusters are ranked by
    unclustered: int              # customers without orders in the window, in the last tier

    def to_json(self) -> dict[str, Any]:
        return {
            "features": self.features, "dropped": self.dropped, "value": self.value,
            "unclustered": self.unclustered,
            "centres": [c.__dict__ for c in self.centres],
        }


@dataclass(frozen=True)
class _Space:
    """How raw feature values map to the standardised space k-means sees, and back."""

    log: npt.NDArray[np.bool_]
    mean: Matrix
    scale: Matrix

    def forward(self, raw: Matrix) -> Matrix:
        return (_signed_log(raw, self.log) - self.mean) / self.scale

    def back(self, points: Matrix) -> Matrix:
        shifted = points * self.scale + self.mean
        return np.where(self.log, np.sign(shifted) * np.expm1(np.abs(shifted)), shifted)


def cluster_tiers(backend: Any, metrics: ir.Table, policy: Policy) -> ClusterResult:
    """Cluster the customers in `metrics` (one row per customer) into the policy's tiers."""
    clustering = _settings(policy)
    keys = policy.keys
    table = _fetch(backend, metrics, clustering)
    ordered = np.asarray(pc.greater(pc.fill_null(table["order_count"], 0), 0).to_numpy(), bool)
    buyers = table.filter(pa.array(ordered))
    features = [n for n in clustering.features if buyers[n].null_count < buyers.num_rows]
    if buyers.num_rows and not features:
        raise ClusteringError("no customer with orders has any of the clustering features "
                              f"({', '.join(clustering.features)}); nothing to cluster on")
    raw = _impute_medians(_matrix(buyers, features))
    _require_enough(raw, len(keys))
    logged = [n in clustering.log_features for n in features]
    raw = _clip_linear_outliers(raw, logged)
    space = _space(raw, logged)
    labels, centres = _kmeans(space.forward(raw), len(keys), clustering.seed)
    value = _floats(buyers[clustering.value])
    order = _rank_clusters(labels, value, centres)
    tier_of_label = np.empty(len(keys), np.int64)
    tier_of_label[order] = np.arange(len(keys))
    tiers = np.full(table.num_rows, len(keys) - 1, np.int64)   # no orders: the last tier
    tiers[ordered] = tier_of_label[labels]
    in_units = space.back(centres)
    return ClusterResult(
        assignments=pa.table({
            "customer_id": table["customer_id"],
            "computed_tier": pc.take(pa.array(keys, pa.string()), pa.array(tiers)),
        }),
        centres=[
            ClusterCentre(
                tier=keys[rank], size=int((labels == label).sum()),
                centre={n: float(v) for n, v in zip(features, in_units[label], strict=True)},
                value_mean=_mean_or_none(value[labels == label]),
            )
            for rank, label in enumerate(order)
        ],
        features=features, dropped=[n for n in clustering.features if n not in features],
        value=clustering.value, unclustered=table.num_rows - buyers.num_rows,
    )


def with_cluster_tiers(table: ir.Table, result: ClusterResult) -> ir.Table:
    """`table` with the `computed_tier` the clusters give (as `computed_tiers` does for rules).

    Customers missing from the assignments (none, when `table` is the clustered metrics) take
    the last tier.
    """
    assigned = ibis.memtable(result.assignments.rename_columns(["customer_id", "_tw_tier"]))
    joined = table.left_join(assigned, "customer_id")
    last = ibis.literal(result.centres[-1].tier)
    return joined.select(table, computed_tier=joined["_tw_tier"].coalesce(last))


def _settings(policy: Policy) -> Clustering:
    if policy.clustering is None:
        raise ClusteringError(f"policy {policy.name!r} has no clustering block")
    return policy.clustering


def _fetch(backend: Any, metrics: ir.Table, clustering: Clustering) -> pa.Table:
    """The needed columns only, sorted by customer so the fit does not depend on row order."""
    names = dict.fromkeys(["order_count", *clustering.features, clustering.value])
    columns = {"customer_id": metrics.customer_id.cast("string")}
    columns.update({n: metrics[n].cast("float64") for n in names})
    return backend.to_pyarrow(metrics.select(**columns).order_by("customer_id"))


def _matrix(table: pa.Table, names: list[str]) -> Matrix:
    if not names:
        return np.empty((table.num_rows, 0))
    return np.column_stack([_floats(table[n]) for n in names])


def _floats(column: pa.ChunkedArray) -> Matrix:
    """Nulls become NaN."""
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _impute_medians(raw: Matrix) -> Matrix:
    # A customer with a feature unknown (margin without cost data) is placed as a typical
    # customer on that feature: the median of those who have it, robust to outliers.
    if not raw.size:
        return raw
    medians = np.nanmedian(raw, axis=0)
    return np.where(np.isnan(raw), medians, raw)


def _require_enough(raw: Matrix, k: int) -> None:
    # k-means cannot make k distinct clusters from fewer than k distinct points.
    distinct = _distinct_rows_up_to(raw, k)
    if distinct < k:
        raise ClusteringError(
            f"clustering into {k} tiers needs at least {k} customers with orders whose "
            f"metrics differ; found {distinct}. Use fewer tiers or a rule-based policy.")


def _distinct_rows_up_to(raw: Matrix, limit: int) -> int:
    """The number of distinct rows, counted up to `limit`: `limit` passes, not a sort."""
    found, remaining = 0, raw
    while remaining.shape[0] and found < limit:
        found += 1
        remaining = remaining[(remaining != remaining[0]).any(axis=1)]
    return found


def _clip_linear_outliers(raw: Matrix, logged: list[bool]) -> Matrix:
    """Features that are not log-transformed (margin) clipped to their 1st–99th percentiles.

    A handful of extreme margins (−4,870% on a refund-heavy account) would otherwise take a
    whole cluster, hence a whole tier, to themselves. Log features keep their tails: the
    biggest spenders are exactly whom the best tier should hold, and the log tames them.
    """
    clipped = raw.copy()
    for column, is_log in enumerate(logged):
        if not is_log and raw.shape[0]:
            low, high = np.percentile(raw[:, column], [1, 99])
            clipped[:, column] = np.clip(raw[:, column], low, high)
    return clipped


def _signed_log(raw: Matrix, log: npt.NDArray[np.bool_]) -> Matrix:
    # log1p of the magnitude keeps negative values (refunds above purchases) valid and ordered.
    return np.where(log, np.sign(raw) * np.log1p(np.abs(raw)), raw)


def _space(raw: Matrix, log: list[bool]) -> _Space:
    mask = np.asarray(log, dtype=bool)
    logged = _signed_log(raw, mask)
    scale = logged.std(axis=0)
    # A constant feature carries no information; scale 1 keeps it at zero distance.
    return _Space(mask, logged.mean(axis=0), np.where(scale > 0, scale, 1.0))


def _kmeans(points: Matrix, k: int, seed: int) -> tuple[npt.NDArray[np.int32], Matrix]:
    """Cluster labels of the points and the centres, in the standardised space."""
    from sklearn.cluster import KMeans  # here: importing scikit-learn takes a second or more

    model = KMeans(n_clusters=k, n_init=10, random_state=seed)
    labels = model.fit_predict(points)
    return labels, model.cluster_centers_


def _rank_clusters(labels: npt.NDArray[np.int32], value: Matrix,
                   centres: Matrix) -> list[int]:
    """Cluster labels best first: by mean value among members, then by centre, for ties."""
    def key(label: int) -> tuple[float, tuple[float, ...]]:
        mean = _mean_or_none(value[labels == label])
        return (-mean if mean is not None else np.inf, tuple(-centres[label]))
    return sorted(range(len(centres)), key=key)


def _mean_or_none(values: Matrix) -> float | None:
    known = values[~np.isnan(values)]
    return float(known.mean()) if known.size else None
