"""Where tierwise's time and memory go at scale: experiments behind the README's findings.

    python benchmarks/diagnose.py [--data bench-data] [EXPERIMENT ...]

Needs a finished ``run.py`` (it reads ``DATA/workspace/data/store.duckdb`` read-only and the
generated Parquet files). Every experiment runs in its own process (``runner.run_child``,
logs in ``DATA/logs/diagnose-EXPERIMENT.*``); the table shows wall seconds, CPU seconds (all
DuckDB threads) and the process's peak RSS.

Experiments:

* ``fingerprint-tierwise``: ``tierwise.grading.run.data_fingerprint`` as a run computes it (every
  column of every row cast to text, concatenated and hashed);
* ``fingerprint-native``: the same digest idea with DuckDB's hash of the row itself
  (``sum(hash(t) % p)``), no text;
* ``metrics-tierwise``: ``tierwise.grading.run.evaluation`` (metrics + scorecard into a temp table);
* ``metrics-sql``: the hand-written baseline query into a temp table;
* ``import-plain``: the orders Parquet copied into a new store table, typed, no checks;
* ``import-distinct``: only the ``SELECT DISTINCT`` over all columns that an import does to
  collapse identical rows;
* ``import-key-check``: only a duplicate-key check (``GROUP BY order_id HAVING count > 1``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runner import GB, emit, run_child  # noqa: E402

EXPERIMENTS = ["fingerprint-tierwise", "fingerprint-native", "metrics-tierwise", "metrics-sql",
               "import-plain", "import-distinct", "import-key-check"]
AS_OF = dt.date(2025, 12, 31)


def _store(data: Path) -> Any:
    import duckdb

    con = duckdb.connect(str(data / "workspace" / "data" / "store.duckdb"), read_only=True)
    con.execute("SET enable_progress_bar = false")
    return con


def _sources(con: Any) -> Any:
    import ibis

    from tierwise.data.tables import CanonicalTables

    backend = ibis.duckdb.from_connection(con)
    return backend, CanonicalTables(backend.table("customers"), backend.table("orders"),
                            backend.table("interactions"))


def experiment(name: str, data: Path) -> dict[str, Any]:
    """Run one experiment in this process; returns what it found (timed by the caller)."""
    if name == "fingerprint-tierwise":
        from tierwise.data.tables import data_fingerprint

        backend, sources = _sources(_store(data))
        return {"fingerprint": data_fingerprint(backend, sources, AS_OF)}
    if name == "fingerprint-native":
        con = _store(data)
        parts = []
        for table, date in (("customers", None), ("orders", "order_date"),
                            ("interactions", "date")):
            where = f"WHERE {date} <= DATE '{AS_OF}'" if date else ""
            parts.append(con.execute(f"SELECT count(*), sum(hash(t) % 4294967291) "
                                     f"FROM {table} t {where}").fetchone())
        return {"parts": [list(map(str, p)) for p in parts]}
    if name == "metrics-tierwise":
        from tierwise.grading.run import evaluation
        from tierwise.policy.loading import load_policy_text
        from tierwise.policy.presets import preset_text

        con = _store(data)
        backend, sources = _sources(con)
        policy = load_policy_text(preset_text("value-tiers"), source="value-tiers",
                                  attributes=sources.attributes)
        with evaluation(backend, sources, policy, AS_OF) as ev:
            rows = backend.execute(ev.graded.count())
        return {"customers": int(rows)}
    if name == "metrics-sql":
        from baseline_sql import store_query

        con = _store(data)
        con.execute(f"CREATE TEMP TABLE m AS {store_query(AS_OF)}")
        return {"customers": con.execute("SELECT count(*) FROM m").fetchone()[0]}
    if name.startswith("import-"):
        import duckdb

        orders = str(data / "orders-*.parquet")
        with tempfile.TemporaryDirectory(dir=data) as scratch:
            con = duckdb.connect(str(Path(scratch) / "store.duckdb"))
            con.execute("SET enable_progress_bar = false")
            if name == "import-plain":
                con.execute(f"CREATE TABLE orders AS SELECT * FROM read_parquet('{orders}')")
                return {"rows": con.execute("SELECT count(*) FROM orders").fetchone()[0]}
            if name == "import-distinct":
                sql = f"SELECT count(*) FROM (SELECT DISTINCT * FROM read_parquet('{orders}'))"
            else:
                sql = (f"SELECT count(*) FROM (SELECT order_id FROM read_parquet('{orders}') "
                       f"GROUP BY order_id HAVING count(*) > 1)")
            return {"rows": con.execute(sql).fetchone()[0]}
    raise SystemExit(f"unknown experiment {name}")


def child(name: str, data: Path) -> None:
    import duckdb  # noqa: F401  (imports are not what is measured)
    import ibis  # noqa: F401

    import tierwise.grading.run  # noqa: F401

    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    found = experiment(name, data)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit({"experiment": name, "seconds": time.perf_counter() - started,
          "cpu_seconds": (usage.ru_utime + usage.ru_stime) - (cpu.ru_utime + cpu.ru_stime),
          "found": found})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", default=EXPERIMENTS)
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench-data")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.experiments[0], args.data.resolve())
        return
    print(f"{'experiment':<22} {'seconds':>8} {'CPU s':>7} {'peak RSS':>9}  found")
    for name in args.experiments:
        step = run_child(f"diagnose-{name}", [sys.executable, __file__, "--child", "--data",
                                              str(args.data), name],
                         logs=args.data / "logs", sample=False)
        if not step.ok:
            print(f"{name:<22} failed (exit {step.returncode}; log {step.err_path})")
            continue
        result = step.result()
        print(f"{name:<22} {result['seconds']:>8.1f} {result['cpu_seconds']:>7.1f} "
              f"{step.peak_rss_bytes / GB:>7.2f}GB  {json.dumps(result['found'])[:60]}",
              flush=True)


if __name__ == "__main__":
    main()
