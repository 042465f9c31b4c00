"""The audit log: who did what, when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from tierwise.appdb import schema


def audit(engine: sa.Engine, user: str, action: str, target: str = "",
          detail: str = "") -> None:
    """Record a login, override, policy change, import or export (who, what, when)."""
    with engine.begin() as connection:
        connection.execute(schema.audit_log.insert().values(
            at=dt.datetime.now(dt.UTC), user=user, action=action, target=target[:256],
            detail=detail))


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    user: str
    action: str
    target: str
    detail: str


def audit_entries(engine: sa.Engine, limit: int = 100) -> list[AuditEntry]:
    t = schema.audit_log
    with engine.connect() as connection:
        rows = connection.execute(sa.select(t.c.at, t.c.user, t.c.action, t.c.target,
                                            t.c.detail).order_by(t.c.id.desc()).limit(limit))
        return [AuditEntry(*row) for row in rows]
