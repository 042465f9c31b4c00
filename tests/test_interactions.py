"""`tierwise log`: one interaction at a time, the same row an import would make, counted by
the interaction metrics; bad input refused with a clear message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.test_cli import run
from tierwise.errors import InputError
from tierwise.workspace import Workspace

AS_OF = dt.date(2025, 6, 30)


def complaints(ws: Workspace, customer: str) -> int:
    """As the customer's explanation shows it (the run's policy does not read complaints, so
    explain computes them for the customer: tierwise.metrics.plan)."""
    ws.grade(as_of=AS_OF)
    return int(ws.explain(customer).metrics["complaints_12m"])


def test_a_logged_complaint_counts_in_the_next_run(ws: Workspace) -> None:
    before = complaints(ws, "C3")
    logged = ws.log_interaction("C3", "投诉", date=dt.date(2025, 6, 1), note="交货延迟",
                                satisfaction=2)
    assert (logged.kind, logged.created) == ("complaint", True)
    assert complaints(ws, "C3") == before + 1


def test_logging_the_same_interaction_twice_adds_it_once(ws: Workspace) -> None:
    first = ws.log_interaction("C1", "拜访", date=dt.date(2025, 6, 18), note="季度回访")
    again = ws.log_interaction("C1", "visit", date=dt.date(2025, 6, 18), note="季度回访")
    assert first.created and not again.created
    assert first.interaction_id == again.interaction_id


def test_an_imported_row_and_a_logged_one_are_the_same(ws: Workspace, tmp_path: Path) -> None:
    logged = ws.log_interaction("C2", "电话", date=dt.date(2025, 5, 5), note="催款")
    export = tmp_path / "互动.csv"
    export.write_text("客户编号,日期,类型,备注\nC2,2025-05-05,电话,催款\n", encoding="utf-8")
    result = ws.import_files("interactions", [export])
    assert result.accepted == 0 and logged.created


@pytest.mark.parametrize(("customer", "kind", "day", "satisfaction", "message"), [
    ("C1", "complain", AS_OF, None, "did you mean 'complaint'"),
    ("C1", "飞鸽传书", AS_OF, None, "unknown interaction type"),
    ("NOPE", "visit", AS_OF, None, "unknown customer 'NOPE'"),
    ("C1", "visit", dt.date.today() + dt.timedelta(days=3), None, "in the future"),
    ("C1", "survey", AS_OF, 7, "between 1 and 5"),
])
def test_bad_input_is_refused(ws: Workspace, customer: str, kind: str, day: dt.date,
                              satisfaction: float | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ws.log_interaction(customer, kind, date=day, satisfaction=satisfaction)


def test_cli_log(tmp_path: Path) -> None:
    folder = str(tmp_path / "cli")
    run("init", folder, "--policy", str(DATA / "policy.yaml"))
    run("import", "customers", str(DATA / "customers.csv"), "-w", folder)
    assert "已记录：C1 拜访 2025-06-18" in run("log", "C1", "拜访", "--date", "2025-06-18",
                                           "--note", "季度回访", "-w", folder).output
    assert "已有相同记录" in run("log", "C1", "visit", "--date", "2025-06-18", "--note",
                              "季度回访", "-w", folder).output
    bad = run("log", "C1", "complain", "-w", folder, ok=False)
    assert bad.exit_code != 0 and "did you mean 'complaint'" in bad.output
