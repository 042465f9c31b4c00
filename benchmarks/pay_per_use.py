"""Pay for what you use: ``tierwise grade --orders FILES --customers FILE`` with a policy
that reads two metrics, against one hand-written DuckDB query computing the same two metrics
and the same tiers from the same Parquet files, each a whole process, in the same run.

    .venv/bin/python benchmarks/pay_per_use.py [--customers 1000000] [--orders 20000000]
                                               [--repeat 3] [--data DIR] [--as-of D]

1. Data: generate.py's files in ``DIR`` (default ``bench-data/pay-per-use/``), generated only
   when ``DIR/GENERATED`` does not record the sizes asked for.
2. The policy (``POLICY`` below) reads ``annual_spend`` and ``tenure_years`` only, the
   issue's example. Each repeat runs, in its own process, alternating which goes first:
   * ``baseline``: Python, ``import duckdb``, one query with filtered aggregates over the
     orders joined to the customers, the tiers as a CASE, written with ``COPY … TO`` Parquet;
   * ``tierwise``: ``tierwise -w WS grade --orders 'DIR/orders-*.parquet' --customers
     DIR/customers.parquet --policy two-metrics.yaml --as-of D`` in a fresh workspace: the
     files read in place and checked as an import checks them, the run recorded (snapshot,
     app database, audit row).
3. Every customer's tier, annual_spend and tenure_years must be equal in both outputs.
4. What each feature costs (``--features``, one process): the files read in place once,
   then the metrics pass of a run (``grading.run.evaluation``: per-customer metrics
   materialised, ranks, scores, rule aggregates) for one plan after another, each twice,
   the faster kept: the policy's two metrics; with the lifecycle stage; with what the tasks
   read; with the RFM scores and the ABC share; the value-tiers scorecard's plan; the whole
   vocabulary; the two metrics with the customer-base models. Seconds and the ratio to the
   two-metric plan.
5. Prints the medians of wall seconds, CPU seconds and peak RSS, tierwise over the baseline
   (of the medians, and the median of the per-repeat ratios); writes
   ``benchmarks/pay-per-use-results.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from baseline_sql import _add_months  # noqa: E402
from generate import ORDER_FILES, ensure_generated  # noqa: E402
from runner import (  # noqa: E402
    add_size_arguments,
    emit,
    fmt_bytes,
    machine,
    run_child,
    say,
    source_version,
    timestamp,
    write_results,
)

POLICY = """\
name: 两指标
tiers:
  - {key: vip, label: VIP客户, when: "annual_spend >= 100万 and tenure_years >= 5"}
  - {key: important, label: 重要客户, when: "annual_spend >= 50万"}
  - {key: ordinary, label: 普通客户, when: "annual_spend >= 10万"}
  - {key: potential, label: 潜在客户}
"""


def baseline_query(data: Path, as_of: dt.date) -> str:
    """The two metrics and the tiers, written by hand with tierwise's semantics: the window
    is the 12 months ending D; a customer without ``since`` whose orders all come after D
    did not exist yet; tenure counts from ``since``, else the first order by D."""
    d = f"DATE '{as_of.isoformat()}'"
    start = f"DATE '{_add_months(as_of, -12).isoformat()}'"
    orders = f"read_parquet('{data}/orders-*.parquet')"
    customers = f"read_parquet('{data}/customers.parquet')"
    return f"""
    WITH om AS (
        SELECT customer_id,
               sum(amount) FILTER (WHERE order_date > {start} AND order_date <= {d})
                   AS annual_spend,
               min(order_date) FILTER (WHERE order_date <= {d}) AS first_order_date,
               bool_or(order_date > {d}) AS ordered_later
        FROM {orders} GROUP BY customer_id),
    m AS (
        SELECT c.customer_id, coalesce(om.annual_spend, 0.0) AS annual_spend,
               date_diff('day', coalesce(c.since, om.first_order_date), {d})::DOUBLE / 365.25
                   AS tenure_years
        FROM {customers} c LEFT JOIN om USING (customer_id)
        WHERE om.first_order_date IS NOT NULL
           OR CASE WHEN c.since IS NOT NULL THEN c.since <= {d}
                   ELSE NOT coalesce(om.ordered_later, false) END)
    SELECT *, CASE WHEN annual_spend >= 1000000 AND tenure_years >= 5 THEN 'vip'
                   WHEN annual_spend >= 500000 THEN 'important'
                   WHEN annual_spend >= 100000 THEN 'ordinary'
                   ELSE 'potential' END AS tier
    FROM m"""


def step_baseline(data: Path, as_of: dt.date, out: Path) -> None:
    import time

    started = time.perf_counter()
    import duckdb

    con = duckdb.connect()
    con.execute(f"COPY ({baseline_query(data, as_of)}) TO '{out}' (FORMAT parquet)")
    emit({"seconds": time.perf_counter() - started})


def step_features(data: Path, as_of: dt.date) -> None:
    """The metrics pass for each plan on the same files read in place (see the docstring)."""
    import time

    import ibis

    from tierwise.data import store
    from tierwise.data.ingest.in_place import read_in_place
    from tierwise.data.tables import CanonicalTables
    from tierwise.grading.run import evaluation, run_plan
    from tierwise.metrics.plan import COMPLETE, RANK_METRICS
    from tierwise.policy.loading import load_policy_text
    from tierwise.policy.presets import preset_text
    from tierwise.work.tasks import WORK_METRICS

    two = load_policy_text(POLICY)
    with_models = load_policy_text(POLICY + "models: {}\n")
    plans = {
        "two metrics (the policy)": (two, run_plan(two)),
        "+ lifecycle stage": (two, run_plan(two, ["stage"])),
        "+ what the tasks read": (two, run_plan(two, WORK_METRICS)),
        "+ RFM scores and ABC share": (two, run_plan(two, RANK_METRICS)),
        "value-tiers scorecard's plan": (two, run_plan(load_policy_text(
            preset_text("value-tiers")))),
        "whole vocabulary (metrics_shown: all)": (two, COMPLETE),
        "two metrics + models (BG/NBD, Gamma-Gamma)": (with_models, run_plan(with_models)),
    }
    con = store.connect()
    files = {"orders": [str(data / "orders-*.parquet")],
             "customers": [str(data / "customers.parquet")]}
    seconds: dict[str, float] = {}
    with read_in_place(con, files, rejects_dir=Path("/tmp")) as checked:
        views = checked.canonical(con)
        backend = ibis.duckdb.from_connection(con)
        tables = CanonicalTables(backend.table(views["customers"]),
                                 backend.table(views["orders"]),
                                 backend.table(views["interactions"]), label="files")
        for label, (policy, plan) in plans.items():
            taken = []
            for _ in range(2):
                started = time.perf_counter()
                with evaluation(backend, tables, policy, as_of, plan):
                    pass
                taken.append(time.perf_counter() - started)
            seconds[label] = min(taken)
            say(f"{label}: {seconds[label]:.1f} s")
    emit({"seconds": seconds})


def compare(baseline: Path, snapshot: Path) -> dict[str, Any]:
    """Customers whose tier or metrics differ between the two outputs."""
    import duckdb

    con = duckdb.connect()
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE b.customer_id IS NULL OR s.customer_id IS NULL),
               count(*) FILTER (WHERE b.tier IS DISTINCT FROM s.tier),
               count(*) FILTER (WHERE abs(b.annual_spend - s.annual_spend)
                                      > 1e-9 * greatest(1, abs(b.annual_spend))
                                   OR b.tenure_years IS DISTINCT FROM s.tenure_years
                                      AND abs(b.tenure_years - s.tenure_years) > 1e-12),
               count(*)
        FROM read_parquet('{baseline}') b FULL JOIN read_parquet('{snapshot}') s
        USING (customer_id)""").fetchone()
    assert row is not None
    missing, tiers, metrics, customers = (int(v) for v in row)
    return {"customers": customers, "missing": missing, "tier_differences": tiers,
            "metric_differences": metrics, "equal": missing == tiers == metrics == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, data=ROOT / "bench-data" / "pay-per-use",
                       results=HERE / "pay-per-use-results.json", files=ORDER_FILES)
    parser.set_defaults(orders=20_000_000)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 12, 31))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path,
                        help="run tierwise from this source tree (e.g. a worktree of an "
                             "earlier commit, for figures before a change)")
    parser.add_argument("--features", action="store_true",
                        help="also measure the metrics pass of each plan (what features cost)")
    parser.add_argument("--step", choices=["baseline", "features"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "baseline":
        step_baseline(args.data, args.as_of, args.out)
        return
    if args.step == "features":
        step_features(args.data, args.as_of)
        return
    sizes = {"customers": args.customers, "orders": args.orders, "files": args.files}
    ensure_generated(args.data, args.customers, args.orders, files=args.files, say=say)
    work = args.data / "runs"
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    work.mkdir(parents=True)
    policy = work / "two-metrics.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    tierwise = str(ROOT / ".venv" / "bin" / "tierwise")
    env = dict(os.environ)
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    repeats: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        out = work / f"baseline-{repeat}.parquet"
        workspace = work / f"ws-{repeat}"
        steps = {
            "baseline": [sys.executable, __file__, "--step", "baseline", "--data",
                         str(args.data), "--as-of", args.as_of.isoformat(), "--out", str(out)],
            "tierwise": [sys.executable, "-m", "tierwise", "-w", str(workspace), "grade",
                         "--orders",
                         str(args.data / "orders-*.parquet"), "--customers",
                         str(args.data / "customers.parquet"), "--policy", str(policy),
                         "--as-of", args.as_of.isoformat(), "--format", "json"],
        }
        order = list(steps) if repeat % 2 == 0 else list(reversed(steps))
        measured: dict[str, Any] = {}
        for name in order:
            if name == "tierwise":
                run_child(f"init-{repeat}", [tierwise, "init", str(workspace)], logs=logs,
                          sample=False, env=env)
            child = run_child(f"{name}-{repeat}", steps[name], logs=logs, env=env)
            if child.returncode != 0:
                raise SystemExit(f"{name} failed: see {child.err_path}")
            measured[name] = {"wall_seconds": child.wall_seconds,
                              "cpu_seconds": child.cpu_seconds,
                              "peak_rss_bytes": child.peak_rss_bytes,
                              "load_before": child.load_before}
        snapshot = workspace / "runs" / "run-000001.parquet"
        measured["parity"] = compare(out, snapshot)
        measured["ratio"] = (measured["tierwise"]["wall_seconds"]
                             / measured["baseline"]["wall_seconds"])
        repeats.append(measured)
        say(f"repeat {repeat + 1}: baseline {measured['baseline']['wall_seconds']:.1f} s, "
            f"tierwise {measured['tierwise']['wall_seconds']:.1f} s, "
            f"{measured['ratio']:.2f}x, equal: {measured['parity']['equal']}")
    summary = _summary(repeats)
    features = _features(args, logs) if args.features else None
    results = {"when": timestamp(), "machine": machine(), **source_version(),
               "sizes": sizes, "as_of": args.as_of.isoformat(), "policy": POLICY,
               "repeats": repeats, "summary": summary, "features": features}
    write_results(args.results, results)
    print(_report(summary, sizes))
    if features:
        base = next(iter(features.values()))
        print("\nthe metrics pass per plan (files read in place; faster of two):")
        for label, seconds in features.items():
            print(f"  {label:44}{seconds:>7.1f} s{seconds / base:>7.2f}x")


def _features(args: argparse.Namespace, logs: Path) -> dict[str, float]:
    child = run_child("features", [sys.executable, __file__, "--step", "features", "--data",
                                   str(args.data), "--as-of", args.as_of.isoformat()],
                      logs=logs)
    if child.returncode != 0:
        raise SystemExit(f"features failed: see {child.err_path}")
    seconds: dict[str, float] = child.result()["seconds"]
    return seconds


def _summary(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    def median(name: str, field: str) -> float:
        return statistics.median(r[name][field] for r in repeats)

    out: dict[str, Any] = {name: {field: median(name, field) for field in
                                  ("wall_seconds", "cpu_seconds", "peak_rss_bytes")}
                           for name in ("baseline", "tierwise")}
    out["ratio_of_medians"] = out["tierwise"]["wall_seconds"] / out["baseline"]["wall_seconds"]
    out["median_ratio"] = statistics.median(r["ratio"] for r in repeats)
    out["cpu_ratio"] = out["tierwise"]["cpu_seconds"] / out["baseline"]["cpu_seconds"]
    out["all_equal"] = all(r["parity"]["equal"] for r in repeats)
    return out


def _report(summary: dict[str, Any], sizes: dict[str, int]) -> str:
    lines = [f"pay per use: {sizes['customers']:,} customers, {sizes['orders']:,} orders, "
             "a two-metric policy from Parquet (medians)", "",
             f"{'':12}{'wall s':>10}{'CPU s':>10}{'peak RSS':>12}"]
    for name in ("baseline", "tierwise"):
        s = summary[name]
        lines.append(f"{name:12}{s['wall_seconds']:>10.1f}{s['cpu_seconds']:>10.1f}"
                     f"{fmt_bytes(s['peak_rss_bytes']):>12}")
    lines += ["", f"tierwise / baseline: {summary['ratio_of_medians']:.2f}x wall (median of "
                  f"ratios {summary['median_ratio']:.2f}x), {summary['cpu_ratio']:.2f}x CPU; "
                  f"goal <= 2x",
              f"every customer's tier and metrics equal: {summary['all_equal']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
