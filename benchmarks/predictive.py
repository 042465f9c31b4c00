"""The issue-3 features at scale: model metrics, the auto preset, calibration, what-if and
backtest, each against one plain grading run measured in the same invocation.

    .venv/bin/python benchmarks/predictive.py [--customers 1000000] [--orders 50000000]
                                              [--data DIR] [--periods 24]

1. Data: the scale benchmark's generator (``generate.py``, the same data as ``run.py``) in
   ``DIR`` (default ``bench-data/predictive/``), imported into ``DIR/workspace`` with
   ``Workspace.init`` and ``ws.import_files`` (``steps.py import-customers/import-orders``).
   Both happen only when missing: ``DIR/GENERATED`` and ``DIR/IMPORTED.json`` record the
   sizes. Before the measured steps the workspace's runs are cleared (app database and
   ``runs/``), so every invocation starts from the same state.
2. Each measured step runs in its own process (``predictive.py --step NAME``); CPU seconds
   and peak RSS come from ``os.wait4`` of that child, and the load average before it is kept:

   * baseline: ``ws.grade(as_of=D)`` with the workspace's policy (value-tiers);
   * models: ``ws.grade(as_of=D, policy=FILE)``, where FILE is value-tiers with ``p_alive``
     and ``predicted_clv`` in its rules and a ``models:`` block (same metrics, scorecard and
     hysteresis, so the extra time is the models'); the run's fitted parameters are kept;
   * auto: ``ws.grade(as_of=D, policy="auto")`` (k-means);
   * calibrate: ``tierwise.grading.calibration.calibrate`` on annual_spend with value-tiers'
     ``target_share``s, as ``tierwise policy calibrate --metric annual_spend`` does;
   * what-if: ``ws.what_if(policy="abc")`` against the latest run (the auto run);
   * backtest: ``ws.backtest(period_ends(FROM, TO), policies=[None])`` for ``--periods``
     month ends up to D; killed past ``--backtest-limit`` seconds, and then measured again on
     ``--fallback-periods`` periods.

   A step's time is split into phases by wrapping tierwise's functions and the DuckDB
   backend's calls from the outside (nothing under ``src/`` is changed); ``--profile STEP``
   also runs that step under cProfile (``logs/STEP.profile.txt``; its times are then
   inflated).
3. Prints the figures, the ratios to the baseline, the phases and what each feature produced
   (fitted parameters, clusters, calibrated thresholds, moves, backtest headline figures),
   and writes them to ``benchmarks/predictive-results.json``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import GENERATOR_VERSION, ORDER_FILES, existing, generate  # noqa: E402
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

AS_OF = dt.date(2025, 12, 31)   # the last day of the generated data
IMPORT_MARKER = "IMPORTED.json"
MODEL_POLICY = "model-policy.yaml"
STEPS = ["baseline", "models", "auto", "calibrate", "what-if", "backtest", "baseline-again"]
DIAGNOSES = ["diagnose-outcomes", "diagnose-fit"]

# value-tiers' tiers with the model metrics in the rules; the scorecard, window and
# hysteresis are the preset's, so the metrics computed are the baseline's plus the models'.
MODEL_TIERS = [
    {"key": "vip", "label": "VIP客户", "label_en": "VIP",
     "when": "annual_spend >= 100万 and stability_score >= 50 and p_alive >= 50%"},
    {"key": "important", "label": "重要客户", "label_en": "Important",
     "when": "annual_spend >= 50万 or (annual_spend >= 30万 and potential_score >= 80) "
             "or predicted_clv >= 50万"},
    {"key": "at_risk", "label": "流失风险", "label_en": "At risk",
     "when": "annual_spend >= 10万 and p_alive < 50%"},
    {"key": "ordinary", "label": "普通客户", "label_en": "Ordinary",
     "when": "annual_spend >= 10万"},
    {"key": "potential", "label": "潜在客户", "label_en": "Potential"},
]
MODELS_BLOCK = {"clv_months": 12, "discount_rate": "10%", "margin": "100%"}


# =============================================================================================
# In the child: probes that split a step's time into phases
# =============================================================================================

PHASES: dict[str, float] = {}   # "outer › inner" -> seconds, in order of first entry
CALLS: dict[str, int] = {}
STACK: list[str] = []
PERIODS: list[dict[str, Any]] = []   # backtest: one entry per graded period


@contextlib.contextmanager
def _phase(label: str) -> Iterator[None]:
    STACK.append(label)
    path = " › ".join(STACK)
    PHASES.setdefault(path, 0.0)
    started = time.perf_counter()
    try:
        yield
    finally:
        PHASES[path] += time.perf_counter() - started
        CALLS[path] = CALLS.get(path, 0) + 1
        STACK.pop()


def _timed(label: str | Callable[..., str], function: Any) -> Any:
    """``function`` timed as a phase; ``label`` may compute the name from the arguments."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = label(*args, **kwargs) if callable(label) else label
        with _phase(name):
            return function(*args, **kwargs)

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


def _timed_enter(label: str, manager: Any, on_exit: Callable[[float, float], None] | None = None
                 ) -> Any:
    """A context manager function whose entering (the work before ``yield``) is a phase;
    ``on_exit(entered, total)`` gets the seconds to enter and to leave."""
    @contextlib.contextmanager
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        cm = manager(*args, **kwargs)
        with _phase(label):
            value = cm.__enter__()
        entered = time.perf_counter() - started
        try:
            yield value
        except BaseException:
            if not cm.__exit__(*sys.exc_info()):
                raise
        else:
            cm.__exit__(None, None, None)
        if on_exit is not None:
            on_exit(entered, time.perf_counter() - started)

    return wrapper


def _table_label(verb: str) -> Callable[..., str]:
    kinds = {"_tw_metrics_": "metrics table", "_tw_rfm_": "rfm summary table",
             "_tw_backtest_": "backtest tiers table"}

    def label(_backend: Any, name: str, *_args: Any, **_kwargs: Any) -> str:
        kind = next((v for k, v in kinds.items() if name.startswith(k)), name)
        return f"engine: {verb} {kind}"

    return label


def install_probes() -> None:
    """Wrap tierwise's stage functions and the DuckDB backend's calls (nothing is changed
    but the timing). Called before tierwise.workspace is imported."""
    import ibis.backends.duckdb as ibis_duckdb

    import tierwise.grading.backtest as backtest
    import tierwise.grading.calibration as calibration
    import tierwise.grading.clustering as clustering
    import tierwise.grading.run as grading
    import tierwise.grading.what_if as what_if
    import tierwise.metrics.models.predictions as predictions
    import tierwise.record.runs as runs
    from tierwise.metrics.models.bgnbd import BetaGeo
    from tierwise.metrics.models.gamma_gamma import GammaGamma

    backend = ibis_duckdb.Backend
    backend.create_table = _timed(_table_label("create"), backend.create_table)
    backend.insert = _timed(_table_label("insert into"), backend.insert)
    backend.to_pyarrow = _timed("engine: to_pyarrow", backend.to_pyarrow)
    backend.to_parquet = _timed("engine: to_parquet", backend.to_parquet)
    backend.execute = _timed("engine: execute", backend.execute)
    backend.drop_table = _timed("engine: drop table", backend.drop_table)

    # grading (grade, and the evaluation every feature shares)
    grading.evaluation = _timed_enter("evaluation", grading.evaluation)
    for name, label in [
        ("_materialise_metrics", "metrics (+ models, scores) into a temp table"),
        ("compute_aggregates", "aggregates the rules use"),
        ("cluster_tiers", "clustering"),
        ("latest_order_date", "latest order date"),
        ("previous_run", "app db: previous run"),
        ("active_overrides", "app db: overrides"),
        ("_previous_assignments", "read previous snapshot"),
        ("data_fingerprint", "data fingerprint"),
        ("_record", "record the run"),
    ]:
        setattr(grading, name, _timed(label, getattr(grading, name)))
    for name, label in [    # called by tierwise.record.runs._record, so wrapped there
        ("summarise", "summarise tiers"),
        ("_insert_changes", "app db: insert changes"),
    ]:
        setattr(runs, name, _timed(label, getattr(runs, name)))
    grading.model_metrics = _timed_enter("models (rfm summary, fit, score)",
                                         grading.model_metrics)

    # the customer-base models
    predictions._predict = _timed("fit and score (numpy)", predictions._predict)
    predictions._fit_spend = _timed("Gamma-Gamma: repeat buyers + fit", predictions._fit_spend)
    predictions.discounted_orders = _timed("discounted orders (CLV)",
                                           predictions.discounted_orders)
    BetaGeo.fit = staticmethod(_timed("BG/NBD fit", BetaGeo.fit))  # type: ignore[method-assign]
    GammaGamma.fit = staticmethod(  # type: ignore[method-assign]
        _timed("Gamma-Gamma fit", GammaGamma.fit))
    BetaGeo.p_alive = _timed("p_alive", BetaGeo.p_alive)  # type: ignore[method-assign]
    BetaGeo.expected_purchases = _timed(  # type: ignore[method-assign]
        "expected_purchases", BetaGeo.expected_purchases)

    # clustering (auto)
    clustering._fetch = _timed("fetch features (Arrow)", clustering._fetch)
    clustering._kmeans = _timed("k-means (scikit-learn)", clustering._kmeans)
    clustering._space = _timed("log + standardise", clustering._space)

    # calibration
    calibration.evaluation = _timed_enter("evaluation", calibration.evaluation)
    counter = calibration._Counter
    counter.__init__ = _timed("count customers", counter.__init__)  # type: ignore[method-assign]
    counter.tier_shares = _timed("tier shares", counter.tier_shares)  # type: ignore[method-assign]
    counter.sweep = _timed("sweep: critical values, GROUP BY",  # type: ignore[method-assign]
                           counter.sweep)
    counter.shares = _timed("count candidate rules", counter.shares)  # type: ignore[method-assign]
    calibration._calibrate_tiers = _timed("calibrate tiers (top-down)",
                                          calibration._calibrate_tiers)
    calibration.rewrite_policy = _timed("rewrite the policy text", calibration.rewrite_policy)

    # what-if
    what_if.final_tiers = _timed_enter("evaluation + hysteresis", what_if.final_tiers)
    what_if.summarise = _timed("summarise tiers", what_if.summarise)
    what_if._compare = _timed("compare with the latest run (pairs, moves)", what_if._compare)

    # backtest: each period's evaluation, and the whole period (evaluation, hysteresis, insert)
    def period_done(entered: float, total: float) -> None:
        PERIODS.append({"period": len(PERIODS), "evaluation_seconds": entered,
                        "seconds": total})
        say(f"  period {len(PERIODS)}: {total:.1f}s (evaluation {entered:.1f}s)")

    backtest.evaluation = _timed_enter("evaluation", backtest.evaluation, period_done)
    backtest._assignments = _timed_enter("grade every period into a temp table",
                                         backtest._assignments)
    backtest._summarise = _timed("statistics over all periods", backtest._summarise)
    for name, label in [("_kept", "stability (kept)"), ("_pareto", "pareto top 20%"),
                        ("_flaps", "flaps"), ("latest_order_date", "latest order date")]:
        setattr(backtest, name, _timed(label, getattr(backtest, name)))


def _open(args: argparse.Namespace) -> Any:
    from tierwise.workspace import Workspace

    ws = Workspace(args.workspace)
    # Open the store and the app database before the measured call, as steps.py does: the
    # app database was cleared, and its migrations are not what is measured.
    store = ws.store()
    _ = ws.appdb
    if args.memory_limit:   # as run.py --memory-limit: set on the store from the outside
        store.execute(f"SET memory_limit = '{args.memory_limit}'")
    return ws


def _settings(ws: Any) -> dict[str, Any]:
    row = ws.store().execute(
        "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    return {"memory_limit": row[0], "threads": row[1]}


def step_grade(args: argparse.Namespace) -> dict[str, Any]:
    ws = _open(args)
    as_of = dt.date.fromisoformat(args.as_of)
    started = time.perf_counter()
    with _phase("grade"):
        run = ws.grade(as_of=as_of, policy=args.policy)
    seconds = time.perf_counter() - started
    record = ws.run(run.run_id)
    result = {"seconds": seconds, "run_id": run.run_id, "as_of": as_of.isoformat(),
              "policy": record.policy_name, "customers": run.customers,
              "tiers": {t.tier: t.customers for t in run.tiers}, "changes": run.changes,
              "models": record.models, "engine": _settings(ws)}
    ws.close()
    return result


def step_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    import ibis

    from tierwise.grading.calibration import calibrate

    ws = _open(args)
    chosen, text = ws.policy(args.policy)
    backend = ibis.duckdb.from_connection(ws.store())
    started = time.perf_counter()
    with _phase("calibrate"):
        result = calibrate(backend, ws.tables(), chosen, text, metric="annual_spend",
                           as_of=dt.date.fromisoformat(args.as_of))
    seconds = time.perf_counter() - started
    if args.out:
        Path(args.out).write_text(result.text, encoding="utf-8")
    ws.close()
    return {"seconds": seconds, "calibration": result.to_json(), "output": args.out}


def step_what_if(args: argparse.Namespace) -> dict[str, Any]:
    ws = _open(args)
    started = time.perf_counter()
    with _phase("what-if"):
        found = ws.what_if(policy=args.policy)
    seconds = time.perf_counter() - started
    ws.close()
    return {"seconds": seconds, "moved": found.moved, "move_objects": len(found.moves),
            "what_if": found.to_json(limit=5)}


def step_backtest(args: argparse.Namespace) -> dict[str, Any]:
    from tierwise.grading.backtest import period_ends

    ws = _open(args)
    ends = period_ends(args.period_from, args.period_to)
    say(f"backtest: {len(ends)} periods, {ends[0]} .. {ends[-1]}")
    started = time.perf_counter()
    with _phase("backtest"):
        found = ws.backtest(ends, policies=[None])[0]
    seconds = time.perf_counter() - started
    ws.close()
    for entry, end in zip(PERIODS, ends, strict=False):
        entry["as_of"] = end.isoformat()
    return {"seconds": seconds, "periods": len(ends), "from": ends[0].isoformat(),
            "to": ends[-1].isoformat(), "period_timings": PERIODS,
            "backtest": found.to_json()}


def step_diagnose_outcomes(args: argparse.Namespace) -> dict[str, Any]:
    """The backtest's next-12-month revenue (``backtest._outcomes``) as ``_summarise`` reads
    it, against monthly cumulative sums looked up with ASOF joins, on a stand-in tiers table
    (every customer in every period, tier from a hash; the outcome does not depend on it)."""
    import ibis

    from tierwise.grading.backtest import OUTCOME_MONTHS, _outcomes, period_ends
    from tierwise.metrics.per_customer import add_months

    ws = _open(args)
    con = ws.store()
    backend = ibis.duckdb.from_connection(con)
    ends = period_ends(args.period_from, args.period_to)
    con.execute(
        "CREATE TEMP TABLE _bench_tiers AS SELECT p::BIGINT AS period, customer_id, "
        "(hash(customer_id) % 4)::BIGINT AS rank, ['a', 'b', 'c', 'd'][1 + "
        f"(hash(customer_id) % 4)::INTEGER] AS tier FROM customers, range({len(ends)}) t(p)")
    found: dict[str, Any] = {"periods": len(ends)}

    def clock(label: str, function: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = function()
        found[label] = time.perf_counter() - started
        say(f"  {found[label]:6.1f}s  {label}")
        return value

    horizons = ", ".join(f"(DATE '{e}', DATE '{add_months(e, OUTCOME_MONTHS)}')"
                         for e in ends)
    daily, joined = clock("count daily rows and range-join rows", lambda: con.execute(
        "WITH d AS (SELECT order_date, count(*) AS n FROM (SELECT customer_id, order_date "
        f"FROM orders GROUP BY ALL) GROUP BY ALL), h(start, stop) AS (VALUES {horizons}) "
        "SELECT (SELECT sum(n) FROM d), (SELECT sum(n) FROM d JOIN h "
        "ON d.order_date > h.start AND d.order_date <= h.stop)").fetchone())
    found["daily_rows"], found["joined_rows"] = int(daily), int(joined)
    table = backend.table("_bench_tiers")
    outcome = _outcomes(backend, ws.tables(), table, ends)
    per_tier = outcome.group_by(["period", "tier"]).aggregate(
        customers=outcome.count(), revenue=outcome.next_revenue.sum())
    reference = clock("per (period, tier) as _summarise computes it (one of its two queries)",
                      lambda: backend.to_pyarrow(per_tier.order_by(["period", "tier"])))
    months = ", ".join(f"({i}, {e.year * 12 + e.month - 1})" for i, e in enumerate(ends))
    monthly = clock("the same from monthly cumulative sums and ASOF joins", lambda: con.execute(
        f"""WITH m AS (SELECT customer_id, year(order_date) * 12 + month(order_date) - 1 AS mi,
                             sum(amount) AS amount FROM orders GROUP BY ALL),
                 c AS (SELECT customer_id, mi,
                              sum(amount) OVER (PARTITION BY customer_id ORDER BY mi) AS cum
                       FROM m),
                 h(period, mi) AS (VALUES {months}),
                 t AS (SELECT _bench_tiers.*, h.mi FROM _bench_tiers JOIN h USING (period)),
                 f AS (SELECT t.period, t.tier,
                              coalesce(b.cum, 0) - coalesce(a.cum, 0) AS next_revenue
                       FROM t ASOF LEFT JOIN c a ON t.customer_id = a.customer_id
                                                    AND t.mi >= a.mi
                              ASOF LEFT JOIN c b ON t.customer_id = b.customer_id
                                                    AND t.mi + 12 >= b.mi)
            SELECT period, tier, count(*) AS customers, sum(next_revenue) AS revenue
            FROM f GROUP BY ALL ORDER BY 1, 2""").fetchall())
    rows = reference.to_pylist()
    found["same_customers"] = [r["customers"] for r in rows] == [m[2] for m in monthly]
    found["max_relative_difference"] = max(
        abs(m[3] - r["revenue"]) / max(1.0, abs(r["revenue"]))
        for r, m in zip(rows, monthly, strict=True))
    ws.close()
    found["seconds"] = found["per (period, tier) as _summarise computes it (one of its two "
                             "queries)"]
    return found


def step_diagnose_fit(args: argparse.Namespace) -> dict[str, Any]:
    """The BG/NBD fit of a model run on its own: the optimiser's calls (iterations, function
    evaluations, seconds, message) and how flat the likelihood is along a/(a+b) fixed."""
    import ibis
    import numpy as np

    import tierwise.metrics.models.fitting as fitting
    from tierwise.metrics.models import bgnbd
    from tierwise.metrics.models.summary import rfm_summary, triples

    ws = _open(args)
    backend = ibis.duckdb.from_connection(ws.store())
    as_of = dt.date.fromisoformat(args.as_of)
    started = time.perf_counter()
    summary = backend.create_table(
        "_bench_rfm", rfm_summary(backend.table("orders"), as_of, period_days=1), temp=True)
    found: dict[str, Any] = {"summary_seconds": time.perf_counter() - started}
    h = backend.to_pyarrow(triples(summary).order_by(["frequency", "recency", "T"]))
    x, t_x, age, n = (h[c].to_numpy().astype(np.float64)
                      for c in ("frequency", "recency", "T", "n"))
    found.update(triples=len(x), customers=float(n.sum()),
                 mean_frequency=float(np.average(x, weights=n)))
    calls: list[dict[str, Any]] = []
    original = fitting.minimize

    def recorded(*a: Any, **k: Any) -> Any:
        begun = time.perf_counter()
        result = original(*a, **k)
        calls.append({"nit": int(result.nit), "nfev": int(result.nfev),
                      "seconds": time.perf_counter() - begun, "message": str(result.message),
                      "max_abs_gradient": float(np.max(np.abs(result.jac)))})
        return result

    fitting.minimize = recorded
    started = time.perf_counter()
    fitted = bgnbd.BetaGeo.fit(x, t_x, age, n)
    found["fit_seconds"] = time.perf_counter() - started
    found["minimize_calls"] = calls
    found["params"] = {"r": fitted.r, "alpha_days": fitted.alpha, "a": fitted.a,
                       "b": fitted.b, "log_likelihood": fitted.log_likelihood}
    params = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    started = time.perf_counter()
    bgnbd._log_likelihood(params, x, t_x, age, n)
    found["one_evaluation_seconds"] = time.perf_counter() - started
    found["ridge"] = {
        str(k): float(bgnbd._log_likelihood(params * [1, 1, k, k], x, t_x, age, n)[0]
                      - fitted.log_likelihood)
        for k in (0.01, 0.1, 10.0)}
    ws.close()
    found["seconds"] = found["fit_seconds"]
    for call in calls:
        say(f"  minimize: {call}")
    return found


CHILD_STEPS = {"grade": step_grade, "calibrate": step_calibrate, "what-if": step_what_if,
               "backtest": step_backtest, "diagnose-outcomes": step_diagnose_outcomes,
               "diagnose-fit": step_diagnose_fit}


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", choices=list(CHILD_STEPS), required=True)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--policy")
    parser.add_argument("--out")
    parser.add_argument("--period-from")
    parser.add_argument("--period-to")
    parser.add_argument("--memory-limit")
    parser.add_argument("--profile", type=Path, help="write a cProfile report here")
    args = parser.parse_args(argv)
    install_probes()
    step = CHILD_STEPS[args.step]
    if args.profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(step, args)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        args.profile.write_text(text.getvalue(), encoding="utf-8")
        result["profiled"] = True
    else:
        result = step(args)
    result["phases"] = {k: round(v, 3) for k, v in PHASES.items()}
    result["phase_calls"] = CALLS
    emit(result)


# =============================================================================================
# In the parent: data, workspace, one process per step, figures
# =============================================================================================


class StepTimeout(RuntimeError):
    def __init__(self, message: str, wall: float, stderr: str) -> None:
        super().__init__(message)
        self.wall, self.stderr = wall, stderr


def run_step(name: str, argv: list[str], *, logs: Path,
             timeout: float | None = None) -> dict[str, Any]:
    """Run ``argv`` (a Python script) in its own process (runner.run_child): its JSON result
    plus wall seconds, CPU seconds and peak RSS (``os.wait4``: ru_maxrss is the kernel's
    high-water mark for that child alone), the load average before it, and an RSS timeline
    in ``logs/NAME.rss.csv``. Past ``timeout`` seconds the child is killed (StepTimeout)."""
    source_before = source_version()
    child = run_child(name, [sys.executable, *argv], logs=logs, timeout=timeout)
    if child.timed_out:
        raise StepTimeout(child.failure(), child.wall_seconds, child.stderr())
    if not child.ok:
        raise SystemExit(child.failure())
    result = child.result()
    result["wall_seconds"] = child.wall_seconds
    result["source"] = source_before
    result["peak_rss_bytes"] = child.peak_rss_bytes
    result["cpu_seconds"] = child.cpu_seconds
    result["load_average_before"] = child.load_before[0]
    result["load_averages_before"] = list(child.load_before)
    say(f"           {result['seconds']:.1f}s (process {child.wall_seconds:.1f}s, "
        f"{result['cpu_seconds']:.1f} CPU s), peak RSS {fmt_bytes(result['peak_rss_bytes'])}, "
        f"load {child.load_before[0]:.1f}")
    return result


def prepare_data(args: argparse.Namespace, data: Path, logs: Path,
                 results: dict[str, Any]) -> dict[str, Any]:
    """Generate and import only what is missing; returns the import marker."""
    wanted = {"customers": args.customers, "orders": args.orders, "files": args.files,
              "version": GENERATOR_VERSION}
    found = existing(data)
    marker_path = data / IMPORT_MARKER
    if found is not None and all(found.get(k) == v for k, v in wanted.items()):
        say(f"data exists in {data}: {found['customers']:,} customers, "
            f"{found['orders']:,} orders; not generating")
    else:
        say(f"generating {args.customers:,} customers and {args.orders:,} orders in {data}")
        marker_path.unlink(missing_ok=True)
        started = time.perf_counter()
        generate(data, args.customers, args.orders, files=args.files, say=say)
        results["generate_seconds"] = time.perf_counter() - started
    workspace = data / "workspace"
    marker = json.loads(marker_path.read_text()) if marker_path.exists() else None
    store = workspace / "data" / "store.duckdb"
    if marker and all(marker.get(k) == v for k, v in wanted.items()) and store.exists():
        say(f"workspace {workspace} holds that data (imported {marker['imported_at']}); "
            "not importing")
        return marker
    marker_path.unlink(missing_ok=True)
    common = ["--workspace", str(workspace), "--data", str(data), "--files", str(args.files),
              "--total-orders", str(args.orders)]
    tuned = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    steps_py = str(HERE / "steps.py")
    run_step("init", [steps_py, "init", *common], logs=logs)
    imported = {kind: run_step(f"import_{kind}", [steps_py, f"import-{kind}", *common, *tuned],
                               logs=logs)
                for kind in ("customers", "orders")}
    marker = {**wanted, "seed": 42, "imported_at": dt.datetime.now().isoformat(timespec="seconds"),
              "store_bytes": store.stat().st_size, "memory_limit": args.memory_limit,
              "source": imported["orders"]["source"],
              **{f"import_{kind}": {k: r.get(k) for k in (
                  "seconds", "wall_seconds", "cpu_seconds", "peak_rss_bytes", "rows",
                  "accepted", "rejected", "placeholders", "load_average_before")}
                 for kind, r in imported.items()}}
    marker_path.write_text(json.dumps(marker, indent=2) + "\n")
    return marker


def clear_runs(workspace: Path) -> None:
    """Every invocation grades from the same state: no runs, no history (the app database is
    made again, empty, on first use; the store keeps the imported data)."""
    for name in ("tierwise.db", "tierwise.db-wal", "tierwise.db-shm", "tierwise.db-journal"):
        (workspace / name).unlink(missing_ok=True)
    shutil.rmtree(workspace / "runs", ignore_errors=True)
    for stale in workspace.glob("*.calibrated.yaml"):
        stale.unlink()


def write_model_policy(path: Path) -> str:
    """value-tiers with p_alive and predicted_clv in its rules and a models: block."""
    from ruamel.yaml import YAML

    from tierwise.policy.presets import preset_text

    yaml = YAML(typ="safe")
    policy = yaml.load(preset_text("value-tiers"))
    policy["name"] = "价值分级+预测 (benchmark)"
    policy["description"] = ("value-tiers with the customer-base models in its rules "
                             "(benchmarks/predictive.py)")
    policy["tiers"] = MODEL_TIERS
    policy["models"] = MODELS_BLOCK
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    with path.open("w", encoding="utf-8") as out:
        out.write("# Written by benchmarks/predictive.py: value-tiers + model metrics.\n")
        yaml.dump(policy, out)
    return path.read_text(encoding="utf-8")


def months_back(day: dt.date, months: int) -> str:
    """YYYY-MM of the month ``months`` before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def completed_periods(stderr: str) -> list[float]:
    """Seconds of the periods a killed backtest finished (its progress lines)."""
    found = []
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("period ") and ":" in line:
            with contextlib.suppress(ValueError):
                found.append(float(line.split(":", 1)[1].split("s", 1)[0]))
    return found


def main() -> None:
    if "--step" in sys.argv[1:]:
        child(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description="tierwise issue-3 features at scale")
    add_size_arguments(parser, data=ROOT / "bench-data" / "predictive",
                       results=HERE / "predictive-results.json", files=ORDER_FILES)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=AS_OF,
                        help="grading date D (default 2025-12-31, the last day of the data)")
    parser.add_argument("--periods", type=int, default=24,
                        help="monthly backtest periods ending at D's month (default 24)")
    parser.add_argument("--backtest-limit", type=float, default=1800.0,
                        help="seconds before the backtest is stopped (default 1800)")
    parser.add_argument("--fallback-periods", type=int, default=6,
                        help="periods measured instead when the backtest is stopped")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"steps to run, comma-separated (default {','.join(STEPS)}); "
                             "the baseline always runs")
    parser.add_argument("--profile", default="",
                        help="steps to run under cProfile as well, comma-separated "
                             "(separate, extra runs; logs/STEP.profile.txt)")
    parser.add_argument("--diagnose", action="store_true",
                        help="also run the diagnoses behind the README's findings: the "
                             "backtest's outcome query against monthly sums, and the BG/NBD "
                             "fit's optimiser calls (~3 min)")
    parser.add_argument("--memory-limit",
                        help="DuckDB memory_limit set on the store (default: tierwise's 4GB)")
    args = parser.parse_args()
    chosen = ["baseline", *[s for s in args.steps.split(",") if s and s != "baseline"]]
    unknown = set(chosen) - set(STEPS) | set(filter(None, args.profile.split(","))) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")

    data: Path = args.data.resolve()
    workspace, logs = data / "workspace", data / "logs"
    results: dict[str, Any] = {
        "started": timestamp(), "command": " ".join(sys.argv), "machine": machine(),
        "data": str(data), "as_of": args.as_of.isoformat(),
    }
    results["versions"] = versions()
    results["import"] = prepare_data(args, data, logs, results)
    results["customers"], results["orders"] = args.customers, args.orders
    results["source"] = source_version()
    results["memory_limit"] = args.memory_limit
    clear_runs(workspace)
    policy_file = data / MODEL_POLICY
    results["model_policy"] = write_model_policy(policy_file)

    as_of = args.as_of
    common = ["--workspace", str(workspace), "--as-of", as_of.isoformat()]
    if args.memory_limit:
        common += ["--memory-limit", args.memory_limit]
    me = str(Path(__file__).resolve())
    ends_to = months_back(as_of, 0)
    plans: dict[str, list[str]] = {
        "baseline": ["--step", "grade"],
        "models": ["--step", "grade", "--policy", str(policy_file)],
        "auto": ["--step", "grade", "--policy", "auto"],
        "calibrate": ["--step", "calibrate", "--out",
                      str(workspace / "policy.calibrated.yaml")],
        "what-if": ["--step", "what-if", "--policy", "abc"],
        "backtest": ["--step", "backtest", "--period-from", months_back(as_of, args.periods - 1),
                     "--period-to", ends_to],
        "baseline-again": ["--step", "grade"],
        "diagnose-outcomes": ["--step", "diagnose-outcomes", "--period-from",
                              months_back(as_of, args.periods - 1), "--period-to", ends_to],
        "diagnose-fit": ["--step", "diagnose-fit"],
    }
    steps: dict[str, dict[str, Any]] = {}
    for name in chosen:
        argv = [me, *plans[name], *common]
        if name != "backtest":
            steps[name] = run_step(name, argv, logs=logs)
            continue
        try:
            steps[name] = run_step(name, argv, logs=logs, timeout=args.backtest_limit)
        except StepTimeout as stopped:
            done = completed_periods(stopped.stderr)
            say(f"  {stopped}; {len(done)} periods finished; measuring "
                f"{args.fallback_periods} periods instead")
            fallback = [me, "--step", "backtest", "--period-from",
                        months_back(as_of, args.fallback_periods - 1), "--period-to", ends_to,
                        *common]
            steps[name] = run_step("backtest_fallback", fallback, logs=logs)
            steps[name]["stopped_full_run"] = {
                "periods_asked": args.periods, "limit_seconds": args.backtest_limit,
                "wall_seconds": stopped.wall, "periods_finished": len(done),
                "period_seconds": done}
    for name in DIAGNOSES if args.diagnose else []:
        results.setdefault("diagnoses", {})[name] = run_step(name, [me, *plans[name], *common],
                                                             logs=logs)
    for name in filter(None, args.profile.split(",")):
        argv = [me, *plans[name], *common, "--profile", str(logs / f"{name}.profile.txt")]
        if name == "calibrate":
            argv[argv.index("--out") + 1] = str(data / "profile.calibrated.yaml")
        profiled = run_step(f"{name}_profiled", argv, logs=logs)
        results.setdefault("profiled", {})[name] = {
            "seconds": profiled["seconds"], "phases": profiled["phases"],
            "report": str(logs / f"{name}.profile.txt")}

    results["steps"] = steps
    sources = {json.dumps(s["source"], sort_keys=True) for s in steps.values()}
    results["source_changed_during_run"] = len(sources) > 1
    results["figures"] = figures(steps, args.customers, args.orders)
    results["finished"] = timestamp()
    write_results(args.results, results)
    print(report(results))
    say(f"\nfigures written to {args.results}; step logs and RSS timelines in {logs}")


def versions() -> dict[str, str]:
    found = {}
    for module in ("duckdb", "ibis", "numpy", "scipy", "sklearn", "pyarrow"):
        with contextlib.suppress(ImportError):
            found[module] = __import__(module).__version__
    return found


# --- figures and the report ------------------------------------------------------------------

LABELS = {
    "baseline": "baseline: grade, value-tiers",
    "models": "grade with p_alive, predicted_clv",
    "auto": "grade with the auto preset (k-means)",
    "calibrate": "calibrate annual_spend (targets)",
    "what-if": "what-if abc vs the latest run",
    "backtest": "backtest",
    "baseline-again": "baseline again, last (noise check)",
}


def figures(steps: dict[str, dict[str, Any]], customers: int, orders: int) -> dict[str, Any]:
    base = steps["baseline"]
    result: dict[str, Any] = {"baseline_seconds": base["seconds"],
                              "baseline_cpu_seconds": base["cpu_seconds"]}
    for name, step in steps.items():
        result[name] = {
            "seconds": step["seconds"], "over_baseline": step["seconds"] / base["seconds"],
            "extra_seconds": step["seconds"] - base["seconds"],
            "cpu_over_baseline": step["cpu_seconds"] / base["cpu_seconds"],
            "peak_rss_bytes": step["peak_rss_bytes"],
        }
    if "backtest" in steps:
        bt = steps["backtest"]
        per = bt["seconds"] / bt["periods"]
        timings = [p["seconds"] for p in bt["period_timings"]]
        result["backtest"].update({
            "periods": bt["periods"], "seconds_per_period": per,
            "per_period_over_baseline": per / base["seconds"],
            "period_seconds_min": min(timings), "period_seconds_max": max(timings),
            "period_seconds_first": timings[0], "period_seconds_last": timings[-1],
            "statistics_seconds": bt["seconds"] - sum(timings),
        })
    if "models" in steps:
        result["models"]["model_phase_seconds"] = _phase_total(
            steps["models"]["phases"], "models (rfm summary, fit, score)")
    return result


def _phase_total(phases: dict[str, float], label: str) -> float:
    return sum(v for k, v in phases.items() if k.split(" › ")[-1] == label)


def _phase_lines(phases: dict[str, float], calls: dict[str, int], *, depth: int = 4,
                 minimum: float = 0.05) -> list[str]:
    lines = []
    for path, seconds in phases.items():
        parts = path.split(" › ")
        if len(parts) > depth or seconds < minimum:
            continue
        n = calls.get(path, 1)
        times = f" ×{n}" if n > 1 else ""
        lines.append(f"  {seconds:8.2f}s  {'  ' * (len(parts) - 1)}{parts[-1]}{times}")
    return lines


def report(results: dict[str, Any]) -> str:
    steps, fig = results["steps"], results["figures"]
    base = steps["baseline"]
    lines = [f"\ntierwise issue-3 features: {results['customers']:,} customers, "
             f"{results['orders']:,} orders, as of {results['as_of']} "
             f"({results['machine']['cpus']} CPUs, DuckDB memory_limit "
             f"{base.get('engine', {}).get('memory_limit', '?')})", ""]
    header = (f"{'step':<40} {'seconds':>8} {'× base':>7} {'extra s':>8} {'process s':>9} "
              f"{'CPU s':>7} {'peak RSS':>10} {'load':>5}")
    lines += [header, "-" * len(header)]
    for name, step in steps.items():
        label = LABELS[name]
        if name == "backtest":
            label = f"backtest, {step['periods']} monthly periods"
        f = fig[name]
        extra = "" if name == "baseline" else f"{f['extra_seconds']:+.1f}"
        lines.append(f"{label:<40} {step['seconds']:>8.1f} {f['over_baseline']:>6.2f}x "
                     f"{extra:>8} {step['wall_seconds']:>9.1f} {step['cpu_seconds']:>7.1f} "
                     f"{fmt_bytes(step['peak_rss_bytes']):>10} "
                     f"{step['load_average_before']:>5.1f}")
        if name == "backtest":
            b = fig["backtest"]
            lines.append(f"{'  per period':<40} {b['seconds_per_period']:>8.1f} "
                         f"{b['per_period_over_baseline']:>6.2f}x")
    lines.append("")
    if "models" in steps:
        lines.append(f"models: the model phase (rfm summary, fit, score) took "
                     f"{fig['models']['model_phase_seconds']:.1f}s of the "
                     f"{fig['models']['extra_seconds']:+.1f}s over the baseline")
    if "backtest" in steps:
        b, bt = fig["backtest"], steps["backtest"]
        lines.append(f"backtest: {bt['periods']} periods {bt['from']}..{bt['to']}, "
                     f"{b['seconds_per_period']:.1f}s per period "
                     f"({b['per_period_over_baseline']:.2f}x a grade); one period "
                     f"{b['period_seconds_min']:.1f}..{b['period_seconds_max']:.1f}s (first "
                     f"{b['period_seconds_first']:.1f}, last {b['period_seconds_last']:.1f}); "
                     f"statistics over all periods {b['statistics_seconds']:.1f}s")
        if "stopped_full_run" in bt:
            s = bt["stopped_full_run"]
            lines.append(f"  the {s['periods_asked']}-period backtest was stopped after "
                         f"{s['wall_seconds']:.0f}s with {s['periods_finished']} periods done")
    lines += ["", *produced(steps), ""]
    for name, step in steps.items():
        lines.append(f"where {name} spends its time (inclusive; nested phases indented):")
        lines += _phase_lines(step["phases"], step.get("phase_calls", {}))
    lines += diagnosed(results.get("diagnoses", {}))
    for name, profiled in results.get("profiled", {}).items():
        lines.append(f"profile of {name}: {profiled['report']}")
    return "\n".join(lines)


def diagnosed(diagnoses: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    if "diagnose-outcomes" in diagnoses:
        d = diagnoses["diagnose-outcomes"]
        lines.append(f"diagnosis, backtest outcomes ({d['periods']} periods): "
                     f"{d['daily_rows']:,} daily rows, {d['joined_rows']:,} rows out of the "
                     "range join (peak RSS " + fmt_bytes(d["peak_rss_bytes"]) + ")")
        lines += [f"  {v:8.1f}s  {k}" for k, v in d.items()
                  if isinstance(v, float) and k not in (
                      "seconds", "wall_seconds", "cpu_seconds", "load_average_before",
                      "max_relative_difference")]
        lines.append(f"  same counts: {d['same_customers']}, revenue agrees to "
                     f"{d['max_relative_difference']:.1e} relative")
    if "diagnose-fit" in diagnoses:
        d = diagnoses["diagnose-fit"]
        lines.append(f"diagnosis, BG/NBD fit: {d['triples']:,} distinct histories for "
                     f"{d['customers']:,.0f} buyers (mean frequency {d['mean_frequency']:.1f}); "
                     f"fit {d['fit_seconds']:.1f}s, one likelihood + gradient "
                     f"{d['one_evaluation_seconds']:.2f}s")
        for call in d["minimize_calls"]:
            lines.append(f"  minimize: {call['nit']} iterations, {call['nfev']} evaluations, "
                         f"{call['seconds']:.1f}s, max |gradient| "
                         f"{call['max_abs_gradient']:.1e}, {call['message']}")
        lines.append("  log-likelihood change with a and b scaled together: " + ", ".join(
            f"x{k} {v:+.2f}" for k, v in d["ridge"].items()))
    return lines


def produced(steps: dict[str, dict[str, Any]]) -> list[str]:
    """What each feature produced, so a reader sees the figures mean something."""
    lines = []
    for name in ("baseline", "models", "auto", "baseline-again"):
        if name in steps:
            s = steps[name]
            lines.append(f"{name}: run {s['run_id']} ({s['policy']}), tiers {s['tiers']}")
    models = (steps.get("models") or {}).get("models") or {}
    if models:
        bg, gg = models.get("bgnbd") or {}, models.get("gamma_gamma") or {}
        lines.append(f"  models: {models.get('customers'):,} buyers, "
                     f"{models.get('repeat_buyers'):,} repeat buyers; BG/NBD "
                     + ", ".join(f"{k} {v:.4g}" for k, v in bg.items() if k != "log_likelihood")
                     + "; Gamma-Gamma "
                     + ", ".join(f"{k} {v:.4g}" for k, v in gg.items() if k != "log_likelihood")
                     + (f"; notes {models['notes']}" if models.get("notes") else ""))
    clusters = ((steps.get("auto") or {}).get("models") or {}).get("clusters")
    if clusters:
        lines.append(f"  auto: features {clusters['features']}, {clusters['unclustered']:,} "
                     "customers without orders in the last tier")
        for c in clusters["centres"]:
            centre = ", ".join(f"{k} {v:,.4g}" for k, v in c["centre"].items())
            lines.append(f"    {c['tier']:<8} {c['size']:>9,}  {centre}")
    if "calibrate" in steps:
        cal = steps["calibrate"]["calibration"]
        lines.append(f"calibrate {cal['metric']} as of {cal['as_of']} "
                     f"({cal['customers']:,} customers):")
        for t in cal["tiers"]:
            target = f"{t['target'][0]:.0%}..{t['target'][1]:.0%}" if t["target"] else ""
            lines.append(f"    {t['tier']:<10} {' / '.join(t['old_thresholds']) or '-':>24} -> "
                         f"{' / '.join(t['new_thresholds']) or '-':<24} share "
                         f"{t['old_share']:.1%} -> {t['new_share']:.1%}  target {target:<9} "
                         f"{t['status']}")
    if "what-if" in steps:
        w = steps["what-if"]
        found = w["what_if"]
        against = found["against_run"] or {}
        lines.append(f"what-if {found['policy']['name']}: {found['customers']:,} customers, "
                     f"{found['moved']:,} would move against run {against.get('id')} "
                     f"({against.get('policy')}), {found['unchanged']:,} unchanged; "
                     f"{w['move_objects']:,} Move objects built; tiers "
                     + ", ".join(f"{t['tier']} {t['customers']:,}" for t in found["tiers"]))
    if "backtest" in steps:
        b = steps["backtest"]["backtest"]

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.1%}"

        lift = "-" if b["top_tier_lift"] is None else f"{b['top_tier_lift']:.2f}x"
        lines.append(f"backtest {b['policy']['name']}: stability {pct(b['stability'])}, "
                     f"{b['flaps']:,} flaps by {b['flapping_customers']:,} customers, "
                     f"top-tier lift {lift}, "
                     f"pareto top 20% {pct(b['pareto_top20'])}")
        for t in b["tiers"]:
            revenue = "-" if t["revenue_next_12m"] is None else f"{t['revenue_next_12m']:,.0f}"
            tier_lift = "-" if t["lift"] is None else f"{t['lift']:.2f}x"
            lines.append(f"    {t['tier']:<10} share {pct(t['share']):>6}  next-12m revenue "
                         f"{revenue:>10}  lift {tier_lift:>6}  captured {pct(t['captured'])}")
        lines += [f"    note: {n}" for n in b["notes"]]
    return lines


if __name__ == "__main__":
    main()
