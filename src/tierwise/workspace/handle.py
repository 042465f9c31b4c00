"""A workspace: one folder holding settings, the data store, run snapshots and the app DB.

`Workspace` is the one object every interface goes through (CLI, Python API, later the web
app); it wires the stages together and holds no grading logic of its own.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import getpass
import os
import tempfile
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_dataset
import sqlalchemy as sa
from ruamel.yaml import YAML

from tierwise.appdb import schema
from tierwise.appdb.database import connect
from tierwise.data import engines, lake, store
from tierwise.data import sources as data_sources
from tierwise.data.ingest import ImportResult, Kind, import_files
from tierwise.data.interactions import Logged, log_interaction
from tierwise.data.store import DEFAULT_MEMORY_LIMIT, customer_attribute_columns
from tierwise.data.tables import CanonicalTables
from tierwise.errors import RunNotFound, WorkspaceError
from tierwise.grading.backtest import Backtest, backtest
from tierwise.grading.explanation import Explanation, explain_row, snapshot_attributes
from tierwise.grading.run import grade
from tierwise.grading.what_if import WhatIf, what_if
from tierwise.policy.loading import load_policy_file, load_policy_text
from tierwise.policy.model import Policy
from tierwise.policy.presets import PRESETS, policy_source, preset_text
from tierwise.record import history
from tierwise.record.runs import RunSummary, local_snapshot, snapshot_files, snapshot_location
from tierwise.reports import customers
from tierwise.reports.breakdown import Breakdown, breakdown
from tierwise.reports.grading_table import columns_for, table_rows, write_grading_table
from tierwise.reports.targets import target_list
from tierwise.work import owners, webhooks
from tierwise.work import schedule as scheduling
from tierwise.work.tasks import (
    Task,
    TaskSync,
    candidates,
    list_tasks,
    mark_done,
    raised_warnings,
    sync_tasks,
)
from tierwise.workspace.settings import CONFIG_NAME, CONFIG_TEMPLATE, resolve_root


def current_user() -> str:
    return os.environ.get("TIERWISE_USER") or getpass.getuser()


class Workspace:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = resolve_root(root)
        config_path = self.root / CONFIG_NAME
        if not config_path.exists():
            raise WorkspaceError(
                f"{self.root} is not a tierwise workspace (no {CONFIG_NAME}); "
                f"create one with: tierwise init {self.root}")
        self.config: dict[str, Any] = dict(YAML(typ="safe").load(config_path) or {})
        self._store: duckdb.DuckDBPyConnection | None = None
        self._sibling = False

    # -- creation and lifecycle -------------------------------------------------------
    @classmethod
    def init(cls, root: str | Path, *, policy: str = "value-tiers") -> Workspace:
        folder = Path(root).expanduser().resolve()
        if (folder / CONFIG_NAME).exists():
            raise WorkspaceError(f"{folder} is already a tierwise workspace")
        folder.mkdir(parents=True, exist_ok=True)
        policy_ref = "policy.yaml"
        if policy in PRESETS:
            (folder / "policy.yaml").write_text(preset_text(policy), encoding="utf-8")
        else:
            source = Path(policy)
            load_policy_file(source)
            (folder / "policy.yaml").write_text(source.read_text(encoding="utf-8"),
                                                encoding="utf-8")
        (folder / CONFIG_NAME).write_text(
            CONFIG_TEMPLATE.format(policy=policy_ref, presets=", ".join(PRESETS)),
            encoding="utf-8")
        workspace = cls(folder)
        workspace.store()
        _ = workspace.appdb
        return workspace

    def sibling(self) -> Workspace:
        """The same workspace for another thread: the same settings and app database, its own
        DuckDB cursor (one DuckDB connection object must not serve two threads at once).
        Closing a sibling closes only its cursor."""
        other = copy.copy(self)
        other._store = self.store().cursor()
        other._sibling = True
        return other

    def close(self) -> None:
        if self._sibling:
            if self._store is not None:
                self._store.close()
                self._store = None
            return
        if self._store is not None:
            self._store.close()
            self._store = None
        if "appdb" in self.__dict__:
            self.appdb.dispose()
            del self.__dict__["appdb"]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    # -- places -----------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    @property
    def language(self) -> str:
        return str(self.config.get("language") or "zh")

    @property
    def database_url(self) -> str:
        url = os.environ.get("TIERWISE_DATABASE_URL") or self.config.get("database")
        if not url:
            return f"sqlite:///{self.root / 'tierwise.db'}"
        url = str(url)
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return f"sqlite:///{self.root / url.removeprefix('sqlite:///')}"
        return url

    @cached_property
    def appdb(self) -> sa.Engine:
        return connect(self.database_url)

    def engine_choice(self, override: str | None = None) -> engines.EngineChoice:
        """tierwise.yaml's `engine:` (tierwise.data.engines); ``override`` is --engine."""
        return engines.parse_engine(self.config.get("engine"), override=override,
                                    source=str(self.root / CONFIG_NAME))

    def engine_settings(self) -> dict[str, Any]:
        """tierwise.yaml's `engine:` (memory_limit, threads) for DuckDB connections: the
        store is DuckDB whichever engine grades."""
        choice = self.engine_choice("duckdb")
        return {"memory_limit": choice.memory_limit or DEFAULT_MEMORY_LIMIT,
                "threads": choice.threads,
                "temp_directory": self.root / "data" / "spill"}

    def schedule(self) -> scheduling.Schedule | None:
        """tierwise.yaml's `schedule:` (tierwise.work.schedule), or None."""
        return scheduling.parse_schedule(self.config.get("schedule"),
                                       source=str(self.root / CONFIG_NAME))

    def run_due(self, *, now: dt.datetime | None = None,
                engine: str | None = None) -> list[scheduling.Outcome]:
        """Run every scheduled run that is due, once each (see tierwise.work.schedule)."""
        chosen = self.schedule()
        if chosen is None:
            raise WorkspaceError(f"no schedule: set `schedule:` in {self.root / CONFIG_NAME}")
        return scheduling.run_due(self.appdb, chosen,
                                lambda as_of: self.grade(as_of=as_of, engine=engine).run_id,
                                now=now)

    def webhook_endpoints(self) -> list[webhooks.Endpoint]:
        """tierwise.yaml's `webhooks:` (a WorkspaceError naming the setting if invalid)."""
        return webhooks.parse_endpoints(self.config.get("webhooks"),
                                        source=str(self.root / CONFIG_NAME))

    def store(self) -> duckdb.DuckDBPyConnection:
        if self._store is None:
            self._store = store.connect(self.root / "data" / "store.duckdb",
                                        **self.engine_settings())
        return self._store

    # -- policy -----------------------------------------------------------------------
    def policy(self, ref: str | None = None) -> tuple[Policy, str]:
        """The policy named by ref (preset or file), else the workspace's; with its text."""
        ref = ref or str(self.config.get("policy") or "value-tiers")
        text, source = policy_source(ref, self.root)
        return self.check_policy(text, source=source), text

    def check_policy(self, text: str, *, source: str = "policy") -> Policy:
        """A policy text validated against this workspace's customer attributes."""
        attributes = customer_attribute_columns(self.store())
        return load_policy_text(text, source=source, attributes=attributes)

    def tier_labels(self, lang: str | None = None) -> dict[str, str]:
        """Tier keys to labels: the latest run's policy, else the workspace's."""
        try:
            tiers = self.run().policy.tiers
        except RunNotFound:
            tiers = self.policy()[0].tiers
        return {t.key: t.display(lang or self.language) for t in tiers}

    def save_policy(self, text: str, *, user: str | None = None) -> Policy:
        """Validate a policy text and make it the workspace's: written to policy.yaml (the
        config is pointed at it if it named a preset or another file), and kept as a version
        in the app database. Nothing is written when the text is not a valid policy."""
        policy = self.check_policy(text, source="policy.yaml")
        target = self.root / "policy.yaml"
        staging = target.with_suffix(".yaml.tmp")
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, target)
        if self.config.get("policy") != "policy.yaml":
            self._set_config("policy", "policy.yaml")
        with self.appdb.begin() as connection:
            connection.execute(schema.policy_versions.insert().values(
                policy_name=policy.name, policy_hash=policy.hash, text=text,
                saved_at=dt.datetime.now(dt.UTC), saved_by=user or current_user()))
        return policy

    def policy_versions(self) -> list[dict[str, Any]]:
        t = schema.policy_versions
        with self.appdb.connect() as connection:
            rows = connection.execute(sa.select(t).order_by(t.c.id.desc())).mappings()
            return [dict(row) for row in rows]

    def _set_config(self, key: str, value: Any) -> None:
        """Change one top-level setting of tierwise.yaml, keeping its comments."""
        path = self.root / CONFIG_NAME
        yaml = YAML()
        data = yaml.load(path)
        data[key] = value
        with path.open("w", encoding="utf-8") as handle:
            yaml.dump(data, handle)
        self.config[key] = value

    # -- stages -----------------------------------------------------------------------
    def import_files(self, kind: Kind, paths: Sequence[str | Path], *,
                     column_map: dict[str, str] | None = None, strict: bool = False,
                     progress: Any = None) -> ImportResult:
        return import_files(self.store(), kind, paths, rejects_dir=self.rejects_dir,
                            column_map=column_map, strict=strict, progress=progress)

    def data_sources(self) -> list[data_sources.Source]:
        """tierwise.yaml's `sources:` (tierwise.data.sources): where the book is read from."""
        return data_sources.parse_sources(self.config.get("sources"),
                                          source=str(self.root / CONFIG_NAME))

    def pull_sources(self) -> list[ImportResult]:
        """Import every configured source (files, SQL tables or queries) into the store,
        customers first; a source that cannot be read fails before anything is merged."""
        results = []
        with tempfile.TemporaryDirectory(prefix="tierwise-sources-") as folder:
            planned = [(spec, data_sources.files_of(spec, self.root, Path(folder)))
                       for spec in self.data_sources()]
            for spec, files in planned:
                results.append(self.import_files(spec.kind, files,       # type: ignore[arg-type]
                                                 column_map=spec.map or None))
        return results

    def tables(self) -> CanonicalTables:
        """The canonical tables of the workspace store, for the embedded engine."""
        backend = ibis.duckdb.from_connection(self.store())
        return CanonicalTables.of_store(backend, "workspace store")

    def grade(self, *, as_of: dt.date | None = None, policy: str | None = None,
              files: dict[str, Sequence[str]] | None = None,
              column_map: dict[str, str] | None = None,
              engine: str | None = None) -> RunSummary:
        """Make a grading run from the store, or straight from files when `files` is given;
        on Spark (``engine``, else tierwise.yaml's), from the sources where they live.

        Once the run is recorded, the configured webhooks hear of it (run.completed,
        tier.changed); a failing endpoint is logged and recorded, never fails the run."""
        endpoints = self.webhook_endpoints()      # bad settings fail before any work
        choice = self.engine_choice(engine)
        chosen, text = self.policy(policy)
        if choice.is_spark:
            summary = self._grade_on_spark(choice, chosen, text, as_of=as_of, files=files,
                                           column_map=column_map)
            self._announce(summary, endpoints)
            return summary
        if not files and self.data_sources():
            self.pull_sources()                     # unreachable: fails here, no run
        if files:
            summary = self._grade_files(files, chosen, text, as_of=as_of,
                                        column_map=column_map)
        else:
            backend = ibis.duckdb.from_connection(self.store())
            summary = grade(backend, self.tables(), chosen, text, appdb=self.appdb,
                            runs_dir=self.runs_dir, as_of=as_of, user=current_user(),
                            lang=self.language)
            # Only the workspace's own book turns into work; graded files are a look.
            summary = dataclasses.replace(summary, tasks=self._derive_tasks(summary, chosen))
        self._announce(summary, endpoints)
        return summary

    def _grade_on_spark(self, choice: engines.EngineChoice, policy: Policy, text: str, *,
                        as_of: dt.date | None, files: dict[str, Sequence[str]] | None,
                        column_map: dict[str, str] | None) -> RunSummary:
        """A recorded run on Spark: sources read by the engine, assignments written by it;
        the work queue is derived when the run graded the workspace's own store."""
        specs = self.data_sources()
        if files:
            specs = [data_sources.Source(kind, path=str(Path(p).resolve()),
                                         map=dict(column_map or {}))
                     for kind, paths in files.items() for p in paths]
        backend = engines.spark_backend(choice)
        found = lake.read_lake(backend, specs, root=self.root, rejects_dir=self.rejects_dir,
                               store_con=self.store())
        summary = grade(backend, found.tables, policy, text, appdb=self.appdb,
                        runs_dir=self.runs_dir, as_of=as_of, user=current_user(),
                        lang=self.language, assignments=choice.assignments)
        summary = dataclasses.replace(summary, rejected_rows=found.rejected)
        record = self.run(summary.run_id)
        if not specs and engines.is_local(snapshot_location(self.runs_dir, record.id,
                                                            record.snapshot)):
            summary = dataclasses.replace(summary, tasks=self._derive_tasks(summary, policy))
        return summary

    def _derive_tasks(self, summary: RunSummary, policy: Policy) -> TaskSync:
        record = self.run(summary.run_id)
        found = candidates(self.store(), policy, self.snapshot(record), summary.as_of,
                           record.aggregate_values())
        return sync_tasks(self.appdb, summary.run_id, summary.as_of, found)

    def tasks(self, *, owner: str | None = None, kind: str | None = None,
              status: str = "open", customer_id: str | None = None,
              task_id: int | None = None) -> list[Task]:
        """Tasks the runs derived (tierwise.work.tasks), open ones by default."""
        return list_tasks(self.appdb, owner=owner, kind=kind, status=status,
                          customer_id=customer_id, task_id=task_id)

    def task_done(self, task_id: int, note: str | None = None, *,
                  user: str | None = None) -> Task:
        return mark_done(self.appdb, task_id, note=note, user=user or current_user())

    def import_reps(self, path: str | Path) -> owners.RepsImport:
        """Load the reps table from a CSV or Excel file (tierwise.work.owners.read_reps)."""
        policy, _ = self.policy()
        found = owners.read_reps(Path(path), policy)
        return owners.save_reps(self.appdb, found.reps, found.ignored_columns)

    def reps(self) -> list[owners.Rep]:
        return owners.load_reps(self.appdb)

    def assign(self, *, apply: bool = False) -> owners.Proposal:
        """Propose owners from the latest run's tiers (tierwise.work.owners); with ``apply``,
        write the moves, their history and the open tasks' owners."""
        record = self.run()
        proposal = owners.propose(owners.accounts(self.store(), self.snapshot(record),
                                                  record.policy.keys),
                                  self.reps(),
                                  record.policy.keys, run_id=record.id)
        if apply:
            owners.apply(self.store(), self.appdb, proposal, user=current_user())
        return proposal

    def _announce(self, summary: RunSummary, endpoints: list[webhooks.Endpoint]) -> None:
        """Send the run's webhook events; the run is committed, so nothing here may fail it."""
        if not endpoints:
            return
        try:
            labels = {t.tier: t.label for t in summary.tiers}
            moved = webhooks.moved_customers(
                snapshot_files(self.snapshot(self.run(summary.run_id))), labels)
            events = webhooks.run_events(summary, moved)
            if summary.tasks is not None and summary.tasks.created:
                raised = raised_warnings(self.appdb, summary.run_id, lang=self.language,
                                         labels=labels)
                events += webhooks.warning_events(summary, raised)
            webhooks.deliver(self.appdb, endpoints, events)
        except Exception:
            webhooks.log.exception("webhooks for run %s could not be sent", summary.run_id)

    def log_interaction(self, customer_id: str, kind: str, *, date: dt.date | None = None,
                        note: str | None = None,
                        satisfaction: float | None = None) -> Logged:
        """Record one visit, call, complaint, … (tierwise.data.interactions)."""
        return log_interaction(self.store(), customer_id, kind, date=date or dt.date.today(),
                               note=note, satisfaction=satisfaction)

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

    def _grade_files(self, files: dict[str, Sequence[str]], policy: Policy, text: str, *,
                     as_of: dt.date | None, column_map: dict[str, str] | None) -> RunSummary:
        scratch = store.connect(**self.engine_settings())
        try:
            rejected = 0
            for kind in ("customers", "orders", "interactions", "payments"):  # customers first
                if files.get(kind):
                    rejected += import_files(scratch, kind, files[kind],
                                             rejects_dir=self.rejects_dir,
                                             column_map=column_map).rejected
            backend = ibis.duckdb.from_connection(scratch)
            label = "files: " + "; ".join(f"{k}={','.join(map(str, v))}"
                                          for k, v in files.items() if v)
            sources = CanonicalTables.of_store(backend, label)
            summary = grade(backend, sources, policy, text, appdb=self.appdb,
                            runs_dir=self.runs_dir, as_of=as_of, user=current_user(),
                            lang=self.language)
            return dataclasses.replace(summary, rejected_rows=rejected)
        finally:
            scratch.close()

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

    # -- reading runs -----------------------------------------------------------------
    def runs(self) -> list[history.RunRecord]:
        return history.list_runs(self.appdb)

    def run(self, run_id: int | None = None) -> history.RunRecord:
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

    def override(self, customer_id: str, tier: str, *, reason: str,
                 until: dt.date | None = None, user: str | None = None) -> int:
        """Record a manual tier for a customer; it applies from the next run on."""
        in_store = self.store().execute(
            "SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]).fetchone()
        if not (in_store and in_store[0]) and not history.customer_history(self.appdb,
                                                                            customer_id):
            raise WorkspaceError(f"unknown customer {customer_id!r}: it is neither imported "
                                 "nor in any run")
        policy, _ = self.policy()
        return history.add_override(self.appdb, customer_id, tier, reason=reason, until=until,
                                    user=user or current_user(), policy=policy)

    def remove_override(self, customer_id: str, *, user: str | None = None) -> int:
        return history.remove_overrides(self.appdb, customer_id, user=user or current_user())

    # -- explaining and reporting -----------------------------------------------------
    def explanations(self, run_id: int | None = None, *, tier: str | None = None,
                     customer_id: str | None = None,
                     lang: str | None = None) -> Iterator[Explanation]:
        """Every customer of a run (optionally one tier or one customer), explained."""
        record = self.run(run_id)
        snapshot = self.assignments(record.id, customer_id=customer_id)
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
                lang: str | None = None) -> Explanation:
        found = next(self.explanations(run_id, customer_id=customer_id, lang=lang), None)
        if found is None:
            raise WorkspaceError(f"customer {customer_id!r} is not in run "
                                 f"{self.run(run_id).id}")
        found.history = history.customer_history(self.appdb, customer_id)
        found.owner_changes = owners.owner_history(self.appdb, customer_id)
        return found

    def export(self, path: str | Path, run_id: int | None = None, *,
               lang: str | None = None, customer_ids: set[str] | None = None) -> int:
        """Write the seed-001 grading table (.xlsx or .csv); returns the number of rows.
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
        return write_grading_table(Path(path), columns,
                                   table_rows(ordered, changes, columns, lang),
                                   title=title, lang=lang)

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

    def diff(self, run_a: int | None = None, run_b: int | None = None) -> history.Diff:
        return history.diff_runs(self.appdb, run_a, run_b)
