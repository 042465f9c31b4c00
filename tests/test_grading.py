"""Grading runs on the app database (SQLite and PostgreSQL): tiers, summaries, immutability,
atomic failure, hysteresis, overrides, diffs and history. Data: tests/data, policy.yaml."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import DATA
from tierwise.errors import TierwiseError
from tierwise.record import runs
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)


def add_order(ws: Workspace, folder: Path, line: str) -> None:
    """Import one more order given as 'order_id,customer_id,date,amount'."""
    extra = folder / "extra-order.csv"
    extra.write_text(f"订单号,客户编号,下单日期,订单金额\n{line}\n", encoding="utf-8")
    ws.import_files("orders", [extra])


def tiers_of(ws: Workspace, run_id: int | None = None) -> dict[str, str]:
    table = ws.assignments(run_id)
    return dict(zip(table["customer_id"].to_pylist(), table["tier"].to_pylist(), strict=True))


def test_first_matching_rule_wins_and_the_last_tier_takes_the_rest(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)
    assert tiers_of(ws) == {"C1": "vip", "C2": "important", "C3": "potential",
                            "C4": "potential", "C5": "potential"}


def test_run_summary_per_tier_in_policy_order(ws: Workspace) -> None:
    summary = ws.grade(as_of=AS_OF).to_json()
    assert summary["as_of"] == "2025-06-30"
    assert summary["customers"] == 5
    assert summary["policy"]["name"] == "客户等级"
    assert [t["tier"] for t in summary["tiers"]] == ["vip", "important", "ordinary", "potential"]
    vip, important, ordinary, potential = summary["tiers"]
    assert vip == {"tier": "vip", "label": "VIP客户", "customers": 1, "customer_share": 0.2,
                   "revenue": pytest.approx(1_100_000),
                   "revenue_share": pytest.approx(1_100_000 / 1_720_000),
                   "profit": pytest.approx(275_000),
                   "profit_share": pytest.approx(275_000 / 395_000)}
    assert important["profit"] == pytest.approx(120_000)
    assert ordinary["customers"] == 0 and ordinary["revenue"] == 0
    assert potential["customers"] == 3 and potential["revenue"] == pytest.approx(20_000)
    assert summary["changes"] == {"upgraded": 0, "downgraded": 0, "new": 5, "unchanged": 0}


def test_same_inputs_give_the_same_assignments(ws: Workspace) -> None:
    first = ws.grade(as_of=AS_OF)
    second = ws.grade(as_of=AS_OF)
    assert tiers_of(ws, first.run_id) == tiers_of(ws, second.run_id)
    assert ws.run(first.run_id).data_fingerprint == ws.run(second.run_id).data_fingerprint
    assert second.changes == first.changes        # both continue from the same (no) base
    record = ws.run(second.run_id)
    assert record.previous_run_id is None
    assert record.policy_hash == first.policy_hash and "100万" in record.policy_text


def test_a_run_continues_the_latest_earlier_run_of_the_same_policy(ws: Workspace) -> None:
    base = ws.grade(as_of=dt.date(2025, 5, 31))
    ws.grade(as_of=AS_OF, policy="abc")                      # trying another policy
    run = ws.grade(as_of=AS_OF)
    assert ws.run(run.run_id).previous_run_id == base.run_id
    assert run.changes["new"] == 1                           # C5 ordered first in June


def test_rerunning_a_date_does_not_count_twice_towards_hysteresis(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)                                    # C2 important
    for _ in range(3):                                       # the same month, three times
        rerun = ws.grade(as_of=dt.date(2026, 1, 31))
        assert ws.explain("C2", rerun.run_id).tier == "important"   # held: 1 of 2 runs


def test_new_data_changes_the_fingerprint(ws: Workspace, tmp_path: Path) -> None:
    first = ws.grade(as_of=AS_OF)
    add_order(ws, tmp_path, "O99,C3,2025-06-01,150000")
    second = ws.grade(as_of=AS_OF)
    assert ws.run(first.run_id).data_fingerprint != ws.run(second.run_id).data_fingerprint
    assert tiers_of(ws)["C3"] == "ordinary"


def test_orders_after_the_as_of_date_do_not_change_the_fingerprint(
        ws: Workspace, tmp_path: Path) -> None:
    first = ws.grade(as_of=AS_OF)
    add_order(ws, tmp_path, "O98,C3,2025-12-01,150000")
    second = ws.grade(as_of=AS_OF)
    assert ws.run(first.run_id).data_fingerprint == ws.run(second.run_id).data_fingerprint


def test_a_failed_run_leaves_nothing_behind(ws: Workspace,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ws.grade(as_of=dt.date(2025, 3, 31))      # the failing run continues it: it has moves

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(runs, "_insert_changes", broken)
    with pytest.raises(RuntimeError):
        ws.grade(as_of=AS_OF)
    assert [r.id for r in ws.runs()] == [1]
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == ["run-000001.parquet"]


def test_grading_without_orders_is_a_clear_error(tmp_path: Path, database_url: str) -> None:
    with Workspace.init(tmp_path / "empty") as ws, pytest.raises(TierwiseError,
                                                                 match="no orders"):
        ws.grade()


def test_default_as_of_is_the_latest_order(ws: Workspace) -> None:
    assert ws.grade().as_of == dt.date(2025, 7, 1)


def test_hysteresis_holds_a_downgrade_until_n_consecutive_runs(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)                                   # C2 important (600,000)
    held = ws.grade(as_of=dt.date(2026, 1, 31))             # C2 computes ordinary (300,000)
    c2 = ws.explain("C2", held.run_id, lang="en")
    assert (c2.tier, c2.computed_tier, c2.basis) == ("important", "ordinary", "hysteresis")
    assert any("1 of 2 runs" in reason for reason in c2.reasons())
    assert held.changes["downgraded"] == 0
    dropped = ws.grade(as_of=dt.date(2026, 2, 28))          # second lower run: takes effect
    c2 = ws.explain("C2", dropped.run_id)
    assert (c2.tier, c2.computed_tier, c2.basis) == ("potential", "potential", "policy")
    assert dropped.changes["downgraded"] == 1
    assert [h.tier for h in c2.history] == ["important", "important", "potential"]


def test_upgrades_are_immediate(ws: Workspace, tmp_path: Path) -> None:
    ws.grade(as_of=AS_OF)
    add_order(ws, tmp_path, "O77,C5,2025-07-15,600000")
    run = ws.grade(as_of=dt.date(2025, 7, 31))
    assert tiers_of(ws, run.run_id)["C5"] == "important"
    assert run.changes["upgraded"] == 1


def test_override_wins_from_the_next_run_until_removed(ws: Workspace) -> None:
    ws.grade(as_of=AS_OF)
    ws.override("C3", "vip", reason="战略合作伙伴")
    assert tiers_of(ws)["C3"] == "potential"                 # runs are immutable
    run = ws.grade(as_of=AS_OF)
    explained = ws.explain("C3", run.run_id)
    assert (explained.tier, explained.computed_tier, explained.basis) == (
        "vip", "potential", "override")
    assert explained.override is not None and explained.override.created_by == "tester"
    assert any("战略合作伙伴" in reason for reason in explained.reasons())
    ws.remove_override("C3")
    assert tiers_of(ws, ws.grade(as_of=AS_OF).run_id)["C3"] == "potential"


def test_override_expires_after_its_until_date(ws: Workspace) -> None:
    ws.override("C3", "important", reason="试用期", until=dt.date(2025, 12, 31))
    assert tiers_of(ws, ws.grade(as_of=AS_OF).run_id)["C3"] == "important"
    assert tiers_of(ws, ws.grade(as_of=dt.date(2026, 1, 31)).run_id)["C3"] == "potential"


def test_override_needs_a_known_tier_and_a_reason(ws: Workspace) -> None:
    with pytest.raises(TierwiseError, match="unknown tier 'gold'"):
        ws.override("C3", "gold", reason="x")
    with pytest.raises(TierwiseError, match="reason"):
        ws.override("C3", "vip", reason="  ")


def test_diff_lists_moves_and_the_migration_matrix(ws: Workspace, tmp_path: Path) -> None:
    first = ws.grade(as_of=AS_OF)
    add_order(ws, tmp_path, "O77,C5,2025-06-15,600000")
    second = ws.grade(as_of=AS_OF)
    diff = ws.diff()
    assert (diff.run_a.id, diff.run_b.id) == (first.run_id, second.run_id)
    assert [(m.customer_id, m.from_tier, m.to_tier) for m in diff.moves] == [
        ("C5", "potential", "important")]
    assert diff.matrix == {("vip", "vip"): 1, ("important", "important"): 1,
                           ("potential", "potential"): 2, ("potential", "important"): 1}
    assert diff.unchanged == 4
    assert ws.diff(second.run_id, first.run_id).moves[0].to_tier == "potential"


def test_snapshot_keeps_the_metrics_the_run_used_scores_and_tiers(ws: Workspace) -> None:
    run = ws.grade(as_of=AS_OF)
    snapshot = pq.read_table(runs.snapshot_path(ws.runs_dir, run.run_id))
    for column in ("annual_spend", "tenure_years", "profit", "stage", "order_gap_days",
                   "tier", "computed_tier", "basis"):
        assert column in snapshot.column_names
    # No rule, score or task reads the RFM quintiles: the run does not rank for them.
    assert "r_score" not in snapshot.column_names


def test_grade_straight_from_files_equals_grading_imported_data(ws: Workspace) -> None:
    imported = ws.grade(as_of=AS_OF)
    direct = ws.grade(as_of=AS_OF, files={
        "orders": [str(DATA / "orders.csv")], "customers": [str(DATA / "customers.csv")],
        "interactions": [str(DATA / "interactions.csv")]})
    assert tiers_of(ws, direct.run_id) == tiers_of(ws, imported.run_id)
    assert direct.to_json()["tiers"] == imported.to_json()["tiers"]
    assert ws.run(direct.run_id).source.startswith("files:")


def test_override_of_an_unknown_customer_is_refused(ws: Workspace) -> None:
    with pytest.raises(TierwiseError, match="unknown customer 'NOPE'"):
        ws.override("NOPE", "vip", reason="typo")


def test_an_empty_workspace_run_summarises_to_zero(tmp_path: Path, database_url: str) -> None:
    with Workspace.init(tmp_path / "empty") as ws:
        summary = ws.grade(as_of=AS_OF)
    assert summary.customers == 0
    assert [t.customers for t in summary.tiers] == [0, 0, 0, 0]


def test_a_run_on_a_cluster_filesystem_is_named_not_read_here(ws: Workspace) -> None:
    """A Spark run whose assignments went to s3a:// (engine.assignments) is read there: the
    workbench, exports and owners say where, instead of DuckDB fetching an extension."""
    import sqlalchemy as sa

    from tierwise.appdb import schema

    run = ws.grade(as_of=dt.date(2025, 6, 30))
    location = "s3a://lake/tierwise/assignments/run_id=1/*.parquet"
    with ws.appdb.begin() as connection:
        connection.execute(sa.update(schema.runs).where(schema.runs.c.id == run.run_id)
                           .values(engine="spark", snapshot=location))
    with pytest.raises(TierwiseError, match="s3a://lake/tierwise/assignments"):
        ws.assignments(run.run_id)


def test_the_store_never_downloads_a_duckdb_extension(tmp_path: Path) -> None:
    from tierwise.data import store

    con = store.connect(tmp_path / "store.duckdb")
    try:
        assert con.execute("SELECT current_setting('autoinstall_known_extensions')"
                           ).fetchone() == (False,)
    finally:
        con.close()


def test_a_run_grades_and_fingerprints_one_moment_of_the_store(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import that lands while a run is between its tiers and its fingerprint (a web run
    and an upload at once) is not half-seen: the run's fingerprint is that of the data it
    graded, so equal fingerprints still mean equal tiers."""
    from tierwise.grading import run as grading_run

    real = grading_run.data_fingerprint
    big = tmp_path / "big.csv"
    big.write_text("订单号,客户编号,下单日期,订单金额\nBIG1,C4,2025-06-20,50000000\n",
                   encoding="utf-8")

    def import_meanwhile(backend: object, tables: object, as_of: dt.date,
                         **options: object) -> str:
        other = ws.sibling()                      # another cursor, as a web request has
        try:
            other.import_files("orders", [big])
        finally:
            other.close()
        return real(backend, tables, as_of, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(grading_run, "data_fingerprint", import_meanwhile)
    during = ws.grade(as_of=AS_OF)
    monkeypatch.undo()
    after = ws.grade(as_of=AS_OF)
    tiers = {r.id: {a["customer_id"]: a["tier"] for a in ws.assignments(r.id).to_pylist()}
             for r in ws.runs()}
    assert tiers[during.run_id]["C4"] != tiers[after.run_id]["C4"]     # the import mattered
    assert ws.run(during.run_id).data_fingerprint != ws.run(after.run_id).data_fingerprint
