"""`tierwise serve --workers 2`, a real server of two worker processes, on SQLite and on
PostgreSQL: a run started through one request is seen — running, then done with its run —
by every worker; every worker reads the store at once; a write through one worker is read
by the other; and leases give a lease to one holder at a time.

The schedule: with a slot due, the worker holding the scheduler lease runs it, once.

Data: tests/data graded as of 2025-06-30 (the fixture's workspace), users as in test_web.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tierwise.web.app import WORKER_HEADER_ENV
from tierwise.work import jobs, users
from tierwise.work import schedule as scheduling
from tierwise.workspace import Workspace

PASSWORD = "correct horse battery"
WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_app(ws: Workspace, tmp_path: Path,
               env: dict[str, str] | None = None) -> Iterator[str]:
    """`tierwise serve --workers 2` over the workspace (its store closed here first): its
    address; stopped on the way out."""
    root = ws.root
    ws.close()                                   # the server's workers open the store
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tierwise", "-w", str(root), "serve", "--port", str(port),
         "--workers", str(WORKERS)], env={**os.environ, WORKER_HEADER_ENV: "1", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, process, tmp_path / "serve.log")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def served(ws: Workspace, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`tierwise serve --workers 2` over the workspace: its address and a manager's token."""
    ws.grade(as_of=dt.date(2025, 6, 30))
    users.add_user(ws.appdb, "经理", "manager", PASSWORD)
    token = users.create_token(ws.appdb, users.get_user(ws.appdb, "经理"), "test")
    with served_app(ws, tmp_path) as base:
        yield base, {"Authorization": f"Bearer {token}"}


def _wait_for(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180            # three processes start on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            raise AssertionError(f"the server stopped: {output[-2000:]}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer within 180 s: "
                         + log.read_text(errors="replace")[-2000:])


def answers(base: str, path: str, headers: dict[str, str],
            until: Any, *, seconds: float = 90) -> dict[str, Any]:
    """GET ``path`` on new connections (so the kernel hands them to either worker) until
    every worker has given an answer for which ``until(json)`` holds; each worker's last
    answer by its process id."""
    seen: dict[str, Any] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = httpx.get(base + path, headers={**headers, "Connection": "close"},
                             timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        if until(body):
            seen[response.headers["X-Tierwise-Worker"]] = body
        if len(seen) == WORKERS:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not every worker answered so: {seen}")


def test_a_run_started_in_one_worker_is_seen_done_by_every_worker(
        served: tuple[str, dict[str, str]]) -> None:
    base, manager = served
    started = httpx.post(f"{base}/api/v1/runs", json={"as_of": "2025-07-31"}, headers=manager,
                         timeout=30)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    done = answers(base, f"/api/v1/jobs/{job_id}", manager,
                   lambda state: state["status"] != "running")
    states = list(done.values())
    assert all(s["status"] == "done" and s["error"] is None for s in states), states
    assert len({s["run_id"] for s in states}) == 1 and states[0]["run_id"] is not None
    runs = answers(base, "/api/v1/runs", manager, lambda found: len(found) == 2)
    for found in runs.values():
        assert found[0]["id"] == states[0]["run_id"]
        assert found[0]["as_of"] == "2025-07-31"


def test_every_worker_reads_the_store_and_sees_another_worker_s_write(
        served: tuple[str, dict[str, str]]) -> None:
    base, manager = served
    listed = answers(base, "/api/v1/customers", manager, lambda page: page["total"] > 0)
    assert len({page["total"] for page in listed.values()}) == 1
    logged = httpx.post(f"{base}/api/v1/customers/C1/interactions", headers=manager,
                        json={"type": "visit", "date": "2025-07-20", "note": "季度回访"},
                        timeout=60)
    assert logged.status_code == 201, logged.text
    profiles = answers(base, "/api/v1/customers/C1", manager, lambda _profile: True)
    for profile in profiles.values():
        assert any(i.get("note") == "季度回访" for i in profile["interactions"]), profile


def test_an_unknown_or_malformed_job_is_a_404_in_every_worker(
        served: tuple[str, dict[str, str]]) -> None:
    base, manager = served
    for job_id in ("0123456789ab", "not-a-job", "x" * 300, "%00"):
        response = httpx.get(f"{base}/api/v1/jobs/{job_id}", headers=manager, timeout=30)
        assert response.status_code == 404, (job_id, response.text)
        assert "error" in response.json()


def test_the_schedule_runs_in_one_worker_only_and_each_slot_once(
        ws: Workspace, tmp_path: Path) -> None:
    ws._set_config("schedule", {"every": "month", "day": 1})
    with served_app(ws, tmp_path, {"TIERWISE_SCHEDULE_CHECK_SECONDS": "0.5"}):
        deadline = time.monotonic() + 180
        rows: list[Any] = []
        while time.monotonic() < deadline:
            rows = scheduling.history(ws.appdb)
            if rows and rows[0]["status"] != "running":
                break
            time.sleep(0.5)
        time.sleep(3)                           # several more checks by both workers
        rows = scheduling.history(ws.appdb)
        holder = jobs.holder_of(ws.appdb, "scheduler")
    assert len(rows) == 1 and rows[0]["status"] == "done", rows
    assert rows[0]["attempts"] == 1 and rows[0]["claimed_by"] == holder
    as_of = rows[0]["as_of"]
    assert [r.as_of for r in ws.runs()].count(as_of) == 1


def test_a_lease_has_one_holder_until_released_or_its_process_is_gone(
        ws: Workspace) -> None:
    ttl = dt.timedelta(minutes=3)
    here = socket.gethostname()
    live = jobs.this_process()
    assert jobs.acquire(ws.appdb, "scheduler", ttl=ttl)
    assert jobs.acquire(ws.appdb, "scheduler", ttl=ttl)          # renewed by its holder
    assert not jobs.acquire(ws.appdb, "scheduler", ttl=ttl, holder=f"{live}:other")
    assert jobs.holder_of(ws.appdb, "scheduler") == live
    jobs.release(ws.appdb, "scheduler")
    assert jobs.acquire(ws.appdb, "scheduler", ttl=ttl, holder=f"{live}:other")
    # A holder whose process is gone from this host is replaced at once.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = f"{here}:{gone.pid}:0"
    assert jobs.acquire(ws.appdb, "grading", ttl=ttl, holder=dead)
    assert jobs.held(ws.appdb, "grading", ttl=ttl) is False
    assert jobs.acquire(ws.appdb, "grading", ttl=ttl)
    assert jobs.held(ws.appdb, "grading", ttl=ttl) is True


def test_a_job_whose_process_is_gone_reads_as_failed(ws: Workspace) -> None:
    job = jobs.start(ws.appdb, "经理", None)
    assert jobs.get(ws.appdb, job.id) is not None
    assert jobs.get(ws.appdb, job.id).status == "running"    # type: ignore[union-attr]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with ws.appdb.begin() as connection:
        from tierwise.appdb import schema

        connection.execute(schema.jobs.update().where(schema.jobs.c.id == job.id).values(
            claimed_by=f"{socket.gethostname()}:{gone.pid}:0"))
    found = jobs.get(ws.appdb, job.id)
    assert found is not None and found.status == "failed" and found.error == jobs.ORPHANED
    assert jobs.recent(ws.appdb)[0].id == job.id
