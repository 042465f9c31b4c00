"""The numbers behind the dashboard and the HTML report, read from a workspace's runs.

Each function reads only what it needs: a few columns of a run's snapshot (DuckDB over the
parquet file), the stored run summaries, or one grouped query on the app database. An
optional ``owner`` scopes everything to one account manager's customers (a sales rep's view):
the snapshot's ``owner`` column for the customers of a run, the task's owner for work.

* :func:`distribution` — customers, revenue and profit per tier against the target shares;
* :func:`pareto` — the Pareto/ABC curve: which share of customers carries 80% and 95% of the
  profit (of the spend when no profit is known);
* :func:`migration` — the tier × tier matrix between two runs;
* :func:`tier_history` — customers per tier run by run;
* :func:`work_by_tier` — open warnings and overdue contacts per tier;
* :func:`dashboard` — all of them, with the run's overview.

Every result is a frozen dataclass with ``to_json()`` (a JSON-ready dict).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.common.i18n import is_zh
from tierwise.errors import RunNotFound, WorkspaceError
from tierwise.policy.model import Policy
from tierwise.record.history import RunRecord
from tierwise.record.reading import RunReader
from tierwise.record.runs import snapshot_files
from tierwise.work.tasks import WARNING_KINDS, open_counts

ABC_CUTS = (0.8, 0.95)


# -- reading snapshots ------------------------------------------------------------------------
def _connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _quoted(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _snapshot(ws: RunReader, record: RunRecord, needed: Sequence[str],
              owner: str | None) -> str:
    """The run's snapshot (a file or a glob), checked to have the columns a query reads."""
    path = ws.snapshot(record)
    files = snapshot_files(path)
    if not files:
        raise WorkspaceError(f"the snapshot of run {record.id} is missing: {path}")
    names = set(pq.read_schema(files[0]).names)
    wanted = [*needed, *(["owner"] if owner is not None else [])]
    missing = [n for n in wanted if n not in names]
    if missing:
        raise WorkspaceError(f"the snapshot of run {record.id} has no "
                             f"{', '.join(missing)} column")
    return path


def _owner_filter(owner: str | None, column: str = "owner") -> tuple[str, list[Any]]:
    return ("", []) if owner is None else (f" WHERE {column} = ?", [owner])


def _lang(ws: RunReader, lang: str | None) -> str:
    return lang or ws.language


def _label(policy: Policy, key: str, lang: str) -> str:
    try:
        return policy.tier(key).display(lang)
    except KeyError:
        return key


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


# -- run overview -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Overview:
    """The run a view shows: when, which policy, how many customers, what changed."""

    run_id: int
    as_of: dt.date
    created_at: dt.datetime
    policy_name: str
    policy_hash: str
    previous_run_id: int | None
    owner: str | None
    customers: int
    upgraded: int
    downgraded: int
    new: int
    unchanged: int

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(),
                "created_at": self.created_at.isoformat(),
                "policy": {"name": self.policy_name, "hash": self.policy_hash},
                "previous_run_id": self.previous_run_id, "owner": self.owner,
                "customers": self.customers,
                "changes": {"upgraded": self.upgraded, "downgraded": self.downgraded,
                            "new": self.new, "unchanged": self.unchanged}}


def overview(ws: RunReader, run_id: int | None = None, owner: str | None = None) -> Overview:
    record = ws.run(run_id)
    path = _snapshot(ws, record, ["change"], owner)
    where, params = _owner_filter(owner)
    with _connect() as con:
        rows = con.execute(f"SELECT change, count(*) FROM read_parquet({_quoted(path)}){where} "
                           "GROUP BY change", params).fetchall()
    counts = {str(change): int(n) for change, n in rows}
    return Overview(run_id=record.id, as_of=record.as_of, created_at=record.created_at,
                    policy_name=record.policy_name, policy_hash=record.policy_hash,
                    previous_run_id=record.previous_run_id, owner=owner,
                    customers=sum(counts.values()), upgraded=counts.get("up", 0),
                    downgraded=counts.get("down", 0), new=counts.get("new", 0),
                    unchanged=counts.get("same", 0))


# -- distribution -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TierShare:
    key: str
    label: str
    customers: int
    customer_share: float | None
    revenue: float
    revenue_share: float | None
    profit: float | None            # None when no customer in view has a known profit
    profit_share: float | None
    target_share: tuple[float, float] | None
    within_target: bool | None      # None when the tier has no target share

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "customers": self.customers,
                "customer_share": self.customer_share, "revenue": self.revenue,
                "revenue_share": self.revenue_share, "profit": self.profit,
                "profit_share": self.profit_share,
                "target_share": list(self.target_share) if self.target_share else None,
                "within_target": self.within_target}


@dataclass(frozen=True)
class Distribution:
    run_id: int
    as_of: dt.date
    owner: str | None
    lang: str
    customers: int
    revenue: float
    profit: float | None
    tiers: tuple[TierShare, ...]     # policy order, best first

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "owner": self.owner,
                "lang": self.lang, "customers": self.customers, "revenue": self.revenue,
                "profit": self.profit, "tiers": [t.to_json() for t in self.tiers]}


def distribution(ws: RunReader, run_id: int | None = None, owner: str | None = None, *,
                 lang: str | None = None) -> Distribution:
    """Per tier (best first): customers, revenue (annual spend) and profit with their shares,
    and whether the customer share is within the tier's target share."""
    lang = _lang(ws, lang)
    record = ws.run(run_id)
    path = _snapshot(ws, record, ["tier", "annual_spend", "profit"], owner)
    where, params = _owner_filter(owner)
    with _connect() as con:
        rows = con.execute(
            f"""SELECT tier, count(*), coalesce(sum(annual_spend), 0), sum(profit), count(profit)
                FROM read_parquet({_quoted(path)}){where} GROUP BY tier""", params).fetchall()
    by_tier = {str(r[0]): (int(r[1]), float(r[2]), r[3], int(r[4])) for r in rows}
    total = sum(v[0] for v in by_tier.values())
    revenue = sum(v[1] for v in by_tier.values())
    profit_known = any(v[3] for v in by_tier.values())
    profit = sum(float(v[2] or 0.0) for v in by_tier.values()) if profit_known else None
    policy = record.policy
    keys = policy.keys + sorted(k for k in by_tier if k not in policy.keys)
    tiers = []
    for key in keys:
        customers, tier_revenue, tier_profit_raw, _ = by_tier.get(key, (0, 0.0, None, 0))
        tier_profit = float(tier_profit_raw or 0.0) if profit_known else None
        share = customers / total if total else None
        target = policy.tier(key).target_share if key in policy.keys else None
        within = (None if target is None or share is None
                  else target[0] - 1e-9 <= share <= target[1] + 1e-9)
        tiers.append(TierShare(
            key=key, label=_label(policy, key, lang), customers=customers,
            customer_share=share, revenue=tier_revenue,
            revenue_share=tier_revenue / revenue if revenue > 0 else None,
            profit=tier_profit,
            profit_share=_ratio(tier_profit, profit) if profit and profit > 0 else None,
            target_share=target, within_target=within))
    return Distribution(run_id=record.id, as_of=record.as_of, owner=owner, lang=lang,
                        customers=total, revenue=revenue, profit=profit, tiers=tuple(tiers))


# -- Pareto / ABC -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Pareto:
    """Customers ranked by value, best first: the cumulative share of value (``value_share``)
    against the cumulative share of customers (``customer_share``), from (0, 0) to (1, 1).

    Value is profit, or annual spend when no customer in view has a known profit. Customers
    without a value count as 0; losses count as 0 on the curve (it shows who carries the
    positive total) and are reported in ``loss_customers``/``loss``."""

    run_id: int
    as_of: dt.date
    owner: str | None
    lang: str
    metric: str                                 # profit | annual_spend
    customers: int
    total: float                                # positive total the shares are of
    customer_share: tuple[float, ...]
    value_share: tuple[float, ...]
    cut_80: float | None                        # share of customers carrying 80% of value
    cut_95: float | None
    top_20_share: float | None                  # share of value the top 20% carry
    abc: tuple[int, int, int]                   # customers in A (80%), B (next 15%), C
    loss_customers: int
    loss: float

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "owner": self.owner,
                "lang": self.lang, "metric": self.metric, "customers": self.customers,
                "total": self.total,
                "points": [[x, y] for x, y in zip(self.customer_share, self.value_share,
                                                  strict=True)],
                "cut_80": self.cut_80, "cut_95": self.cut_95,
                "top_20_share": self.top_20_share,
                "abc": {"A": self.abc[0], "B": self.abc[1], "C": self.abc[2]},
                "loss_customers": self.loss_customers, "loss": self.loss}


def pareto(ws: RunReader, run_id: int | None = None, owner: str | None = None,
           points: int = 101, *, lang: str | None = None) -> Pareto:
    """The Pareto curve downsampled to ``points`` points (fewer when there are fewer
    customers), and the ABC cut points."""
    if points < 2:
        raise ValueError("a Pareto curve needs at least 2 points")
    lang = _lang(ws, lang)
    record = ws.run(run_id)
    path = _snapshot(ws, record, ["annual_spend", "profit"], owner)
    filters = [("owner", "=", owner)] if owner is not None else None
    table = pq.read_table(path, columns=["annual_spend", "profit"], filters=filters)
    metric = "profit" if table["profit"].null_count < table.num_rows else "annual_spend"
    raw = table[metric].to_numpy(zero_copy_only=False).astype(np.float64)
    raw = np.nan_to_num(raw, nan=0.0)                    # nulls come out as NaN
    losses = raw < 0
    values = np.sort(np.where(losses, 0.0, raw))[::-1]
    n = int(values.size)
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    total = float(cumulative[-1])
    index = np.unique(np.rint(np.linspace(0, n, min(points, n + 1))).astype(np.int64))
    cut_80: float | None = None
    cut_95: float | None = None
    top_20: float | None = None
    abc = (0, 0, n)
    if total > 0:
        xs = index / n
        ys = np.minimum(cumulative[index] / total, 1.0)
        ys[-1] = 1.0

        def cut(level: float) -> int:      # fewest customers carrying `level` of the total
            return int(np.searchsorted(cumulative, level * total * (1 - 1e-12), side="left"))

        k80, k95 = cut(ABC_CUTS[0]), cut(ABC_CUTS[1])
        cut_80, cut_95 = k80 / n, k95 / n
        top_20 = float(cumulative[round(0.2 * n)] / total)
        abc = (k80, k95 - k80, n - k95)
    else:
        xs = index / n if n else np.array([0.0])
        ys = np.zeros_like(xs)
    return Pareto(run_id=record.id, as_of=record.as_of, owner=owner, lang=lang, metric=metric,
                  customers=n, total=total,
                  customer_share=tuple(float(x) for x in xs),
                  value_share=tuple(float(y) for y in ys),
                  cut_80=cut_80, cut_95=cut_95, top_20_share=top_20, abc=abc,
                  loss_customers=int(losses.sum()), loss=float(raw[losses].sum()))


# -- migration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Migration:
    """Customers by tier in run A (rows) and run B (columns); ``None`` is "not in the run"
    (new customers in the last row, customers gone in the last column)."""

    run_a: int
    as_of_a: dt.date
    run_b: int
    as_of_b: dt.date
    owner: str | None
    lang: str
    tiers: tuple[str | None, ...]          # row and column keys: best first, then None
    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]    # counts[i][j]: tier i in A → tier j in B
    upgraded: int
    downgraded: int
    unchanged: int
    new: int
    gone: int

    @property
    def shown(self) -> tuple[int, ...]:
        """Indices of the rows and columns to show: every tier, and "not in the run" when
        some customer is new or gone."""
        last = len(self.tiers) - 1
        outside = any(self.counts[last]) or any(row[last] for row in self.counts)
        return tuple(range(last + (1 if outside else 0)))

    @property
    def matrix(self) -> dict[tuple[str | None, str | None], int]:
        """Like history.Diff.matrix: the non-zero cells."""
        return {(a, b): n for a, row in zip(self.tiers, self.counts, strict=True)
                for b, n in zip(self.tiers, row, strict=True) if n}

    def to_json(self) -> dict[str, Any]:
        return {"run_a": {"id": self.run_a, "as_of": self.as_of_a.isoformat()},
                "run_b": {"id": self.run_b, "as_of": self.as_of_b.isoformat()},
                "owner": self.owner, "lang": self.lang,
                "tiers": [{"key": k, "label": label}
                          for k, label in zip(self.tiers, self.labels, strict=True)],
                "counts": [list(row) for row in self.counts],
                "upgraded": self.upgraded, "downgraded": self.downgraded,
                "unchanged": self.unchanged, "new": self.new, "gone": self.gone}


def _migration_runs(ws: RunReader, run_a: int | None,
                    run_b: int | None) -> tuple[RunRecord, RunRecord] | None:
    """As `tierwise diff`: the two latest runs; one id: that run against the run it
    continues; two ids: those. None when there is no earlier run to compare with."""
    if run_a is None and run_b is None:
        runs = ws.runs()
        return (runs[-2], runs[-1]) if len(runs) >= 2 else None
    if run_a is None or run_b is None:
        later = ws.run(run_b if run_a is None else run_a)
        if later.previous_run_id is None:
            return None
        try:
            return ws.run(later.previous_run_id), later
        except RunNotFound:
            return None
    return ws.run(run_a), ws.run(run_b)


def migration(ws: RunReader, run_a: int | None = None, run_b: int | None = None,
              owner: str | None = None, *, lang: str | None = None) -> Migration | None:
    """Who moved between two runs (default: the two latest), tier by tier; None when there
    is only one run. With an owner: the customers that owner has in run B (in run A for
    customers gone since)."""
    lang = _lang(ws, lang)
    pair = _migration_runs(ws, run_a, run_b)
    if pair is None:
        return None
    a, b = pair
    path_a = _snapshot(ws, a, ["customer_id", "tier"], owner)
    path_b = _snapshot(ws, b, ["customer_id", "tier"], owner)
    owner_a = ", owner" if owner is not None else ""
    where = " WHERE coalesce(b.owner, a.owner) = ?" if owner is not None else ""
    with _connect() as con:
        rows = con.execute(
            f"""SELECT a.tier, b.tier, count(*)
                FROM (SELECT customer_id, tier{owner_a} FROM read_parquet({_quoted(path_a)})) a
                FULL JOIN (SELECT customer_id, tier{owner_a}
                           FROM read_parquet({_quoted(path_b)})) b
                  ON a.customer_id = b.customer_id{where}
                GROUP BY ALL""", [owner] if owner is not None else []).fetchall()
    found = {(x, y): int(n) for x, y, n in rows}
    policy_b, policy_a = b.policy, a.policy
    keys: list[str] = list(policy_b.keys)
    keys += [k for k in policy_a.keys if k not in keys]
    keys += sorted({k for pair_ in found for k in pair_ if k is not None and k not in keys})
    tiers: list[str | None] = [*keys, None]
    zh = is_zh(lang)
    labels = [_label(policy_b if k in policy_b.keys else policy_a, k, lang) for k in keys]
    labels.append("未分级" if zh else "not graded")
    counts = tuple(tuple(found.get((x, y), 0) for y in tiers) for x in tiers)
    rank = {k: i for i, k in enumerate(keys)}
    upgraded = downgraded = unchanged = new = gone = 0
    for (x, y), n in found.items():
        if x is None:
            new += n
        elif y is None:
            gone += n
        elif x == y:
            unchanged += n
        elif rank[y] < rank[x]:
            upgraded += n
        else:
            downgraded += n
    return Migration(run_a=a.id, as_of_a=a.as_of, run_b=b.id, as_of_b=b.as_of, owner=owner,
                     lang=lang, tiers=tuple(tiers), labels=tuple(labels), counts=counts,
                     upgraded=upgraded, downgraded=downgraded, unchanged=unchanged, new=new,
                     gone=gone)


# -- tier history -----------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryPoint:
    run_id: int
    as_of: dt.date
    customers: int
    counts: tuple[int, ...]            # per TierHistory.tiers

    def to_json(self, keys: Sequence[str]) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(),
                "customers": self.customers,
                "tiers": dict(zip(keys, self.counts, strict=True))}


@dataclass(frozen=True)
class TierHistory:
    owner: str | None
    lang: str
    tiers: tuple[str, ...]             # the latest policy's tiers best first, then older ones
    labels: tuple[str, ...]
    runs: tuple[HistoryPoint, ...]     # in run order

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "lang": self.lang,
                "tiers": [{"key": k, "label": label}
                          for k, label in zip(self.tiers, self.labels, strict=True)],
                "runs": [r.to_json(self.tiers) for r in self.runs]}


def tier_history(ws: RunReader, owner: str | None = None, *,
                 lang: str | None = None) -> TierHistory:
    """Customers per tier in every run, from the stored run summaries; with an owner, from
    the runs' snapshots (the customers the owner had in each run)."""
    lang = _lang(ws, lang)
    runs = ws.runs()
    per_run: dict[int, dict[str, int]] = {}
    if owner is None:
        for record in runs:
            per_run[record.id] = {str(t["tier"]): int(t["customers"]) for t in record.summary}
    else:
        files = {}
        for record in runs:
            path = ws.snapshot(record)
            parts = snapshot_files(path)
            if parts and "owner" in pq.read_schema(parts[0]).names:
                files[path] = record.id
                per_run[record.id] = {}
        if files:
            listed = ", ".join(_quoted(Path(f)) for f in files)
            with _connect() as con:
                rows = con.execute(
                    f"""SELECT filename, tier, count(*)
                        FROM read_parquet([{listed}], filename = true, union_by_name = true)
                        WHERE owner = ? GROUP BY ALL""", [owner]).fetchall()
            for filename, tier, n in rows:
                per_run[files[str(filename)]][str(tier)] = int(n)
    keys: list[str] = []
    labels: list[str] = []
    for record in reversed(runs):                      # latest policy first
        for tier in record.policy.tiers:
            if tier.key not in keys:
                keys.append(tier.key)
                labels.append(tier.display(lang))
    for counts in per_run.values():
        for key in counts:
            if key not in keys:
                keys.append(key)
                labels.append(key)
    points = tuple(
        HistoryPoint(run_id=record.id, as_of=record.as_of,
                     customers=sum(per_run[record.id].values()),
                     counts=tuple(per_run[record.id].get(k, 0) for k in keys))
        for record in runs if record.id in per_run)
    return TierHistory(owner=owner, lang=lang, tiers=tuple(keys), labels=tuple(labels),
                       runs=points)


# -- work by tier -----------------------------------------------------------------------------
WORK_KINDS = ("contact", *WARNING_KINDS)


@dataclass(frozen=True)
class TierWork:
    key: str | None                    # None: customers not in the run
    label: str
    contact: int                       # open contact tasks (due within the week or overdue)
    contact_overdue: int
    churn_risk: int
    complaint: int
    credit_risk: int
    warnings_overdue: int              # open warnings past their due date

    @property
    def warnings(self) -> int:
        return self.churn_risk + self.complaint + self.credit_risk

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "contact": self.contact,
                "contact_overdue": self.contact_overdue, "churn_risk": self.churn_risk,
                "complaint": self.complaint, "credit_risk": self.credit_risk,
                "warnings": self.warnings, "warnings_overdue": self.warnings_overdue}


@dataclass(frozen=True)
class WorkByTier:
    run_id: int
    owner: str | None
    lang: str
    today: dt.date
    tiers: tuple[TierWork, ...]

    def total(self, field: str) -> int:
        return sum(int(getattr(t, field)) for t in self.tiers)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "owner": self.owner, "lang": self.lang,
                "today": self.today.isoformat(), "tiers": [t.to_json() for t in self.tiers]}


def work_by_tier(ws: RunReader, owner: str | None = None, today: dt.date | None = None, *,
                 run_id: int | None = None, lang: str | None = None) -> WorkByTier:
    """Open warnings (churn_risk, complaint, credit_risk) and contact tasks per tier of the
    latest run (or ``run_id``), with those overdue as of ``today``; with an owner, that
    owner's tasks (as ``tierwise tasks --owner``).

    A task's tier is its ``priority``, the rank of its customer's tier in the run of the
    book that last brought the open tasks in line (tierwise.work.tasks); everyone's are
    read from the counts kept with the tasks (a few thousand rows at 1.5M open tasks), one
    owner's counted over their tasks."""
    lang = _lang(ws, lang)
    today = today or dt.date.today()
    record = ws.run(run_id)
    if owner is None:          # everyone's: the counts kept with the tasks
        ranked: list[Any] = open_counts(ws.appdb, today, WORK_KINDS)
    else:                      # one owner's few: counted over their tasks
        t = schema.tasks
        overdue = sa.func.sum(sa.case((t.c.due_date < today, 1), else_=0))
        query = (sa.select(t.c.priority, t.c.kind, sa.func.count(), overdue)
                 .where(t.c.status == "open", t.c.kind.in_(WORK_KINDS), t.c.owner == owner)
                 .group_by(t.c.priority, t.c.kind))
        with ws.appdb.connect() as connection:
            ranked = list(connection.execute(query).all())
    known = record.policy.keys
    rows = [(known[rank - 1] if rank and 0 < rank <= len(known) else None, kind, n, late)
            for rank, kind, n, late in ranked]
    cells: dict[str | None, dict[str, tuple[int, int]]] = {}
    for tier, kind, n, late in rows:
        cells.setdefault(tier, {})[str(kind)] = (int(n), int(late or 0))
    policy = record.policy
    keys: list[str | None] = [*policy.keys]
    keys += sorted(k for k in cells if k is not None and k not in keys)
    if None in cells:
        keys.append(None)
    zh = is_zh(lang)
    tiers = []
    for key in keys:
        got = cells.get(key, {})
        tiers.append(TierWork(
            key=key,
            label=(_label(policy, key, lang) if key is not None
                   else ("不在本次分级" if zh else "not in the run")),
            contact=got.get("contact", (0, 0))[0],
            contact_overdue=got.get("contact", (0, 0))[1],
            churn_risk=got.get("churn_risk", (0, 0))[0],
            complaint=got.get("complaint", (0, 0))[0],
            credit_risk=got.get("credit_risk", (0, 0))[0],
            warnings_overdue=sum(got.get(k, (0, 0))[1] for k in WARNING_KINDS)))
    return WorkByTier(run_id=record.id, owner=owner, lang=lang, today=today,
                      tiers=tuple(tiers))


# -- everything -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dashboard:
    overview: Overview
    distribution: Distribution
    pareto: Pareto
    migration: Migration | None
    history: TierHistory
    work: WorkByTier

    def to_json(self) -> dict[str, Any]:
        return {"overview": self.overview.to_json(),
                "distribution": self.distribution.to_json(),
                "pareto": self.pareto.to_json(),
                "migration": self.migration.to_json() if self.migration else None,
                "history": self.history.to_json(), "work": self.work.to_json()}


def dashboard(ws: RunReader, run_id: int | None = None, owner: str | None = None, *,
              lang: str | None = None, today: dt.date | None = None,
              points: int = 101) -> Dashboard:
    """The whole dashboard of a run (default: the latest): its migration is against the
    run it continues when ``run_id`` is given, else between the two latest runs."""
    lang = _lang(ws, lang)
    record = ws.run(run_id)
    # A recorded run never changes: its figures are computed once per process (keyed by
    # the workspace, the run, the runs there are, the owner and the language); the open
    # work comes from the task counts each time.
    key = (ws.snapshot(record), record.id, run_id, tuple(r.id for r in ws.runs()), owner,
           lang, points)
    figures = _figures.get(key)
    if figures is None:
        figures = (overview(ws, record.id, owner),
                   distribution(ws, record.id, owner, lang=lang),
                   pareto(ws, record.id, owner, points, lang=lang),
                   migration(ws, None, run_id, owner, lang=lang),
                   tier_history(ws, owner, lang=lang))
        while len(_figures) >= FIGURES_KEPT:
            _figures.pop(next(iter(_figures)), None)
        _figures[key] = figures
    return Dashboard(*figures, work=work_by_tier(ws, owner, today, run_id=record.id,
                                                 lang=lang))


FIGURES_KEPT = 16             # runs × owners × languages whose figures a process keeps
_figures: dict[tuple[Any, ...], tuple[Overview, Distribution, Pareto, Migration | None,
                                      TierHistory]] = {}
