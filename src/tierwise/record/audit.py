"""The audit log: who did what, when, through which interface and from where.

Every write goes through the library (tierwise.workspace.Workspace and the stage functions it
calls), and the library records it here, so an override made from the command line, a run
started by the schedule and an import uploaded in the browser leave the same kind of row.
The interfaces only say who is acting (an :class:`Actor`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from tierwise.appdb import schema

Interface = Literal["cli", "web", "api", "schedule"]
INTERFACES: tuple[Interface, ...] = ("cli", "web", "api", "schedule")


def os_user() -> str:
    """The person at the command line: TIERWISE_USER, else the operating-system user."""
    return os.environ.get("TIERWISE_USER") or getpass.getuser()


@dataclass(frozen=True)
class Actor:
    """Who makes a write: a person's name, the interface they use and where they are.

    >>> Actor("王芳", "web", "10.0.0.7").name
    '王芳'
    """

    name: str
    interface: Interface = "cli"
    address: str = ""

    @classmethod
    def at_command_line(cls, name: str | None = None) -> Actor:
        """The command line's actor: ``name`` (``--as``) or the OS user, on this host."""
        return cls(name or os_user(), "cli", socket.gethostname())

    @classmethod
    def scheduler(cls, name: str | None = None) -> Actor:
        """Scheduled runs (`tierwise run-due`, the server's minute check), recorded as the
        account the schedule runs under (``name``, else the OS user)."""
        return cls(name or os_user(), "schedule", socket.gethostname())


def audit(where: sa.Engine | sa.Connection, actor: Actor, action: str, target: str = "",
          detail: str = "") -> None:
    """Record one write. Given a connection, the row joins that transaction, so that the
    write and its audit row land together or not at all."""
    values = {"at": dt.datetime.now(dt.UTC), "user": actor.name[:128], "action": action,
              "target": target[:256], "detail": detail, "interface": actor.interface,
              "address": actor.address[:128]}
    if isinstance(where, sa.Connection):
        where.execute(schema.audit_log.insert().values(**values))
        return
    with where.begin() as connection:
        connection.execute(schema.audit_log.insert().values(**values))


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    user: str
    action: str
    target: str
    detail: str
    interface: str = ""
    address: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "user": self.user, "action": self.action,
                "target": self.target, "detail": self.detail, "interface": self.interface,
                "address": self.address}


def audit_entries(appdb: sa.Engine, limit: int | None = 100, *,
                  since: dt.datetime | dt.date | None = None, user: str | None = None,
                  action: str | None = None) -> list[AuditEntry]:
    """The log newest first, optionally from a date or time on, of one user or one action."""
    t = schema.audit_log
    query = sa.select(t.c.at, t.c.user, t.c.action, t.c.target, t.c.detail, t.c.interface,
                      t.c.address).order_by(t.c.id.desc())
    if since is not None:
        start = (since if isinstance(since, dt.datetime)
                 else dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC))
        query = query.where(t.c.at >= start)
    if user is not None:
        query = query.where(t.c.user == user)
    if action is not None:
        query = query.where(t.c.action == action)
    if limit is not None:
        query = query.limit(limit)
    with appdb.connect() as connection:
        return [AuditEntry(*row) for row in connection.execute(query)]
