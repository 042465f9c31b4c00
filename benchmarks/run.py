"""The tierwise scale benchmark, in one command.

    python benchmarks/run.py [--customers 1000000] [--orders 50000000] [--data DIR]
                             [--skip-generate]

Generates the data (DuckDB SQL, skipped when it exists), then runs each step in its own
process and measures its time and peak RSS (``os.wait4`` rusage of that child):

1. import customers, import orders into a fresh workspace (``Workspace.import_files``);
2. grade twice (``Workspace.grade``, value-tiers): first run as of the previous month end,
   second run as of the last day of the data, which has history (hysteresis and changes);
3. the raw-SQL baseline (``baseline_sql.py``, one DuckDB query on the same store) for both
   dates, checked against the runs: tier counts and every customer's tier and metrics;
4. the pandas baseline (``baseline_pandas.py``) on the first ~5M orders and their customers,
   checked against the SQL baseline on the same slice;

and prints a table of figures and the ratios against the targets, and writes them to
``benchmarks/results.json``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import GENERATOR_VERSION, ORDER_FILES, existing, generate  # noqa: E402
from runner import (  # noqa: E402
    add_size_arguments,
    fmt_bytes,
    machine,
    run_child,
    say,
    source_version,
    timestamp,
    write_results,
)

TARGET_GRADE_OVER_SQL = 2.0
TARGET_PANDAS_OVER_TIERWISE = 30.0
TARGET_PEAK_BYTES = 6_000_000_000  # 6 GB = 5.59 GiB
COMPARED_METRICS = ["annual_spend", "order_count", "profit", "avg_order_value", "margin",
                    "recency_days", "lifetime_spend", "first_order_date", "last_order_date",
                    "tenure_years", "active_months", "prior_spend", "spend_growth", "r_score",
                    "f_score", "m_score", "spend_share_above", "value_score",
                    "stability_score", "potential_score", "score"]


# --- running one step in a child process -----------------------------------------------------


def run_step(name: str, step: str, common: list[str], *extra: str,
             logs: Path) -> dict[str, Any]:
    """Run ``steps.py STEP`` in its own process (runner.run_child); its JSON result plus wall
    seconds and the child's peak RSS (ru_maxrss from wait4, i.e. the kernel's high-water
    mark) and CPU seconds."""
    source_before = source_version()
    child = run_child(name, [sys.executable, str(HERE / "steps.py"), step, *common, *extra],
                      logs=logs)
    if not child.ok:
        raise SystemExit(child.failure())
    result = child.result()
    result["wall_seconds"] = child.wall_seconds
    result["source"] = source_before
    result["peak_rss_bytes"] = child.peak_rss_bytes
    result["cpu_seconds"] = child.cpu_seconds
    # Other work on the machine slows a step down: the 1-minute load average before it ran.
    result["load_average_before"] = child.load_before[0]
    say(f"           {result['seconds']:.1f}s (process {child.wall_seconds:.1f}s, "
        f"{result['cpu_seconds']:.1f} CPU s), peak RSS {fmt_bytes(result['peak_rss_bytes'])}")
    return result


# --- agreement checks ------------------------------------------------------------------------


def compare_tables(left: str, right: str, left_tier: str = "tier",
                   right_tier: str = "tier") -> dict[str, Any]:
    """Tier counts of both, and per column the number of customers whose values differ
    (relative tolerance 1e-9 for numbers, 1e-4 for spend_share_above; NULL equals NULL)."""
    import duckdb

    con = duckdb.connect()
    counts = {}
    for side, path, column in (("left", left, left_tier), ("right", right, right_tier)):
        counts[side] = dict(con.execute(
            f"SELECT {column}, count(*) FROM '{path}' GROUP BY ALL").fetchall())
    columns_left = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{left}'").fetchall()}
    columns_right = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{right}'").fetchall()}
    checks = []
    for column in COMPARED_METRICS:
        if column in columns_left and column in columns_right:
            if column.endswith("_date"):
                same = f"l.{column}::DATE = r.{column}::DATE"
            elif column == "spend_share_above":
                # Customers whose annual spends are equal to the cent swap places when a
                # parallel sum rounds the last bit differently; their shares then differ by
                # about one customer's spend over the total, far below 1e-4.
                same = f"abs(l.{column} - r.{column}) <= 1e-4"
            else:
                same = (f"abs(l.{column}::DOUBLE - r.{column}::DOUBLE) <= "
                        f"1e-9 * greatest(1, abs(l.{column}::DOUBLE))")
            checks.append(
                f"count(*) FILTER (WHERE NOT ((l.{column} IS NULL AND r.{column} IS NULL) "
                f"OR ({same}) IS TRUE)) AS {column}")
    checks.append(f"count(*) FILTER (WHERE l.{left_tier} IS DISTINCT FROM r.{right_tier}) "
                  f"AS tier")
    row = con.execute(
        f"SELECT count(*) AS joined, {', '.join(checks)} "
        f"FROM '{left}' l FULL JOIN '{right}' r USING (customer_id)").fetchone()
    names = ["joined", *[c for c in COMPARED_METRICS
                         if c in columns_left and c in columns_right], "tier"]
    differing = dict(zip(names, row, strict=True))
    joined = differing.pop("joined")
    examples = {}
    for column in [c for c, n in differing.items() if n and c != "tier"][:5]:
        condition = checks[names.index(column) - 1].split("FILTER (WHERE ", 1)[1]
        condition = condition.rsplit(f") AS {column}", 1)[0]
        examples[column] = [r[0] for r in con.execute(
            f"SELECT customer_id FROM '{left}' l FULL JOIN '{right}' r USING (customer_id) "
            f"WHERE {condition} ORDER BY customer_id LIMIT 5").fetchall()]
    con.close()
    same_counts = counts["left"] == counts["right"]
    return {"tier_counts": counts["left"], "other_tier_counts": counts["right"],
            "counts_match": same_counts, "customers_joined": joined,
            "differing_customers": {k: v for k, v in differing.items() if v},
            "examples": examples,
            "ok": same_counts and not any(differing.values())}


def baseline_policy_drift(policy_path: Path) -> list[str]:
    """Tier rules of the workspace policy that baseline_sql.RULES does not say the same."""
    from baseline_sql import RULES
    from ruamel.yaml import YAML

    policy = YAML(typ="safe").load(policy_path.read_text(encoding="utf-8"))
    found = {t["key"]: t.get("when") for t in policy.get("tiers", [])}
    return [f"{k}: policy {found.get(k)!r}, baseline {v!r}"
            for k, v in {**RULES, **dict.fromkeys(set(found) - set(RULES))}.items()
            if found.get(k) != v]


# --- the run ---------------------------------------------------------------------------------


def month_end_before(day: dt.date) -> dt.date:
    return day.replace(day=1) - dt.timedelta(days=1)


def main() -> None:
    parser = argparse.ArgumentParser(description="tierwise scale benchmark")
    add_size_arguments(parser, data=ROOT / "bench-data", results=HERE / "results.json",
                       files=ORDER_FILES)
    parser.add_argument("--skip-generate", action="store_true",
                        help="use the files in --data as they are")
    parser.add_argument("--slice", type=int, default=5_000_000,
                        help="orders in the pandas slice (default 5,000,000)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 12, 31),
                        help="as-of date of the second run (default 2025-12-31, the last day "
                             "of the data); the first run is as of the month end before")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--memory-limit",
                        help="DuckDB memory_limit for the tierwise steps, e.g. 4GB (tierwise has "
                             "no such setting yet; the benchmark sets it on the store)")
    parser.add_argument("--tierwise-only", action="store_true",
                        help="only the tierwise steps: no baselines, no checks")
    args = parser.parse_args()

    data: Path = args.data.resolve()
    workspace = data / "workspace"
    logs = data / "logs"
    results: dict[str, Any] = {
        "started": timestamp(), "machine": machine(),
        "customers": args.customers, "orders": args.orders, "data": str(data),
    }
    try:
        import duckdb
        import ibis
        import pandas

        results["versions"] = {"duckdb": duckdb.__version__, "ibis": ibis.__version__,
                               "pandas": pandas.__version__}
    except ImportError:
        pass

    # 1. data
    found = existing(data)
    wanted = {"customers": args.customers, "orders": args.orders, "files": args.files,
              "version": GENERATOR_VERSION}
    if args.skip_generate:
        if found is None:
            raise SystemExit(f"--skip-generate: no generated data in {data}")
        say(f"using the data in {data} ({found})")
    elif found is not None and all(found.get(k) == v for k, v in wanted.items()):
        say(f"data exists in {data}: {found['customers']:,} customers, "
            f"{found['orders']:,} orders; not generating")
    else:
        say(f"generating {args.customers:,} customers and {args.orders:,} orders in {data}")
        started = time.perf_counter()
        generate(data, args.customers, args.orders, files=args.files, say=say)
        results["generate_seconds"] = time.perf_counter() - started
    sizes = existing(data) or wanted
    total_orders, files = sizes["orders"], sizes.get("files", args.files)
    results["customers"], results["orders"] = sizes["customers"], total_orders

    common = ["--workspace", str(workspace), "--data", str(data), "--files", str(files),
              "--total-orders", str(total_orders)]
    tuned = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    results["memory_limit"] = args.memory_limit
    results["source"] = source_version()
    second_as_of = args.as_of
    first_as_of = month_end_before(second_as_of)
    steps: dict[str, dict[str, Any]] = {}

    # 2. tierwise
    steps["init"] = run_step("init", "init", common, logs=logs)
    policy_drift = baseline_policy_drift(workspace / "policy.yaml")
    if policy_drift:
        say("WARNING: the workspace policy differs from what baseline_sql.py implements: "
            + "; ".join(policy_drift))
    results["baseline_policy_drift"] = policy_drift
    steps["import_customers"] = run_step("import_customers", "import-customers", common,
                                         *tuned, logs=logs)
    steps["import_orders"] = run_step("import_orders", "import-orders", common, *tuned,
                                      logs=logs)
    steps["grade_1"] = run_step("grade_1", "grade", common, *tuned,
                                "--as-of", first_as_of.isoformat(), logs=logs)
    steps["grade_2"] = run_step("grade_2", "grade", common, *tuned,
                                "--as-of", second_as_of.isoformat(), logs=logs)

    # 3. raw SQL baseline, same store, same dates
    checks: dict[str, Any] = {}
    for k, day in (() if args.tierwise_only else (("1", first_as_of), ("2", second_as_of))):
        out = data / f"baseline-sql-{day.isoformat()}.parquet"
        steps[f"sql_{k}"] = run_step(f"sql_{k}", "baseline", common, "--as-of",
                                     day.isoformat(), "--out", str(out), logs=logs)
        checks[f"grade_{k}_vs_sql"] = compare_tables(
            steps[f"grade_{k}"]["snapshot"], str(out), left_tier="computed_tier")

    # 4. pandas on a slice, checked against the SQL baseline on the same slice
    if not args.no_pandas and not args.tierwise_only:
        slice_args = ["--as-of", second_as_of.isoformat(), "--slice", str(args.slice)]
        sql_out, pandas_out = data / "slice-sql.parquet", data / "slice-pandas.parquet"
        steps["slice_sql"] = run_step("slice_sql", "slice-sql", common, *slice_args,
                                      "--out", str(sql_out), logs=logs)
        steps["pandas"] = run_step("pandas", "pandas", common, *slice_args,
                                   "--out", str(pandas_out), logs=logs)
        checks["pandas_vs_sql_on_slice"] = compare_tables(str(pandas_out), str(sql_out))

        # tierwise on the very same slice, for a like-for-like comparison with pandas
        slice_customers = data / "slice-customers.parquet"
        made = run_step("slice_files", "slice-files", common, *slice_args,
                        "--out", str(slice_customers), logs=logs)
        on_slice = ["--workspace", str(data / "workspace-slice"),
                    *common[2:], *tuned]
        run_step("slice_init", "init", on_slice, logs=logs)
        steps["slice_import_customers"] = run_step(
            "slice_import_customers", "import-customers", on_slice,
            "--paths", str(slice_customers), logs=logs)
        steps["slice_import_orders"] = run_step(
            "slice_import_orders", "import-orders", on_slice,
            "--paths", *made["orders_files"], logs=logs)
        steps["slice_grade"] = run_step("slice_grade", "grade", on_slice,
                                        "--as-of", second_as_of.isoformat(), logs=logs)
        checks["slice_grade_vs_sql_on_slice"] = compare_tables(
            steps["slice_grade"]["snapshot"], str(sql_out), left_tier="computed_tier")

    results["steps"] = steps
    results["checks"] = checks
    versions = {json.dumps(s["source"], sort_keys=True) for s in steps.values()}
    results["source_changed_during_run"] = len(versions) > 1
    if len(versions) > 1:
        say("WARNING: the tierwise source changed while the benchmark ran; see 'source' of "
            "each step in the results")
    results["figures"] = figures(steps, total_orders, sizes["customers"])
    results["finished"] = timestamp()
    write_results(args.results, results)
    print(report(results))
    say(f"\nfigures written to {args.results}; step logs and RSS timelines in {logs}")


def figures(steps: dict[str, dict[str, Any]], orders: int, customers: int) -> dict[str, Any]:
    tierwise_steps = ["import_customers", "import_orders", "grade_1", "grade_2"]
    peak = max(steps[s]["peak_rss_bytes"] for s in tierwise_steps)
    result: dict[str, Any] = {
        "import_customers_rows_per_second": customers / steps["import_customers"]["seconds"],
        "import_orders_rows_per_second": orders / steps["import_orders"]["seconds"],
        "tierwise_peak_rss_bytes": peak,
        "tierwise_peak_rss_step": max(tierwise_steps, key=lambda s: steps[s]["peak_rss_bytes"]),
        "grade_microseconds_per_order": 1e6 * steps["grade_2"]["seconds"] / orders,
    }
    targets: dict[str, bool] = {"peak_rss_under_6_gb": peak < TARGET_PEAK_BYTES}
    if "sql_1" in steps:
        for k in ("1", "2"):
            grade, sql = steps[f"grade_{k}"], steps[f"sql_{k}"]
            result[f"grade_{k}_over_sql"] = grade["seconds"] / sql["seconds"]
            result[f"grade_{k}_over_sql_cpu"] = grade["cpu_seconds"] / sql["cpu_seconds"]
        targets["grade_over_sql_at_most_2"] = max(
            result["grade_1_over_sql"], result["grade_2_over_sql"]) <= TARGET_GRADE_OVER_SQL
    if "pandas" in steps:
        pandas = steps["pandas"]
        pandas_per_order = pandas["seconds"] / pandas["orders"]
        result["pandas_microseconds_per_order"] = 1e6 * pandas_per_order
        result["pandas_over_tierwise_per_order"] = (
            pandas_per_order / (steps["grade_2"]["seconds"] / orders))
        compute = pandas["seconds"] - pandas["phases"]["read"]
        result["pandas_without_reading_over_tierwise_per_order"] = (
            compute / pandas["orders"]) / (steps["grade_2"]["seconds"] / orders)
        targets["pandas_over_tierwise_at_least_30"] = (
            result["pandas_over_tierwise_per_order"] >= TARGET_PANDAS_OVER_TIERWISE)
    if "slice_grade" in steps:
        result["pandas_over_tierwise_same_slice"] = (
            steps["pandas"]["seconds"] / steps["slice_grade"]["seconds"])
    result["targets"] = targets
    return result


def report(results: dict[str, Any]) -> str:
    steps, fig, checks = results["steps"], results["figures"], results["checks"]
    n_c, n_o = results["customers"], results["orders"]
    lines = [f"\ntierwise scale benchmark: {n_c:,} customers, {n_o:,} orders "
             f"({results['machine']['cpus']} CPUs)", ""]
    header = (f"{'step':<34} {'seconds':>9} {'process s':>10} {'CPU s':>8} {'rows/s':>12} "
              f"{'peak RSS':>10}")
    lines += [header, "-" * len(header)]

    def row(label: str, key: str, rows: int | None = None) -> None:
        if key not in steps:
            return
        s = steps[key]
        rate = f"{rows / s['seconds']:,.0f}" if rows else ""
        lines.append(f"{label:<34} {s['seconds']:>9.1f} {s['wall_seconds']:>10.1f} "
                     f"{s['cpu_seconds']:>8.1f} {rate:>12} {fmt_bytes(s['peak_rss_bytes']):>10}")

    row("import customers", "import_customers", n_c)
    row("import orders", "import_orders", n_o)
    row(f"grade 1 (as of {steps['grade_1']['as_of']})", "grade_1", n_o)
    row(f"grade 2 (as of {steps['grade_2']['as_of']}, history)", "grade_2", n_o)
    if "slice_grade" in steps:
        n_slice = steps["pandas"]["orders"]
        row("slice: import customers", "slice_import_customers",
            steps["slice_import_customers"]["rows"])
        row("slice: import orders", "slice_import_orders", n_slice)
        row("slice: grade", "slice_grade", n_slice)
    row("raw SQL baseline, date 1", "sql_1", n_o)
    row("raw SQL baseline, date 2", "sql_2", n_o)
    if "pandas" in steps:
        row(f"pandas, {steps['pandas']['orders']:,} orders", "pandas",
            steps["pandas"]["orders"])
        row("raw SQL on the same slice", "slice_sql", steps["slice_sql"]["orders"])
    lines.append("")

    def verdict(ok: bool) -> str:
        return "meets target" if ok else "MISSES target"

    t = fig["targets"]
    if "grade_1_over_sql" in fig:
        lines.append(f"grade / raw SQL:        {fig['grade_1_over_sql']:.2f}x (run 1), "
                     f"{fig['grade_2_over_sql']:.2f}x (run 2); in CPU seconds "
                     f"{fig['grade_1_over_sql_cpu']:.2f}x, {fig['grade_2_over_sql_cpu']:.2f}x"
                     f"   target <= 2x: {verdict(t['grade_over_sql_at_most_2'])}")
    if "pandas_over_tierwise_per_order" in fig:
        lines.append(f"pandas / tierwise:      {fig['pandas_over_tierwise_per_order']:.1f}x per "
                     f"order ({fig['pandas_microseconds_per_order']:.2f} vs "
                     f"{fig['grade_microseconds_per_order']:.2f} us; without reading the files "
                     f"{fig['pandas_without_reading_over_tierwise_per_order']:.1f}x)"
                     f"   target >= 30x: {verdict(t['pandas_over_tierwise_at_least_30'])}")
    if "pandas_over_tierwise_same_slice" in fig:
        lines.append(f"pandas / tierwise grade on the same slice: "
                     f"{fig['pandas_over_tierwise_same_slice']:.1f}x")
    lines.append(f"peak memory (tierwise): {fmt_bytes(fig['tierwise_peak_rss_bytes'])} "
                 f"({fig['tierwise_peak_rss_step']})   target < 6 GB (5.59 GiB): "
                 f"{verdict(t['peak_rss_under_6_gb'])}")
    lines.append("")
    for name, check in checks.items():
        status = "OK" if check["counts_match"] else "MISMATCH"
        detail = ("every customer's tier and metrics agree" if check["ok"]
                  else f"differing customers by column: {check['differing_customers']}, "
                       f"e.g. {check.get('examples')}")
        lines.append(f"{name}: tier counts {status} {check['tier_counts']}; {detail}")
    lines.append("")
    for key in ("import_orders", "grade_1", "grade_2", "pandas"):
        phases = steps.get(key, {}).get("phases") or {}
        if phases:
            lines.append(f"where {key} spends its time:")
            lines += [f"  {v:8.1f}s  {k}" for k, v in list(phases.items())[:8]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
