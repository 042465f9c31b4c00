"""The demo's receivables (应收账款) table, for :func:`tierwise.demo.synthetic.generate`.

Receivables: one invoice per purchase of the last 18 months, issued on the order date and due
after the customer's payment terms (30 or 60 days, longer for bigger buyers). Most are paid
on or a little before the due date; slow payers (more among declining and lapsed customers)
often pay 10–90 days late; a few recent invoices are partly paid; and about 3% of customers
(more among declining and lapsed ones) stopped paying some time before ``end``, leaving
invoices unpaid well past due. The payments are drawn from their own random stream, so
adding them left the other tables as they were.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tierwise.demo.columns import _dates

# Receivables: days of order history invoiced (~18 months); the share of customers on 60-day
# rather than 30-day terms by size (大型, 中型, 小型, 微型); per segment (growing, steady,
# declining, lapsed, new, prospect) the share of slow payers and of customers who stopped
# paying; how often a slow / other payer pays an invoice late.
_INVOICE_DAYS = 548
_NET60_SHARE = np.array([0.6, 0.4, 0.25, 0.15])
_SLOW_PAYER_SHARE = np.array([0.04, 0.04, 0.12, 0.15, 0.04, 0.0])
_DEFAULTER_SHARE = np.array([0.015, 0.015, 0.06, 0.12, 0.015, 0.0])
_LATE_RATE_SLOW, _LATE_RATE_OTHER = 0.3, 0.02


def _payments(rng: np.random.Generator, orders: pa.Table, oc: np.ndarray, epoch: np.ndarray,
              amount: np.ndarray, segment: np.ndarray, size: np.ndarray,
              end_day: int) -> pa.Table:
    """Invoices for the purchases of the last ~18 months (see the module docstring).

    ``oc``, ``epoch`` and ``amount`` are the orders' customer positions, dates (days since
    1970) and amounts, in the rows' order; invoice ids are the order ids with AR for SO."""
    n = len(segment)
    terms = np.where(rng.random(n) < _NET60_SHARE[size], 60, 30)
    slow = rng.random(n) < _SLOW_PAYER_SHARE[segment]
    defaulter = rng.random(n) < _DEFAULTER_SHARE[segment]
    stop_back = np.floor(rng.uniform(0.0, 90.0, n)).astype(np.int64)

    rows = np.flatnonzero((amount > 0) & (epoch > end_day - _INVOICE_DAYS))
    c, issued = oc[rows], epoch[rows]
    k = len(rows)
    due = issued + terms[c]
    early = np.floor(rng.exponential(6.0, k)).astype(np.int64)
    late = rng.random(k) < np.where(slow[c], _LATE_RATE_SLOW, _LATE_RATE_OTHER)
    lateness = rng.integers(10, 91, k)
    pay_day = np.where(late, due + lateness, np.maximum(due - early, issued + 1))
    # A few invoices of the last weeks (not yet or just due) are partly paid so far.
    partial = ((due >= end_day - 30) & (issued < end_day - 3)
               & (rng.random(k) < 0.1))
    part_day = issued + 1 + np.floor(rng.random(k) * (end_day - issued)).astype(np.int64)
    part_amount = np.round(amount[rows] * rng.uniform(0.3, 0.9, k), 2)
    # Defaulters stopped paying up to 90 days before their last invoice that is more than 30
    # days past due at the end, so each of them has at least one such invoice.
    old_enough = issued <= end_day - terms[c] - 31
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, c[old_enough], issued[old_enough])
    stop = np.where(defaulter & (latest > np.iinfo(np.int64).min), latest - stop_back,
                    np.iinfo(np.int64).max)
    unpaid = issued >= stop[c]

    paid = ((pay_day <= end_day) | partial) & ~unpaid
    paid_day = np.where(partial, part_day, pay_day)
    paid_amount = np.where(partial, part_amount, amount[rows])
    return pa.table({
        "invoice_id": pc.utf8_replace_slice(orders["order_id"].take(pa.array(rows)), 0, 2,
                                            "AR").combine_chunks(),
        "customer_id": orders["customer_id"].take(pa.array(rows)).combine_chunks(),
        "invoice_date": _dates(issued),
        "due_date": _dates(due),
        "amount": pa.array(amount[rows], pa.float64()),
        "paid_date": _dates(paid_day, ~paid),
        "paid_amount": pa.array(paid_amount, pa.float64(), mask=~paid),
    })
