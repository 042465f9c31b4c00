"""Owner assignment: top-tier accounts to the most experienced reps, within each rep's
capacity per tier, current owners kept unless over capacity or gone, the account's region
preferred; a proposal shown as a diff, applied with its history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.test_cli import run
from tierwise.errors import InputError, TierwiseError
from tierwise.policy.loading import load_policy_file
from tierwise.work.owners import Account, Rep, owner_history, propose, read_reps
from tierwise.workspace import Workspace

TIERS = ["vip", "important", "ordinary"]
SENIOR = Rep("老王", level=5, region="华东", capacity={"vip": 2})
MIDDLE = Rep("小李", level=3, region="华南", capacity={"vip": 2, "important": 1})
NEWCOMER = Rep("新人甲", level=0, region="华东", capacity={"vip": 0, "important": 0})


def account(customer_id: str, tier: str, value: float, owner: str | None = None,
            region: str | None = None) -> Account:
    return Account(customer_id, None, tier, value, region, owner)


def moves(accounts: list[Account], reps: list[Rep]) -> dict[str, tuple[str | None, str]]:
    proposal = propose(accounts, reps, TIERS, run_id=1)
    return {m.customer_id: (m.to_owner, m.reason) for m in proposal.moves}


def test_current_owners_are_kept_within_capacity() -> None:
    book = [account("V1", "vip", 900, "老王"), account("O1", "ordinary", 10, "新人甲")]
    proposal = propose(book, [SENIOR, NEWCOMER], TIERS, run_id=1)
    assert proposal.moves == [] and proposal.kept == 2


def test_top_tier_goes_to_the_most_experienced_rep_with_room() -> None:
    book = [account("V1", "vip", 900), account("V2", "vip", 800), account("V3", "vip", 700)]
    assert moves(book, [SENIOR, MIDDLE, NEWCOMER]) == {
        "V1": ("老王", "no_owner"), "V2": ("老王", "no_owner"),   # the senior rep first …
        "V3": ("小李", "no_owner")}                               # … then the next; never 新人甲


def test_over_capacity_the_least_valuable_accounts_move() -> None:
    book = [account(f"V{i}", "vip", 1000 - i, "老王") for i in range(1, 4)]
    assert moves(book, [SENIOR, MIDDLE]) == {"V3": ("小李", "over_capacity")}


def test_accounts_of_a_rep_who_left_or_is_unknown_move() -> None:
    gone = Rep("离职乙", level=9, active=False)
    book = [account("I1", "important", 50, "离职乙"), account("I2", "important", 40, "路人")]
    assert moves(book, [gone, MIDDLE, SENIOR]) == {
        "I1": ("小李", "owner_left"),     # lower tiers: the least loaded rep first
        "I2": ("老王", "not_a_rep")}      # 小李's one important slot is taken


def test_the_accounts_region_is_preferred_then_anyone_with_room() -> None:
    book = [account("V1", "vip", 900, region="华南"), account("V2", "vip", 800, region="华南"),
            account("V3", "vip", 700, region="华南")]
    assert moves(book, [SENIOR, MIDDLE]) == {
        "V1": ("小李", "no_owner"), "V2": ("小李", "no_owner"), "V3": ("老王", "no_owner")}


def test_lower_tiers_are_balanced_and_newcomers_start_there() -> None:
    book = [account(f"O{i}", "ordinary", 10 - i) for i in range(4)]
    placed = moves(book, [SENIOR, NEWCOMER])
    assert sorted(to for to, _ in placed.values()) == ["新人甲", "新人甲", "老王", "老王"]
    assert placed["O0"] == ("新人甲", "no_owner")   # equal loads: the lower level first


def test_an_account_nobody_has_room_for_is_listed_unplaced() -> None:
    book = [account(f"V{i}", "vip", 10 - i) for i in range(3)]
    proposal = propose(book, [SENIOR, NEWCOMER], TIERS, run_id=1)
    assert [m.customer_id for m in proposal.unplaced] == ["V2"]
    assert {(ld.rep, ld.tier): (ld.before, ld.after, ld.capacity) for ld in proposal.loads}[
        "老王", "vip"] == (0, 2, 2)


def test_no_active_rep_is_an_error() -> None:
    with pytest.raises(TierwiseError, match="reps import"):
        propose([account("V1", "vip", 1)], [Rep("x", active=False)], TIERS, run_id=1)


# -- the reps file -------------------------------------------------------------------------------

POLICY_PATH = Path(__file__).parent / "data" / "policy.yaml"


def test_a_gbk_reps_file_with_chinese_headers_and_capacity_by_tier_label(
        tmp_path: Path) -> None:
    path = tmp_path / "销售名单.csv"
    path.write_text("姓名,级别,区域,在职,VIP客户容量,重要客户,电话\n"
                    "张伟,资深,华东,是,20,,138\n王芳,2,华南,是,0,30,139\n"
                    "赵六,1,,否,,,\n", encoding="gbk")
    found = read_reps(path, load_policy_file(POLICY_PATH))
    assert found.reps == [
        Rep("张伟", 4, "华东", True, {"vip": 20, "important": None}),
        Rep("王芳", 2, "华南", True, {"vip": 0, "important": 30}),
        Rep("赵六", 1, None, False, {"vip": None, "important": None})]
    assert found.ignored_columns == ["电话"]


@pytest.mark.parametrize(("content", "message"), [
    ("姓名,级别\n张伟,很高\n", "row 2, column '级别'"),
    ("姓名,VIP客户\n张伟,-3\n", "row 2, column 'VIP客户'"),
    ("姓名,在职\n张伟,也许\n", "column '在职'"),
    ("姓名\n张伟\n张伟\n", "listed twice"),
    ("级别\n3\n", "no column of rep names"),
])
def test_bad_reps_files_name_the_row_and_column(tmp_path: Path, content: str,
                                                message: str) -> None:
    path = tmp_path / "reps.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as caught:
        read_reps(path, load_policy_file(POLICY_PATH))
    assert "reps.csv" in str(caught.value)


# -- in the workspace ------------------------------------------------------------------------

REPS = "姓名,级别,区域,VIP客户,重要客户\n张伟,5,华东,5,5\n王芳,3,华南,0,\n新人,0,华北,0,0\n"


def test_assign_proposes_applies_and_records(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "reps.csv").write_text(REPS, encoding="utf-8")
    assert ws.import_reps(tmp_path / "reps.csv").added == 3
    ws.grade(as_of=dt.date(2025, 6, 30))
    owners_before = {r["customer_id"]: r["owner"] for r in ws.assignments().to_pylist()}
    # C3 and C4 are owned by 李娜, who is not in the reps table.
    assert owners_before["C3"] == owners_before["C4"] == "李娜"
    proposal = ws.assign()
    planned = {m.customer_id: (m.from_owner, m.to_owner, m.reason) for m in proposal.moves}
    assert planned["C3"][2] == planned["C4"][2] == "not_a_rep"
    assert ws.assign().moves == proposal.moves                   # nothing written yet
    ws.assign(apply=True)
    owners_now = dict(ws.store().execute("SELECT customer_id, owner FROM customers").fetchall())
    assert all(owners_now[c] == to for c, (_, to, _) in planned.items())
    [change] = owner_history(ws.appdb, "C3")
    assert (change.from_owner, change.to_owner, change.reason) == (
        "李娜", planned["C3"][1], "not_a_rep")
    assert ws.assign().moves == []                               # stable once applied
    # Open tasks follow their account to the new owner.
    assert {t.owner for t in ws.tasks() if t.customer_id == "C3"} <= {planned["C3"][1]}


def test_reps_left_out_of_a_new_file_are_marked_as_left(ws: Workspace,
                                                         tmp_path: Path) -> None:
    (tmp_path / "reps.csv").write_text(REPS, encoding="utf-8")
    ws.import_reps(tmp_path / "reps.csv")
    (tmp_path / "reps.csv").write_text("姓名,级别\n张伟,6\n", encoding="utf-8")
    result = ws.import_reps(tmp_path / "reps.csv")
    assert (result.added, result.updated, result.deactivated) == (0, 1, 2)
    assert {r.name: (r.level, r.active) for r in ws.reps()} == {
        "张伟": (6, True), "王芳": (3, False), "新人": (0, False)}


def test_cli_shows_the_diff_and_applies(tmp_path: Path) -> None:
    folder = str(tmp_path / "cli")
    run("init", folder, "--policy", str(POLICY_PATH))
    for kind in ("customers", "orders"):
        run("import", kind, str(POLICY_PATH.parent / f"{kind}.csv"), "-w", folder)
    (tmp_path / "reps.csv").write_text(REPS, encoding="gbk")
    assert "新增 3 名" in run("reps", "import", str(tmp_path / "reps.csv"), "-w", folder).output
    run("grade", "--as-of", "2025-06-30", "-w", folder)
    shown = run("assign", "-w", folder).output
    assert "不在销售名单中" in shown and "未写入" in shown
    as_json = json.loads(run("assign", "--format", "json", "-w", folder).output)
    assert as_json["applied"] is False and as_json["moved"] >= 2
    assert "已写入" in run("assign", "--apply", "-w", folder).output
    assert json.loads(run("assign", "--format", "json", "-w", folder).output)["moves"] == []
    assert "负责人变更" in run("explain", "C3", "-w", folder).output
    assert "张伟" in run("reps", "-w", folder).output


def test_a_reps_file_with_headers_alone_is_refused_and_marks_nobody_as_left(
        ws: Workspace, tmp_path: Path) -> None:
    first = tmp_path / "销售名单.csv"
    first.write_text("姓名,级别,区域\n张伟,专家,华东\n王芳,新人,华南\n", encoding="utf-8")
    ws.import_reps(first)
    empty = tmp_path / "空名单.csv"
    empty.write_text("姓名,级别,区域\n", encoding="utf-8")
    with pytest.raises(InputError, match="headers but no rows") as caught:
        ws.import_reps(empty)
    assert caught.value.file == str(empty)
    assert {r.name: r.active for r in ws.reps()} == {"张伟": True, "王芳": True}


class _StoreThatFailsToCommit:
    """The store connection, but its COMMIT fails once (a crash or a full disk there)."""

    def __init__(self, con: object) -> None:
        self.con, self.failed = con, False

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise OSError("No space left on device")
        return self.con.execute(sql, *args)  # type: ignore[attr-defined]

    def executemany(self, sql: str, rows: object) -> object:
        return self.con.executemany(sql, rows)  # type: ignore[attr-defined]


def test_an_apply_whose_store_commit_failed_is_completed_once_by_the_next(
        ws: Workspace, tmp_path: Path) -> None:
    from tierwise.work import owners

    (tmp_path / "reps.csv").write_text(REPS, encoding="utf-8")
    ws.import_reps(tmp_path / "reps.csv")
    ws.grade(as_of=dt.date(2025, 6, 30))
    proposal = ws.assign()
    store = ws.store()
    with pytest.raises(OSError, match="No space left"):
        owners.apply(_StoreThatFailsToCommit(store), ws.appdb,  # type: ignore[arg-type]
                     proposal, user="tester")
    owners_now = dict(store.execute("SELECT customer_id, owner FROM customers").fetchall())
    assert owners_now["C3"] == "李娜"                            # the store kept the old owner
    assert len(owner_history(ws.appdb, "C3")) == 1             # the history was written
    again = ws.assign(apply=True)                              # the re-run
    assert again.moves == proposal.moves
    owners_now = dict(store.execute("SELECT customer_id, owner FROM customers").fetchall())
    planned = {m.customer_id: m.to_owner for m in proposal.moves}
    assert all(owners_now[c] == to for c, to in planned.items())
    assert [len(owner_history(ws.appdb, c)) for c in planned] == [1] * len(planned)
    assert ws.assign().moves == []
