"""The same grading on DuckDB (files imported; files read in place) and on Apache Spark
(local[1], local[2]), end to end from Parquet files to stored assignments, and the BG/NBD fit
on compressed histories (daily and weekly) against one row per customer.

    .venv/bin/python benchmarks/engines.py [--customers 1000000] [--orders 50000000]
                                           [--data DIR] [--src DIR] [--step-timeout 1500]

1. Data: the scale benchmark's generator (``generate.py``: customers.parquet and
   orders-NN.parquet, zstd) in ``DIR`` (default ``bench-data/engines/``), generated only when
   ``DIR/GENERATED`` does not record the sizes asked for.
2. Each measured step runs in its own process (``engines.py --step NAME``), in a fresh
   workspace (``Workspace.init``, value-tiers), so every grade is a first run, all as of the
   same date (default: the latest order date of the data). Every engine gets the same 11
   files, one source per file. In order:

   * spark-local1, spark-local2: ``ws.grade(as_of=D, files=..., engine="spark")`` with
     tierwise.yaml's ``engine: {name: spark, master: local[K], settings: ...}``: Spark reads
     the Parquet files (``lake.read_lake``) and writes runs/assignments/run_id=N/;
   * duckdb-direct: Spark's path on DuckDB, like for like: an in-memory DuckDB with the
     workspace's settings (``store.connect(**ws.engine_settings())``), ``lake.read_lake``
     reading the files in place (no import), then ``grading.grade``; the snapshot in
     runs/run-N.parquet. The main baseline of the engine comparison;
   * models: the (frequency, recency, T) summary computed with DuckDB, daily
     (``rfm_summary(orders, D, period_days=1)``) and in whole weeks (``period_days=7,
     whole_periods=True``), then ``BetaGeo.fit`` on the distinct histories weighted by their
     counts and on one row per customer; ``GammaGamma.fit`` on the daily repeat buyers;
   * duckdb: ``ws.grade(as_of=D, files=..., engine="duckdb")``, the product's path for files:
     imported into a scratch DuckDB, graded, the snapshot in runs/run-N.parquet.

   Spark's JVM is a child of the step's Python process, so the parent samples the RSS and CPU
   of the whole process tree from /proc every 0.25 s (peak of the summed RSS), and the child
   stops Spark and reaps the JVM before it exits, so ``os.wait4``'s CPU seconds include the
   JVM's (Linux adds the reaped children's usage; its ru_maxrss is the larger of the two,
   not their sum, hence the sampling). The load average before each step and the CPU seconds
   other processes used meanwhile are recorded. A step past ``--step-timeout`` seconds is
   killed (its whole process group) and recorded as timed out. The phases of a grade (JVM
   start, reading the sources, metrics, ranks, writing the assignments, ...) are timed by
   wrapping tierwise's functions from the outside; nothing under ``src/`` is changed. With
   ``--event-log`` Spark's jobs are put into those phases, and the tasks' shuffle bytes and
   records, CPU, GC and spills summed.
3. Parity: the tier counts of the runs, and every customer's tier and metrics in each other
   snapshot against duckdb-direct's (else duckdb's), DuckDB reading both.
4. Prints the figures and the ratios to both DuckDB runs, and writes
   ``benchmarks/engines-results.json`` (rewritten after every step, so a stopped run keeps
   what it measured). See benchmarks/README.md.

``--src DIR`` runs the children on another copy of tierwise (PYTHONPATH=DIR), e.g. a clean
``git worktree`` of HEAD while ``src/`` is being edited; the children report the
``tierwise.__file__`` they imported.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import ORDER_FILES, data_files, ensure_generated  # noqa: E402
from run import compare_tables  # noqa: E402
from runner import (  # noqa: E402
    add_size_arguments,
    descendants,
    emit,
    fmt_bytes,
    git,
    machine,
    process_cpu_seconds,
    run_child,
    say,
    timestamp,
    write_results,
)

STEPS = ["spark-local1", "spark-local2", "duckdb-direct", "models", "duckdb"]
GRADES = ["duckdb-direct", "duckdb", "spark-local2", "spark-local1"]
MASTERS = {"spark-local1": "local[1]", "spark-local2": "local[2]"}
LABELS = {"duckdb": "DuckDB (files imported, graded)",
          "duckdb-direct": "DuckDB direct (files read in place)",
          "spark-local2": "Spark local[2]", "spark-local1": "Spark local[1]",
          "models": "models: summary + fits"}


# =============================================================================================
# In the child: phases timed from the outside
# =============================================================================================

PHASES: dict[str, float] = {}   # "outer › inner" -> seconds, in order of first entry
CALLS: dict[str, int] = {}
STACK: list[str] = []
STARTED = time.perf_counter()
EPOCH_STARTED = time.time()     # the same instant on the wall clock, to place Spark's jobs
TIMELINE: list[tuple[str, float, float]] = []   # (phase, start, end) from the child's start


@contextlib.contextmanager
def _phase(label: str) -> Iterator[None]:
    STACK.append(label)
    path = " › ".join(STACK)
    PHASES.setdefault(path, 0.0)
    started = time.perf_counter()
    say(f"  [{started - STARTED:7.1f}s] {path} ...")
    try:
        yield
    finally:
        ended = time.perf_counter()
        PHASES[path] += ended - started
        CALLS[path] = CALLS.get(path, 0) + 1
        TIMELINE.append((path, round(started - STARTED, 2), round(ended - STARTED, 2)))
        say(f"  [{ended - STARTED:7.1f}s] {path}: {ended - started:.1f}s")
        STACK.pop()


def _wrap(owner: Any, name: str, label: str | Callable[..., str]) -> None:
    function = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _phase(label if isinstance(label, str) else label(*args, **kwargs)):
            return function(*args, **kwargs)

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def install_probes() -> None:
    """Wrap tierwise's stages and the backends' writes (timing only, nothing changed)."""
    import ibis.backends.duckdb
    import ibis.backends.pyspark

    import tierwise.data.engines
    import tierwise.data.lake
    import tierwise.grading.pipeline as pipeline
    import tierwise.grading.run as grading
    import tierwise.record.runs as runs

    # Workspace.grade hands the work to grading.pipeline, which calls these two.
    _wrap(pipeline, "grade", "grade (tierwise.grading.run.grade)")
    _wrap(pipeline, "import_files", "import files into the scratch DuckDB")
    _wrap(tierwise.data.engines, "spark_backend", "start Spark (JVM, session)")
    _wrap(tierwise.data.lake, "read_lake", "read sources (cast, count rejects, cache)")
    _wrap(grading, "_materialise_metrics", "metrics (computed and materialised)")
    _wrap(grading, "materialise", lambda backend, name, expr: (
        "per-customer metrics (materialised)" if name.endswith("_base")
        else "ranked metrics and scores (materialised)"))
    _wrap(grading, "with_rank_metrics", "rank metrics (cut-offs, ranges)")
    _wrap(grading, "with_percentile_ranks", "percentile ranks (scorecard)")
    _wrap(grading, "compute_aggregates", "aggregates used by the rules")
    _wrap(grading, "_previous_assignments", "previous assignments")
    _wrap(grading, "data_fingerprint", "data fingerprint (hash of every row)")
    _wrap(grading, "_record", "record the run")
    _wrap(runs, "summarise_on", "summarise the written snapshot")   # runs._record calls it
    _wrap(ibis.backends.duckdb.Backend, "to_parquet", "write assignments (to_parquet)")
    _wrap(ibis.backends.pyspark.Backend, "to_parquet", "write assignments (to_parquet)")


def _tree_cpu_seconds() -> dict[str, float]:
    """CPU seconds of this process and of its live children (the JVM), from /proc."""
    found = {}
    for pid in [os.getpid(), *descendants(os.getpid())]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            found[str(pid)] = process_cpu_seconds(pid)
    return found


def _write_engine(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """tierwise.yaml's one top-level ``engine:`` key, set with ruamel (comments kept)."""
    from ruamel.yaml import YAML

    engine = {"name": "spark", "master": args.master,
              "settings": {"spark.driver.memory": args.spark_memory,
                           "spark.sql.shuffle.partitions": args.shuffle_partitions,
                           "spark.local.dir": str(args.spark_tmp)}}
    if args.event_log:
        args.event_log.mkdir(parents=True, exist_ok=True)
        engine["settings"].update({"spark.eventLog.enabled": "true",
                                   "spark.eventLog.compress": "false",
                                   "spark.eventLog.dir": f"file://{args.event_log}"})
    path = folder / "tierwise.yaml"
    yaml = YAML()
    config = yaml.load(path)
    config["engine"] = engine
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(config, out)
    return engine


def _stop_spark() -> dict[str, Any]:
    """Stop the session and reap the JVM, so that wait4 in the parent counts its CPU."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    found: dict[str, Any] = {"cpu_before_stop": _tree_cpu_seconds()}
    session = SparkSession.getActiveSession()
    gateway = SparkContext._gateway
    started = time.perf_counter()
    if session is not None:
        session.stop()
    if gateway is not None:
        proc = getattr(gateway, "proc", None)
        with contextlib.suppress(Exception):
            gateway.shutdown()
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
            try:
                proc.wait(timeout=120)
                found["jvm_reaped"] = True
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                found["jvm_reaped"] = "killed"
    found["stop_seconds"] = time.perf_counter() - started
    return found


def step_grade(args: argparse.Namespace) -> dict[str, Any]:
    import tierwise

    say(f"tierwise imported from {tierwise.__file__}")
    from tierwise.workspace import Workspace

    folder: Path = args.workspace
    shutil.rmtree(folder, ignore_errors=True)
    Workspace.init(folder, policy="value-tiers").close()
    engine = "spark" if args.master else "duckdb-direct" if args.direct else "duckdb"
    found: dict[str, Any] = {"tierwise_file": tierwise.__file__, "engine": engine,
                             "workspace": str(folder)}
    if args.master:
        found["engine_settings"] = _write_engine(folder, args)
    customers, orders = data_files(args.data, args.files)
    # Every engine gets the same 11 files, one source per file.
    files = {"customers": [str(customers)], "orders": [str(p) for p in orders]}
    found["files"] = files
    ws = Workspace(folder)
    install_probes()
    as_of = dt.date.fromisoformat(args.as_of)
    started = time.perf_counter()
    if args.direct:
        summary, rejected = _grade_direct(ws, customers, orders, as_of)
    else:
        summary = ws.grade(as_of=as_of, files=files,
                           engine="spark" if args.master else "duckdb")
        rejected = summary.rejected_rows
    found["seconds"] = time.perf_counter() - started
    record = ws.run(summary.run_id)
    found.update(run_id=summary.run_id, customers=summary.customers,
                 tiers={t.tier: t.customers for t in summary.tiers},
                 revenue={t.tier: t.revenue for t in summary.tiers},
                 changes=summary.changes, snapshot=ws.snapshot(record),
                 rejected_rows=rejected)
    ws.close()
    if args.master:
        found["stop"] = _stop_spark()
    found["cpu_at_end"] = _tree_cpu_seconds()
    return found


def _grade_direct(ws: Any, customers: Path, orders: list[Path], as_of: dt.date) -> Any:
    """Spark's path on DuckDB: the Parquet files read in place by an in-memory DuckDB with
    the workspace's settings (4GB cap, spill folder), no import; then the same grade."""
    import ibis

    from tierwise.data import lake, store
    from tierwise.data.sources import Source
    from tierwise.grading.run import grade
    from tierwise.record.audit import Actor

    with _phase("connect (in-memory DuckDB, workspace settings)"):
        con = store.connect(**ws.engine_settings())
        backend = ibis.duckdb.from_connection(con)
    specs = ([Source("customers", path=str(customers))]
             + [Source("orders", path=str(p)) for p in orders])
    found = lake.read_lake(backend, specs, root=ws.root, rejects_dir=ws.rejects_dir,
                           store_con=ws.store())
    policy, text = ws.policy()
    with _phase("grade (tierwise.grading.run.grade)"):
        summary = grade(backend, found.tables, policy, text, appdb=ws.appdb,
                        runs_dir=ws.runs_dir, as_of=as_of,
                        actor=Actor.at_command_line("bench"), lang="zh")
    con.close()
    return summary, found.rejected


def step_models(args: argparse.Namespace) -> dict[str, Any]:
    """The BG/NBD fit on the distinct histories (weights n) and on one row per customer,
    with daily histories and with whole weeks; Gamma-Gamma on the daily repeat buyers."""
    import duckdb
    import ibis
    import numpy as np

    import tierwise
    from tierwise.metrics.models.bgnbd import BetaGeo
    from tierwise.metrics.models.gamma_gamma import GammaGamma
    from tierwise.metrics.models.summary import rfm_summary, triples

    say(f"tierwise imported from {tierwise.__file__}")
    found: dict[str, Any] = {"tierwise_file": tierwise.__file__}
    _, orders = data_files(args.data, args.files)
    con = duckdb.connect(config={"memory_limit": "4GB"})
    con.execute("CREATE VIEW orders AS SELECT * FROM read_parquet(["
                + ", ".join(f"'{p}'" for p in orders) + "])")
    backend = ibis.duckdb.from_connection(con)
    as_of = dt.date.fromisoformat(args.as_of)

    def clock(into: dict[str, Any], label: str, function: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = function()
        into[f"{label}_seconds"] = time.perf_counter() - started
        say(f"  {into[f'{label}_seconds']:7.2f}s  {label}")
        return value

    def arrays(table: Any, weights: bool) -> list[Any]:
        values = [table[c].to_numpy().astype(np.float64) for c in ("frequency", "recency", "T")]
        return [*values, table["n"].to_numpy().astype(np.float64) if weights
                else np.ones(len(values[0]))]

    def histories(name: str, **options: Any) -> tuple[dict[str, Any], Any]:
        out: dict[str, Any] = {"rfm_summary": options}
        summary = clock(out, "summary", lambda: backend.create_table(
            f"rfm_{name}", rfm_summary(backend.table("orders"), as_of, **options), temp=True))
        compressed = clock(out, "triples_query", lambda: backend.to_pyarrow(
            triples(summary).order_by(["frequency", "recency", "T"])))
        per_customer = clock(out, "per_customer_query", lambda: backend.to_pyarrow(
            summary.select("frequency", "recency", "T", "monetary_value")
            .order_by(["frequency", "recency", "T"])))
        fits = {}
        for label, data in (("triples", tuple(arrays(compressed, True))),
                            ("per_customer", tuple(arrays(per_customer, False)))):
            started = time.perf_counter()
            fitted = BetaGeo.fit(*data)
            seconds = time.perf_counter() - started
            fits[label] = {"rows": len(data[0]), "customers": float(data[3].sum()),
                           "fit_seconds": seconds,
                           "params": {"r": fitted.r, "alpha_periods": fitted.alpha,
                                      "a": fitted.a, "b": fitted.b,
                                      "log_likelihood": fitted.log_likelihood}}
            say(f"  BG/NBD ({name}) on {label}: {len(data[0]):,} rows, {seconds:.2f}s, "
                f"{fits[label]['params']}")
        out["bgnbd"] = fits
        out["relative_differences"] = {
            k: abs(fits["per_customer"]["params"][k] - v) / max(abs(v), 1e-300)
            for k, v in fits["triples"]["params"].items()}
        out["compression"] = fits["per_customer"]["rows"] / fits["triples"]["rows"]
        return out, per_customer

    daily, per_customer = histories("daily", period_days=1)
    weekly, _ = histories("weekly", period_days=7, whole_periods=True)
    # The daily figures stay at the top level (as before); the weekly ones beside them.
    found.update(daily)
    found["weekly"] = weekly
    repeat = per_customer.filter(per_customer["frequency"].to_numpy() > 0)
    frequency = repeat["frequency"].to_numpy().astype(np.float64)
    value = repeat["monetary_value"].to_numpy().astype(np.float64)
    started = time.perf_counter()
    spend = GammaGamma.fit(frequency, value)
    found["gamma_gamma"] = {"rows": len(frequency), "fit_seconds": time.perf_counter() - started,
                            "params": {"p": spend.p, "q": spend.q, "gamma": spend.gamma,
                                       "log_likelihood": spend.log_likelihood}}
    say(f"  Gamma-Gamma on {len(frequency):,} repeat buyers: "
        f"{found['gamma_gamma']['fit_seconds']:.2f}s")
    found["seconds"] = sum(
        h["summary_seconds"] + h["bgnbd"]["triples"]["fit_seconds"]
        + h["bgnbd"]["per_customer"]["fit_seconds"] for h in (daily, weekly)
    ) + found["gamma_gamma"]["fit_seconds"]
    con.close()
    return found


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", choices=["grade", "models"], required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--files", type=int, default=ORDER_FILES)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--master", help="Spark master; DuckDB when not given")
    parser.add_argument("--spark-memory", default="10g")
    parser.add_argument("--shuffle-partitions", default="8")
    parser.add_argument("--spark-tmp", type=Path)
    parser.add_argument("--direct", action="store_true",
                        help="DuckDB reading the files in place (lake.read_lake + grade)")
    parser.add_argument("--event-log", type=Path)
    args = parser.parse_args(argv)
    result = step_grade(args) if args.step == "grade" else step_models(args)
    result["phases"] = {k: round(v, 3) for k, v in PHASES.items()}
    result["phase_calls"] = CALLS
    result["timeline"] = TIMELINE
    result["epoch_started"] = EPOCH_STARTED
    emit(result)


# =============================================================================================
# In the parent: data, one process (tree) per step, parity, figures
# =============================================================================================


def run_step(name: str, argv: list[str], *, logs: Path, env: dict[str, str],
             timeout: float | None) -> dict[str, Any]:
    """``argv`` in its own process group (runner.run_child); its JSON result with wall
    seconds, CPU seconds (wait4, the JVM's included once reaped; and the process tree sampled
    every 0.25 s), peak RSS of the tree. Past ``timeout`` the group is killed: {"timed_out":
    True, ...}; a failing step gives {"failed": True, "error": its stderr's tail}."""
    child = run_child(name, [sys.executable, *argv], logs=logs, env=env, timeout=timeout,
                      tree=True, interval=0.25)
    assert child.sampler is not None
    sampled_cpu = sum(child.sampler.cpu.values())
    measured = {"wall_seconds": child.wall_seconds, "cpu_seconds": child.cpu_seconds,
                "sampled_tree_cpu_seconds": sampled_cpu,
                "peak_tree_rss_bytes": child.sampler.peak,
                "wait4_maxrss_bytes": child.peak_rss_bytes,
                "load_average_before": child.load_before[0],
                "load_averages_before": list(child.load_before),
                "load_average_after": child.load_after[0],
                # Other work on the machine during the step: CPU seconds used by processes
                # outside the step's tree (the machine's busy time minus the tree's CPU).
                "machine_busy_cpu_seconds": child.machine_busy_seconds,
                "other_cpu_seconds": child.other_cpu_seconds}
    if child.timed_out:
        return {**measured, "timed_out": True, "limit_seconds": timeout,
                "last_log_lines": child.stderr().splitlines()[-15:]}
    if not child.ok:
        stderr = child.stderr()
        say(f"           FAILED (exit {child.returncode}) after {child.wall_seconds:.0f}s:\n"
            f"{stderr[-3000:]}")
        return {**measured, "failed": True, "exit": child.returncode, "error": stderr[-6000:]}
    result = {**child.result(), **measured}
    say(f"           {result['seconds']:.1f}s (process {child.wall_seconds:.1f}s, "
        f"{result['cpu_seconds']:.1f} CPU s), peak tree RSS "
        f"{fmt_bytes(result['peak_tree_rss_bytes'])}; other processes used "
        f"{measured['other_cpu_seconds']:.0f} CPU s meanwhile")
    return result


def spark_jobs(folder: Path, step: dict[str, Any]) -> dict[str, Any]:
    """Spark's event log of a step: its jobs and stages, each job put in the innermost
    timed phase that was running when it was submitted; the longest jobs."""
    jobs: dict[int, dict[str, Any]] = {}
    stage_job: dict[int, int] = {}
    stages, tasks = 0, 0
    totals = dict.fromkeys(TASK_METRICS, 0)
    per_job: dict[int, dict[str, int]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerJobStart":
                    jobs[event["Job ID"]] = {"start": event["Submission Time"] / 1000,
                                             "stages": len(event["Stage Infos"])}
                    for stage_id in event.get("Stage IDs", []):
                        stage_job[stage_id] = event["Job ID"]
                elif kind == "SparkListenerTaskEnd":
                    got = _task_metrics(event.get("Task Metrics") or {})
                    job = per_job.setdefault(stage_job.get(event.get("Stage ID"), -1),
                                             dict.fromkeys(TASK_METRICS, 0))
                    for key, v in got.items():
                        totals[key] += v
                        job[key] += v
                elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                    jobs[event["Job ID"]]["end"] = event["Completion Time"] / 1000
                elif kind == "SparkListenerStageCompleted":
                    stages += 1
                    tasks += event["Stage Info"]["Number of Tasks"]
    offset = step.get("epoch_started", 0.0)
    timeline = step.get("timeline", [])
    per_phase: dict[str, dict[str, float]] = {}
    listed = []
    for job_id, job in sorted(jobs.items()):
        at = job["start"] - offset
        seconds = job.get("end", job["start"]) - job["start"]
        inside = [p for p, a, b in timeline if a <= at <= b]
        phase = max(inside, key=lambda p: p.count(" › ")) if inside else "(outside phases)"
        entry = per_phase.setdefault(phase, {"jobs": 0, "job_seconds": 0.0,
                                             "shuffle_bytes_written": 0,
                                             "shuffle_bytes_read": 0})
        entry["jobs"] += 1
        entry["job_seconds"] += seconds
        metrics = per_job.get(job_id, {})
        entry["shuffle_bytes_written"] += metrics.get("shuffle_bytes_written", 0)
        entry["shuffle_bytes_read"] += metrics.get("shuffle_bytes_read", 0)
        listed.append({"job": job_id, "at": round(at, 1), "seconds": round(seconds, 2),
                       "stages": job["stages"], "phase": phase})
    orders = step.get("orders") or 0
    return {"jobs": len(jobs), "stages": stages, "tasks": tasks,
            "job_seconds": sum(j["seconds"] for j in listed), "per_phase": per_phase,
            "task_metrics": totals,
            "shuffle_bytes_written_per_order": totals["shuffle_bytes_written"] / orders
            if orders else None,
            "shuffle_bytes_read_per_order": totals["shuffle_bytes_read"] / orders
            if orders else None,
            "longest": sorted(listed, key=lambda j: -j["seconds"])[:8]}


TASK_METRICS = ["shuffle_bytes_written", "shuffle_records_written", "shuffle_bytes_read",
                "shuffle_records_read", "executor_run_ms", "executor_cpu_ns", "jvm_gc_ms",
                "memory_bytes_spilled", "disk_bytes_spilled", "input_bytes_read"]


def _task_metrics(m: dict[str, Any]) -> dict[str, int]:
    """A SparkListenerTaskEnd's "Task Metrics", in TASK_METRICS' names."""
    write, read = m.get("Shuffle Write Metrics") or {}, m.get("Shuffle Read Metrics") or {}
    return {"shuffle_bytes_written": write.get("Shuffle Bytes Written", 0),
            "shuffle_records_written": write.get("Shuffle Records Written", 0),
            "shuffle_bytes_read": read.get("Remote Bytes Read", 0)
            + read.get("Local Bytes Read", 0),
            "shuffle_records_read": read.get("Total Records Read", 0),
            "executor_run_ms": m.get("Executor Run Time", 0),
            "executor_cpu_ns": m.get("Executor CPU Time", 0),
            "jvm_gc_ms": m.get("JVM GC Time", 0),
            "memory_bytes_spilled": m.get("Memory Bytes Spilled", 0),
            "disk_bytes_spilled": m.get("Disk Bytes Spilled", 0),
            "input_bytes_read": (m.get("Input Metrics") or {}).get("Bytes Read", 0)}


def prepare_data(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    return ensure_generated(data, args.customers, args.orders, files=args.files, say=say)


def data_facts(data: Path, files: int) -> dict[str, Any]:
    import duckdb

    customers, orders = data_files(data, files)
    listed = "[" + ", ".join(f"'{p}'" for p in orders) + "]"
    con = duckdb.connect()
    rows, latest = con.execute(
        f"SELECT count(*), max(order_date) FROM read_parquet({listed})").fetchone()
    con.close()
    return {"orders": rows, "latest_order_date": latest.isoformat(),
            "order_bytes": sum(p.stat().st_size for p in orders),
            "customer_bytes": customers.stat().st_size}


def source_of(src: Path | None) -> dict[str, Any]:
    """The commit of the tierwise the children import, and uncommitted changes in it."""
    folder = src or ROOT / "src"
    return {"src": str(folder), "commit": git("rev-parse", "--short", "HEAD", cwd=folder),
            "uncommitted": git("status", "--porcelain", ".", cwd=folder).splitlines()}


def parity(steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tier counts of the runs, and each other run's snapshot against the baseline's
    (duckdb-direct, else duckdb), customer by customer (tier and metrics, benchmarks/run.py's
    compare_tables)."""
    name = next((n for n in ("duckdb-direct", "duckdb") if "tiers" in steps.get(n, {})), None)
    if name is None:
        return {}
    base = steps[name]
    found: dict[str, Any] = {"baseline": name}
    for name in GRADES:
        step = steps.get(name)
        if step is base:
            continue
        if not step or "tiers" not in step:
            continue
        location = step["snapshot"].rstrip("/")
        glob_ = location if location.endswith(".parquet") else f"{location}/*.parquet"
        started = time.perf_counter()
        compared = compare_tables(base["snapshot"], glob_)
        compared["seconds"] = time.perf_counter() - started
        compared["summary_counts_match"] = base["tiers"] == step["tiers"]
        compared["summary_count_differences"] = {
            t: step["tiers"].get(t, 0) - base["tiers"].get(t, 0)
            for t in sorted(set(base["tiers"]) | set(step["tiers"]))
            if step["tiers"].get(t, 0) != base["tiers"].get(t, 0)}
        compared["revenue_max_relative_difference"] = max(
            (abs(step["revenue"].get(t, 0.0) - v) / max(1.0, abs(v))
             for t, v in base["revenue"].items()), default=0.0)
        found[name] = compared
    return found


def figures(steps: dict[str, dict[str, Any]], orders: int, customers: int,
            cpus: int) -> dict[str, Any]:
    bases = {k: steps[k] for k in ("duckdb-direct", "duckdb") if "seconds" in steps.get(k, {})}
    found: dict[str, Any] = {}
    for name, step in steps.items():
        if name == "models":
            continue
        if "seconds" not in step:
            found[name] = {"timed_out": bool(step.get("timed_out")),
                           "failed": bool(step.get("failed")),
                           "wall_seconds": step["wall_seconds"],
                           "cpu_seconds": step["cpu_seconds"]}
            continue
        cores = 1 if name == "spark-local1" else 2 if name == "spark-local2" else cpus
        cpu = max(step["cpu_seconds"], step["sampled_tree_cpu_seconds"])
        f = {"grade_seconds": step["seconds"], "wall_seconds": step["wall_seconds"],
             "cpu_seconds": cpu, "peak_tree_rss_bytes": step["peak_tree_rss_bytes"],
             "orders_per_second": orders / step["seconds"],
             "customers_per_second": customers / step["seconds"],
             "orders_per_cpu_second": orders / cpu,
             "orders_per_core_second": orders / (step["seconds"] * cores),
             "cores": cores}
        for key, base in bases.items():
            over = key.replace("-", "_")
            f[f"seconds_over_{over}"] = step["seconds"] / base["seconds"]
            f[f"cpu_over_{over}"] = cpu / max(base["cpu_seconds"],
                                              base["sampled_tree_cpu_seconds"])
            f[f"rss_over_{over}"] = step["peak_tree_rss_bytes"] / base["peak_tree_rss_bytes"]
        found[name] = f
    one, two = steps.get("spark-local1", {}), steps.get("spark-local2", {})
    if "seconds" in one and "seconds" in two:
        found["spark_speedup_local2_over_local1"] = one["seconds"] / two["seconds"]
        found["spark_parallel_efficiency"] = one["seconds"] / two["seconds"] / 2
    elif "seconds" in two and one.get("timed_out"):
        found["spark_speedup_local2_over_local1_at_least"] = one["wall_seconds"] / two["seconds"]
    return found


def report(results: dict[str, Any]) -> str:
    steps, fig = results["steps"], results["figures"]
    lines = [f"\ntierwise engines: {results['customers']:,} customers, {results['orders']:,} "
             f"orders in {results['files']} Parquet files, as of {results['as_of']} "
             f"({results['machine']['cpus']} CPUs); tierwise {results['source']['commit']} "
             f"from {results['source']['src']}", ""]
    header = (f"{'engine':<36} {'grade s':>8} {'proc s':>7} {'CPU s':>7} {'other':>6} "
              f"{'load':>5} {'peak RSS':>10} {'orders/s':>10} {'ord/core-s':>10} "
              f"{'x direct':>8} {'x import':>8}")
    lines += [header, "-" * len(header)]
    for name in GRADES:
        if name not in steps:
            continue
        step, f = steps[name], fig.get(name, {})
        if "grade_seconds" not in f:
            state = "TIMED OUT" if step.get("timed_out") else "FAILED"
            lines.append(f"{LABELS[name]:<36} {state:>8} {step['wall_seconds']:>7.0f} "
                         f"{step['cpu_seconds']:>7.0f}")
            continue
        ratios = [f"{f[k]:.2f}x" if k in f else "" for k in
                  ("seconds_over_duckdb_direct", "seconds_over_duckdb")]
        lines.append(f"{LABELS[name]:<36} {f['grade_seconds']:>8.1f} {f['wall_seconds']:>7.1f} "
                     f"{f['cpu_seconds']:>7.1f} {step.get('other_cpu_seconds', 0.0):>6.0f} "
                     f"{step.get('load_average_before', 0.0):>5.2f} "
                     f"{fmt_bytes(f['peak_tree_rss_bytes']):>10} "
                     f"{f['orders_per_second']:>10,.0f} {f['orders_per_core_second']:>10,.0f} "
                     f"{ratios[0]:>8} {ratios[1]:>8}")
    lines.append("grade s: the grade in the child (JVM start included; for duckdb-direct "
                 "connect + read_lake + grade); proc s: the whole child process; CPU s: Python "
                 "+ JVM; other: CPU seconds used meanwhile by processes outside the step; load: "
                 "1-minute load average before the step; ord/core-s: orders / (grade s x cores "
                 "given: 2 for DuckDB and local[2], 1 for local[1]); x direct, x import: grade s "
                 "over duckdb-direct's (like for like) and over duckdb's (files imported)")
    if "spark_speedup_local2_over_local1" in fig:
        lines.append(f"Spark local[2] over local[1]: {fig['spark_speedup_local2_over_local1']:.2f}x"
                     f" faster (parallel efficiency {fig['spark_parallel_efficiency']:.0%})")
    elif "spark_speedup_local2_over_local1_at_least" in fig:
        lines.append("Spark local[2] over local[1]: at least "
                     f"{fig['spark_speedup_local2_over_local1_at_least']:.2f}x (local[1] stopped)")
    lines.append("")
    checked = results.get("parity", {})
    for name, p in checked.items():
        if not isinstance(p, dict):
            continue
        verdict = "PARITY ok" if p["ok"] and p["summary_counts_match"] else "PARITY DIFFERS"
        lines.append(f"{verdict}: {name} against {checked['baseline']}: "
                     f"{p['customers_joined']:,} customers "
                     f"joined; tier counts {'equal' if p['counts_match'] else 'differ'}; "
                     f"differing customers {p['differing_customers'] or 'none'}; revenue per "
                     f"tier to {p['revenue_max_relative_difference']:.1e} relative")
        if not p["summary_counts_match"]:
            lines.append(f"  tier count differences ({name} - {checked['baseline']}): "
                         f"{p['summary_count_differences']}")
    for name in ("duckdb-direct", "duckdb"):
        if "tiers" in steps.get(name, {}):
            lines.append(f"{name} tiers: {steps[name]['tiers']}")
    lines.append("")
    m = steps.get("models", {})
    if "bgnbd" in m:
        for label, h in (("daily", m), ("weekly (whole weeks)", m.get("weekly"))):
            if not h:
                continue
            tr, pc = h["bgnbd"]["triples"], h["bgnbd"]["per_customer"]
            lines.append(f"models, {label} histories: rfm summary of {pc['rows']:,} buyers in "
                         f"{h['summary_seconds']:.1f}s (DuckDB); BG/NBD on {tr['rows']:,} "
                         f"distinct histories {tr['fit_seconds']:.2f}s against {pc['rows']:,} "
                         f"rows (one per customer) {pc['fit_seconds']:.2f}s: "
                         f"{pc['fit_seconds'] / tr['fit_seconds']:.1f}x, "
                         f"{h['compression']:.1f}x fewer rows")
            lines.append("  parameters, histories vs one row per customer (relative "
                         "difference): " + ", ".join(
                             f"{k} {tr['params'][k]:.6g} / {pc['params'][k]:.6g} ({v:.1e})"
                             for k, v in h["relative_differences"].items()))
        gg = m["gamma_gamma"]
        lines.append(f"  Gamma-Gamma on {gg['rows']:,} repeat buyers: {gg['fit_seconds']:.2f}s; "
                     + ", ".join(f"{k} {v:.6g}" for k, v in gg["params"].items()))
    elif m:
        lines.append(f"models: {'timed out' if m.get('timed_out') else 'failed'}")
    lines.append("")
    for name in GRADES:
        step = steps.get(name, {})
        if step.get("phases"):
            lines.append(f"where {name} spends its time (inclusive; nested phases indented):")
            for path, seconds in step["phases"].items():
                parts = path.split(" › ")
                if seconds >= 0.05:
                    calls = step["phase_calls"].get(path, 1)
                    times = f" x{calls}" if calls > 1 else ""
                    lines.append(f"  {seconds:8.1f}s  {'  ' * (len(parts) - 1)}{parts[-1]}{times}")
        jobs = step.get("spark_jobs")
        if jobs:
            lines.append(f"  Spark event log: {jobs['jobs']} jobs, {jobs['stages']} stages, "
                         f"{jobs['tasks']} tasks, {jobs['job_seconds']:.1f}s in jobs; per "
                         "phase (jobs, seconds):")
            for phase, v in jobs["per_phase"].items():
                lines.append(f"    {v['jobs']:4d} {v['job_seconds']:8.1f}s  "
                             f"shuffle w {fmt_bytes(v.get('shuffle_bytes_written', 0)):>10} "
                             f"r {fmt_bytes(v.get('shuffle_bytes_read', 0)):>10}  {phase}")
            t = jobs.get("task_metrics")
            if t:
                lines.append(
                    f"  shuffle: {fmt_bytes(t['shuffle_bytes_written'])} written "
                    f"({t['shuffle_records_written']:,} records), "
                    f"{fmt_bytes(t['shuffle_bytes_read'])} read; per order "
                    f"{jobs['shuffle_bytes_written_per_order'] or 0:.1f} B written, "
                    f"{jobs['shuffle_bytes_read_per_order'] or 0:.1f} B read; spilled "
                    f"{fmt_bytes(t['disk_bytes_spilled'])} to disk; tasks: run "
                    f"{t['executor_run_ms'] / 1000:.0f}s, CPU {t['executor_cpu_ns'] / 1e9:.0f}s, "
                    f"GC {t['jvm_gc_ms'] / 1000:.0f}s")
            lines.append("  longest jobs: " + "; ".join(
                f"#{j['job']} {j['seconds']:.1f}s at {j['at']:.0f}s "
                f"({j['phase'].split(' › ')[-1]})" for j in jobs["longest"][:5]))
        if step.get("timed_out"):
            lines.append(f"{name} was stopped; its last log lines:")
            lines += [f"  {line}" for line in step["last_log_lines"]]
    return "\n".join(lines)


def main() -> None:
    if "--step" in sys.argv[1:]:
        child(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description="tierwise on DuckDB and on Spark")
    add_size_arguments(parser, data=ROOT / "bench-data" / "engines",
                       results=HERE / "engines-results.json", files=ORDER_FILES)
    parser.add_argument("--as-of", type=dt.date.fromisoformat,
                        help="grading date (default: the latest order date of the data)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"steps to run, comma-separated (default {','.join(STEPS)})")
    parser.add_argument("--step-timeout", type=float, default=1500.0,
                        help="seconds before a step is killed (default 1500)")
    parser.add_argument("--spark-memory", default="10g", help="spark.driver.memory")
    parser.add_argument("--shuffle-partitions", default="8")
    parser.add_argument("--event-log", action="store_true",
                        help="write Spark's event logs to DIR/logs/spark-events")
    parser.add_argument("--src", type=Path,
                        help="import tierwise from this folder in the children (PYTHONPATH)")
    args = parser.parse_args()
    chosen = [s for s in args.steps.split(",") if s]
    if set(chosen) - set(STEPS):
        parser.error(f"unknown steps: {', '.join(sorted(set(chosen) - set(STEPS)))}")

    data: Path = args.data.resolve()
    logs, spaces = data / "logs", data / "workspaces"
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(args.src.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    results: dict[str, Any] = {
        "started": timestamp(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "customers": args.customers, "orders": args.orders, "files": args.files,
        "data": str(data), "source": source_of(args.src),
        "spark": {"driver_memory": args.spark_memory,
                  "shuffle_partitions": args.shuffle_partitions,
                  "orders_given_as": f"{args.files} files, one source each (as DuckDB)",
                  "workarounds": "none"},
        "step_timeout": args.step_timeout,
    }
    with contextlib.suppress(ImportError):
        import duckdb
        import pyspark
        results["versions"] = {"duckdb": duckdb.__version__, "pyspark": pyspark.__version__}
    results["data_prepared"] = prepare_data(args, data)
    results["data_facts"] = data_facts(data, args.files)
    as_of = args.as_of or dt.date.fromisoformat(results["data_facts"]["latest_order_date"])
    results["as_of"] = as_of.isoformat()
    common = ["--data", str(data), "--files", str(args.files), "--as-of", as_of.isoformat()]
    me = str(Path(__file__).resolve())
    steps: dict[str, dict[str, Any]] = {}
    results["steps"] = steps
    for name in chosen:
        argv = [me, "--step", "models" if name == "models" else "grade", *common]
        if name != "models":
            argv += ["--workspace", str(spaces / name)]
        if name == "duckdb-direct":
            argv.append("--direct")
        if name in MASTERS:
            tmp = data / "spark-tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            argv += ["--master", MASTERS[name], "--spark-memory", args.spark_memory,
                     "--shuffle-partitions", args.shuffle_partitions,
                     "--spark-tmp", str(tmp)]
            if args.event_log:
                shutil.rmtree(logs / "spark-events" / name, ignore_errors=True)
                argv += ["--event-log", str(logs / "spark-events" / name)]
        steps[name] = run_step(name, argv, logs=logs, env=env, timeout=args.step_timeout)
        if args.event_log and name in MASTERS:
            with contextlib.suppress(Exception):    # a summary of the log only
                steps[name]["spark_jobs"] = spark_jobs(
                    logs / "spark-events" / name,
                    {**steps[name], "orders": results["data_facts"]["orders"]})
        results["parity"] = parity(steps)
        results["figures"] = figures(steps, results["data_facts"]["orders"], args.customers,
                                     os.cpu_count() or 1)
        write_results(args.results, results)
    results["finished"] = timestamp()
    write_results(args.results, results)
    print(report(results))
    say(f"\nfigures written to {args.results}; step logs and RSS timelines in {logs}")


if __name__ == "__main__":
    main()
