"""One process at a time may write the store (DuckDB's file lock): a command that meets a
held store waits a bounded time, goes on when the other finishes, and otherwise says which
process holds it — never DuckDB's lock traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import DATA
from tierwise.cli import main
from tierwise.workspace import Workspace

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold(store: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_held_store_is_named_after_a_bounded_wait(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.close()
    monkeypatch.setenv("TIERWISE_LOCK_WAIT", "1")
    holder = hold(ws.root / "data" / "store.duckdb", 30)
    try:
        started = time.monotonic()
        result = CliRunner().invoke(main, ["import", "orders", str(DATA / "orders.csv"),
                                           "-w", str(ws.root)])
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"is in use by process {holder.pid}" in result.output
    assert "wait for it to finish (waited 1 s)" in result.output and waited < 20


def test_a_store_released_within_the_wait_is_used(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.close()
    monkeypatch.setenv("TIERWISE_LOCK_WAIT", "30")
    holder = hold(ws.root / "data" / "store.duckdb", 1.5)
    try:
        result = CliRunner().invoke(main, ["import", "orders", str(DATA / "orders.csv"),
                                           "-w", str(ws.root)])
    finally:
        holder.wait()
    assert result.exit_code == 0, result.output
