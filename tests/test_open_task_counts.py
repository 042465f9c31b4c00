"""The dashboard at speed. The open-task counts it reads (tierwise.work.tasks.open_counts, table
open_task_counts): after every sync and every task done by hand they equal a count over the
open tasks themselves, per tier rank, kind and due date, on SQLite and on PostgreSQL; the
dashboard's work per tier agrees with counting the tasks; a run's figures (distribution,
Pareto, migration, history) are computed once per process and follow a new run.

Data: tests/data graded as of 2025-06-30, then 2025-07-31 (tasks derived by each run).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.reports.dashboard import WORK_KINDS, dashboard, work_by_tier
from tierwise.workspace import Workspace


def kept(ws: Workspace) -> Counter[tuple[object, ...]]:
    c = schema.open_task_counts
    with ws.appdb.connect() as connection:
        rows = connection.execute(sa.select(c.c.priority, c.c.kind, c.c.due_date, c.c.n))
        return Counter({(p, k, d): n for p, k, d, n in rows if n})


def counted(ws: Workspace) -> Counter[tuple[object, ...]]:
    t = schema.tasks
    with ws.appdb.connect() as connection:
        rows = connection.execute(sa.select(t.c.priority, t.c.kind, t.c.due_date)
                                  .where(t.c.status == "open"))
        return Counter((p, k, d) for p, k, d in rows)


def test_the_counts_follow_every_sync_and_every_task_done(ws: Workspace) -> None:
    ws.grade(as_of=dt.date(2025, 6, 30))
    assert counted(ws) and kept(ws) == counted(ws)
    first = ws.tasks()[0]
    ws.task_done(first.id, "已电话回访")
    assert kept(ws) == counted(ws)
    ws.grade(as_of=dt.date(2025, 7, 31))
    assert kept(ws) == counted(ws)
    assert all(t.id != first.id for t in ws.tasks())       # done stays done


def test_the_dashboard_s_work_per_tier_equals_counting_the_tasks(ws: Workspace) -> None:
    ws.grade(as_of=dt.date(2025, 7, 31))
    today = dt.date(2025, 8, 15)
    keys = ws.run().policy.keys
    expected: Counter[tuple[object, str]] = Counter()
    late: Counter[object] = Counter()
    for task in ws.tasks():
        if task.kind in WORK_KINDS:
            tier = keys[task.priority - 1] if task.priority else None
            expected[(tier, task.kind)] += 1
            if task.due_date < today and task.kind != "contact":
                late[tier] += 1
    work = work_by_tier(ws, today=today)
    for row in work.tiers:
        assert row.contact == expected[(row.key, "contact")]
        assert row.churn_risk == expected[(row.key, "churn_risk")]
        assert row.credit_risk == expected[(row.key, "credit_risk")]
        assert row.complaint == expected[(row.key, "complaint")]
        assert row.warnings_overdue == late[row.key]
    assert work.total("contact") + work.total("churn_risk") > 0


def test_the_dashboard_computes_a_run_s_figures_once_and_follows_a_new_run(
        ws: Workspace) -> None:
    ws.grade(as_of=dt.date(2025, 6, 30))
    first = dashboard(ws, lang="zh")
    again = dashboard(ws, lang="zh")
    assert again.distribution is first.distribution            # kept, not recomputed
    assert again.to_json() == first.to_json()
    ws.task_done(ws.tasks()[0].id, None)
    assert dashboard(ws, lang="zh").work != first.work         # the work is always fresh
    ws.grade(as_of=dt.date(2025, 7, 31))
    later = dashboard(ws, lang="zh")
    assert later.overview.to_json() != first.overview.to_json()
    assert later.migration is not None and first.migration is None
    assert dashboard(ws, lang="en").to_json()["distribution"] != later.to_json()["distribution"]
