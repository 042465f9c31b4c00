"""One benchmark step per process: ``python benchmarks/steps.py STEP --workspace W --data D``.

``run.py`` starts each step in its own process so that the peak RSS the kernel reports for
that child is the step's alone. A step prints one JSON object on its last stdout line: the
seconds of the measured call (the process also pays ~1-2 s of Python imports, which
``run.py`` reports separately as wall time), what it produced, and a breakdown by phase.

The breakdown is taken by wrapping tierwise's own functions (and, for imports, the DuckDB
connection's ``execute``/``commit``) from the outside; nothing under ``src/`` is changed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import data_files
from runner import emit

PHASES: dict[str, float] = defaultdict(float)


def _timed(name: str, function: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            PHASES[name] += time.perf_counter() - started

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


# --- imports ---------------------------------------------------------------------------------

_SQL_LABELS = [  # first match wins; the statements of tierwise.data.ingest.load
    (r"^CREATE OR REPLACE TEMP VIEW", "define the stage and good-row views"),
    (r"^CREATE OR REPLACE TEMP TABLE __tw_checked",
     "check: one pass, rows per file, rejects with reasons, repeated key hashes"),
    (r"^CREATE OR REPLACE TEMP TABLE __tw_rejects", "rejects from the check"),
    (r"^CREATE OR REPLACE TEMP TABLE __tw_repeated",
     "rows of repeated key hashes: SELECT DISTINCT"),
    (r"^CREATE OR REPLACE TEMP TABLE __tw_conflicts", "conflicting keys among them"),
    (r"^INSERT INTO __tw_rejects", "reject rows of conflicting keys"),
    (r"^CREATE OR REPLACE TEMP TABLE __tw_changes",
     "re-import: join with the table, keep new and changed rows"),
    (r"^SELECT __file, n FROM __tw_checked", "count rows per file"),
    (r"^SELECT count\(\*\) FROM __tw_rejects", "count rejects"),
    (r"^UPDATE (orders|customers)", "merge: UPDATE changed rows"),
    (r"^INSERT INTO customers \(customer_id, placeholder\)",
     "placeholder customers: anti-join with customers"),
    (r"^INSERT INTO (orders|customers) ", "merge: INSERT new rows (write the table)"),
    (r"^DROP (TABLE|VIEW)", "drop work tables"),
    (r"^DESCRIBE", "open files (DESCRIBE)"),
    (r"^SET ", "settings"),
]


class TimedConnection:
    """A DuckDB connection that times each statement it runs and its commit."""

    def __init__(self, con: Any) -> None:
        self._con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def _label(self, sql: str) -> str:
        text = " ".join(sql.split())
        for pattern, label in _SQL_LABELS:
            if re.search(pattern, text):
                return label
        return "other: " + text[:60]

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            PHASES[self._label(sql)] += time.perf_counter() - started

    def commit(self) -> Any:
        started = time.perf_counter()
        try:
            return self._con.commit()
        finally:
            PHASES["commit (write the store file)"] += time.perf_counter() - started


def _apply_settings(ws: Any, args: argparse.Namespace) -> None:
    """``--memory-limit``: what a tierwise setting for DuckDB's memory would do (tierwise
    has none yet; the benchmark sets it on the store connection from the outside)."""
    store = ws.store()
    if args.memory_limit:
        store.execute(f"SET memory_limit = '{args.memory_limit}'")


def step_init(args: argparse.Namespace) -> dict[str, Any]:
    from tierwise.workspace import Workspace

    if args.workspace.exists():
        shutil.rmtree(args.workspace)
    started = time.perf_counter()
    Workspace.init(args.workspace).close()
    return {"seconds": time.perf_counter() - started}


def step_import(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    from tierwise.workspace import Workspace

    customers, _ = data_files(args.data, args.files)
    paths = [str(customers)] if kind == "customers" else [str(args.data / "orders-*.parquet")]
    if args.paths:
        paths = args.paths
    ws = Workspace(args.workspace)
    _apply_settings(ws, args)
    ws._store = TimedConnection(ws._store)  # type: ignore[assignment]
    started = time.perf_counter()
    result = ws.import_files(kind, paths)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    ws._store = ws._store._con  # type: ignore[union-attr]
    ws.close()
    store = args.workspace / "data" / "store.duckdb"
    return {
        "seconds": seconds,
        "rows": sum(f.rows for f in result.files),
        "accepted": result.accepted, "updated": result.updated,
        "unchanged": result.unchanged, "rejected": result.rejected,
        "placeholders": len(result.created_customers),
        "store_bytes": store.stat().st_size,
        "phases": _phases(seconds),
    }


# --- grading ---------------------------------------------------------------------------------


def _instrument_grade() -> None:
    import ibis.backends.duckdb as ibis_duckdb

    import tierwise.grading.run as grading
    import tierwise.record.runs as runs

    original_evaluation = grading.evaluation

    @contextlib.contextmanager
    def evaluation(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        with original_evaluation(*args, **kwargs) as ev:
            PHASES["metrics + scores into a temp table (evaluation)"] += (
                time.perf_counter() - started)
            yield ev

    grading.evaluation = evaluation
    for name, label in [
        ("latest_order_date", "latest order date"),
        ("previous_run", "app db: previous run"),
        ("active_overrides", "app db: overrides"),
        ("_previous_assignments", "read previous snapshot"),
        ("data_fingerprint", "data fingerprint (hash of every input row)"),
        ("_record", "record (total: snapshot + app db)"),
    ]:
        setattr(grading, name, _timed(label, getattr(grading, name)))
    for name, label in [    # called by tierwise.record.runs._record, so wrapped there
        ("summarise", "summarise tiers (Arrow)"),
        ("_insert_changes", "app db: insert changes (executemany)"),
    ]:
        setattr(runs, name, _timed(label, getattr(runs, name)))
    backend = ibis_duckdb.Backend
    backend.to_parquet = _timed("record: tiers + hysteresis, sorted, to Parquet",
                                backend.to_parquet)
    backend.to_pyarrow = _timed("record: snapshot columns to Arrow", backend.to_pyarrow)


def step_grade(args: argparse.Namespace) -> dict[str, Any]:
    from tierwise.workspace import Workspace

    _instrument_grade()
    as_of = dt.date.fromisoformat(args.as_of)
    ws = Workspace(args.workspace)
    _apply_settings(ws, args)
    started = time.perf_counter()
    run = ws.grade(as_of=as_of)
    seconds = time.perf_counter() - started
    ws.close()
    snapshot = args.workspace / "runs" / f"run-{run.run_id:06d}.parquet"
    return {
        "seconds": seconds,
        "run_id": run.run_id,
        "as_of": as_of.isoformat(),
        "customers": run.customers,
        "tiers": {t.tier: t.customers for t in run.tiers},
        "changes": run.changes,
        "snapshot": str(snapshot),
        "phases": _phases(seconds),
    }


# --- baselines -------------------------------------------------------------------------------


def step_baseline(args: argparse.Namespace) -> dict[str, Any]:
    import duckdb
    from baseline_sql import store_query

    as_of = dt.date.fromisoformat(args.as_of)
    out = args.out
    con = duckdb.connect(str(args.workspace / "data" / "store.duckdb"), read_only=True)
    started = time.perf_counter()
    con.execute(f"COPY ({store_query(as_of)}) TO '{out}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    tiers = dict(con.execute(f"SELECT tier, count(*) FROM '{out}' GROUP BY tier").fetchall())
    rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
    con.close()
    return {"seconds": seconds, "as_of": as_of.isoformat(), "customers": rows, "tiers": tiers,
            "output": str(out)}


def step_slice_sql(args: argparse.Namespace) -> dict[str, Any]:
    """The SQL baseline on the pandas slice, in memory: the reference the pandas tiers are
    checked against."""
    import duckdb
    from baseline_sql import files_query

    customers, orders = data_files(args.data, args.files)
    as_of = dt.date.fromisoformat(args.as_of)
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(f"COPY ({files_query(as_of, str(customers), _slice_files(orders, args))}) "
                f"TO '{args.out}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    tiers = dict(con.execute(f"SELECT tier, count(*) FROM '{args.out}' GROUP BY tier")
                 .fetchall())
    orders_in = con.execute(
        "SELECT count(*) FROM read_parquet([" +
        ", ".join(f"'{p}'" for p in _slice_files(orders, args)) + "])").fetchone()[0]
    return {"seconds": seconds, "orders": orders_in, "tiers": tiers, "output": str(args.out)}


def _slice_files(orders: list[Path], args: argparse.Namespace) -> list[str]:
    """The first order files holding about ``--slice`` orders (files are equal parts)."""
    per_file = args.total_orders / len(orders)
    count = max(1, round(args.slice / per_file))
    return [str(p) for p in orders[:count]]


def step_slice_files(args: argparse.Namespace) -> dict[str, Any]:
    """customers of the slice as their own Parquet file, for the same-slice tierwise run."""
    import duckdb

    customers, orders = data_files(args.data, args.files)
    files = ", ".join(f"'{p}'" for p in _slice_files(orders, args))
    started = time.perf_counter()
    duckdb.connect().execute(
        f"COPY (SELECT * FROM read_parquet('{customers}') WHERE customer_id IN "
        f"(SELECT customer_id FROM read_parquet([{files}]))) TO '{args.out}' (FORMAT parquet)")
    return {"seconds": time.perf_counter() - started,
            "orders_files": _slice_files(orders, args)}


def step_pandas(args: argparse.Namespace) -> dict[str, Any]:
    from baseline_pandas import grade_pandas

    customers, orders = data_files(args.data, args.files)
    as_of = dt.date.fromisoformat(args.as_of)
    started = time.perf_counter()
    result = grade_pandas(str(customers), _slice_files(orders, args), as_of, str(args.out))
    seconds = time.perf_counter() - started
    result["seconds"] = seconds
    return result


def _phases(total: float) -> dict[str, float]:
    phases = {k: round(v, 3) for k, v in sorted(PHASES.items(), key=lambda kv: -kv[1])}
    return phases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["init", "import-customers", "import-orders", "grade",
                                         "baseline", "slice-sql", "slice-files", "pandas"])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--as-of")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--slice", type=int, default=5_000_000)
    parser.add_argument("--total-orders", type=int, default=50_000_000)
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for tierwise steps")
    parser.add_argument("--paths", nargs="*", help="files to import instead of the data set")
    args = parser.parse_args()
    steps = {
        "init": step_init,
        "import-customers": lambda a: step_import(a, "customers"),
        "import-orders": lambda a: step_import(a, "orders"),
        "grade": step_grade,
        "baseline": step_baseline,
        "slice-sql": step_slice_sql,
        "slice-files": step_slice_files,
        "pandas": step_pandas,
    }
    emit(steps[args.step](args))


if __name__ == "__main__":
    main()
