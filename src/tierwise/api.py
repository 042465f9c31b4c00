"""The Python API for notebooks and scripts.

Two ways in:
- ``Workspace`` (re-exported here): import files, grade, read runs, explain, export.
- ``grade_frames``: grade in-memory dataframes (pandas, polars or Arrow) with a policy, no
  workspace and no history. The frames go through the same header mapping and validation as
  imported files.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tierwise.data import store
from tierwise.data.ingest import ImportResult, import_files
from tierwise.data.tables import CanonicalTables, latest_order_date
from tierwise.errors import WorkspaceError
from tierwise.grading.explanation import Explanation, explain_row, snapshot_attributes
from tierwise.grading.run import effective_tiers, evaluation
from tierwise.metrics.plan import COMPLETE
from tierwise.policy.loading import load_policy_text
from tierwise.policy.model import Policy
from tierwise.policy.presets import policy_source
from tierwise.record.runs import TierSummary, summarise
from tierwise.workspace import Workspace

__all__ = ["Graded", "Workspace", "grade_frames", "load_policy", "open_workspace"]


def open_workspace(path: str | Path | None = None) -> Workspace:
    """Open the workspace folder at ``path`` (default: TIERWISE_WORKSPACE, else the current
    folder); use it in a ``with`` block so its store and app database are closed.

    >>> with open_workspace("mycompany") as ws:                    # doctest: +SKIP
    ...     print(ws.run().as_of)
    """
    return Workspace(path)


def load_policy(policy: str | Path | Policy) -> Policy:
    """A Policy from a preset name, a YAML file path, YAML text, or a Policy; a PolicyError
    naming the line and field when it is not a valid policy.

    >>> load_policy("value-tiers").keys                            # doctest: +SKIP
    ['vip', 'important', 'ordinary', 'potential']
    """
    if isinstance(policy, Policy):
        return policy
    if "\n" in str(policy):
        return load_policy_text(str(policy))
    text, source = policy_source(str(policy))
    return load_policy_text(text, source=source)


@dataclass
class Graded:
    """The result of :func:`grade_frames`: one row per customer (metrics, scores, tier,
    stage), the policy and date graded, and the import results of the frames."""

    table: pa.Table
    policy: Policy
    as_of: dt.date
    aggregates: dict[tuple[str, str], float | None]
    imports: dict[str, ImportResult]

    def to_pandas(self) -> Any:
        """The graded table as a pandas DataFrame."""
        return self.table.to_pandas()

    def tiers(self) -> dict[str, str]:
        """Customer id → tier key.

        >>> grade_frames(orders).tiers()["C1"]                      # doctest: +SKIP
        'vip'
        """
        return dict(zip(self.table["customer_id"].to_pylist(), self.table["tier"].to_pylist(),
                        strict=True))

    def summary(self) -> list[TierSummary]:
        """Per tier in policy order: customers, revenue, profit and their shares."""
        return summarise(self.table, self.policy)[0]

    def explain(self, customer_id: str, lang: str = "zh") -> Explanation:
        """Why ``customer_id`` has its tier: which rule held, which failed and by how much,
        what would move it up; ``lang`` zh or en.

        >>> print(graded.explain("C1").reasons())                    # doctest: +SKIP
        """
        rows = self.table.filter(pc.equal(self.table["customer_id"], customer_id)).to_pylist()
        if not rows:
            raise WorkspaceError(f"customer {customer_id!r} was not graded")
        attributes = snapshot_attributes(self.table.column_names, self.policy)
        return explain_row(rows[0], self.policy, aggregates=self.aggregates, as_of=self.as_of,
                           run_id=None, attributes=attributes, lang=lang)


def grade_frames(orders: Any, customers: Any = None, interactions: Any = None, *,
                 payments: Any = None,
                 policy: str | Path | Policy = "value-tiers",
                 as_of: dt.date | None = None,
                 column_map: dict[str, str] | None = None) -> Graded:
    """Grade dataframes without a workspace: same validation, metrics and policy as a run.

    Column names may be canonical (customer_id, order_date, amount, …), the Chinese
    headers that imports recognise, or mapped with ``column_map`` ({"单据号": "order_id"}).
    Rejected rows are counted in ``Graded.imports``. ``payments`` (invoices: invoice_id,
    customer_id, due_date, amount, paid_date, …) gives the receivable metrics.

    Args:
        orders: order rows (order_id, customer_id, order_date, amount, …).
        customers, interactions, payments: the other canonical tables, optional.
        policy: a preset name, a policy file, YAML text or a Policy.
        as_of: the date graded (default: the latest order).
        column_map: source column → canonical field.

    >>> import pandas as pd
    >>> orders = pd.DataFrame({"订单号": ["A1"], "客户编号": ["C1"], "下单日期": ["2025-06-01"],
    ...                        "金额": [1200.0]})
    >>> grade_frames(orders, policy="abc").tiers()                 # doctest: +SKIP
    {'C1': 'A'}
    """
    chosen = load_policy(policy)
    con = store.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="tierwise-") as scratch:
            imports = _load_frames(con, Path(scratch), column_map, orders=orders,
                                   customers=customers, interactions=interactions,
                                   payments=payments)
        backend = ibis.duckdb.from_connection(con)
        tables = CanonicalTables.of_store(backend, "frames")
        day = as_of or latest_order_date(backend, tables.orders)
        # Every metric: a table for analysis, not a recorded run that pays for what it uses.
        with evaluation(backend, tables, chosen, day, COMPLETE) as ev:
            final = effective_tiers(ev.graded, chosen, None).order_by("customer_id")
            table = backend.to_pyarrow(final)
            return Graded(table, chosen, day, ev.aggregates, imports)
    finally:
        con.close()


def _load_frames(con: duckdb.DuckDBPyConnection, scratch: Path,
                 column_map: dict[str, str] | None, **frames: Any) -> dict[str, ImportResult]:
    results: dict[str, ImportResult] = {}
    # customers first: no placeholders
    for kind in ("customers", "orders", "interactions", "payments"):
        frame = frames.get(kind)
        if frame is None:
            continue
        path = scratch / f"{kind}.parquet"
        pq.write_table(_as_arrow(frame), path)
        mapping = {k: v for k, v in (column_map or {}).items() if k in frame_columns(frame)}
        results[kind] = import_files(con, kind, [path], rejects_dir=scratch / "rejects",
                                     column_map=mapping)
    return results


def frame_columns(frame: Any) -> list[str]:
    """The column names of a pandas, polars or Arrow frame."""
    return [str(c) for c in (frame.column_names if isinstance(frame, pa.Table) else frame.columns)]


def _as_arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow"):            # polars
        return frame.to_arrow()
    return pa.Table.from_pandas(frame, preserve_index=False)
