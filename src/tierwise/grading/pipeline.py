"""The grading pipeline: where a recorded run reads the canonical tables, the run itself,
and the work it hands on.

A run reads one of three places: the workspace store (the default), files given for this run
(read where they are, checked as an import checks them, never copied), or, on Spark, the
sources where they live. Only a run of the workspace's own book turns into work
(tasks); graded files are a look at other data. The work is derived by the caller's
``derive_work`` (tierwise.work), which keeps this stage below the work stage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import ibis
import sqlalchemy as sa

from tierwise.data import engines, lake, store
from tierwise.data import sources as data_sources
from tierwise.data.ingest.fields import PLAUSIBLE, Plausible
from tierwise.data.ingest.in_place import read_in_place
from tierwise.data.tables import CanonicalTables, latest_order_date
from tierwise.errors import InputError
from tierwise.grading.run import grade
from tierwise.policy.model import Policy
from tierwise.record import history
from tierwise.record.audit import Actor
from tierwise.record.runs import RunSummary, discard_run, snapshot_location, sweep_staging

STORE_LABEL = "workspace store"


@dataclass(frozen=True)
class RunPlace:
    """Where a run reads and records: the workspace's store, folders and app database."""

    root: Path
    runs_dir: Path
    rejects_dir: Path
    store: duckdb.DuckDBPyConnection
    appdb: sa.Engine
    duckdb_settings: Mapping[str, Any]
    language: str = "zh"
    plausible: Plausible = PLAUSIBLE   # what a file may hold, and an as-of date


@dataclass(frozen=True)
class GradeRequest:
    """What to grade: a policy (with its text, recorded with the run), as of a date (default:
    the latest order), by whom, on which engine, from which files or sources."""

    policy: Policy
    policy_text: str
    actor: Actor
    engine: engines.EngineChoice
    as_of: dt.date | None = None
    files: Mapping[str, Sequence[str]] | None = None
    column_map: Mapping[str, str] | None = None
    sources: Sequence[data_sources.Source] = ()     # tierwise.yaml's `sources:` (Spark)
    # Metrics the work derived from a run of the workspace's book reads, besides the
    # policy's (tierwise.work.tasks.WORK_METRICS): computed only for such a run.
    work_metrics: Sequence[str] = ()


class DeriveWork(Protocol):
    """Turns a recorded run of the workspace's own book into work (tierwise.work.tasks)."""

    def __call__(self, summary: RunSummary, policy: Policy) -> Any: ...


def run_grading(place: RunPlace, request: GradeRequest, *,
                derive_work: DeriveWork | None = None) -> RunSummary:
    """Make one recorded run (see the module's text for where it reads), and derive its work
    when it graded the workspace's own book.

    >>> run_grading(place, GradeRequest(policy, text, actor, engine))  # doctest: +SKIP
    """
    sweep_staging(place.runs_dir)
    if request.engine.is_spark:
        summary, own_book = _on_spark(place, request, _work_metrics(request, derive_work))
    elif request.files:
        summary, own_book = _from_files(place, request), False
    else:
        backend = ibis.duckdb.from_connection(place.store)
        with store.consistent_read(place.store):     # an import meanwhile is not half-seen
            summary = _grade(backend, CanonicalTables.of_store(backend, STORE_LABEL), place,
                             request, outputs=_work_metrics(request, derive_work))
        own_book = True
    if own_book and derive_work is not None:
        try:
            work = derive_work(summary, request.policy)
        except BaseException:
            # The run is not done until its work is: a failed job leaves no run behind.
            discard_run(place.appdb, place.runs_dir, summary.run_id)
            raise
        summary = dataclasses.replace(summary, tasks=work)
    return summary


def _work_metrics(request: GradeRequest, derive_work: DeriveWork | None) -> Sequence[str]:
    return request.work_metrics if derive_work is not None else ()


def _grade(backend: Any, tables: CanonicalTables, place: RunPlace, request: GradeRequest,
           assignments: str | None = None, outputs: Sequence[str] = (),
           latest: dt.date | None = None) -> RunSummary:
    """Grade ``tables`` as of the request's date, else the latest order's (``latest`` when
    the caller knows it already)."""
    as_of = request.as_of or latest or latest_order_date(backend, tables.orders)
    if not place.plausible.holds(as_of):
        raise InputError(f"as-of date {as_of.isoformat()} is outside the plausible range "
                         f"{place.plausible.describe()} (import: in tierwise.yaml)"
                         + ("" if request.as_of else
                            "; it is the latest order's date: fix that order or give --as-of"),
                         column="as_of")
    return grade(backend, tables, request.policy, request.policy_text, appdb=place.appdb,
                 runs_dir=place.runs_dir, as_of=as_of, actor=request.actor,
                 lang=place.language, assignments=assignments, outputs=outputs)


def _on_spark(place: RunPlace, request: GradeRequest,
              work_metrics: Sequence[str]) -> tuple[RunSummary, bool]:
    """A recorded run on Spark: sources read by the engine, assignments written by it. It
    graded the workspace's own book when no sources or files were named and its assignments
    are on this machine (the work queue reads them here)."""
    specs = list(request.sources)
    if request.files:
        specs = [data_sources.Source(kind, path=str(Path(p).resolve()),
                                     map=dict(request.column_map or {}))
                 for kind, paths in request.files.items() for p in paths]
    backend = engines.spark_backend(request.engine, input_rows=lake.input_rows(
        specs, root=place.root, store_con=place.store))
    found = lake.read_lake(backend, specs, root=place.root, rejects_dir=place.rejects_dir,
                           store_con=place.store)
    summary = _grade(backend, found.tables, place, request, request.engine.assignments,
                     outputs=() if specs else work_metrics, latest=found.latest_order_date)
    summary = dataclasses.replace(summary, rejected_rows=found.rejected)
    record = history.get_run(place.appdb, summary.run_id)
    local = engines.is_local(snapshot_location(place.runs_dir, record.id, record.snapshot))
    return summary, not specs and local


def _from_files(place: RunPlace, request: GradeRequest) -> RunSummary:
    """Grade files given for this run where they are: read and checked as an import reads
    and checks them (rejects kept with their reasons), graded through views of their good
    rows, never copied into a store."""
    files = request.files or {}
    scratch = store.connect(**place.duckdb_settings)     # in memory: the canonical columns
    try:
        with read_in_place(scratch, files, rejects_dir=place.rejects_dir,
                           column_map=request.column_map,
                           plausible=place.plausible) as checked:
            views = checked.canonical(scratch)
            backend = ibis.duckdb.from_connection(scratch)
            label = "files: " + "; ".join(f"{k}={','.join(map(str, v))}"
                                          for k, v in files.items() if v)
            tables = CanonicalTables(
                backend.table(views["customers"]), backend.table(views["orders"]),
                backend.table(views["interactions"]), label=label,
                payments=backend.table(views["payments"]) if "payments" in checked.relations
                else None)
            summary = _grade(backend, tables, place, request)
            return dataclasses.replace(summary, rejected_rows=checked.rejected)
    finally:
        scratch.close()
