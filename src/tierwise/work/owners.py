"""Owner assignment (C10): which sales rep serves which account.

The reps table (``tierwise reps import FILE``) lists the reps: name, level (experience; higher
is more senior), region, whether still active, and per tier how many accounts each may own
(an empty cell: no limit; 0: none of that tier, as for a newcomer and the top tier).
:func:`propose` turns the latest run's tiers and the current owners into a proposal:

1. Accounts are taken best tier first, and within a tier by value (score, else annual
   spend), so that when a cap bites the least valuable accounts are the ones that move.
2. An account keeps its owner when the owner is an active rep with room left in the
   account's tier. Otherwise it needs a new owner: it has none, its owner left (inactive or
   not in the table), or its owner is over the tier's capacity.
3. An account that needs an owner gets, among the active reps with room in its tier and
   preferring those of the account's region: in the top tier the most experienced rep, in
   the other tiers the least loaded (fewest accounts, then the lower level, so newcomers start
   on the lower tiers); ties by name. With no rep left with room it stays where it is, listed
   as unplaced.

:func:`apply` writes the moves: the owner in the store's customers table, each change in the
app database's ``owner_changes`` history, and the open tasks of a moved account to its new
owner. A later import of a customer file that carries owners sets the owners it holds.
"""

from __future__ import annotations

import datetime as dt
import heapq
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.appdb.database import bulk_insert
from tierwise.common.i18n import is_zh
from tierwise.data.ingest.readers import open_source
from tierwise.errors import InputError, TierwiseError
from tierwise.policy.model import Policy

REASONS = {
    "no_owner": ("无负责人", "no owner"),
    "owner_left": ("原负责人已离职", "owner left"),
    "not_a_rep": ("原负责人不在销售名单中", "owner not in the reps table"),
    "over_capacity": ("原负责人超出该等级容量", "owner over the tier's capacity"),
}
_NAME_HEADERS = ("name", "rep", "姓名", "销售", "销售代表", "客户经理", "负责人", "名字")
_LEVEL_HEADERS = ("level", "experience", "seniority", "级别", "等级", "经验", "职级")
_REGION_HEADERS = ("region", "区域", "地区", "大区")
_ACTIVE_HEADERS = ("active", "在职", "状态", "是否在职")
_LEVEL_WORDS = {"新人": 0, "新手": 0, "初级": 1, "中级": 2, "高级": 3, "资深": 4, "专家": 5}
_ACTIVE_WORDS = {"是": True, "在职": True, "true": True, "yes": True, "y": True, "1": True,
                 "否": False, "离职": False, "false": False, "no": False, "n": False,
                 "0": False}
_CAPACITY_AFFIXES = re.compile(r"^(capacity[_ ]?|容量|上限)|([_ ]?capacity|容量|上限|数量)$")


@dataclass(frozen=True)
class Rep:
    name: str
    level: int = 0
    region: str | None = None
    active: bool = True
    capacity: Mapping[str, int | None] = field(default_factory=dict)  # by tier; None: any

    def cap(self, tier: str) -> int | None:
        return self.capacity.get(tier)


class Account(NamedTuple):    # a tuple: a book has a million of them
    customer_id: str
    name: str | None
    tier: str
    value: float
    region: str | None
    owner: str | None


@dataclass(frozen=True)
class Move:
    customer_id: str
    name: str | None
    tier: str
    from_owner: str | None
    to_owner: str | None          # None: no rep has room in the tier (unplaced)
    reason: str                   # a key of REASONS

    def reason_text(self, lang: str = "zh") -> str:
        zh, en = REASONS[self.reason]
        return zh if is_zh(lang) else en


@dataclass(frozen=True)
class Load:
    rep: str
    tier: str
    before: int
    after: int
    capacity: int | None


@dataclass(frozen=True)
class Proposal:
    run_id: int
    accounts: int
    kept: int
    moves: list[Move]
    loads: list[Load]

    @property
    def placed(self) -> list[Move]:
        return [m for m in self.moves if m.to_owner is not None]

    @property
    def unplaced(self) -> list[Move]:
        return [m for m in self.moves if m.to_owner is None]

    def to_json(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "run_id": self.run_id, "accounts": self.accounts, "kept": self.kept,
            "moved": len(self.placed), "unplaced": len(self.unplaced),
            "moves": [{**m.__dict__, "reason_text": m.reason_text(lang)} for m in self.moves],
            "loads": [load.__dict__ for load in self.loads],
        }


# -- the proposal ------------------------------------------------------------------------------

def propose(accounts: Iterable[Account], reps: Sequence[Rep], tiers: Sequence[str], *,
            run_id: int) -> Proposal:
    """Who should own which account (see the module docstring)."""
    by_name = {r.name: r for r in reps}
    active = [r for r in reps if r.active]
    if not active:
        raise TierwiseError("no active reps: import them with `tierwise reps import FILE`")
    rank = {key: i for i, key in enumerate(tiers)}
    ordered = sorted(accounts, key=lambda a: (rank[a.tier], -a.value, a.customer_id))
    before: Counter[tuple[str, str]] = Counter((a.owner, a.tier) for a in ordered if a.owner)
    owned: Counter[tuple[str, str]] = Counter()
    needing: list[tuple[Account, str]] = []
    for account in ordered:
        reason = _keeps(account, by_name, owned)
        if reason is None:
            owned[account.owner or "", account.tier] += 1
        else:
            needing.append((account, reason))
    kept = len(ordered) - len(needing)
    load: Counter[str] = Counter()
    for (owner, _tier), n in owned.items():
        load[owner] += n
    moves = []
    chooser = _Chooser(active, tiers[0] if tiers else "", owned, load)
    for account, reason in needing:
        rep = chooser.pick(account.tier, account.region)
        moves.append(Move(account.customer_id, account.name, account.tier, account.owner,
                          rep.name if rep else None, reason))
    return Proposal(run_id=run_id, accounts=len(ordered), kept=kept, moves=moves,
                    loads=_loads(reps, tiers, before, owned))


def _keeps(account: Account, reps: Mapping[str, Rep],
           owned: Counter[tuple[str, str]]) -> str | None:
    """None when the account stays with its owner, else why it needs a new one."""
    if not account.owner:
        return "no_owner"
    rep = reps.get(account.owner)
    if rep is None:
        return "not_a_rep"
    if not rep.active:
        return "owner_left"
    cap = rep.cap(account.tier)
    if cap is not None and owned[rep.name, account.tier] >= cap:
        return "over_capacity"
    return None


class _Chooser:
    """Picks reps by preference with heaps, lazily re-keyed as loads change: a book of a
    million accounts and a hundred reps is a million heap operations, not 10^8 comparisons."""

    def __init__(self, reps: Sequence[Rep], top_tier: str, owned: Counter[tuple[str, str]],
                 load: Counter[str]) -> None:
        self.reps, self.top_tier, self.owned, self.load = reps, top_tier, owned, load
        self.heaps: dict[tuple[str, str | None], list[tuple[Any, ...]]] = {}

    def _key(self, rep: Rep, tier: str, taking: int = 0) -> tuple[Any, ...]:
        """The rep's place in the order, once it has taken ``taking`` more accounts."""
        load = self.load[rep.name] + taking
        if tier == self.top_tier:
            return (-rep.level, load, rep.name)
        return (load, rep.level, rep.name)

    def _room(self, rep: Rep, tier: str) -> bool:
        cap = rep.cap(tier)
        return cap is None or self.owned[rep.name, tier] < cap

    def _heap(self, tier: str, region: str | None) -> list[tuple[Any, ...]]:
        heap = self.heaps.get((tier, region))
        if heap is None:
            heap = [(*self._key(r, tier), i) for i, r in enumerate(self.reps)
                    if region is None or r.region == region]
            heapq.heapify(heap)
            self.heaps[tier, region] = heap
        return heap

    def pick(self, tier: str, region: str | None) -> Rep | None:
        for scope in ([region, None] if region else [None]):
            rep = self._pop(self._heap(tier, scope), tier)
            if rep is not None:
                self.owned[rep.name, tier] += 1
                self.load[rep.name] += 1
                return rep
        return None

    def _pop(self, heap: list[tuple[Any, ...]], tier: str) -> Rep | None:
        while heap:
            entry = heap[0]
            rep = self.reps[entry[-1]]
            if not self._room(rep, tier):
                heapq.heappop(heap)                 # full for this tier: for good
                continue
            current = (*self._key(rep, tier), entry[-1])
            if current != entry:                    # its load moved since it was pushed
                heapq.heapreplace(heap, current)
                continue
            heapq.heapreplace(heap, (*self._key(rep, tier, taking=1), entry[-1]))
            return rep
        return None


def _loads(reps: Sequence[Rep], tiers: Sequence[str], before: Counter[tuple[str, str]],
           after: Counter[tuple[str, str]]) -> list[Load]:
    return [Load(r.name, t, before[r.name, t], after[r.name, t], r.cap(t))
            for r in reps for t in tiers
            if before[r.name, t] or after[r.name, t] or (r.active and r.cap(t) != 0)]


# -- reading the reps file --------------------------------------------------------------------

@dataclass(frozen=True)
class RepsFile:
    reps: list[Rep]
    ignored_columns: list[str]


def read_reps(path: Path, policy: Policy) -> RepsFile:
    """The reps of a CSV (UTF-8 or GBK) or Excel file; errors name the file, row and column.

    Columns: name (姓名), level (级别: a number or 新人/初级/中级/高级/资深/专家), region (区域),
    active (在职: 是/否), and one capacity column per tier named by its key or label
    (``vip``, ``VIP客户``, ``VIP客户容量``, ``capacity_vip``)."""
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as workdir:
        source = open_source(con, path, Path(workdir))
        headers = {h: c for h, c in source.columns.items() if str(h).strip()}
        rows = con.execute(f"SELECT * FROM {source.relation} ORDER BY __row").fetchall()
        names = [d[0] for d in con.description or []]
    found = {"name": _header(headers, _NAME_HEADERS), "level": _header(headers, _LEVEL_HEADERS),
             "region": _header(headers, _REGION_HEADERS),
             "active": _header(headers, _ACTIVE_HEADERS)}
    if found["name"] is None:
        raise InputError("no column of rep names (name / 姓名); columns found: "
                         + ", ".join(headers), file=str(path))
    if not rows:
        # The file is the whole list, so an empty one would mark every rep as left.
        raise InputError("the reps file has headers but no rows: nothing imported (a reps "
                         "file lists every rep; one missing is marked as left)",
                         file=str(path))
    capacity = {h: tier for h in headers if (tier := _capacity_tier(h, policy)) is not None}
    used = {h for h in found.values() if h} | set(capacity)
    reps: dict[str, Rep] = {}
    for values in rows:
        row = dict(zip(names, values, strict=True))
        cell = {h: _text(row[c]) for h, c in headers.items()}
        where = {"file": str(path), "row": row["__row"]}
        name = cell[found["name"]]
        if name is None:
            if any(cell.values()):
                raise InputError("the rep has no name", column=found["name"], **where)
            continue
        if name in reps:
            raise InputError(f"rep {name!r} is listed twice", column=found["name"], **where)
        reps[name] = Rep(
            name=name,
            level=_level(cell, found["level"], where),
            region=cell[found["region"]] if found["region"] else None,
            active=_active(cell, found["active"], where),
            capacity={tier: _capacity(cell, h, where) for h, tier in capacity.items()})
    return RepsFile(list(reps.values()), [h for h in headers if h not in used])


def _text(value: Any) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def _header(headers: Mapping[str, str], wanted: Sequence[str]) -> str | None:
    lowered = {h.strip().lower(): h for h in headers}
    return next((lowered[w] for w in wanted if w in lowered), None)


def _capacity_tier(header: str, policy: Policy) -> str | None:
    bare = _CAPACITY_AFFIXES.sub("", header.strip().lower()).strip()
    for tier in policy.tiers:
        if bare in {tier.key.lower(), tier.label.lower(), tier.label_en.lower()} - {""}:
            return tier.key
    return None


def _level(cell: Mapping[str, str | None], header: str | None, where: dict[str, Any]) -> int:
    text = cell[header] if header else None
    if text is None:
        return 0
    if text in _LEVEL_WORDS:
        return _LEVEL_WORDS[text]
    try:
        return int(float(text))
    except ValueError:
        raise InputError(f"level {text!r} is not a number or one of "
                         + "/".join(_LEVEL_WORDS), column=header, **where) from None


def _active(cell: Mapping[str, str | None], header: str | None, where: dict[str, Any]) -> bool:
    text = cell[header] if header else None
    if text is None:
        return True
    if text.lower() not in _ACTIVE_WORDS:
        raise InputError(f"active {text!r}: write 是/否 (yes/no)", column=header, **where)
    return _ACTIVE_WORDS[text.lower()]


def _capacity(cell: Mapping[str, str | None], header: str,
              where: dict[str, Any]) -> int | None:
    text = cell[header]
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if number < 0 or number != int(number):
        raise InputError(f"capacity {text!r} is not a whole number of accounts (empty: no "
                         "limit)", column=header, **where)
    return int(number)


# -- the app database ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RepsImport:
    added: int
    updated: int
    deactivated: int
    ignored_columns: list[str]


def save_reps(appdb: sa.Engine, reps: Sequence[Rep], ignored: list[str]) -> RepsImport:
    """The file is the whole list: reps it names are added or updated, the others are
    marked inactive (they keep their history, and their accounts move on the next assign)."""
    t = schema.reps
    now = dt.datetime.now(dt.UTC)
    with appdb.begin() as connection:
        stored = {r.name: r for r in _stored_reps(connection)}
        added = [r for r in reps if r.name not in stored]
        updated = [r for r in reps if r.name in stored and stored[r.name] != r]
        gone = [n for n, r in stored.items() if r.active and n not in {x.name for x in reps}]
        for rep in updated:
            connection.execute(t.update().where(t.c.name == rep.name).values(
                level=rep.level, region=rep.region, active=rep.active,
                capacity=dict(rep.capacity), updated_at=now))
        if gone:
            connection.execute(t.update().where(t.c.name.in_(gone))
                               .values(active=False, updated_at=now))
        if added:     # a few dozen rows, with JSON: through SQLAlchemy, not bulk_insert
            connection.execute(t.insert(), [
                {"name": r.name, "level": r.level, "region": r.region, "active": r.active,
                 "capacity": dict(r.capacity), "updated_at": now} for r in added])
    return RepsImport(len(added), len(updated), len(gone), ignored)


def load_reps(appdb: sa.Engine) -> list[Rep]:
    with appdb.connect() as connection:
        return _stored_reps(connection)


def _stored_reps(connection: sa.Connection) -> list[Rep]:
    t = schema.reps
    return [Rep(name=r.name, level=r.level, region=r.region, active=r.active,
                capacity=dict(r.capacity or {}))
            for r in connection.execute(sa.select(t).order_by(t.c.name))]


def accounts(con: duckdb.DuckDBPyConnection, snapshot: str,
             tiers: Sequence[str]) -> list[Account]:
    """The run's customers with their tier and value, and today's owner and region, in the
    order propose takes them (its sort then has nothing to move)."""
    columns = {r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{snapshot}')").fetchall()}
    value = "coalesce(s.score, s.annual_spend, 0)" if "score" in columns else \
        "coalesce(s.annual_spend, 0)"
    ranks = " ".join(f"WHEN '{key}' THEN {i}" for i, key in enumerate(tiers))
    rows = con.execute(f"""
        SELECT s.customer_id, c.name, s.tier, CAST({value} AS DOUBLE), c.region, c.owner
        FROM read_parquet('{snapshot}') s JOIN customers c USING (customer_id)
        ORDER BY CASE s.tier {ranks} END, 4 DESC, 1""").fetchall()
    return list(map(Account._make, rows))


def apply(con: duckdb.DuckDBPyConnection, appdb: sa.Engine, proposal: Proposal, *,
          user: str) -> int:
    """Write the proposal's placed moves (owners, history, open tasks); how many moved."""
    moves = proposal.placed
    if not moves:
        return 0
    now = dt.datetime.now(dt.UTC)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE TEMP TABLE _tw_moves (customer_id VARCHAR, owner VARCHAR)")
        con.executemany("INSERT INTO _tw_moves VALUES (?, ?)",
                        [(m.customer_id, m.to_owner) for m in moves])
        con.execute("UPDATE customers SET owner = m.owner FROM _tw_moves m "
                    "WHERE customers.customer_id = m.customer_id")
        con.execute("DROP TABLE _tw_moves")
        with appdb.begin() as connection:   # commits before the store does: see below
            recorded = _recorded_already(connection, moves)
            bulk_insert(connection, schema.owner_changes,
                        ("customer_id", "from_owner", "to_owner", "reason", "run_id",
                         "changed_at", "changed_by"),
                        ((m.customer_id, m.from_owner, m.to_owner, m.reason,
                          proposal.run_id, now, user) for m in moves
                         if m.customer_id not in recorded))
            t = schema.tasks
            by_owner: dict[str, list[str]] = defaultdict(list)
            for m in moves:
                by_owner[m.to_owner or ""].append(m.customer_id)
            for owner, customers in by_owner.items():
                for start in range(0, len(customers), 10_000):
                    connection.execute(t.update().where(
                        t.c.status == "open",
                        t.c.customer_id.in_(customers[start:start + 10_000]))
                        .values(owner=owner))
        # The history is written; the store's commit is the last step and cannot conflict
        # (a DuckDB store has one writer). Should it fail (a crash, a full disk), the store
        # keeps the old owners and the next apply proposes the same moves again: their
        # history rows are found already written (_recorded_already) and not doubled.
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(moves)


def _recorded_already(connection: sa.Connection, moves: Sequence[Move]) -> set[str]:
    """Customers whose latest recorded owner change is this very move (same from, same to):
    written by an apply whose store commit then failed, so the store still shows the old
    owner. Their history is not written twice."""
    oc = schema.owner_changes
    wanted = {m.customer_id: (m.from_owner, m.to_owner) for m in moves}
    latest: dict[str, tuple[int, str | None, str]] = {}
    ids = list(wanted)
    for start in range(0, len(ids), 10_000):
        rows = connection.execute(sa.select(oc.c.id, oc.c.customer_id, oc.c.from_owner,
                                            oc.c.to_owner)
                                  .where(oc.c.customer_id.in_(ids[start:start + 10_000])))
        for row_id, customer, from_owner, to_owner in rows:
            if customer not in latest or row_id > latest[customer][0]:
                latest[customer] = (row_id, from_owner, to_owner)
    return {c for c, (_, f, t) in latest.items() if (f, t) == wanted[c]}


@dataclass(frozen=True)
class OwnerChange:
    customer_id: str
    from_owner: str | None
    to_owner: str
    reason: str
    run_id: int | None
    changed_at: dt.datetime
    changed_by: str


def owner_history(appdb: sa.Engine, customer_id: str) -> list[OwnerChange]:
    t = schema.owner_changes
    query = (sa.select(t.c.customer_id, t.c.from_owner, t.c.to_owner, t.c.reason, t.c.run_id,
                       t.c.changed_at, t.c.changed_by)
             .where(t.c.customer_id == customer_id).order_by(t.c.id))
    with appdb.connect() as connection:
        return [OwnerChange(**row) for row in connection.execute(query).mappings()]
