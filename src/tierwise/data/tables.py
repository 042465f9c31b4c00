"""The canonical tables a run reads (customers, orders, interactions, payments) on one
backend, and the fingerprint of what they hold as of a date."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from tierwise.data.store import BOOKKEEPING_COLUMNS
from tierwise.errors import TierwiseError


@dataclass(frozen=True)
class CanonicalTables:
    """The canonical tables a run reads, as Ibis tables on one backend."""

    customers: ir.Table
    orders: ir.Table
    interactions: ir.Table
    label: str = "workspace store"
    # Invoices (tierwise.data.store payments); None: no receivables, their metrics are NULL.
    payments: ir.Table | None = None

    @classmethod
    def of_store(cls, backend: Any, label: str) -> CanonicalTables:
        """The canonical tables of a store connection (see tierwise.data.store)."""
        payments = backend.table("payments") if "payments" in backend.list_tables() else None
        return cls(backend.table("customers"), backend.table("orders"),
                   backend.table("interactions"), label=label, payments=payments)

    @property
    def attributes(self) -> list[str]:
        return [c for c in self.customers.columns
                if c not in BOOKKEEPING_COLUMNS and c != "customer_id"]


def latest_order_date(backend: Any, orders: ir.Table) -> dt.date:
    value = backend.execute(orders.order_date.max())
    if value is None or str(value) in ("NaT", "nan"):
        raise TierwiseError("there are no orders to grade; import orders first "
                            "(tierwise import orders FILE) or give --as-of")
    return value.date() if isinstance(value, dt.datetime) else value


# The orders' part of the fingerprint as aggregates of a pass over the orders (see below).
ORDER_ROWS, ORDER_HASH = "_tw_fingerprint_rows", "_tw_fingerprint_hash"
_HASH_MODULUS = 2_147_483_647


def _row_hash(table: ir.Table) -> ir.IntegerValue:
    # Order-independent: one hash per row (of the row as a struct, far cheaper than hashing
    # text), reduced below 2**31 and summed: no int64 overflow below 2**32 rows.
    return ibis.struct({c: table[c] for c in sorted(table.columns)}).hash() % _HASH_MODULUS


def order_fingerprint_aggregates(orders: ir.Table, as_of: dt.date) -> dict[str, ir.Scalar]:
    """The orders' part of :func:`data_fingerprint` as two aggregates that a pass over the
    orders grouped by anything can carry (a run's metrics pass does): the part is the sum
    of each over the groups, so the orders, the largest table, are not read twice."""
    dated = orders.order_date <= ibis.date(as_of)
    return {ORDER_ROWS: orders.count(where=dated),
            ORDER_HASH: _row_hash(orders).sum(where=dated)}


def data_fingerprint(backend: Any, tables: CanonicalTables, as_of: dt.date, *,
                     orders_part: tuple[int, int] | None = None) -> str:
    """A digest of the input rows as of the date: the same data gives the same fingerprint,
    and rows dated after the as-of date do not count. ``orders_part``: the orders' rows and
    hash sum as :func:`order_fingerprint_aggregates` gave them, instead of reading them."""
    as_of_day = ibis.date(as_of)
    dated = {
        "customers": tables.customers,
        "orders": tables.orders.filter(tables.orders.order_date <= as_of_day),
        "interactions": tables.interactions.filter(tables.interactions.date <= as_of_day),
    }
    if orders_part is not None:
        del dated["orders"]
    if tables.payments is not None:
        # An invoice's state as of the date: a payment made later does not count either.
        p = tables.payments
        as_of_payments = p.filter(p.invoice_date.coalesce(p.due_date) <= as_of_day).mutate(
            paid_date=ibis.cases((p.paid_date <= as_of_day, p.paid_date),
                                 else_=ibis.null("date")),
            paid_amount=ibis.cases((p.paid_date <= as_of_day, p.paid_amount),
                                   else_=ibis.null("float64")))
        dated["payments"] = as_of_payments
    # One query for every table (one action on Spark): one row of (n, h) per table.
    sums = []
    for i, table in enumerate(dated.values()):
        sums.append(table.aggregate(**{f"n{i}": table.count(),
                                       f"h{i}": _row_hash(table).sum()}))
    joined = sums[0]
    for more in sums[1:]:
        joined = joined.cross_join(more)
    result = backend.execute(joined)
    parts: list[Any] = [as_of.isoformat()]
    for i, kind in enumerate(dated):
        if kind == "payments" and not result[f"n{i}"].iloc[0]:
            continue              # no invoices as of the date: as if there were no table
        # The pair as one row, as it was when each table was a query of its own.
        pair = result[[f"n{i}", f"h{i}"]]
        parts.extend(str(v) for v in pair.iloc[0].tolist())
        if kind == "customers" and orders_part is not None:
            parts.extend(str(v) for v in orders_part)
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]
