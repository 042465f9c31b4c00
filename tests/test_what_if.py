"""What-if (`tierwise grade --dry-run`): grade with another policy without recording a run,
and list who would move against the latest recorded run, with counts per from→to pair.

Data: tests/data (C1 VIP, C2 important, C3–C5 potential as of 2025-06-30)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.conftest import DATA
from tests.test_cli import run
from tierwise.record.history import Move
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)


def stricter_policy(folder: Path) -> Path:
    """VIP needs 200万: C1 (110万) would fall to important."""
    text = (DATA / "policy.yaml").read_text(encoding="utf-8").replace(
        "annual_spend >= 100万 and", "annual_spend >= 200万 and")
    path = folder / "stricter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dry_run_lists_who_would_move_and_records_nothing(ws: Workspace,
                                                             tmp_path: Path) -> None:
    recorded = ws.grade(as_of=AS_OF)
    snapshots = sorted(ws.runs_dir.iterdir())
    result = ws.what_if(policy=str(stricter_policy(tmp_path)))
    assert [r.id for r in ws.runs()] == [recorded.run_id]
    assert sorted(ws.runs_dir.iterdir()) == snapshots
    assert result.as_of == AS_OF                       # the latest run's date by default
    assert result.against is not None and result.against.id == recorded.run_id
    assert result.moves == [Move("C1", "vip", "important")]
    assert result.pairs[("vip", "important")] == 1
    assert result.moved == 1 and result.unchanged == 4
    assert {t.tier: t.customers for t in result.tiers} == {
        "vip": 0, "important": 2, "ordinary": 0, "potential": 3}


def test_the_same_policy_moves_no_one(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)
    result = ws.what_if()
    assert result.moves == [] and result.moved == 0 and result.unchanged == 5


def test_without_a_recorded_run_every_customer_is_new(ws: Workspace) -> None:
    result = ws.what_if(as_of=AS_OF)
    assert result.against is None and result.moves == []
    assert result.pairs == {(None, "vip"): 1, (None, "important"): 1, (None, "potential"): 3}


def test_cli_dry_run_prints_pairs_and_movers(tmp_path: Path) -> None:
    folder = str(tmp_path / "cli")
    run("init", folder, "--policy", str(DATA / "policy.yaml"))
    for kind in ("customers", "orders"):
        run("import", kind, str(DATA / f"{kind}.csv"), "-w", folder)
    run("grade", "--as-of", "2025-06-30", "-w", folder)
    policy = str(stricter_policy(tmp_path))
    table = run("grade", "--dry-run", "--policy", policy, "-w", folder).output
    assert "C1: VIP客户 → 重要客户" in table
    data = json.loads(run("grade", "--dry-run", "--policy", policy, "--format", "json",
                          "-w", folder).output)
    assert data["dry_run"] is True and data["moved"] == 1
    assert data["pairs"] == [{"from": "vip", "to": "important", "customers": 1}]
    assert data["moves"] == [{"customer_id": "C1", "from_tier": "vip", "to_tier": "important"}]
    runs = json.loads(run("runs", "--format", "json", "-w", folder).output)
    assert len(runs) == 1
    refused = run("grade", "--dry-run", "--orders", str(DATA / "orders.csv"), "-w", folder,
                  ok=False)
    assert refused.exit_code != 0 and "--dry-run" in refused.output
