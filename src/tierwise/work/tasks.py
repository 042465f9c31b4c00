"""Tasks: the work a grading run asks for, kept across runs.

Each run of the workspace's book derives candidate tasks from its snapshot (tiers, stages,
metrics) and the interactions, with the engine. The thresholds are the policy's
``warnings`` (tierwise.policy.model.Warnings), per tier where a playbook says otherwise:

* ``contact``: the tier's playbook cadence is due within ``contact_ahead_days`` or overdue,
  counted from the last contact (visit, video call, call, e-mail, event, survey), else from
  the customer's start;
* ``churn_risk`` (a warning): for a customer not yet churned, P(alive) below
  ``churn_p_alive_below`` where the run has the models; or no order for more than
  ``churn_gap_multiple`` × the customer's own median gap between orders; or fewer orders
  than the prior window by more than ``churn_frequency_drop``; or the stage is at risk;
* ``complaint`` (a warning): a complaint in the last ``complaint_days`` with no contact
  after it;
* ``credit_risk`` (a warning): an invoice overdue by more than ``credit_overdue_days`` and
  more than ``credit_overdue_amount`` overdue in all;
* ``upgrade``: the rule of the tier above holds once its thresholds are ``upgrade_within``
  easier (within 10% of them by default), with the thresholds missed in the reason;
* ``downgrade``: the tier went down in this run (tell the account manager);
* ``welcome``: a new customer (stage new) to be welcomed.

Then the open tasks are brought in line: a task still valid is updated, not duplicated; one
whose condition has cleared is closed with the reason; a task done by hand stays done, and
is not raised again while its condition lasts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.appdb.database import bulk_insert, fetch_arrow
from tierwise.common.formatting import money
from tierwise.common.formatting import value as shown_value
from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import ValueType, metric_label, stage_label
from tierwise.errors import TierwiseError
from tierwise.grading.explanation import snapshot_attributes
from tierwise.policy.evaluation import near_misses, to_ibis
from tierwise.policy.loading import name_types
from tierwise.policy.model import Cadence, Policy
from tierwise.record.history import RunRecord

KINDS = ("contact", "churn_risk", "complaint", "credit_risk", "upgrade", "downgrade",
         "welcome")
WARNING_KINDS = ("churn_risk", "complaint", "credit_risk")   # announced as warning.created
CONTACT_TYPES = ("visit", "video", "call", "email", "event", "survey")
COMPLAINT_FOLLOW_UP_DAYS = 3
# The metrics the tasks are derived from (besides the policy's own, for the upgrade
# candidates): a run of the workspace's book computes them (tierwise.metrics.plan).
WORK_METRICS = ("stage", "first_order_date", "recency_days", "order_gap_days", "order_count",
                "prior_order_count", "overdue_days", "overdue_amount")


@dataclass(frozen=True)
class TaskSync:
    created: int
    updated: int
    closed: int
    open: int


def _interval(cadence: Cadence) -> str:
    return f"INTERVAL {cadence.count} {cadence.unit.upper()}"


def _sql_literal(value: float | int | None) -> str:
    return "NULL" if value is None else repr(value)


def _per_tier(policy: Policy, field: str) -> str:
    """A warning threshold as SQL over the snapshot's ``tier``: one literal when every tier
    has the same, else a CASE by tier (tier keys are validated names, safe to quote)."""
    values = {t.key: getattr(policy.warnings_for(t.key), field) for t in policy.tiers}
    if len(set(values.values())) == 1:
        return _sql_literal(next(iter(values.values())))
    cases = " ".join(f"WHEN '{k}' THEN {_sql_literal(v)}" for k, v in values.items())
    return f"(CASE tier {cases} END)"


def candidate_sql(policy: Policy, snapshot: str, as_of: dt.date, columns: set[str],
                  upgrades: str | None = None) -> str:
    """One query: every task the run asks for, with due date, priority and reason.

    ``upgrades`` is a query of (customer_id, reason) for the upgrade candidates (see
    :func:`upgrade_candidates`)."""
    day = f"DATE '{as_of.isoformat()}'"
    cadences = [(t.key, policy.playbooks[t.key].cadence) for t in policy.tiers
                if t.key in policy.playbooks and policy.playbooks[t.key].cadence is not None]
    ranks = " ".join(f"WHEN '{k}' THEN {i + 1}" for i, k in enumerate(policy.keys))
    contact_types = ", ".join(f"'{t}'" for t in CONTACT_TYPES)
    parts = []
    if cadences:
        due = " ".join(f"WHEN '{k}' THEN c.base + {_interval(c)}" for k, c in cadences
                       if c is not None)
        parts.append(f"""
        SELECT customer_id, 'contact' AS kind, due,
               coalesce(strftime(last_contact, '%Y-%m-%d'), '') AS reason
        FROM (SELECT c.customer_id, c.tier, c.last_contact,
                     CAST(CASE c.tier {due} END AS DATE) AS due
              FROM (SELECT s.customer_id, s.tier, lc.last_contact,
                           coalesce(lc.last_contact, s.since, s.first_order_date, {day})
                             AS base
                    FROM s LEFT JOIN lc USING (customer_id)) c) x
        WHERE due IS NOT NULL
          AND due <= {day} + to_days(CAST({_per_tier(policy, "contact_ahead_days")} AS INT))""")
    # The first test that fires names the reason: test|facts (language-neutral).
    churn_tests = []
    if "p_alive" in columns:
        churn_tests.append(f"""WHEN p_alive < {_per_tier(policy, "churn_p_alive_below")}
                 THEN 'p_alive|' || round(p_alive, 3)""")
    churn_tests.append(f"""WHEN order_gap_days > 0
                  AND recency_days > {_per_tier(policy, "churn_gap_multiple")} * order_gap_days
                 THEN 'gap|' || recency_days || '|' || round(order_gap_days, 1)
            WHEN prior_order_count > 0 AND order_count
                   < prior_order_count * (1 - {_per_tier(policy, "churn_frequency_drop")})
                 THEN 'frequency|' || order_count || '|' || prior_order_count
            WHEN stage = 'at_risk' THEN 'stage|at_risk'""")
    parts.append(f"""
        SELECT customer_id, 'churn_risk' AS kind, {day} + INTERVAL 7 DAY AS due, reason
        FROM (SELECT customer_id, CASE {" ".join(churn_tests)} END AS reason
              FROM s WHERE stage NOT IN ('churned', 'potential')) x
        WHERE reason IS NOT NULL""")
    parts.append(f"""
        SELECT c.customer_id, 'complaint' AS kind,
               CAST(c.last_complaint + INTERVAL {COMPLAINT_FOLLOW_UP_DAYS} DAY AS DATE) AS due,
               strftime(c.last_complaint, '%Y-%m-%d') AS reason
        FROM lcomp c JOIN s USING (customer_id) LEFT JOIN lc USING (customer_id)
        WHERE c.last_complaint
                > {day} - to_days(CAST({_per_tier(policy, "complaint_days")} AS INT))
          AND (lc.last_contact IS NULL OR lc.last_contact <= c.last_complaint)""")
    if "overdue_days" in columns:
        parts.append(f"""
        SELECT customer_id, 'credit_risk' AS kind, {day} AS due,
               CAST(overdue_days AS BIGINT) || '|' || round(overdue_amount, 2) AS reason
        FROM s WHERE overdue_days > {_per_tier(policy, "credit_overdue_days")}
                 AND overdue_amount > {_per_tier(policy, "credit_overdue_amount")}""")
    if upgrades is not None:
        parts.append(f"""
        SELECT customer_id, 'upgrade' AS kind, {day} + INTERVAL 30 DAY AS due, reason
        FROM ({upgrades}) u""")
    parts.append(f"""
        SELECT customer_id, 'downgrade' AS kind, {day} + INTERVAL 7 DAY AS due,
               prev_tier || '|' || tier AS reason
        FROM s WHERE change = 'down'""")
    parts.append(f"""
        SELECT customer_id, 'welcome' AS kind, {day} + INTERVAL 14 DAY AS due,
               strftime(first_order_date, '%Y-%m-%d') AS reason
        FROM s WHERE stage = 'new'""")
    union = "\nUNION ALL\n".join(parts)
    return f"""
    WITH s AS (SELECT *, CASE tier {ranks} END AS rank FROM read_parquet('{snapshot}')),
    lc AS (SELECT customer_id, max(date) AS last_contact FROM interactions
           WHERE type IN ({contact_types}) AND date <= {day} GROUP BY customer_id),
    lcomp AS (SELECT customer_id, max(date) AS last_complaint FROM interactions
              WHERE type = 'complaint' AND date <= {day} GROUP BY customer_id),
    t AS ({union})
    SELECT t.customer_id, t.kind AS kind, CAST(t.due AS DATE) AS due_date, t.reason,
           s.owner AS owner, s.rank AS priority
    FROM t JOIN s USING (customer_id)
    ORDER BY t.customer_id, kind
    """


def upgrade_candidates(snapshot: ir.Table, policy: Policy, types: dict[str, ValueType],
                       aggregates: dict[tuple[str, str], float | None]) -> ir.Table | None:
    """Customers the rule of the tier above would take if its thresholds were the tier's
    ``upgrade_within`` easier, and who are not held in their tier by an override:
    (customer_id, reason = ``tier_above|name:value:op:threshold;…``). None when no tier
    has a rule above it to come near (clustering policies, or the test switched off)."""
    found: list[ir.Table] = []
    for above, tier in zip(policy.tiers, policy.tiers[1:], strict=False):
        within = policy.warnings_for(tier.key).upgrade_within
        if above.rule is None or within is None:
            continue
        exact = to_ibis(above.rule, snapshot, types, aggregates)
        near = to_ibis(above.rule, snapshot, types, aggregates, loosen_by=within)
        rows = snapshot.filter((snapshot.tier == tier.key) & snapshot.override_id.isnull()
                               & near & ~exact)
        missed = near_misses(above.rule, rows, types, aggregates, loosen_by=within)
        found.append(rows.select("customer_id",
                                 reason=ibis.literal(f"{above.key}|") + missed))
    if not found:
        return None
    return found[0].union(*found[1:]) if len(found) > 1 else found[0]


def candidates(con: duckdb.DuckDBPyConnection, policy: Policy, snapshot: str,
               as_of: dt.date, aggregates: dict[tuple[str, str], float | None]) -> pa.Table:
    columns = {r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{snapshot}')").fetchall()}
    if "owner" not in columns:
        raise TierwiseError("the run's snapshot has no owner column")
    backend = ibis.duckdb.from_connection(con)
    table = backend.sql(f"SELECT * FROM read_parquet('{snapshot}')")
    types = name_types(policy, snapshot_attributes(columns, policy))
    upgrades = upgrade_candidates(table, policy, types, aggregates)
    upgrades_sql = None if upgrades is None else str(ibis.to_sql(upgrades, dialect="duckdb"))
    return con.execute(candidate_sql(policy, snapshot, as_of, columns,
                                     upgrades_sql)).to_arrow_table()


def derive_tasks(con: duckdb.DuckDBPyConnection, appdb: sa.Engine, policy: Policy,
                 record: RunRecord, snapshot: str) -> TaskSync:
    """The work a recorded run of the workspace's book asks for, synced into the task list:
    its candidates (warnings, contacts due, upgrades) against the open tasks."""
    found = candidates(con, policy, snapshot, record.as_of, record.aggregate_values())
    return sync_tasks(appdb, record.id, record.as_of, found)


def sync_tasks(appdb: sa.Engine, run_id: int, as_of: dt.date, found: pa.Table) -> TaskSync:
    """Bring the task list in line with the run's candidates (see the module docstring).

    The open and done tasks are read into Arrow and compared with the candidates in DuckDB,
    so that only what changed passes through Python: on a large book most open tasks are the
    same from one run to the next."""
    t = schema.tasks
    now = dt.datetime.now(dt.UTC)
    with appdb.begin() as connection:
        open_now = fetch_arrow(connection, sa.select(
            t.c.id, t.c.customer_id, t.c.kind, t.c.due_date, t.c.reason, t.c.owner,
            t.c.priority).where(t.c.status == "open"))
        done_now = fetch_arrow(connection, sa.select(t.c.customer_id, t.c.kind).where(
            t.c.status == "done", t.c.cleared_at.is_(None)))
        plan = _plan(found, open_now, done_now)
        if plan["cleared_done"]:
            connection.execute(
                t.update().where(t.c.status == "done", t.c.cleared_at.is_(None),
                                 t.c.customer_id == sa.bindparam("c"),
                                 t.c.kind == sa.bindparam("k"))
                .values(cleared_at=as_of),
                [{"c": c, "k": k} for c, k in plan["cleared_done"]])
        if plan["changed"]:
            connection.execute(
                t.update().where(t.c.id == sa.bindparam("i"))
                .values(due_date=sa.bindparam("d"), reason=sa.bindparam("r"),
                        owner=sa.bindparam("o"), priority=sa.bindparam("p"),
                        updated_run_id=run_id),
                [{"i": i, "d": d, "r": r, "o": o, "p": p} for i, d, r, o, p in plan["changed"]])
        if plan["gone"]:
            connection.execute(
                t.update().where(t.c.id == sa.bindparam("i"))
                .values(status="closed", closed_at=now, updated_run_id=run_id,
                        closed_reason=f"condition cleared as of {as_of.isoformat()}"),
                [{"i": i} for (i,) in plan["gone"]])
        bulk_insert(connection, t, ("customer_id", "kind", "owner", "due_date", "priority",
                                    "reason", "status", "created_run_id", "updated_run_id",
                                    "created_at"),
                    ((c, k, o, d, p, r, "open", run_id, run_id, now)
                     for c, k, o, d, p, r in plan["new"]))
        counts = schema.open_task_counts
        connection.execute(counts.delete())
        bulk_insert(connection, counts, ("priority", "kind", "due_date", "n"),
                    plan["open_counts"])
    kept = open_now.num_rows - len(plan["gone"])
    return TaskSync(created=len(plan["new"]), updated=len(plan["changed"]),
                    closed=len(plan["gone"]), open=kept + len(plan["new"]))


def follow_owners(con: duckdb.DuckDBPyConnection, appdb: sa.Engine) -> int:
    """Give each open task its customer's owner as the store holds it now (after a customers
    file changed owners): the new owner sees the work at once and the old one no longer
    does. Compared in DuckDB, so only the moved tasks pass through Python; how many moved."""
    t = schema.tasks
    with appdb.begin() as connection:
        open_now = fetch_arrow(connection, sa.select(t.c.id, t.c.customer_id, t.c.owner)
                               .where(t.c.status == "open"))
        if open_now.num_rows == 0:
            return 0
        con.register("__tw_open_tasks", open_now)
        try:
            moved = con.execute(
                "SELECT o.id, c.owner FROM __tw_open_tasks o JOIN customers c "
                "USING (customer_id) WHERE c.owner IS DISTINCT FROM o.owner").fetchall()
        finally:
            con.unregister("__tw_open_tasks")
        if moved:
            connection.execute(t.update().where(t.c.id == sa.bindparam("i"))
                               .values(owner=sa.bindparam("o")),
                               [{"i": i, "o": o} for i, o in moved])
    return len(moved)


def _plan(found: pa.Table, open_now: pa.Table,
          done_now: pa.Table) -> dict[str, list[tuple[Any, ...]]]:
    """What sync_tasks writes: new candidates (neither open nor done), open tasks whose due
    date, reason, owner or priority moved, open tasks no longer found, and done tasks whose
    condition cleared (they may be raised again later)."""
    con = duckdb.connect()
    try:
        con.register("found", found)
        con.register("open_now", open_now)
        con.register("done_now", done_now)
        con.execute("""CREATE TEMP TABLE current AS SELECT id, customer_id, kind,
                       CAST(due_date AS DATE) AS due_date, reason, owner,
                       CAST(priority AS BIGINT) AS priority FROM open_now""")
        queries = {
            "new": """SELECT f.customer_id, f.kind, f.owner, f.due_date, f.priority, f.reason
                      FROM found f ANTI JOIN current c USING (customer_id, kind)
                      ANTI JOIN done_now d USING (customer_id, kind)
                      ORDER BY f.customer_id, f.kind""",
            "changed": """SELECT c.id, f.due_date, f.reason, f.owner, f.priority
                          FROM found f JOIN current c USING (customer_id, kind)
                          WHERE f.due_date IS DISTINCT FROM c.due_date
                             OR f.reason IS DISTINCT FROM c.reason
                             OR f.owner IS DISTINCT FROM c.owner
                             OR CAST(f.priority AS BIGINT) IS DISTINCT FROM c.priority
                          ORDER BY c.id""",
            "gone": """SELECT c.id FROM current c ANTI JOIN found f USING (customer_id, kind)
                       ORDER BY c.id""",
            "cleared_done": """SELECT DISTINCT d.customer_id, d.kind FROM done_now d
                               ANTI JOIN found f USING (customer_id, kind)""",
            # The open tasks after the sync: every candidate but those done by hand and
            # not open now, with the candidate's priority and due date (the open ones are
            # updated to them), counted for the dashboard.
            "open_counts": """SELECT CAST(f.priority AS BIGINT), f.kind,
                                     CAST(f.due_date AS DATE), count(*)
                              FROM found f
                              LEFT JOIN current c USING (customer_id, kind)
                              LEFT JOIN (SELECT DISTINCT customer_id, kind FROM done_now) d
                                   USING (customer_id, kind)
                              WHERE c.id IS NOT NULL OR d.customer_id IS NULL
                              GROUP BY ALL ORDER BY ALL""",
        }
        return {name: con.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        con.close()


@dataclass(frozen=True)
class Task:
    id: int
    customer_id: str
    kind: str
    owner: str | None
    due_date: dt.date
    priority: int | None
    reason: str
    status: str
    closed_reason: str | None
    note: str | None

    def describe(self, lang: str = "zh", labels: dict[str, str] | None = None) -> str:
        """The reason in words; ``reason`` holds the facts, language-neutral."""
        zh = is_zh(lang)
        parts = self.reason.split("|")
        labels = labels or {}
        if self.kind == "contact":
            last = parts[0] or ("无记录" if zh else "none")
            return (f"按服务标准应联系，上次联系 {last}" if zh
                    else f"contact due by the tier's cadence; last contact {last}")
        if self.kind == "churn_risk":
            return _churn_reason(parts, lang)
        if self.kind == "upgrade":
            return _upgrade_reason(parts, lang, labels)
        if self.kind == "complaint":
            return (f"{parts[0]} 的投诉尚未回访" if zh
                    else f"complaint of {parts[0]} not followed up")
        if self.kind == "credit_risk":
            amount = float(parts[1]) if len(parts) > 1 else 0.0
            return (f"逾期 {parts[0]} 天，逾期金额 {money(amount, lang)}" if zh
                    else f"{parts[0]} days overdue, {money(amount, lang)} overdue")
        if self.kind == "downgrade":
            before, after = (labels.get(p, p) for p in [*parts, "", ""][:2])
            return (f"等级下调：{before} → {after}，请告知客户经理" if zh
                    else f"tier down: {before} → {after}; tell the account manager")
        return (f"新客户（首单 {parts[0]}），安排欢迎" if zh
                else f"new customer (first order {parts[0]}): welcome them")

    def overdue(self, today: dt.date) -> bool:
        return self.status == "open" and self.due_date < today

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "due_date": self.due_date.isoformat()}


def _churn_reason(parts: list[str], lang: str) -> str:
    zh = is_zh(lang)
    test, facts = parts[0], parts[1:]
    if test == "p_alive":
        alive = f"{float(facts[0]):.0%}"
        return f"流失风险：仍活跃概率仅 {alive}" if zh else f"churn risk: P(alive) {alive}"
    if test == "gap":
        recency, gap = facts[0], f"{float(facts[1]):g}"
        return (f"流失风险：已 {recency} 天未购买，通常每 {gap} 天购买一次" if zh
                else f"churn risk: no order for {recency} days, usually every {gap} days")
    if test == "frequency":
        now, before = facts
        return (f"流失风险：购买次数从上期 {before} 次降至 {now} 次" if zh
                else f"churn risk: orders down from {before} to {now} against the prior window")
    stage = facts[0] if test == "stage" else test      # runs before the tests were named
    return (f"流失风险：阶段 {stage_label(stage, lang)}" if zh
            else f"churn risk: stage {stage_label(stage, lang)}")


def _upgrade_reason(parts: list[str], lang: str, labels: dict[str, str]) -> str:
    zh = is_zh(lang)
    target = labels.get(parts[0], parts[0])
    gaps = []
    for item in filter(None, (parts[1] if len(parts) > 1 else "").split(";")):
        name, current, op, bar = item.split(":")
        shown = (shown_value(name, float(current), lang), shown_value(name, float(bar), lang))
        gaps.append(f"{metric_label(name, lang)} {shown[0]}" + (f"，需 {op} {shown[1]}" if zh
                                                               else f", needs {op} {shown[1]}"))
    detail = ("（" + "；".join(gaps) + "）") if zh and gaps else (
        " (" + "; ".join(gaps) + ")" if gaps else "")
    return (f"接近升级到 {target}{detail}" if zh else f"close to {target}{detail}")


def list_tasks(appdb: sa.Engine, *, owner: str | None = None, kind: str | None = None,
               status: str = "open", task_id: int | None = None,
               customer_id: str | None = None) -> list[Task]:
    t = schema.tasks
    query = sa.select(t.c.id, t.c.customer_id, t.c.kind, t.c.owner, t.c.due_date,
                      t.c.priority, t.c.reason, t.c.status, t.c.closed_reason, t.c.note)
    if status != "all":
        query = query.where(t.c.status == status)
    if owner is not None:
        query = query.where(t.c.owner == owner)
    if task_id is not None:
        query = query.where(t.c.id == task_id)
    if customer_id is not None:
        query = query.where(t.c.customer_id == customer_id)
    if kind is not None:
        if kind not in KINDS:
            raise TierwiseError(f"unknown task kind {kind!r}; kinds: {', '.join(KINDS)}")
        query = query.where(t.c.kind == kind)
    query = query.order_by(t.c.due_date, t.c.priority, t.c.customer_id)
    with appdb.connect() as connection:
        return [Task(**row) for row in connection.execute(query).mappings()]


def open_counts(appdb: sa.Engine, today: dt.date,
                kinds: Sequence[str]) -> list[tuple[int | None, str, int, int]]:
    """Open tasks of ``kinds`` per tier rank (``priority``) and kind, with those due before
    ``today``: read from the counts kept at every sync and task done, not from the tasks."""
    c = schema.open_task_counts
    late = sa.func.sum(sa.case((c.c.due_date < today, c.c.n), else_=0))
    query = (sa.select(c.c.priority, c.c.kind, sa.func.sum(c.c.n), late)
             .where(c.c.kind.in_(list(kinds))).group_by(c.c.priority, c.c.kind))
    with appdb.connect() as connection:
        return [(p, str(k), int(n or 0), int(d or 0)) for p, k, n, d in
                connection.execute(query) if n]


def raised_warnings(appdb: sa.Engine, run_id: int, *, lang: str = "zh",
                    labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The warning tasks a run created (not those it found already open), for webhooks."""
    t = schema.tasks
    query = (sa.select(t.c.id, t.c.customer_id, t.c.kind, t.c.owner, t.c.due_date,
                       t.c.priority, t.c.reason, t.c.status, t.c.closed_reason, t.c.note)
             .where(t.c.created_run_id == run_id, t.c.kind.in_(WARNING_KINDS))
             .order_by(t.c.customer_id, t.c.kind))
    with appdb.connect() as connection:
        found = [Task(**row) for row in connection.execute(query).mappings()]
    return [{"task_id": w.id, "customer_id": w.customer_id, "kind": w.kind, "owner": w.owner,
             "due_date": w.due_date.isoformat(), "priority": w.priority,
             "text": w.describe(lang, labels)} for w in found]


def mark_done(appdb: sa.Engine, task_id: int, *, note: str | None, user: str) -> Task:
    t = schema.tasks
    with appdb.begin() as connection:
        status = connection.execute(sa.select(t.c.status).where(t.c.id == task_id)).scalar()
        if status is None:
            raise TierwiseError(f"no task {task_id}")
        if status != "open":
            raise TierwiseError(f"task {task_id} is {status}, not open")
        connection.execute(t.update().where(t.c.id == task_id).values(
            status="done", note=note, done_by=user, closed_at=dt.datetime.now(dt.UTC)))
        done = connection.execute(sa.select(t.c.priority, t.c.kind, t.c.due_date).where(
            t.c.id == task_id)).one()
        counts = schema.open_task_counts
        same = (counts.c.priority.is_(None) if done.priority is None
                else counts.c.priority == done.priority)
        connection.execute(counts.update().where(
            same, counts.c.kind == done.kind, counts.c.due_date == done.due_date)
            .values(n=counts.c.n - 1))
    return list_tasks(appdb, status="all", task_id=task_id)[0]
