"""Web benchmark: the customer list and the profile page of a 100,000-customer workspace under
50 concurrent clients on loopback. One command:

    .venv/bin/python benchmarks/web.py [--customers 100000] [--clients 50] [--seconds 20]

The first run builds the workspace the way ``tierwise demo`` does (``build_demo``: generate,
import the Excel/CSV exports, grade at two month ends so there is history) under
``bench-data/web/`` (git-ignored); ``bench-data/web/BUILT`` records the build, and later runs
with the same settings reuse it. The benchmark adds a manager, an admin and a rep user (the
rep owns the accounts of the data's busiest owner), signs the manager and the rep in through
``POST /login`` and makes API tokens for them.

The server is a real process: ``uvicorn.run(create_app(root))`` with one worker, or with
``--workers N`` the N worker processes of ``tierwise serve --workers N``, on 127.0.0.1 and a
free port; it is stopped at the end, also on errors. ``--workspace DIR`` serves an existing
graded workspace (e.g. 1,000,000 customers imported from ``generate.py``'s Parquet files)
instead of building one. Before the scenarios every worker is warmed (a list page and a
profile answered by each: it reads the run's list into memory), the dashboard is timed with
one client, and its bytes on the wire with every asset it names are counted with gzip
accepted and without. The load generator is
this process (asyncio, one ``httpx.AsyncClient`` with one keep-alive connection per client),
so on a small machine client and server share the cores: the table shows the CPU seconds of
each. Every scenario first times 5 requests from one client on the idle server,
then 50 clients start requests for ``--warmup`` + ``--seconds`` and no more after that;
every request has a timeout, so it stops by itself. Measured are the requests that end after
the warm-up, over the time until the last one ended. Scenarios, in order:

* ``static``: ``GET /static/app.css``, the server's floor and the baseline of the ratios;
* ``list page`` / ``profile page``: ``GET /customers?page=<random>``, ``GET
  /customers/<random id>`` as the manager (session cookie);
* ``api list`` / ``api profile``: the same through ``/api/v1/customers`` (bearer token);
* ``list page, rep``: the customer list as the rep (scoped to their accounts).

Any answer but 200 (or a timeout, or a connection error) is an error and is counted. The
figures go to stdout and to ``benchmarks/web-results.json``. ``--profile`` also times the
library calls behind the two pages in this process, with cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import io
import json
import math
import os
import platform
import pstats
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from tierwise.demo.build import build_demo
from tierwise.errors import TierwiseError
from tierwise.record.runs import snapshot_path
from tierwise.work import users
from tierwise.workspace import CONFIG_NAME, Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner import process_cpu_seconds, source_version, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD_VERSION = 1
SEED = 7
TODAY = dt.date(2026, 1, 15)         # build_demo's "today": data up to 2025-12-31
MONTHS = 2                           # graded as of 2025-11-30 and 2025-12-31
PASSWORD = "bench-password-123"
SERVER = """\
import sys
import uvicorn
from tierwise.web import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), workers=1,
            log_level="warning", access_log=False)
"""
# Several workers: the way `tierwise serve --workers N` starts them (tierwise.cli.server).
SERVER_WORKERS = """\
import os, sys
import uvicorn
os.environ["TIERWISE_WORKSPACE"] = sys.argv[1]
uvicorn.run("tierwise.web.app:worker_app", factory=True, host="127.0.0.1",
            port=int(sys.argv[2]), workers=int(sys.argv[3]), log_level="warning",
            access_log=False, timeout_worker_healthcheck=60)
"""


# -- the workspace ------------------------------------------------------------------------

def build(folder: Path, customers: int) -> Path:
    """The workspace under ``folder``: reused when ``folder/BUILT`` records the same build."""
    root, marker = folder / "workspace", folder / "BUILT"
    want = {"customers": customers, "seed": SEED, "today": TODAY.isoformat(),
            "months": MONTHS, "version": BUILD_VERSION}
    if (marker.exists() and (root / CONFIG_NAME).exists()
            and json.loads(marker.read_text()) == want):
        print(f"reusing the workspace in {root}")
        return root
    marker.unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"building a {customers:,}-customer workspace in {root} (once; a few minutes)")
    build_demo(root, n_customers=customers, seed=SEED, today=TODAY, months=MONTHS,
               report=lambda line: print("  " + line, flush=True))
    marker.write_text(json.dumps(want))
    print(f"built in {time.perf_counter() - started:.0f} s")
    return root


@dataclass
class Setup:
    """What the load needs from the workspace: users, tokens, ids and page counts."""

    rep_name: str
    customer_ids: list[str]
    pages: int                        # list pages at 50 a page, for the manager
    rep_pages: int                    # and for the rep
    tokens: dict[str, str] = field(default_factory=dict)   # role -> API token


def prepare(root: Path) -> Setup:
    """Add the users (once) and fresh API tokens; read the customer ids of the latest run."""
    with Workspace(root) as ws:
        store = ws.store()
        rep_name, rep_count = store.execute(
            "SELECT owner, count(*) FROM customers WHERE owner IS NOT NULL "
            "GROUP BY owner ORDER BY count(*) DESC, owner LIMIT 1").fetchone() or ("", 0)
        snapshot = snapshot_path(ws.runs_dir, ws.run().id)
        ids = [r[0] for r in store.execute(
            f"SELECT customer_id FROM read_parquet('{snapshot}') ORDER BY 1").fetchall()]
        wanted = {"bench-admin": ("admin", None), "bench-manager": ("manager", None),
                  "bench-rep": ("rep", rep_name)}
        setup = Setup(rep_name, ids, math.ceil(len(ids) / 50), math.ceil(rep_count / 50))
        for name, (role, rep) in wanted.items():
            try:
                user = users.get_user(ws.appdb, name)
            except TierwiseError:
                user = users.add_user(ws.appdb, name, role, PASSWORD, rep_name=rep)
            setup.tokens[role] = users.create_token(ws.appdb, user, "web benchmark")
    return setup


# -- the server -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(root: Path, port: int, workers: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """uvicorn with ``workers`` workers in its own process (and its children); stopped on
    the way out, whatever happens."""
    command = ([sys.executable, "-c", SERVER, str(root), str(port)] if workers == 1 else
               [sys.executable, "-c", SERVER_WORKERS, str(root), str(port), str(workers)])
    process = subprocess.Popen(command, cwd=ROOT,
                               env={**os.environ, "TIERWISE_WORKER_HEADER": "1"})
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/static/app.css",
                             timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer within 180 s")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sign_in(base: str, name: str) -> str:
    """The session cookie of a ``POST /login``. The form carries a double-submit token
    against login CSRF: the cookie ``GET /login`` sets, sent back as the ``csrf`` field."""
    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.get("/login").cookies.get("tw_login_csrf", "")
        answer = client.post("/login", data={"name": name, "password": PASSWORD,
                                             "csrf": token}, follow_redirects=False)
    if answer.status_code != 303 or "tw_session" not in answer.cookies:
        raise RuntimeError(f"login as {name} failed: {answer.status_code} {answer.text[:200]}")
    return answer.cookies["tw_session"]


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (uvicorn's workers are its children)."""
    total = process_cpu_seconds(pid)
    with suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            with suppress(OSError, IndexError, ValueError):
                total += process_cpu_seconds(int(child))
    return total


def warm(base: str, session: str, paths: list[str], workers: int) -> float:
    """Request each path on new connections until every worker has answered it (a worker
    reads a run's list into memory at its first list or profile request); seconds taken."""
    started = time.perf_counter()
    for path in paths:
        seen: set[str] = set()
        deadline = time.monotonic() + 600
        while len(seen) < workers and time.monotonic() < deadline:
            answer = httpx.get(base + path, cookies={"tw_session": session}, timeout=600,
                               headers={"Connection": "close"})
            answer.raise_for_status()
            seen.add(answer.headers.get("x-tierwise-worker", "1"))
    return time.perf_counter() - started


# -- page weight and the dashboard --------------------------------------------------------------

ASSET = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="(/static/[^"]+)"')


def page_weight(base: str, session: str, path: str = "/") -> dict[str, Any]:
    """Bytes on the wire for a page and every asset it names, as a browser with an empty
    cache would fetch them: with gzip accepted, and without (identity)."""
    found: dict[str, Any] = {}
    for encoding in ("gzip", "identity"):
        with httpx.Client(base_url=base, cookies={"tw_session": session}, timeout=120,
                          headers={"Accept-Encoding": encoding}) as client:
            page = client.get(path)
            page.raise_for_status()
            parts = {path: page.num_bytes_downloaded}
            for asset in ASSET.findall(page.text):
                answer = client.get(asset)
                answer.raise_for_status()
                parts[asset] = answer.num_bytes_downloaded
        found[encoding] = {"bytes": sum(parts.values()), "parts": parts}
    return found


def dashboard_times(base: str, session: str, rounds: int = 5) -> dict[str, float]:
    """The dashboard page with one client on an idle server: the first request after the
    server started (nothing cached) and the median of ``rounds`` more, in ms."""
    times = []
    with httpx.Client(base_url=base, cookies={"tw_session": session}, timeout=300) as client:
        for _ in range(rounds + 1):
            started = time.perf_counter()
            client.get("/").raise_for_status()
            times.append(1000 * (time.perf_counter() - started))
    return {"first_ms": round(times[0], 1), "median_ms": round(statistics.median(times[1:]), 1)}


# -- the load -------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    what: str
    path: Callable[[random.Random], str]
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    scenario: str
    what: str
    seconds: float                    # the window's start until its last request ended
    ended: int                        # requests that ended in that time
    latencies: list[float]            # seconds, of those requests
    statuses: Counter[str]            # of those requests
    single_ms: float                  # median latency with one client
    load_before: tuple[float, float, float]
    server_cpu: float
    client_cpu: float

    @property
    def requests(self) -> int:
        return self.ended

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return 1000 * ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def to_json(self, baseline: float) -> dict[str, Any]:
        return {"scenario": self.scenario, "request": self.what,
                "seconds_measured": round(self.seconds, 2), "requests": self.requests,
                "errors": self.errors,
                "statuses": dict(self.statuses), "requests_per_second": round(self.rate, 1),
                "p50_ms": round(self.percentile(50), 1),
                "p95_ms": round(self.percentile(95), 1),
                "p99_ms": round(self.percentile(99), 1),
                "one_client_median_ms": round(self.single_ms, 1),
                "max_ms": round(1000 * max(self.latencies, default=math.nan), 1),
                "ratio_to_baseline": round(self.rate / baseline, 4) if baseline else None,
                "load_average_before": list(self.load_before),
                "server_cpu_seconds": round(self.server_cpu, 1),
                "client_cpu_seconds": round(self.client_cpu, 1)}


async def _client(base: str, scenario: Scenario, rng: random.Random, start: float,
                  end: float, timeout: float, out: list[tuple[float, float, str]]) -> None:
    """One client: requests one after another on one keep-alive connection until ``end``;
    records (start, end, status) of each."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, cookies=scenario.cookies,
                                 headers=scenario.headers, limits=limits,
                                 timeout=timeout) as client:
        while (began := time.perf_counter()) < end:
            try:
                answer = await client.get(scenario.path(rng))
                await answer.aread()
                status = str(answer.status_code)
            except httpx.TimeoutException:
                status = "timeout"
            except httpx.HTTPError as error:
                status = type(error).__name__
            done = time.perf_counter()
            if done >= start:
                out.append((began, done, status))


def one_client(base: str, scenario: Scenario, timeout: float, seed: int) -> float:
    """The median latency (ms) of 5 requests one after another on an idle server (after one
    unmeasured request)."""
    rng = random.Random(seed)
    times = []
    with httpx.Client(base_url=base, cookies=scenario.cookies, headers=scenario.headers,
                      timeout=timeout) as client:
        for i in range(6):
            began = time.perf_counter()
            client.get(scenario.path(rng)).raise_for_status()
            if i:
                times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def run_scenario(base: str, scenario: Scenario, *, clients: int, warmup: float,
                 seconds: float, timeout: float, server_pid: int, seed: int) -> Result:
    """``clients`` clients start requests for ``warmup`` + ``seconds``; every request is
    waited for (up to ``timeout``). Measured: the requests that ended after the warm-up,
    over the time from the warm-up's end until the last one ended. With one worker the
    requests share the server, so a wave of slow requests ends together, possibly after
    the window: a fixed window alone could count none of them."""
    single = one_client(base, scenario, timeout, seed)
    load = os.getloadavg()
    out: list[tuple[float, float, str]] = []

    async def main() -> tuple[float, float, float, float]:
        begin = time.perf_counter()
        start, end = begin + warmup, begin + warmup + seconds
        cpu: list[float] = []

        async def mark() -> None:       # the CPU counters at the start of the window
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
            cpu.extend([tree_cpu_seconds(server_pid), time.process_time()])

        await asyncio.gather(mark(), *[
            _client(base, scenario, random.Random(seed * 1000 + i), start, end, timeout, out)
            for i in range(clients)])
        return start, end, cpu[0], cpu[1]

    start, end, server_cpu, client_cpu = asyncio.run(main())
    server_cpu = tree_cpu_seconds(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    kept = [(began, done, status) for began, done, status in out if done >= start]
    last = max((done for _, done, _ in kept), default=end)
    return Result(scenario.name, scenario.what, max(last, end) - start, len(kept),
                  [done - began for began, done, _ in kept],
                  Counter(status for _, _, status in kept), single, load, server_cpu,
                  client_cpu)


def scenarios(setup: Setup, manager: str, rep: str) -> list[Scenario]:
    ids, pages, rep_pages = setup.customer_ids, setup.pages, setup.rep_pages
    bearer = {"Authorization": f"Bearer {setup.tokens['manager']}"}
    return [
        Scenario("static", "GET /static/app.css", lambda r: "/static/app.css"),
        Scenario("list page", f"GET /customers?page=1..{pages}",
                 lambda r: f"/customers?page={r.randint(1, pages)}", {"tw_session": manager}),
        Scenario("profile page", f"GET /customers/<1 of {len(ids):,}>",
                 lambda r: f"/customers/{r.choice(ids)}", {"tw_session": manager}),
        Scenario("api list", f"GET /api/v1/customers?per_page=50&page=1..{pages}",
                 lambda r: f"/api/v1/customers?per_page=50&page={r.randint(1, pages)}",
                 headers=bearer),
        Scenario("api profile", "GET /api/v1/customers/<id>",
                 lambda r: f"/api/v1/customers/{r.choice(ids)}", headers=bearer),
        Scenario("list page, rep", f"GET /customers?page=1..{rep_pages} (rep)",
                 lambda r: f"/customers?page={r.randint(1, rep_pages)}", {"tw_session": rep}),
    ]


# -- profile (optional) -----------------------------------------------------------------------

def profile(root: Path, setup: Setup, top: int) -> dict[str, Any]:
    """Time, in this process and one after another, the library calls the two page handlers
    make (``pages.customers`` and ``pages.customer``; median of 5 each), then cProfile the
    two biggest, ``list_customers`` and ``Workspace.explain``."""
    from tierwise.data.interactions import customer_interactions
    from tierwise.record.history import overrides_for
    from tierwise.reports.customers import CustomerFilter, list_customers, visible

    rng = random.Random(SEED)
    steps: dict[str, float] = {}
    with Workspace(root) as ws:
        record = ws.run()
        snapshot = str(snapshot_path(ws.runs_dir, record.id))
        keys = record.policy.keys

        def listing() -> None:
            list_customers(ws.store(), snapshot, keys,
                           CustomerFilter(page=rng.randint(1, setup.pages)), scope=None,
                           facets=True)

        def explaining() -> None:
            ws.explain(rng.choice(setup.customer_ids), lang="zh")

        calls: dict[str, Callable[[], object]] = {
            "ws.run() (one app-db query)": ws.run,
            "ws.run().policy (parses the run's policy YAML)": lambda: ws.run().policy,
            "list_customers, facets=True (DuckDB)": listing,
            "  of which the 4 facet queries": lambda: list_customers(
                ws.store(), snapshot, keys, CustomerFilter(), scope=None, facets=True),
            "visible() (DuckDB)": lambda: visible(ws.store(), rng.choice(setup.customer_ids),
                                                  None),
            "ws.explain()": explaining,
            "ws.tasks() (every open task)": ws.tasks,
            "customer_interactions() (DuckDB)": lambda: customer_interactions(
                ws.store(), rng.choice(setup.customer_ids)),
            "overrides_for()": lambda: overrides_for(ws.appdb, rng.choice(setup.customer_ids)),
        }
        for name, call in calls.items():
            call()
            times = []
            for _ in range(5):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            steps[name] = 1000 * statistics.median(times)
        without = []
        for _ in range(5):
            started = time.perf_counter()
            list_customers(ws.store(), snapshot, keys, CustomerFilter(), scope=None)
            without.append(time.perf_counter() - started)
        steps["  of which the 4 facet queries"] -= 1000 * statistics.median(without)
        open_tasks = len(ws.tasks())
        print(f"\nwhere a page's time goes (in this process, one call at a time; median of 5; "
              f"{open_tasks:,} open tasks)")
        for name, ms in steps.items():
            print(f"  {name:<50} {ms:8.1f} ms")
        print("  the list page calls ws.run() and .policy twice (handler, Page.labels) and "
              "list_customers once;\n  the profile page: visible, explain (one .policy), "
              "labels (another), ws.tasks(), interactions, overrides")
        found: dict[str, Any] = {"steps_ms": {k.strip(): round(v, 1) for k, v in steps.items()},
                                 "open_tasks": open_tasks}
        for name, call in (("list_customers", listing), ("Workspace.explain", explaining)):
            profiler = cProfile.Profile()
            for _ in range(5):
                profiler.runcall(call)
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
            print(f"\n== cProfile, {name}, 5 calls")
            print(text.getvalue().strip())
    return found


# -- main -------------------------------------------------------------------------------------

def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("tierwise", "fastapi", "starlette", "uvicorn", "httpx", "duckdb",
                 "sqlalchemy", "jinja2"):
        with suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def commit() -> str | None:
    """HEAD, with "+dirty" when src/ has changes that are not committed."""
    source = source_version()
    if not source["commit"]:
        return None
    return source["commit"] + ("+dirty" if source["src_changes_uncommitted"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data" / "web")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured, per scenario")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request")
    parser.add_argument("--only", nargs="*", help="scenario names (the baseline always runs)")
    parser.add_argument("--profile", action="store_true",
                        help="also time (and cProfile) the library calls behind the two pages")
    parser.add_argument("--results", type=Path, default=HERE / "web-results.json")
    parser.add_argument("--workers", type=int, default=1,
                        help="server worker processes (as tierwise serve --workers N)")
    parser.add_argument("--workspace", type=Path,
                        help="an existing graded workspace to serve instead of building one "
                             "(e.g. one made from benchmarks/generate.py's Parquet files)")
    args = parser.parse_args()

    root = args.workspace.resolve() if args.workspace else build(args.data, args.customers)
    setup = prepare(root)
    cores = os.cpu_count() or 0
    print(f"{len(setup.customer_ids):,} customers in the latest run; {setup.pages:,} list "
          f"pages; rep {setup.rep_name} has {setup.rep_pages:,} pages")
    served = f"uvicorn, {args.workers} worker{'s' if args.workers > 1 else ''}, 127.0.0.1"
    print(f"machine: {cores} CPUs, {platform.platform()}; server: {served}; "
          f"load: {args.clients} clients in this process (it shares the CPUs)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results: list[Result] = []
    with server(root, port, args.workers) as process:
        manager, rep = sign_in(base, "bench-manager"), sign_in(base, "bench-rep")
        warmed = warm(base, manager, ["/customers", f"/customers/{setup.customer_ids[0]}"],
                      args.workers)
        print(f"every worker read the run's list in {warmed:.1f} s", flush=True)
        board = dashboard_times(base, manager)
        weight = page_weight(base, manager)
        print(f"dashboard, one client: first {board['first_ms']:,.0f} ms, then median "
              f"{board['median_ms']:,.0f} ms; bytes transferred with its assets: "
              f"{weight['gzip']['bytes']:,} gzip, {weight['identity']['bytes']:,} identity "
              f"({weight['identity']['bytes'] / weight['gzip']['bytes']:.2f}×)", flush=True)
        for index, scenario in enumerate(scenarios(setup, manager, rep)):
            if args.only and index and scenario.name not in args.only:
                continue
            load = os.getloadavg()
            print(f"{scenario.name:<16} {scenario.what}  (load average before: "
                  f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", flush=True)
            results.append(run_scenario(base, scenario, clients=args.clients,
                                        warmup=args.warmup, seconds=args.seconds,
                                        timeout=args.timeout, server_pid=process.pid,
                                        seed=SEED + index))
    baseline = results[0].rate
    print(f"\ntierwise web: {len(setup.customer_ids):,} customers, {args.clients} clients, "
          f"{args.seconds:g} s of new requests per scenario after {args.warmup:g} s warm-up "
          f"({cores} CPUs)\n")
    header = (f"{'scenario':<16} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
              f"{'p95 ms':>8} {'p99 ms':>8} {'× static':>8} {'1 client':>8} {'srv CPU s':>9} "
              f"{'cli CPU s':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.scenario:<16} {r.requests:>8,} {r.errors:>6,} {r.rate:>8.1f} "
              f"{r.percentile(50):>8.1f} {r.percentile(95):>8.1f} {r.percentile(99):>8.1f} "
              f"{r.rate / baseline:>8.3f} {r.single_ms:>8.1f} {r.server_cpu:>9.1f} "
              f"{r.client_cpu:>9.1f}")
    print("requests, errors, p50/p95/p99: the requests that ended after the warm-up;\n"
          "req/s: over the time from the warm-up's end until the last ended;\n"
          "1 client: median ms of 5 requests in a row on an idle server;\n"
          "CPU s: server and load generator, from the warm-up's end until the last ended")
    for r in results:
        if r.errors:
            print(f"errors in {r.scenario}: " + ", ".join(
                f"{status} ×{n}" for status, n in r.statuses.most_common() if status != "200"))
    profiled = profile(root, setup, 25) if args.profile else None
    report = {
        "machine": {"cpus": cores, "platform": platform.platform(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE")
                                        * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "versions": versions(), "commit": commit(),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {"customers": len(setup.customer_ids), "clients": args.clients,
                     "seconds": args.seconds, "warmup": args.warmup, "timeout": args.timeout,
                     "server": served, "workspace": str(root),
                     "load generator": "this process: asyncio + httpx, one keep-alive "
                                       "connection per client",
                     "rep": setup.rep_name, "list pages": setup.pages,
                     "rep pages": setup.rep_pages},
        "scenarios": [r.to_json(baseline) for r in results],
        "dashboard": {**board, "page_weight": weight},
        "warm_seconds": round(warmed, 1),
    }
    if profiled:
        report["profile"] = profiled
    write_results(args.results, report)
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
