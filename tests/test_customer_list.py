"""The customer list of a run (tierwise.reports.customers), kept in memory per process: every
page in the default order (tier best first, then score, then id), a rep's pages (only their
own customers, in the same order), filters and sorts, and a list that follows the store
when owners change — each compared with the run's snapshot read directly.

Data: 300 generated customers over 5 owners with random orders, value-tiers, one run.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tierwise.reports.customers import CustomerFilter
from tierwise.workspace import Workspace

OWNERS = ("张伟", "王芳", "李娜", "刘洋", "陈静")


@pytest.fixture
def graded(tmp_path: Path) -> Iterator[Workspace]:
    rng = random.Random(11)
    customers = tmp_path / "customers.csv"
    with customers.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["客户编号", "客户名称", "客户经理", "行业", "合作开始日期"])
        for i in range(300):
            out.writerow([f"C{i:04d}", f"客户{i}", OWNERS[i % 5], rng.choice(["制造业", "零售"]),
                          f"{rng.randint(2015, 2024)}-01-01"])
    orders = tmp_path / "orders.csv"
    with orders.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["订单号", "客户编号", "下单日期", "订单金额"])
        for n in range(3000):
            day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
            out.writerow([f"O{n}", f"C{rng.randint(0, 299):04d}", day.isoformat(),
                          round(rng.lognormvariate(11, 1.2), 2)])
    with Workspace.init(tmp_path / "ws") as ws:
        ws.import_files("customers", [customers])
        ws.import_files("orders", [orders])
        ws.grade(as_of=dt.date(2025, 12, 31))
        yield ws


def expected(ws: Workspace, owner: str | None = None) -> list[str]:
    """The run's customers in the list's default order, read from the snapshot itself,
    with today's owners from the store."""
    record = ws.run()
    keys = record.policy.keys
    owners = dict(ws.store().execute("SELECT customer_id, owner FROM customers").fetchall())
    rows = ws.assignments().to_pylist()
    rows.sort(key=lambda r: (keys.index(r["tier"]), -(r["score"] if r.get("score") is not None
                                                     else -1e300), r["customer_id"]))
    return [r["customer_id"] for r in rows
            if owner is None or (owners.get(r["customer_id"]) or r["owner"]) == owner]


def every_page(ws: Workspace, flt: CustomerFilter, scope: str | None) -> tuple[list[str], int]:
    ids: list[str] = []
    page, total = 1, None
    while True:
        _record, found = ws.customer_page(CustomerFilter(**{**flt.__dict__, "page": page}),
                                          scope=scope, facets=True)
        total = found.total
        ids += [r["customer_id"] for r in found.rows]
        if page >= found.pages:
            return ids, total
        page += 1


def test_every_page_in_the_default_order_is_the_snapshot_in_tier_and_score_order(
        graded: Workspace) -> None:
    ids, total = every_page(graded, CustomerFilter(per_page=37), None)
    assert total == 300 and ids == expected(graded)


def test_a_rep_pages_through_exactly_their_own_customers_in_the_same_order(
        graded: Workspace) -> None:
    for owner in ("王芳", "陈静"):
        ids, total = every_page(graded, CustomerFilter(per_page=13), owner)
        assert ids == expected(graded, owner) and total == 60
    ids, total = every_page(graded, CustomerFilter(), "nobody")
    assert ids == [] and total == 0


def test_filters_and_other_sorts_agree_with_the_default_order(graded: Workspace) -> None:
    order = expected(graded)
    top = graded.run().policy.keys[0]
    tiers = {r["customer_id"]: r["tier"] for r in graded.assignments().to_pylist()}
    ids, _ = every_page(graded, CustomerFilter(tier=top), None)
    assert ids == [c for c in order if tiers[c] == top]
    spend = {r["customer_id"]: r["annual_spend"] or 0 for r in graded.assignments().to_pylist()}
    ids, _ = every_page(graded, CustomerFilter(sort="-annual_spend", per_page=100), None)
    assert [spend[c] for c in ids] == sorted((spend[c] for c in ids), reverse=True)
    assert sorted(ids) == sorted(order)


def test_the_list_follows_an_owner_change_in_the_store(graded: Workspace,
                                                       tmp_path: Path) -> None:
    before, _ = every_page(graded, CustomerFilter(), "王芳")
    moved = before[0]
    change = tmp_path / "owners.csv"
    change.write_text(f"客户编号,客户经理\n{moved},陈静\n", encoding="utf-8")
    graded.import_files("customers", [change])
    after, total = every_page(graded, CustomerFilter(), "王芳")
    assert moved not in after and total == 59
    theirs, _ = every_page(graded, CustomerFilter(), "陈静")
    assert moved in theirs and theirs == expected(graded, "陈静")
