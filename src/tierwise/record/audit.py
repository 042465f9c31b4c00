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
from tierwise.common.i18n import phrase

Interface = Literal["cli", "web", "api", "schedule"]
INTERFACES: tuple[Interface, ...] = ("cli", "web", "api", "schedule")

# What the library records, with the words a reader of the log sees (zh, en).
ACTIONS: dict[str, tuple[str, str]] = {
    "import": ("导入数据", "Import"),
    "run": ("分级运行", "Grading run"),
    "override": ("人工调级", "Override"),
    "policy": ("保存策略", "Policy saved"),
    "assign": ("分配客户经理", "Owners assigned"),
    "reps": ("导入销售名单", "Reps imported"),
    "task done": ("完成任务", "Task done"),
    "interaction": ("记录互动", "Interaction logged"),
    "export": ("导出客户数据", "Export"),
    "user": ("添加用户", "User added"),
    "token": ("创建 API 令牌", "API token created"),
    "token revoked": ("吊销 API 令牌", "API token revoked"),
    "user deactivated": ("停用用户", "User deactivated"),
    "user activated": ("启用用户", "User activated"),
    "password": ("重设密码", "Password reset"),
    "login": ("登录", "Sign-in"),
    "login failed": ("登录失败", "Failed sign-in"),
}
INTERFACE_LABELS: dict[str, tuple[str, str]] = {
    "cli": ("命令行", "Command line"), "web": ("网页", "Web"), "api": ("API", "API"),
    "schedule": ("定时任务", "Schedule"),
}


def action_label(action: str, lang: str = "zh") -> str:
    """An audit action in the reader's language (the key itself when it is not known)."""
    return phrase(ACTIONS, action, lang)


def interface_label(interface: str, lang: str = "zh") -> str:
    """cli, web, api, schedule in the reader's language."""
    return phrase(INTERFACE_LABELS, interface, lang)


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
    """One row of the log; ``at`` is aware (UTC)."""

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
        rows = connection.execute(query).all()
    # SQLite hands back naive datetimes: they were written in UTC.
    return [AuditEntry(at if at.tzinfo else at.replace(tzinfo=dt.UTC), *rest)
            for at, *rest in rows]
