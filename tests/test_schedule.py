"""Scheduled re-grading: `schedule:` says when a run is due and as of which date; run-due
runs each due slot once — caught up after the machine was off, never twice, retried after a
failure — and the web server does the same in the background."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import run
from tierwise.errors import WorkspaceError
from tierwise.web.context import Server
from tierwise.work import schedule as scheduling
from tierwise.work.schedule import Schedule, Slot, claim, parse_schedule
from tierwise.workspace import Workspace

MONTHLY = {"every": "month", "day": 1, "at": "06:00"}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_a_monthly_slot_is_due_from_its_day_and_time_as_of_the_previous_month_end() -> None:
    monthly = parse_schedule(MONTHLY, source="tierwise.yaml")
    assert monthly is not None
    before = monthly.latest(at("2025-07-01 05:59"))
    after = monthly.latest(at("2025-07-01 06:00"))
    assert before == Slot("month 2025-06", dt.date(2025, 5, 31), at("2025-06-01 06:00"))
    assert after == Slot("month 2025-07", dt.date(2025, 6, 30), at("2025-07-01 06:00"))
    missed = monthly.slots(at("2025-07-01 06:00"), at("2025-10-02 00:00"))
    assert [s.as_of for s in missed] == [dt.date(2025, 7, 31), dt.date(2025, 8, 31),
                                         dt.date(2025, 9, 30)]


def test_a_weekly_slot_is_as_of_the_sunday_before() -> None:
    weekly = parse_schedule({"every": "每周", "day": "周一"}, source="tierwise.yaml")
    assert weekly == Schedule("week", 0)
    slot = weekly.latest(at("2025-07-09 12:00"))                # a Wednesday
    assert slot is not None and slot.due_at == at("2025-07-07 00:00")
    assert slot.as_of == dt.date(2025, 7, 6) and slot.key == "week 2025-W28"


@pytest.mark.parametrize(("setting", "message"), [
    ({"every": "daily"}, "schedule.every"),
    ({"every": "month", "day": 31}, "1 to 28"),
    ({"every": "week", "day": "someday"}, "weekday"),
    ({"every": "month", "at": "6 o'clock"}, "schedule.at"),
    ({"every": "month", "hour": 6}, "unknown setting 'hour'"),
])
def test_bad_schedules_name_the_setting(setting: dict[str, object], message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        parse_schedule(setting, source="tierwise.yaml")


@pytest.fixture
def scheduled(ws: Workspace) -> Workspace:
    ws._set_config("schedule", MONTHLY)
    return ws


def test_due_runs_run_once_and_missed_ones_are_caught_up(scheduled: Workspace) -> None:
    first = scheduled.run_due(now=at("2025-07-01 07:00"))
    assert [(o.slot.as_of, o.status) for o in first] == [(dt.date(2025, 6, 30), "done")]
    assert scheduled.run().as_of == dt.date(2025, 6, 30)
    assert scheduled.run_due(now=at("2025-07-15 07:00")) == []        # nothing twice
    caught_up = scheduled.run_due(now=at("2025-10-02 07:00"))          # off for months
    assert [o.slot.as_of for o in caught_up] == [
        dt.date(2025, 7, 31), dt.date(2025, 8, 31), dt.date(2025, 9, 30)]
    assert [r.as_of for r in scheduled.runs()][-3:] == [o.slot.as_of for o in caught_up]
    # A scheduled run derives tasks like a manual one.
    assert scheduled.tasks()


def test_a_failed_run_is_recorded_and_retried_next_time(scheduled: Workspace) -> None:
    policy = scheduled.root / "policy.yaml"
    good = policy.read_text(encoding="utf-8")
    policy.write_text("name: broken\ntiers: []\n", encoding="utf-8")
    [failed] = scheduled.run_due(now=at("2025-07-01 07:00"))
    assert failed.status == "failed" and "tiers" in (failed.error or "")
    assert scheduled.runs() == []                                    # nothing half-written
    [row] = scheduling.history(scheduled.appdb)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    policy.write_text(good, encoding="utf-8")
    [retried] = scheduled.run_due(now=at("2025-07-01 08:00"))
    assert retried.status == "done" and retried.slot.key == "month 2025-07"
    [row] = scheduling.history(scheduled.appdb)
    assert (row["status"], row["attempts"], row["run_id"]) == ("done", 2, retried.run_id)


def test_a_slot_is_claimed_once_and_a_dead_claim_is_taken_over(scheduled: Workspace) -> None:
    from tierwise.appdb import schema

    slot = Slot("month 2025-07", dt.date(2025, 6, 30), at("2025-07-01 06:00"))
    assert claim(scheduled.appdb, slot) is True
    assert claim(scheduled.appdb, slot) is False                     # a concurrent call
    assert scheduled.run_due(now=at("2025-07-01 07:00"))[0].status == "skipped"
    with scheduled.appdb.begin() as connection:         # that call's process died
        connection.execute(schema.scheduled_runs.update().values(
            claimed_by=f"{socket.gethostname()}:{dead_pid()}:1"))
    [taken] = scheduled.run_due(now=at("2025-07-01 07:00"))
    assert taken.status == "done"


def dead_pid() -> int:
    """The PID of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_claim_is_never_taken_over_and_another_hosts_after_six_hours(
        scheduled: Workspace) -> None:
    from tierwise.appdb import schema

    slot = Slot("month 2025-07", dt.date(2025, 6, 30), at("2025-07-01 06:00"))
    assert claim(scheduled.appdb, slot) is True                     # this live process
    t = schema.scheduled_runs
    with scheduled.appdb.begin() as connection:                     # however long ago
        connection.execute(t.update().values(
            started_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)))
    assert scheduled.run_due(now=at("2025-07-01 07:00"))[0].status == "skipped"
    with scheduled.appdb.begin() as connection:                     # another machine's
        connection.execute(t.update().values(claimed_by="elsewhere:123:456",
                                             started_at=dt.datetime.now(dt.UTC)
                                             - dt.timedelta(hours=1)))
    assert scheduled.run_due(now=at("2025-07-01 07:00"))[0].status == "skipped"
    with scheduled.appdb.begin() as connection:
        connection.execute(t.update().values(started_at=dt.datetime.now(dt.UTC)
                                             - dt.timedelta(hours=7)))
    assert scheduled.run_due(now=at("2025-07-01 07:00"))[0].status == "done"


def test_a_run_committed_before_its_process_died_is_adopted_not_made_again(
        scheduled: Workspace) -> None:
    from tierwise.appdb import schema

    slot = Slot("month 2025-07", dt.date(2025, 6, 30), at("2025-07-01 06:00"))
    assert claim(scheduled.appdb, slot) is True
    made = scheduled.grade(as_of=slot.as_of)                        # then the process died
    with scheduled.appdb.begin() as connection:
        connection.execute(schema.scheduled_runs.update().values(
            claimed_by=f"{socket.gethostname()}:{dead_pid()}:1"))
    runs = len(scheduled.runs())
    [adopted] = scheduled.run_due(now=at("2025-07-01 07:00"))
    assert (adopted.status, adopted.run_id) == ("done", made.run_id)
    assert len(scheduled.runs()) == runs
    assert scheduled.run_due(now=at("2025-07-02 07:00")) == []      # and never again


def test_cli_run_due(tmp_path: Path) -> None:
    folder = tmp_path / "cli"
    data = Path(__file__).parent / "data"
    run("init", str(folder), "--policy", str(data / "policy.yaml"))
    for kind in ("customers", "orders"):
        run("import", kind, str(data / f"{kind}.csv"), "-w", str(folder))
    without = run("run-due", "-w", str(folder), ok=False)
    assert without.exit_code == 1 and "no schedule" in without.output
    with Workspace(folder) as ws:
        ws._set_config("schedule", {"every": "month", "day": 1})
    assert "完成" in run("run-due", "-w", str(folder)).output
    assert "没有到期的分级" in run("run-due", "-w", str(folder)).output


def test_the_server_runs_due_runs_in_the_background(scheduled: Workspace) -> None:
    server = Server(scheduled.root)
    try:
        server.start_scheduler(every=0.05)
        for _ in range(200):
            if scheduled.runs():
                break
            time.sleep(0.05)
        assert len(scheduled.runs()) == 1
    finally:
        server.close()
