"""Background jobs and leases in the app database, shared by every process of `tierwise serve
--workers N`.

A job (a grading run started from the workbench or the API) is a row of ``jobs``: the
process that starts it runs it and writes its state there, so any worker answers for it.
A lease (a row of ``leases``) is held by one process at a time: ``grading`` makes runs one
at a time across all workers (a web run and a scheduled run alike), ``scheduler`` names the
one worker that checks the schedule. A holder names its process (host, PID, start time,
as tierwise.work.schedule's claims do); on this host a holder whose process is gone is
replaced at once, a live one never; another host's holder once it has not renewed for the
lease's time to live.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.work.schedule import process_alive, this_process

__all__ = ["Job", "acquire", "finish", "get", "held", "holder_of", "recent", "release",
           "start", "this_process", "valid_id"]

JOB_ID_LENGTH = 12
ORPHANED = "the server process running it stopped; nothing was recorded"


@dataclass(frozen=True)
class Job:
    """A grading run in the background: running, done (with its run) or failed (with why)."""

    id: str
    kind: str
    status: str                        # running | done | failed
    started_by: str
    as_of: dt.date | None
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    run_id: int | None = None
    error: str | None = None
    claimed_by: str = ""

    def to_json(self) -> dict[str, Any]:
        elapsed = (_aware(self.finished_at) if self.finished_at else _utcnow()) - _aware(
            self.started_at)
        return {"id": self.id, "status": self.status, "run_id": self.run_id,
                "error": self.error, "started_by": self.started_by,
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "seconds": round(elapsed.total_seconds(), 1)}


def valid_id(text: str) -> bool:
    """Whether ``text`` can be a job id (12 hex digits): anything else is not looked up."""
    return len(text) == JOB_ID_LENGTH and all(c in "0123456789abcdef" for c in text)


def start(appdb: sa.Engine, started_by: str, as_of: dt.date | None,
          kind: str = "grade") -> Job:
    """Record a job as running in this process."""
    job = Job(uuid.uuid4().hex[:JOB_ID_LENGTH], kind, "running", started_by, as_of,
              _utcnow(), claimed_by=this_process())
    with appdb.begin() as connection:
        connection.execute(schema.jobs.insert().values(
            id=job.id, kind=kind, status="running", started_by=started_by, as_of=as_of,
            started_at=job.started_at, claimed_by=job.claimed_by))
    return job


def finish(appdb: sa.Engine, job_id: str, *, run_id: int | None = None,
           error: str | None = None) -> None:
    """Record how a job ended: done with its run, or failed with a message for the user."""
    with appdb.begin() as connection:
        connection.execute(schema.jobs.update().where(schema.jobs.c.id == job_id).values(
            status="failed" if error is not None else "done", run_id=run_id, error=error,
            finished_at=_utcnow()))


def get(appdb: sa.Engine, job_id: str) -> Job | None:
    """The job, from whichever process started it; one still marked running whose process
    is gone is recorded as failed first."""
    if not valid_id(job_id):
        return None
    with appdb.connect() as connection:
        row = connection.execute(sa.select(schema.jobs).where(
            schema.jobs.c.id == job_id)).first()
    return _settled(appdb, row) if row is not None else None


def recent(appdb: sa.Engine, limit: int = 5) -> list[Job]:
    """The latest jobs, newest first."""
    t = schema.jobs
    with appdb.connect() as connection:
        rows = connection.execute(sa.select(t).order_by(t.c.started_at.desc()).limit(limit))
        found = list(rows)
    return [_settled(appdb, row) for row in found]


def _settled(appdb: sa.Engine, row: Any) -> Job:
    job = Job(row.id, row.kind, row.status, row.started_by, row.as_of, row.started_at,
              row.finished_at, row.run_id, row.error, row.claimed_by)
    if job.status == "running" and _gone(job.claimed_by):
        finish(appdb, job.id, error=ORPHANED)
        return get(appdb, job.id) or job
    return job


def _gone(holder: str) -> bool:
    """Whether the process named by ``holder`` (host:pid:start[:tag]) is gone from this host."""
    host, pid, started = ([*holder.split(":"), "", ""])[:3]
    return host == socket.gethostname() and pid.isdigit() and not process_alive(
        int(pid), started)


# -- leases ---------------------------------------------------------------------------------

def acquire(appdb: sa.Engine, name: str, *, ttl: dt.timedelta,
            holder: str | None = None) -> bool:
    """Take the lease ``name`` for ``holder`` (default: this process), or renew it when
    held already; False while another live holder has it. Compare-and-set on the row, so
    two processes trying at once never both win."""
    me = holder or this_process()
    t = schema.leases
    now = _utcnow()
    with appdb.connect() as connection:
        row = connection.execute(sa.select(t.c.holder, t.c.renewed_at).where(
            t.c.name == name)).first()
    if row is None:
        try:
            with appdb.begin() as connection:
                connection.execute(t.insert().values(name=name, holder=me, renewed_at=now))
            return True
        except sa.exc.IntegrityError:            # another process inserted it first
            return acquire(appdb, name, ttl=ttl, holder=me)
    if row.holder not in (None, me) and not _replaceable(row, now, ttl):
        return False
    held = t.c.holder.is_(None) if row.holder is None else t.c.holder == row.holder
    with appdb.begin() as connection:
        changed = connection.execute(t.update().where(
            t.c.name == name, held, t.c.renewed_at == row.renewed_at).values(
            holder=me, renewed_at=now)).rowcount
    return changed == 1


def release(appdb: sa.Engine, name: str, *, holder: str | None = None) -> None:
    """Give the lease up (only its holder can)."""
    t = schema.leases
    with appdb.begin() as connection:
        connection.execute(t.update().where(t.c.name == name,
                                            t.c.holder == (holder or this_process()))
                           .values(holder=None))


def held(appdb: sa.Engine, name: str, *, ttl: dt.timedelta) -> bool:
    """Whether a live holder has the lease now."""
    t = schema.leases
    with appdb.connect() as connection:
        row = connection.execute(sa.select(t.c.holder, t.c.renewed_at).where(
            t.c.name == name)).first()
    return row is not None and row.holder is not None and not _replaceable(
        row, _utcnow(), ttl)


def holder_of(appdb: sa.Engine, name: str) -> str | None:
    """Who holds the lease now (host:pid:start), or None."""
    t = schema.leases
    with appdb.connect() as connection:
        found = connection.execute(sa.select(t.c.holder).where(t.c.name == name)).scalar()
    return str(found) if found is not None else None


def _replaceable(row: Any, now: dt.datetime, ttl: dt.timedelta) -> bool:
    host, pid = ([*str(row.holder).split(":"), ""])[:2]
    if host == socket.gethostname() and pid.isdigit():
        return _gone(str(row.holder))
    return _aware(row.renewed_at) < now - ttl


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
