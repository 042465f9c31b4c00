"""`tierwise demo`: a workspace with realistic synthetic data, imported through the same path
a user's Excel and CSV exports take, and graded at each month end of the last year."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from tierwise.demo.export_files import write_files
from tierwise.demo.synthetic import generate
from tierwise.errors import WorkspaceError
from tierwise.metrics.per_customer import add_months
from tierwise.record.runs import RunSummary
from tierwise.workspace import CONFIG_NAME, Workspace


def month_end(day: dt.date) -> dt.date:
    first_of_next = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first_of_next - dt.timedelta(days=1)


def month_ends(last: dt.date, count: int) -> list[dt.date]:
    """The `count` month ends up to and including `last`'s month, oldest first."""
    first = last.replace(day=1)
    return [month_end(add_months(first, -i)) for i in reversed(range(count))]


def build_demo(folder: Path, *, n_customers: int = 2000, seed: int = 7,
               today: dt.date | None = None, months: int = 12,
               report: Callable[[str], None] = print) -> tuple[RunSummary, Path]:
    if (folder / CONFIG_NAME).exists():
        raise WorkspaceError(f"{folder} already holds a workspace; choose a new folder")
    today = today or dt.date.today()
    end = today.replace(day=1) - dt.timedelta(days=1)        # last complete month
    # The reps file's capacity columns are named after the value-tiers tiers, which
    # import_reps reads through the workspace's policy.
    with Workspace.init(folder, policy="value-tiers") as ws:
        report(f"Generating {n_customers:,} customers with 4 years of orders up to {end}…")
        data = generate(n_customers, seed=seed, end=end)
        files = write_files(data, ws.root / "samples")
        for kind in ("customers", "orders", "interactions", "payments"):
            result = ws.import_files(kind, [files[kind]])
            report(f"Imported {files[kind].name}: accepted {result.accepted}, "
                   f"rejected {result.rejected}")
        reps = ws.import_reps(files["reps"])
        active = sum(rep.active for rep in ws.reps())
        report(f"Imported {files['reps'].name}: added {reps.added} reps, "
               f"updated {reps.updated}, {active} active")
        summary: RunSummary | None = None
        for as_of in month_ends(end, months):
            summary = ws.grade(as_of=as_of)
            report(f"Graded as of {as_of}: run {summary.run_id}")
        assert summary is not None
        return summary, ws.root
