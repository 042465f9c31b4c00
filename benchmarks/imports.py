"""Import against the engine: `tierwise import orders` beside a plain typed copy of the same
files into the same kind of store, in one run.

    .venv/bin/python benchmarks/imports.py --data /work/bench20            # Parquet and CSV
    .venv/bin/python benchmarks/imports.py --data /work/bench50 --formats parquet --repeat 1

For each format (Parquet read in place; CSV copies of the same orders made once with DuckDB
COPY under ``--work``), each repeat runs these steps, each in its own child process
(``runner.run_child``: wall seconds, CPU seconds, peak RSS):

1. ``baseline``: ``CREATE TABLE orders AS SELECT CAST(order_id AS VARCHAR), ...`` from the
   files into a fresh DuckDB database file, with the store's memory limit and threads, and
   the file closed (checkpointed) — the engine's own speed for the same copy;
2. ``import``: a fresh workspace, customers imported first (not timed against anything),
   then ``tierwise import orders FILES`` (the CLI, in-process, every SQL statement timed);
3. ``reimport``: the same command on the unchanged files (must accept and update nothing);
4. ``changed``: the same files with ``--changed`` orders of the first file given new amounts
   (must count exactly those as updated and nothing else).

Ratios are taken within a repeat (import ÷ that repeat's baseline) and their median
reported: on a shared machine absolute seconds move with the load, ratios much less.
Results go to ``--results`` (default benchmarks/imports-results.json); logs under
``--work``/logs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from runner import (
    GB,
    HERE,
    emit,
    fmt_bytes,
    machine,
    run_child,
    say,
    source_version,
    timestamp,
    write_results,
)

ORDER_COLUMNS = {  # the generator's order columns and the store's types
    "order_id": "VARCHAR", "customer_id": "VARCHAR", "order_date": "DATE",
    "amount": "DOUBLE", "cost": "DOUBLE"}
STEPS = ("baseline", "import", "reimport", "changed")


# =============================================================================================
# Children: one measured step each
# =============================================================================================


def _duckdb_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {"memory_limit": args.memory_limit}
    if args.threads:
        config["threads"] = args.threads
    return config


def step_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """The plain typed copy into a fresh database file, closed (checkpointed)."""
    import duckdb

    target = args.target
    for path in (target, target.with_name(target.name + ".wal")):
        path.unlink(missing_ok=True)
    files = "[" + ", ".join(f"'{f}'" for f in args.files) + "]"
    if args.format == "parquet":
        scan = f"read_parquet({files})"
    else:
        scan = f"read_csv({files}, header = true, all_varchar = true)"
    casts = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in ORDER_COLUMNS.items())
    config = _duckdb_config(args)
    config["temp_directory"] = str(target.parent / "spill")
    started = time.perf_counter()
    con = duckdb.connect(str(target), config=config)
    con.execute(f"CREATE TABLE orders AS SELECT {casts} FROM {scan}")
    copied = time.perf_counter() - started
    row = con.execute("SELECT count(*) FROM orders").fetchone()
    con.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "copy_seconds": copied, "rows": row[0] if row else 0,
            "store_bytes": target.stat().st_size}


class _TimedConnection:
    """The store connection with every statement timed, in the order run."""

    def __init__(self, con: Any, log: list[tuple[str, float]]) -> None:
        self._con, self._log = con, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def _timed(self, label: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self._log.append((label, time.perf_counter() - started))

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._timed(" ".join(sql.split())[:150], self._con.execute, sql, *args, **kwargs)

    def commit(self) -> Any:
        return self._timed("COMMIT", self._con.commit)

    def close(self) -> Any:
        return self._timed("CLOSE (checkpoint)", self._con.close)


def step_import(args: argparse.Namespace) -> dict[str, Any]:
    """`tierwise import KIND FILES --workspace W`, run in this process with the store's
    statements timed; with ``--fresh`` a new workspace first."""
    import tierwise.data.store as store
    import tierwise.workspace.handle as handle
    from tierwise.cli import main
    from tierwise.workspace import Workspace

    if args.fresh:
        if args.workspace.exists():
            shutil.rmtree(args.workspace)
        Workspace.init(args.workspace).close()
        if args.memory_limit or args.threads:
            _set_engine(args)
    statements: list[tuple[str, float]] = []
    results: list[Any] = []
    connect, import_files = store.connect, handle.import_files

    def timed_connect(*a: Any, **k: Any) -> Any:
        return _TimedConnection(connect(*a, **k), statements)

    def kept_import(*a: Any, **k: Any) -> Any:
        results.append(import_files(*a, **k))
        return results[-1]

    store.connect = timed_connect  # type: ignore[assignment]
    handle.import_files = kept_import
    argv = ["import", args.kind, *map(str, args.files), "--workspace", str(args.workspace)]
    started = time.perf_counter()
    try:
        main.main(argv, standalone_mode=False)
    finally:
        seconds = time.perf_counter() - started
        store.connect, handle.import_files = connect, import_files  # type: ignore[assignment]
    result = results[0]
    return {
        "seconds": seconds,
        "rows": sum(f.rows for f in result.files), "accepted": result.accepted,
        "updated": result.updated, "unchanged": result.unchanged, "rejected": result.rejected,
        "placeholders": len(result.created_customers),
        "store_bytes": (args.workspace / "data" / "store.duckdb").stat().st_size,
        "statements": [{"sql": sql, "seconds": round(s, 3)} for sql, s in statements],
    }


def _set_engine(args: argparse.Namespace) -> None:
    """tierwise.yaml's ``engine:`` with the benchmark's memory limit and threads."""
    from ruamel.yaml import YAML

    yaml = YAML()
    path = args.workspace / "tierwise.yaml"
    values = yaml.load(path.read_text(encoding="utf-8")) or {}
    engine: dict[str, Any] = {"name": "duckdb", "memory_limit": args.memory_limit}
    if args.threads:
        engine["threads"] = args.threads
    values["engine"] = engine
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(values, stream)


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", choices=["baseline", "import"], required=True)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--kind", default="orders")
    parser.add_argument("--files", type=Path, nargs="+", required=True)
    parser.add_argument("--target", type=Path, help="baseline: the database file")
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    emit(step_baseline(args) if args.step == "baseline" else step_import(args))


# =============================================================================================
# The parent: data, steps, figures
# =============================================================================================


def order_files(data: Path) -> list[Path]:
    files = sorted(data.glob("orders-*.parquet"))
    if not files or not (data / "customers.parquet").exists():
        sys.exit(f"{data} has no customers.parquet and orders-*.parquet: run generate.py")
    return files


def prepare(data: Path, work: Path, formats: list[str], changed: int) -> dict[str, list[Path]]:
    """The files of each variant: parquet / csv (the data, or CSV copies of it) and
    parquet-changed / csv-changed (the first file with ``changed`` orders' amounts
    doubled, the others the same). Made once under ``work``; the data folder is only read."""
    import duckdb

    parquet = order_files(data)
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2})
    variants: dict[str, list[Path]] = {}
    folder = work / "files"
    folder.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        if fmt == "parquet":
            files = parquet
        else:
            files = [folder / f"{p.stem}.csv" for p in parquet]
            for source, target in zip(parquet, files, strict=True):
                if not target.exists():
                    say(f"CSV copy of {source} -> {target}")
                    scratch = target.with_name(target.name + ".tmp")
                    con.execute(f"COPY (SELECT * FROM read_parquet('{source}')) TO "
                                f"'{scratch}' (HEADER, DELIMITER ',')")
                    scratch.rename(target)
        first = folder / f"changed-{changed}-{files[0].name}"
        if not first.exists():
            say(f"{changed} changed orders -> {first}")
            options = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER, DELIMITER ',')"
            reader = "read_parquet" if fmt == "parquet" else "read_csv"
            extra = "" if fmt == "parquet" else ", header = true, all_varchar = true"
            scratch = first.with_name(first.name + ".tmp")
            amount = "CAST(amount AS DOUBLE)"
            con.execute(
                f"COPY (SELECT * EXCLUDE (rn) REPLACE (CASE WHEN rn <= {changed} "
                f"THEN {amount} * 2 + 1 ELSE {amount} END AS amount) FROM (SELECT *, "
                f"row_number() OVER () AS rn FROM {reader}('{files[0]}'{extra}))) "
                f"TO '{scratch}' {options}")
            scratch.rename(first)
        variants[fmt] = files
        variants[f"{fmt}-changed"] = [first, *files[1:]]
    con.close()
    return variants


def run_step(name: str, argv: list[str], logs: Path) -> dict[str, Any]:
    found = run_child(name, [sys.executable, str(Path(__file__).resolve()), "--child", *argv],
                      logs=logs, cwd=HERE.parent)
    if not found.ok:
        sys.exit(found.failure())
    result = found.result()
    result.update(process_seconds=found.wall_seconds, cpu_seconds=found.cpu_seconds,
                  peak_rss_bytes=found.peak_rss_bytes,
                  other_cpu_seconds=found.other_cpu_seconds,
                  load_average_before=found.load_before[0])
    say(f"           {result['seconds']:.1f}s (process {found.wall_seconds:.1f}s, "
        f"{found.cpu_seconds:.1f} CPU s), peak RSS {fmt_bytes(found.peak_rss_bytes)}, "
        f"other processes {found.other_cpu_seconds:.0f} CPU s")
    return result


def run_format(fmt: str, variants: dict[str, list[Path]], data: Path, args: argparse.Namespace,
               repeat: int) -> dict[str, Any]:
    work, logs = args.work, args.work / "logs"
    settings = ["--memory-limit", args.memory_limit] + (
        ["--threads", str(args.threads)] if args.threads else [])
    files = [str(f) for f in variants[fmt]]
    workspace = work / f"ws-{fmt}"
    tag = f"{fmt}-{repeat}"
    steps: dict[str, Any] = {}
    steps["baseline"] = run_step(f"baseline-{tag}", [
        "--step", "baseline", "--format", fmt, "--target", str(work / f"baseline-{fmt}.duckdb"),
        "--files", *files, *settings], logs)
    steps["customers"] = run_step(f"customers-{tag}", [
        "--step", "import", "--kind", "customers", "--fresh", "--workspace", str(workspace),
        "--files", str(data / "customers.parquet"), *settings], logs)
    for step, kind_files in (("import", files), ("reimport", files),
                             ("changed", [str(f) for f in variants[f"{fmt}-changed"]])):
        steps[step] = run_step(f"{step}-{tag}", [
            "--step", "import", "--workspace", str(workspace), "--files", *kind_files,
            *settings], logs)
    _check(steps, args.changed)
    shutil.rmtree(workspace, ignore_errors=True)
    (work / f"baseline-{fmt}.duckdb").unlink(missing_ok=True)
    return steps


def _check(steps: dict[str, Any], changed: int) -> None:
    """What each import must have done; a benchmark of a wrong import is worth nothing."""
    rows = steps["baseline"]["rows"]
    expected = {"import": (rows, 0, 0), "reimport": (0, 0, rows),
                "changed": (0, changed, rows - changed)}
    for step, (accepted, updated, unchanged) in expected.items():
        got = steps[step]
        found = (got["accepted"], got["updated"], got["unchanged"])
        if found != (accepted, updated, unchanged) or got["rejected"]:
            sys.exit(f"{step}: accepted/updated/unchanged {found} and {got['rejected']} "
                     f"rejected, expected {(accepted, updated, unchanged)} and none rejected")


def figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats of seconds, and of the ratios taken within each repeat."""
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    found: dict[str, Any] = {}
    for step in STEPS:
        found[f"{step}_seconds"] = median([r[step]["seconds"] for r in runs])
        found[f"{step}_process_seconds"] = median([r[step]["process_seconds"] for r in runs])
        found[f"{step}_cpu_seconds"] = median([r[step]["cpu_seconds"] for r in runs])
        found[f"{step}_peak_rss_bytes"] = max(r[step]["peak_rss_bytes"] for r in runs)
    for step in STEPS[1:]:
        found[f"{step}_vs_baseline"] = median(
            [r[step]["seconds"] / r["baseline"]["seconds"] for r in runs])
        # CPU seconds (user + system, all threads) move less with other work on the machine
        # than wall seconds do: the same ratio by the work done.
        found[f"{step}_cpu_vs_baseline"] = median(
            [r[step]["cpu_seconds"] / r["baseline"]["cpu_seconds"] for r in runs])
        found[f"{step}_process_vs_baseline_process"] = median(
            [r[step]["process_seconds"] / r["baseline"]["process_seconds"] for r in runs])
    found["reimport_speedup"] = median(
        [r["import"]["seconds"] / r["reimport"]["seconds"] for r in runs])
    found["changed_speedup"] = median(
        [r["import"]["seconds"] / r["changed"]["seconds"] for r in runs])
    found["reimport_cpu_speedup"] = median(
        [r["import"]["cpu_seconds"] / r["reimport"]["cpu_seconds"] for r in runs])
    return found


def report(results: dict[str, Any]) -> str:
    lines = [f"\ntierwise import vs a typed CREATE TABLE AS SELECT: {results['orders']:,} orders "
             f"({results['machine']['cpus']} CPUs, memory_limit {results['memory_limit']}); "
             f"tierwise {results['source']['commit']}, medians of {results['repeat']} repeat(s)"]
    for fmt, block in results["formats"].items():
        f = block["figures"]
        lines.append(f"\n{fmt}:")
        lines.append(f"  {'step':<10} {'seconds':>8} {'process s':>10} {'CPU s':>7} "
                     f"{'peak RSS':>10} {'× baseline':>11} {'CPU ×':>6}")
        for step in STEPS:
            ratio = "" if step == "baseline" else f"{f[f'{step}_vs_baseline']:.2f}"
            cpu = "" if step == "baseline" else f"{f[f'{step}_cpu_vs_baseline']:.2f}"
            lines.append(f"  {step:<10} {f[f'{step}_seconds']:>8.1f} "
                         f"{f[f'{step}_process_seconds']:>10.1f} "
                         f"{f[f'{step}_cpu_seconds']:>7.1f} "
                         f"{f[f'{step}_peak_rss_bytes'] / GB:>8.2f} G {ratio:>11} {cpu:>6}")
        lines.append(f"  first import ÷ re-import: {f['reimport_speedup']:.2f}× "
                     f"(CPU {f['reimport_cpu_speedup']:.2f}×); "
                     f"÷ re-import with {results['changed']} changed: {f['changed_speedup']:.2f}×")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/bench20"),
                        help="customers.parquet and orders-*.parquet (only read)")
    parser.add_argument("--work", type=Path, default=HERE.parent / "bench-data" / "imports",
                        help="CSV copies, workspaces, baseline files, logs")
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--changed", type=int, default=1000,
                        help="orders given new amounts for the changed re-import")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument("--results", type=Path, default=HERE / "imports-results.json")
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    variants = prepare(args.data, args.work, formats, args.changed)
    results: dict[str, Any] = {
        "started": timestamp(), "machine": machine(), "source": source_version(),
        "data": str(args.data), "memory_limit": args.memory_limit, "threads": args.threads,
        "repeat": args.repeat, "changed": args.changed, "orders": None, "formats": {}}
    for fmt in formats:
        runs = [run_format(fmt, variants, args.data, args, i) for i in range(args.repeat)]
        results["formats"][fmt] = {"runs": runs, "figures": figures(runs)}
        results["orders"] = runs[0]["baseline"]["rows"]
        write_results(args.results, results)
    results["finished"] = timestamp()
    write_results(args.results, results)
    print(report(results))
    say(f"results: {args.results}")


if __name__ == "__main__":
    main()
