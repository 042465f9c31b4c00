"""What a killed run or import leaves behind is cleaned up by the next one: staging
snapshots in runs/ (they belong to no run) and import scratch folders in the temp folder
(only stale ones: another import may be using a fresh one)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from tests.conftest import DATA
from tierwise.data.ingest.load import SCRATCH_PREFIX
from tierwise.workspace import Workspace


def test_a_run_removes_staging_snapshots_a_killed_run_left(ws: Workspace) -> None:
    ws.runs_dir.mkdir(exist_ok=True)
    left = ws.runs_dir / ".staging-0123456789abcdef.parquet"
    left.write_bytes(b"PAR1 half written")
    summary = ws.grade(as_of=dt.date(2025, 6, 30))
    assert not left.exists()
    assert sorted(p.name for p in ws.runs_dir.iterdir() if p.is_file()) == [
        f"run-{summary.run_id:06d}.parquet"]


def test_an_import_removes_stale_scratch_folders_and_keeps_fresh_ones(ws: Workspace) -> None:
    stale = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    (stale / "orders-0.parquet").write_bytes(b"x" * 100)
    day_ago = time.time() - 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    fresh = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    try:
        ws.import_files("orders", [DATA / "orders.csv"])
        assert not stale.exists() and fresh.exists()
    finally:
        for folder in (stale, fresh):
            if folder.exists():
                for child in folder.iterdir():
                    child.unlink()
                folder.rmdir()
