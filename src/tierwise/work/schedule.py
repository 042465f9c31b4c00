"""Scheduled re-grading (定期评估与动态调整, regular review and adjustment): `schedule:` in
tierwise.yaml says when a run is due and as of which date; `tierwise run-due` (from cron or a
systemd timer) and `tierwise serve` (in the background) run every due run once.

    schedule:
      every: month      # month: on `day` of each month, as of the previous month's last day
      day: 1            #   (1–28); week: on `day` = mon…sun (周一…周日), as of the Sunday before
      at: "06:00"       # local time of day from which the slot is due (default 00:00)

Each slot (e.g. "month 2025-07", as of 2025-06-30) is claimed in the app database before it
runs, so two calls at once never run it twice: the second finds it claimed and leaves it. A
slot missed while the machine was off is due at the next call and runs once; when several
were missed, each runs once, oldest first (at most ``MAX_CATCH_UP``). A failed run is recorded
with its error and retried at the next call. A claim names the process that holds it (host,
PID and the process's start time): on the same host a claim whose process is gone is taken
over at once, and one whose process lives is never taken over; a claim from another host is
taken over once older than ``STALE_AFTER``. A run that committed before its process died is
adopted as the slot's run, not made again (nor announced twice). The grade itself writes all
or nothing (tierwise.grading.run).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.errors import WorkspaceError
from tierwise.metrics.per_customer import add_months

MAX_CATCH_UP = 12
STALE_AFTER = dt.timedelta(hours=6)
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
            "周一": 0, "周二": 1, "周三": 2, "周四": 3, "周五": 4, "周六": 5, "周日": 6,
            "周天": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
            "saturday": 5, "sunday": 6}


@dataclass(frozen=True)
class Schedule:
    every: Literal["month", "week"]
    day: int              # day of the month (1–28), or weekday (0 = Monday)
    at: dt.time = dt.time(0, 0)

    def slots(self, since: dt.datetime, until: dt.datetime) -> list[Slot]:
        """The slots due after ``since`` up to ``until`` (local times), oldest first."""
        found: list[Slot] = []
        moment = self._first_at_or_after(since.date())
        while moment <= until:
            if moment > since:
                found.append(self._slot(moment))
            moment = self._next(moment)
        return found

    def latest(self, until: dt.datetime) -> Slot | None:
        """The last slot due by ``until`` (the one a new schedule starts from)."""
        start = until - (dt.timedelta(days=40) if self.every == "month"
                         else dt.timedelta(days=8))
        found = self.slots(start, until)
        return found[-1] if found else None

    def _first_at_or_after(self, day: dt.date) -> dt.datetime:
        if self.every == "month":
            candidate = day.replace(day=self.day)
            if candidate < day:
                candidate = add_months(candidate, 1).replace(day=self.day)
        else:
            candidate = day + dt.timedelta(days=(self.day - day.weekday()) % 7)
        return dt.datetime.combine(candidate, self.at)

    def _next(self, moment: dt.datetime) -> dt.datetime:
        if self.every == "month":
            return dt.datetime.combine(add_months(moment.date(), 1).replace(day=self.day),
                                       self.at)
        return moment + dt.timedelta(days=7)

    def _slot(self, moment: dt.datetime) -> Slot:
        day = moment.date()
        if self.every == "month":
            as_of = day.replace(day=1) - dt.timedelta(days=1)     # the previous month's end
            return Slot(f"month {day:%Y-%m}", as_of, moment)
        as_of = day - dt.timedelta(days=day.weekday() + 1)         # the Sunday before
        return Slot(f"week {day.isocalendar().year}-W{day.isocalendar().week:02d}", as_of,
                    moment)


@dataclass(frozen=True)
class Slot:
    key: str              # "month 2025-07", "week 2025-W27"
    as_of: dt.date
    due_at: dt.datetime


def parse_schedule(value: Any, *, source: str) -> Schedule | None:
    """tierwise.yaml's `schedule:`; None when there is none. Errors name the setting."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WorkspaceError(f"{source}: schedule: expected a mapping such as "
                             "{every: month, day: 1}")
    unknown = sorted(set(value) - {"every", "day", "at"})
    if unknown:
        raise WorkspaceError(f"{source}: schedule: unknown setting {unknown[0]!r}; "
                             "settings: every, day, at")
    every = str(value.get("every", "month")).strip().lower()
    every = {"monthly": "month", "每月": "month", "weekly": "week", "每周": "week"}.get(every,
                                                                                    every)
    if every not in ("month", "week"):
        raise WorkspaceError(f"{source}: schedule.every: 'month' or 'week', not {every!r}")
    day = _day(every, value.get("day", 1 if every == "month" else "mon"), source)
    return Schedule(every, day, _time(value.get("at", "00:00"), source))  # type: ignore[arg-type]


def _day(every: str, value: Any, source: str) -> int:
    if every == "week":
        key = str(value).strip().lower()
        if key not in WEEKDAYS:
            raise WorkspaceError(f"{source}: schedule.day: a weekday (mon … sun, 周一 … 周日), "
                                 f"not {value!r}")
        return WEEKDAYS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 28:
        raise WorkspaceError(f"{source}: schedule.day: a day of the month from 1 to 28 (so "
                             f"that every month has it), not {value!r}")
    return value


def _time(value: Any, source: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise WorkspaceError(f"{source}: schedule.at: a time such as \"06:00\", "
                             f"not {value!r}") from None


# -- claiming and recording slots --------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    slot: Slot
    status: str                 # done | failed | skipped (claimed elsewhere)
    run_id: int | None = None
    error: str | None = None


def due_slots(appdb: sa.Engine, schedule: Schedule, now: dt.datetime) -> list[Slot]:
    """Slots due by ``now`` that are not done: since the last done slot (a new schedule starts
    with the latest due slot), at most MAX_CATCH_UP, plus failed or stale ones."""
    t = schema.scheduled_runs
    with appdb.connect() as connection:
        rows = connection.execute(sa.select(t.c.slot, t.c.as_of, t.c.due_at, t.c.status,
                                            t.c.started_at, t.c.claimed_by)).all()
    done = {r.slot for r in rows if r.status == "done"}
    last_done = max((r.due_at for r in rows if r.status == "done"), default=None)
    if last_done is None:
        latest = schedule.latest(now)
        candidates = [latest] if latest else []
    else:
        candidates = schedule.slots(_naive(last_done), now)[-MAX_CATCH_UP:]
    retry = [Slot(r.slot, r.as_of, _naive(r.due_at)) for r in rows
             if r.status == "failed" or (r.status == "running" and _abandoned(r, _utcnow()))]
    found = {s.key: s for s in [*retry, *candidates] if s.key not in done}
    return sorted(found.values(), key=lambda s: s.due_at)


def claim(appdb: sa.Engine, slot: Slot) -> bool:
    """Mark the slot as running here; False when another call holds it (or it is done)."""
    t = schema.scheduled_runs
    now = _utcnow()
    host = this_process()
    with appdb.begin() as connection:
        row = connection.execute(sa.select(t.c.status, t.c.started_at, t.c.claimed_by).where(
            t.c.slot == slot.key)).first()
        if row is None:
            try:
                with connection.begin_nested():
                    connection.execute(t.insert().values(
                        slot=slot.key, as_of=slot.as_of, due_at=slot.due_at, status="running",
                        attempts=1, started_at=now, claimed_by=host))
                return True
            except sa.exc.IntegrityError:
                return False          # claimed by a concurrent call a moment ago
        stale = row.status == "running" and _abandoned(row, now)
        if row.status != "failed" and not stale:
            return False
        # Only one caller's update matches the status it read: the claim is atomic.
        updated = connection.execute(t.update().where(
            t.c.slot == slot.key, t.c.status == row.status,
            t.c.started_at == row.started_at).values(
            status="running", attempts=t.c.attempts + 1, started_at=now, claimed_by=host,
            error=None))
        return updated.rowcount == 1


def record(appdb: sa.Engine, slot: Slot, *, run_id: int | None = None,
           error: str | None = None) -> None:
    t = schema.scheduled_runs
    with appdb.begin() as connection:
        connection.execute(t.update().where(t.c.slot == slot.key).values(
            status="failed" if error else "done", run_id=run_id, error=error,
            finished_at=_utcnow()))


def run_due(appdb: sa.Engine, schedule: Schedule, grade: Callable[[dt.date], int], *,
            now: dt.datetime | None = None) -> list[Outcome]:
    """Run every due slot once, oldest first; ``grade(as_of)`` makes the run, returns its id."""
    outcomes = []
    for slot in due_slots(appdb, schedule, now or dt.datetime.now()):
        before = _claim_row(appdb, slot)
        if not claim(appdb, slot):
            outcomes.append(Outcome(slot, "skipped"))
            continue
        adopted = _committed_run(appdb, slot, before)
        if adopted is not None:         # its process died after the run, before recording
            record(appdb, slot, run_id=adopted)
            outcomes.append(Outcome(slot, "done", run_id=adopted))
            continue
        try:
            run_id = grade(slot.as_of)
        except Exception as error:      # recorded, retried at the next call
            message = f"{type(error).__name__}: {error}"
            record(appdb, slot, error=message)
            outcomes.append(Outcome(slot, "failed", error=message))
            continue
        record(appdb, slot, run_id=run_id)
        outcomes.append(Outcome(slot, "done", run_id=run_id))
    return outcomes


def this_process() -> str:
    """``host:pid:start``: who holds a claim, with the process's start time so that a PID
    the system has reused for another process does not look like the claim's holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}"


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc); elsewhere "0" for
    a live process. None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None                  # /proc works here: the process is gone
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "0"


def process_alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` of this host runs and is the one started at ``started`` (a
    claim's start time), not another that reuses its PID."""
    return _process_start(pid) == started


def _abandoned(row: Any, now: dt.datetime) -> bool:
    """Whether a running claim may be taken over: on this host when its process is gone;
    from another host (or an old claim without a PID) when older than STALE_AFTER."""
    host, _, rest = str(row.claimed_by or "").partition(":")
    pid, _, start = rest.partition(":")
    if host == socket.gethostname() and pid.isdigit():
        return _process_start(int(pid)) != start
    return _aware(row.started_at) < now - STALE_AFTER


def _claim_row(appdb: sa.Engine, slot: Slot) -> Any:
    t = schema.scheduled_runs
    with appdb.connect() as connection:
        return connection.execute(sa.select(t.c.status, t.c.started_at).where(
            t.c.slot == slot.key)).first()


def _committed_run(appdb: sa.Engine, slot: Slot, before: Any) -> int | None:
    """The run a taken-over claim made before its process died: one as of the slot's date
    recorded since that claim started."""
    if before is None or before.status != "running":
        return None
    runs = schema.runs
    with appdb.connect() as connection:
        found = connection.execute(
            sa.select(runs.c.id).where(runs.c.as_of == slot.as_of,
                                       runs.c.created_at >= _aware(before.started_at))
            .order_by(runs.c.id.desc()).limit(1)).scalar()
    return int(found) if found is not None else None


def history(appdb: sa.Engine, limit: int = 50) -> list[dict[str, Any]]:
    t = schema.scheduled_runs
    with appdb.connect() as connection:
        rows = connection.execute(sa.select(t).order_by(t.c.due_at.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _naive(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=None)
