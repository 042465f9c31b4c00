"""The fixed cost of Spark: a small grade (20,000 orders by default) from the command line on
Spark local[2] and on DuckDB, in the same run, as ratios; the Spark jobs and stages it
launches, by phase.

    .venv/bin/python benchmarks/spark_small.py [--customers 2000] [--orders 20000]
                                               [--repeat 3] [--data DIR] [--src DIR]

1. Data: generate.py's files (customers.parquet, orders-NN.parquet) in ``DIR`` (default
   ``bench-data/spark-small/``), generated only when ``DIR/GENERATED`` does not record the
   sizes asked for.
2. Each run is one process, as a user types it: ``tierwise -w WS grade --orders F...
   --customers F --format json`` in a fresh workspace (value-tiers, a first run, as of the
   latest order), ``--engine spark`` with tierwise.yaml's ``engine: {name: spark, master:
   local[2]}`` (tierwise's defaults otherwise; Spark's event log on), or ``--engine duckdb``.
   The child runs the command line in-process (``tierwise.cli.main``) so that it can time
   the Python imports and the session start (``tierwise.data.engines.spark_session``: JVM
   launch and SparkContext) from outside; nothing under ``src/`` is changed. The engines
   alternate (DuckDB first in odd repeats), ``--repeat`` times.
3. From the event log: the jobs, the stages run and skipped, the tasks, each job's seconds,
   grouped by the job description tierwise sets (``engines.described``: "tierwise: read
   orders", "tierwise: metrics per customer", …; "(none)" for jobs outside one).
4. Prints, per engine, the medians of the process's wall seconds, of the imports, of the
   session start and of the grade, Spark over DuckDB as ratios (of the medians, and the
   median of the per-repeat ratios), the jobs and stages by phase; tier counts must agree.
   Writes ``benchmarks/spark-small-results.json`` (rewritten after every run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import ORDER_FILES, data_files, ensure_generated  # noqa: E402
from runner import (  # noqa: E402
    add_size_arguments,
    emit,
    git,
    machine,
    run_child,
    say,
    timestamp,
    write_results,
)

ENGINES = ("duckdb", "spark")


# =============================================================================================
# In the child: the command line, in-process, with the session start timed
# =============================================================================================


def child(argv: list[str]) -> None:
    """``--child EVENT_DIR -- CLI ARGS``: run tierwise's command line; emit the timings."""
    started_epoch = time.time()
    started = time.perf_counter()
    import tierwise.data.engines as engines
    from tierwise.cli import main

    imported = time.perf_counter()
    sessions: list[tuple[float, float]] = []
    original = engines.spark_session

    def timed_session(*args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sessions.append((begin - started, time.perf_counter() - started))

    engines.spark_session = timed_session       # type: ignore[assignment]
    output = io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(output):
        try:
            main(argv, prog_name="tierwise", standalone_mode=False)
        except SystemExit as stop:
            code = stop.code
    ended = time.perf_counter()
    text = output.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else None
    emit({"exit": code, "epoch_started": started_epoch,
          "import_seconds": imported - started,
          "cli_seconds": ended - imported,
          "session_seconds": sum(b - a for a, b in sessions),
          "sessions": sessions,
          "tiers": {t["tier"]: t["customers"] for t in summary["tiers"]} if summary else None,
          "customers": summary["customers"] if summary else None,
          "output_tail": text[-2000:] if summary is None else ""})


# =============================================================================================
# In the parent: data, workspaces, runs, the event log, figures
# =============================================================================================


def prepare_data(args: argparse.Namespace) -> dict[str, Any]:
    return ensure_generated(args.data, args.customers, args.orders, files=args.files, say=say)


def new_workspace(folder: Path, engine: str, args: argparse.Namespace, events: Path,
                  env: dict[str, str]) -> dict[str, Any]:
    """A fresh workspace (``tierwise init``, by the tierwise the runs import); for Spark,
    tierwise.yaml's ``engine:`` names the master and turns the event log on (and sets only
    what the options ask for besides)."""
    from ruamel.yaml import YAML

    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "tierwise", "init", str(folder)], env=env,
                   check=True, capture_output=True)
    if engine != "spark":
        return {"name": "duckdb"}
    events.mkdir(parents=True, exist_ok=True)
    settings = {"spark.eventLog.enabled": "true", "spark.eventLog.compress": "false",
                "spark.eventLog.dir": f"file://{events}"}
    if args.spark_memory:
        settings["spark.driver.memory"] = args.spark_memory
    for pair in args.spark_setting:
        key, _, value = pair.partition("=")
        settings[key] = value
    config_path = folder / "tierwise.yaml"
    yaml = YAML()
    config = yaml.load(config_path)
    config["engine"] = {"name": "spark", "master": args.master, "settings": settings}
    with config_path.open("w", encoding="utf-8") as out:
        yaml.dump(config, out)
    return dict(config["engine"])


def spark_events(folder: Path) -> dict[str, Any]:
    """Jobs, stages and tasks in the event log(s) under ``folder``, grouped by the job
    description tierwise gives them; the session's start and the first and last job."""
    jobs: dict[int, dict[str, Any]] = {}
    stage_job: dict[int, int] = {}
    stages_run, stages_skipped, tasks = 0, 0, 0
    app_start = None
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerApplicationStart":
                    app_start = event["Timestamp"] / 1000
                elif kind == "SparkListenerJobStart":
                    properties = event.get("Properties") or {}
                    jobs[event["Job ID"]] = {
                        "start": event["Submission Time"] / 1000,
                        "stages": len(event["Stage Infos"]),
                        "phase": properties.get("spark.job.description") or "(none)"}
                    for stage_id in event.get("Stage IDs", []):
                        stage_job[stage_id] = event["Job ID"]
                elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                    jobs[event["Job ID"]]["end"] = event["Completion Time"] / 1000
                elif kind == "SparkListenerStageCompleted":
                    stages_run += 1
                    tasks += event["Stage Info"]["Number of Tasks"]
    stages_in_jobs = sum(j["stages"] for j in jobs.values())
    stages_skipped = stages_in_jobs - stages_run
    per_phase: dict[str, dict[str, Any]] = {}
    for job in jobs.values():
        entry = per_phase.setdefault(job["phase"], {"jobs": 0, "stages": 0, "job_seconds": 0.0,
                                                    "first": job["start"]})
        entry["jobs"] += 1
        entry["stages"] += job["stages"]
        entry["job_seconds"] += job.get("end", job["start"]) - job["start"]
        entry["first"] = min(entry["first"], job["start"])
    ordered = dict(sorted(per_phase.items(), key=lambda kv: kv[1]["first"]))
    starts = [j["start"] for j in jobs.values()]
    ends = [j.get("end", j["start"]) for j in jobs.values()]
    return {"jobs": len(jobs), "stages_in_jobs": stages_in_jobs, "stages_run": stages_run,
            "stages_skipped": stages_skipped, "tasks": tasks,
            "job_seconds": sum(e - s for s, e in zip(starts, ends, strict=True)),
            "application_start": app_start,
            "first_job": min(starts) if starts else None,
            "last_job_end": max(ends) if ends else None,
            "per_phase": {k: {kk: vv for kk, vv in v.items() if kk != "first"}
                          for k, v in ordered.items()}}


def one_run(engine: str, repeat: int, args: argparse.Namespace, env: dict[str, str],
            logs: Path) -> dict[str, Any]:
    data: Path = args.data
    folder = data / "workspaces" / f"{engine}-{repeat}"
    events = data / "events" / f"{engine}-{repeat}"
    shutil.rmtree(events, ignore_errors=True)
    engine_setting = new_workspace(folder, engine, args, events, env)
    customers, orders = data_files(data, args.files)
    cli = ["-w", str(folder), "grade", "--engine", engine, "--format", "json",
           "--customers", str(customers), *[a for p in orders for a in ("--orders", str(p))]]
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--", *cli]
    ran = run_child(f"{engine}-{repeat}", argv, logs=logs, env=env,
                    timeout=args.timeout, tree=True, interval=0.25)
    found: dict[str, Any] = {"engine": engine_setting, "wall_seconds": ran.wall_seconds,
                             # wait4 counts a JVM only once reaped: the tree as sampled
                             "cpu_seconds": max(ran.cpu_seconds, sum(ran.sampler.cpu.values())
                                                if ran.sampler else 0.0),
                             "peak_tree_rss_bytes": ran.sampler.peak if ran.sampler else None,
                             "other_cpu_seconds": ran.other_cpu_seconds,
                             "load_average_before": ran.load_before[0]}
    if not ran.ok:
        found.update(failed=True, error=ran.stderr()[-3000:])
        say(f"  FAILED: {found['error'][-600:]}")
        return found
    found.update(ran.result())
    if engine == "spark":
        found["spark"] = spark_events(events)
        first = found["spark"]["first_job"]
        if first is not None:     # seconds from the process's start to Spark's first job
            found["first_job_at"] = first - found["epoch_started"]
    say(f"  {engine}: {ran.wall_seconds:.1f}s wall (imports {found['import_seconds']:.1f}s, "
        f"session {found['session_seconds']:.1f}s)"
        + (f", {found['spark']['jobs']} jobs, {found['spark']['stages_run']} stages run"
           if "spark" in found else ""))
    return found


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if not r.get("failed")]
    found: dict[str, Any] = {}
    for engine in ENGINES:
        mine = [r for r in ok if r["engine_name"] == engine]
        f: dict[str, Any] = {"runs": len(mine)}
        for key in ("wall_seconds", "import_seconds", "cli_seconds", "session_seconds",
                    "cpu_seconds", "first_job_at"):
            values = [r[key] for r in mine if r.get(key) is not None]
            f[key] = median(values)
            f[f"{key}_all"] = [round(v, 2) for v in values]
        f["grade_seconds"] = median([r["cli_seconds"] - r["session_seconds"] for r in mine])
        if engine == "spark" and mine:
            for key in ("jobs", "stages_run", "stages_skipped", "tasks", "job_seconds"):
                f[key] = median([r["spark"][key] for r in mine])
            f["per_phase"] = mine[-1]["spark"]["per_phase"]
        found[engine] = f
    duck, spark = found["duckdb"], found["spark"]
    if duck["runs"] and spark["runs"]:
        found["spark_over_duckdb_wall"] = spark["wall_seconds"] / duck["wall_seconds"]
        found["spark_over_duckdb_cli"] = spark["cli_seconds"] / duck["cli_seconds"]
        pairs = {}
        for r in ok:
            pairs.setdefault(r["repeat"], {})[r["engine_name"]] = r["wall_seconds"]
        ratios = [p["spark"] / p["duckdb"] for p in pairs.values() if len(p) == 2]
        found["spark_over_duckdb_wall_per_repeat"] = [round(v, 2) for v in ratios]
        found["spark_over_duckdb_wall_median_of_ratios"] = median(ratios)
        found["spark_session_share_of_wall"] = spark["session_seconds"] / spark["wall_seconds"]
    tiers = {json.dumps(r.get("tiers"), sort_keys=True) for r in ok}
    found["tiers_agree"] = len(tiers) == 1
    return found


def report(results: dict[str, Any]) -> str:
    f = results["figures"]
    lines = [f"\ntierwise grade from the command line: {results['customers']:,} customers, "
             f"{results['orders']:,} orders ({results['files']} order files), Spark "
             f"{results['master']} against DuckDB, {results['repeat']} runs each; tierwise "
             f"{results['source']['commit']}", ""]
    header = (f"{'engine':<8} {'wall s':>7} {'imports':>8} {'session':>8} {'grade':>7} "
              f"{'CPU s':>6} {'jobs':>5} {'stages':>7} {'skipped':>7} {'tasks':>6}   "
              "wall, each run")
    lines += [header, "-" * len(header)]
    for engine in ENGINES:
        e = f[engine]
        if not e["runs"]:
            lines.append(f"{engine:<8} no successful run")
            continue
        spark = engine == "spark"
        lines.append(
            f"{engine:<8} {e['wall_seconds']:>7.1f} {e['import_seconds']:>8.1f} "
            f"{e['session_seconds']:>8.1f} {e['grade_seconds']:>7.1f} {e['cpu_seconds']:>6.1f} "
            f"{e['jobs'] if spark else '':>5} {e['stages_run'] if spark else '':>7} "
            f"{e['stages_skipped'] if spark else '':>7} {e['tasks'] if spark else '':>6}   "
            + ", ".join(f"{v:.1f}" for v in e["wall_seconds_all"]))
    lines.append("medians; wall: the whole process; imports: Python imports (tierwise, "
                 "click, ibis); session: tierwise.data.engines.spark_session (JVM launch, "
                 "SparkContext); grade: the command after imports, less the session start")
    if "spark_over_duckdb_wall" in f:
        lines.append(f"Spark over DuckDB: {f['spark_over_duckdb_wall']:.1f}x wall (medians), "
                     f"{f['spark_over_duckdb_wall_median_of_ratios']:.1f}x (median of the "
                     f"per-run ratios {f['spark_over_duckdb_wall_per_repeat']}); "
                     f"{f['spark_over_duckdb_cli']:.1f}x after imports; the session start is "
                     f"{f['spark_session_share_of_wall']:.0%} of Spark's wall")
    lines.append(f"tier counts {'agree' if f['tiers_agree'] else 'DIFFER'} across all runs")
    phases = f["spark"].get("per_phase") or {}
    if phases:
        lines.append("\nSpark's jobs by phase (the last run; job description, in order):")
        for phase, v in phases.items():
            lines.append(f"  {v['jobs']:4d} jobs {v['stages']:4d} stages {v['job_seconds']:7.2f}s"
                         f"  {phase}")
    return "\n".join(lines)


def main() -> None:
    if "--child" in sys.argv[1:2]:
        child(sys.argv[sys.argv.index("--") + 1:])
        return
    parser = argparse.ArgumentParser(description="Spark's fixed cost against DuckDB")
    add_size_arguments(parser, data=ROOT / "bench-data" / "spark-small",
                       results=HERE / "spark-small-results.json", files=ORDER_FILES)
    parser.set_defaults(customers=2000, orders=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--spark-memory", help="spark.driver.memory (default: not set)")
    parser.add_argument("--spark-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for tierwise.yaml's engine.settings (repeatable)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before a run is killed (default 600)")
    parser.add_argument("--src", type=Path,
                        help="import tierwise from this folder in the children (PYTHONPATH)")
    args = parser.parse_args()
    args.data = args.data.resolve()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(args.src.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    src = args.src.resolve() if args.src else ROOT / "src"
    results: dict[str, Any] = {
        "started": timestamp(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(), "customers": args.customers, "orders": args.orders,
        "files": args.files, "master": args.master, "repeat": args.repeat,
        "source": {"src": str(src), "commit": git("rev-parse", "--short", "HEAD", cwd=src),
                   "uncommitted": git("status", "--porcelain", ".", cwd=src).splitlines()},
        "data_prepared": prepare_data(args), "runs": []}
    logs = args.data / "logs"
    for repeat in range(1, args.repeat + 1):
        order = ENGINES if repeat % 2 else tuple(reversed(ENGINES))
        for engine in order:
            found = one_run(engine, repeat, args, env, logs)
            found.update(engine_name=engine, repeat=repeat)
            results["runs"].append(found)
            results["figures"] = figures(results["runs"])
            write_results(args.results, results)
    results["finished"] = timestamp()
    write_results(args.results, results)
    print(report(results))


if __name__ == "__main__":
    main()
