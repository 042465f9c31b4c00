"""The read verbs of a workspace: its runs and their snapshots, explanations, exports,
breakdowns, target lists, customer pages, what-if and backtests. A mixin of
tierwise.workspace.Workspace, kept apart from the writes so each file reads in one sitting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_dataset
import sqlalchemy as sa

from tierwise.common.vocabulary import METRICS
from tierwise.data.engines import is_local
from tierwise.data.tables import CanonicalTables
from tierwise.errors import RunNotFound, WorkspaceError
from tierwise.grading.backtest import Backtest, backtest
from tierwise.grading.explanation import Explanation, explain_row, snapshot_attributes
from tierwise.grading.pipeline import STORE_LABEL
from tierwise.grading.run import metrics_of
from tierwise.grading.what_if import WhatIf, what_if
from tierwise.policy.model import Policy
from tierwise.record import history
from tierwise.record.audit import AuditEntry, audit_entries
from tierwise.record.runs import local_snapshot, snapshot_files, snapshot_location
from tierwise.reports import customers
from tierwise.reports.breakdown import Breakdown, breakdown
from tierwise.reports.grading_table import columns_for, table_rows, write_grading_table
from tierwise.reports.targets import target_list
from tierwise.work import owners

if TYPE_CHECKING:
    import duckdb


class RunReading:
    """Reading runs, explaining and reporting; needs the handle's store, app database,
    folders, language and policy (tierwise.workspace.Workspace)."""

    if TYPE_CHECKING:
        @property
        def runs_dir(self) -> Path: ...
        @property
        def rejects_dir(self) -> Path: ...
        @property
        def language(self) -> str: ...
        @property
        def appdb(self) -> sa.Engine: ...

        def store(self) -> duckdb.DuckDBPyConnection: ...
        def tables(self) -> CanonicalTables: ...
        def policy(self, ref: str | None = None) -> tuple[Policy, str]: ...
        def check_policy(self, text: str, *, source: str = "policy") -> Policy: ...
        def _audit(self, action: str, target: str = "", detail: str = "",
                   user: str | None = None) -> None: ...

    def tier_labels(self, lang: str | None = None) -> dict[str, str]:
        """Tier keys to labels: the latest run's policy, else the workspace's."""
        try:
            tiers = self.run().policy.tiers
        except RunNotFound:
            tiers = self.policy()[0].tiers
        return {t.key: t.display(lang or self.language) for t in tiers}

    def what_if(self, *, policy: str | None = None, policy_text: str | None = None,
                as_of: dt.date | None = None) -> WhatIf:
        """Grade with a policy (a preset or file, or the text of one) without recording a
        run; who would move against the latest run (see tierwise.grading.what_if)."""
        chosen = (self.check_policy(policy_text) if policy_text is not None
                  else self.policy(policy)[0])
        backend = ibis.duckdb.from_connection(self.store())
        return what_if(backend, self.tables(), chosen, appdb=self.appdb,
                       runs_dir=self.runs_dir, as_of=as_of, lang=self.language)

    def backtest(self, ends: Sequence[dt.date], *,
                 policies: Sequence[str | None] = (None,)) -> list[Backtest]:
        """Grade each period end with each policy, recording nothing (tierwise.grading.backtest)."""
        backend = ibis.duckdb.from_connection(self.store())
        return [backtest(backend, self.tables(), self.policy(ref)[0], ends,
                         lang=self.language) for ref in policies]

    def customer_page(self, flt: customers.CustomerFilter, *, scope: str | None,
                      facets: bool = False, run_id: int | None = None
                      ) -> tuple[history.RunRecord, customers.CustomerPage]:
        """One page of a run's customers within a reader's scope (tierwise.reports.customers)."""
        record = self.run(run_id)
        return record, customers.list_customers(
            self.store(), self.snapshot(record), record.policy.keys,
            flt, scope=scope, warned=self._warned(flt), facets=facets)

    def customer_ids(self, flt: customers.CustomerFilter, *, scope: str | None,
                     run_id: int | None = None) -> list[str]:
        """Every customer of a run the filter and scope let through, in list order."""
        record = self.run(run_id)
        return customers.matching_ids(
            self.store(), self.snapshot(record), record.policy.keys,
            flt, scope=scope, warned=self._warned(flt))

    def _warned(self, flt: customers.CustomerFilter) -> pa.Table | None:
        if flt.warning is None:
            return None
        return customers.warned_customers(self.appdb, flt.warning, dt.date.today())

    def rejects_file(self, name: str) -> Path:
        """A rejects file by its name, never a path outside rejects/ (names come from users)."""
        folder = self.rejects_dir.resolve()
        path = (folder / name).resolve()
        if path.parent != folder or not path.is_file():
            raise WorkspaceError(f"no rejects file {name!r}")
        return path

    def runs(self) -> list[history.RunRecord]:
        """Every recorded run, oldest first."""
        return history.list_runs(self.appdb)

    def run(self, run_id: int | None = None) -> history.RunRecord:
        """One run (default: the latest); RunNotFound when there is none.

        >>> ws.run().as_of                                             # doctest: +SKIP
        datetime.date(2025, 12, 31)
        """
        return history.get_run(self.appdb, run_id)

    def assignments(self, run_id: int | None = None, *,
                    customer_id: str | None = None) -> pa.Table:
        """The run's snapshot: every customer's metrics, scores, tiers and bases (or one
        customer's row, read with a filter rather than the whole file)."""
        record = self.run(run_id)
        location = self.snapshot(record)
        files = snapshot_files(location)
        if not files:
            raise WorkspaceError(f"the snapshot of run {record.id} is missing: {location}")
        dataset = pa_dataset.dataset(files, format="parquet")
        if customer_id is not None:
            return dataset.to_table(filter=pc.field("customer_id") == customer_id)
        return dataset.to_table()

    def snapshot(self, record: history.RunRecord) -> str:
        """Where a run's assignments are on this machine: a Parquet file, or a glob over its
        part files (a clear error for a run written to a cluster filesystem)."""
        return local_snapshot(snapshot_location(self.runs_dir, record.id, record.snapshot))

    def _snapshot_files(self, record: history.RunRecord) -> list[str]:
        """A run's snapshot files on this machine; none for one kept on a cluster."""
        location = snapshot_location(self.runs_dir, record.id, record.snapshot)
        return snapshot_files(location) if is_local(location) else []

    def explanations(self, run_id: int | None = None, *, tier: str | None = None,
                     customer_id: str | None = None, lang: str | None = None,
                     rows: pa.Table | None = None) -> Iterator[Explanation]:
        """Every customer of a run (optionally one tier or one customer), explained;
        ``rows``: the run's snapshot rows to explain when the caller holds them already
        (the web server keeps the latest run in memory), instead of reading the file."""
        record = self.run(run_id)
        snapshot = rows if rows is not None else self.assignments(record.id,
                                                                 customer_id=customer_id)
        if tier is not None:
            if tier not in record.policy.keys:
                raise WorkspaceError(f"unknown tier {tier!r}; tiers of run {record.id}: "
                                     + ", ".join(record.policy.keys))
            snapshot = snapshot.filter(pc.equal(snapshot["tier"], tier))
        if customer_id is not None:
            snapshot = snapshot.filter(pc.equal(snapshot["customer_id"], customer_id))
        attributes = snapshot_attributes(snapshot.column_names, record.policy)
        overrides = (history.overrides_by_id(self.appdb)
                     if pc.any(pc.is_valid(snapshot["override_id"])).as_py() else {})
        for row in snapshot.to_pylist():
            override = overrides.get(row["override_id"]) if row.get("override_id") else None
            yield explain_row(row, record.policy, aggregates=record.aggregate_values(),
                              as_of=record.as_of, run_id=record.id, attributes=attributes,
                              lang=lang or self.language, override=override,
                              models=record.models)

    def explain(self, customer_id: str, run_id: int | None = None, *,
                lang: str | None = None, complete: bool = True,
                row: pa.Table | None = None) -> Explanation:
        """Why a customer has their tier in a run (default: the latest): the rule that held,
        those that failed and by how much, what would move them up, their tier history and
        owner changes. With ``complete=False`` only the metrics the run kept (no scan of
        the customer's orders: the web's profile page, until asked for the rest); ``row``:
        the customer's snapshot row when the caller holds it (see ``explanations``).

        >>> print("\n".join(ws.explain("C000123").reasons()))        # doctest: +SKIP
        """
        found = next(self.explanations(run_id, customer_id=customer_id, lang=lang, rows=row),
                     None)
        if found is None:
            raise WorkspaceError(f"customer {customer_id!r} is not in run "
                                 f"{self.run(run_id).id}")
        if complete:
            self._complete_metrics(found)
        found.history = history.customer_history(self.appdb, customer_id, self._snapshot_files)
        found.owner_changes = owners.owner_history(self.appdb, customer_id)
        return found

    def _complete_metrics(self, found: Explanation) -> None:
        """Add the metrics the run left out (tierwise.metrics.plan), computed for this one
        customer from the store as of the run's date: only for a run of the store."""
        record = self.run(found.run_id)
        if record.source != STORE_LABEL or (record.engine or "duckdb") != "duckdb":
            return
        backend = ibis.duckdb.from_connection(self.store())
        tables = CanonicalTables.of_store(backend, STORE_LABEL)
        values = metrics_of(backend, tables, record.policy, record.as_of, found.customer_id)
        shown = set(found.metrics) | set(found.dimension_scores) | {"customer_id", "name"}
        for name, value in values.items():
            if name in METRICS and name not in shown:
                found.metrics[name] = value
                found.computed_now.append(name)

    def export(self, path: str | Path, run_id: int | None = None, *,
               lang: str | None = None, customer_ids: set[str] | None = None) -> int:
        """Write the 客户分级表 grading table (.xlsx or .csv); returns the number of rows.
        ``customer_ids`` limits it to those customers (a filtered list, a rep's own)."""
        lang = lang or self.language
        record = self.run(run_id)
        snapshot = self.assignments(record.id)
        columns = columns_for(record.policy, snapshot.column_names, lang)
        changes = dict(zip(snapshot["customer_id"].to_pylist(), snapshot["change"].to_pylist(),
                           strict=True))
        chosen = self.explanations(record.id, lang=lang)
        if customer_ids is not None:
            chosen = (e for e in chosen if e.customer_id in customer_ids)
        ordered = sorted(chosen,
                         key=lambda e: (record.policy.rank(e.tier),
                                        -(e.metrics.get("annual_spend") or 0.0),
                                        e.customer_id))
        title = (f"客户分级表 {record.as_of.isoformat()}" if lang.startswith("zh")
                 else f"Grading {record.as_of.isoformat()}")
        rows = write_grading_table(Path(path), columns,
                                   table_rows(ordered, changes, columns, lang),
                                   title=title, lang=lang)
        self._audit("export", f"run {record.id}", f"{rows} customers, {Path(path).name}")
        return rows

    def breakdown(self, by: Sequence[str], run_id: int | None = None, *,
                  lang: str | None = None) -> Breakdown:
        """Attributes or stage crossed with tiers: customers, revenue, profit per cell."""
        record = self.run(run_id)
        return breakdown(self.assignments(record.id), record.policy, by,
                         lang or self.language, run_id=record.id,
                         as_of=record.as_of.isoformat())

    def targets(self, run_id: int | None = None, *, tiers: Sequence[str] = (),
                stages: Sequence[str] = (), filters: dict[str, list[str]] | None = None,
                lang: str | None = None) -> pa.Table:
        """A target list: the run's customers of these tiers, stages and attribute values,
        with contact fields (tierwise.reports.targets)."""
        record = self.run(run_id)
        return target_list(self.assignments(record.id), record.policy, tiers=tiers,
                           stages=stages, filters=filters, lang=lang or self.language)

    def audit_log(self, *, since: dt.date | None = None, user: str | None = None,
                  action: str | None = None, limit: int | None = 100) -> list[AuditEntry]:
        """The audit log newest first: who did what, when, through which interface and from
        where; from a date on, of one person, of one action (tierwise.record.audit.ACTIONS).

        >>> [e.action for e in ws.audit_log(user="王芳", limit=5)]     # doctest: +SKIP
        """
        return audit_entries(self.appdb, limit, since=since, user=user, action=action)

    def diff(self, run_a: int | None = None, run_b: int | None = None) -> history.Diff:
        """Who moved between two runs (default: the two latest) and the migration matrix."""
        return history.diff_runs(self.appdb, self._snapshot_files, run_a, run_b)
