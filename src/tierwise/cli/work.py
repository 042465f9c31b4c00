"""Commands for the work the runs ask for: tasks, reps, assign, webhooks, run-due."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table

from tierwise.cli.common import (
    engine_option,
    err,
    format_option,
    handles_errors,
    main,
    open_workspace,
    out,
    workspace_option,
)
from tierwise.common.i18n import is_zh
from tierwise.work.owners import Proposal
from tierwise.work.tasks import KINDS as TASK_KINDS
from tierwise.workspace import Workspace


@main.group("tasks", invoke_without_command=True)
@click.option("--owner", help="Only this account manager's tasks.")
@click.option("--kind", type=click.Choice(TASK_KINDS), help="Only tasks of this kind.")
@click.option("--overdue", is_flag=True, help="Only tasks past their due date.")
@click.option("--status", type=click.Choice(["open", "done", "closed", "all"]), default="open",
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@workspace_option
@click.pass_context
@handles_errors
def tasks_cmd(ctx: click.Context, owner: str | None, kind: str | None, overdue: bool,
              status: str, fmt: str, workspace: str | None) -> None:
    """The work the grading runs ask for: contacts due by the tier's cadence, churn and
    credit risk, complaints to follow up, upgrade candidates near the next tier, downgrades
    to tell, new customers to welcome (thresholds: the policy's `warnings`).

    \b
    Examples:
      tierwise tasks --owner 张伟 --overdue
      tierwise tasks --kind churn_risk --format csv > 流失预警.csv
      tierwise tasks done 42 --note "已电话回访"
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_workspace(workspace) as ws:
        today = dt.date.today()
        found = [t for t in ws.tasks(owner=owner, kind=kind, status=status)
                 if not overdue or t.overdue(today)]
        lang = ws.language
        _show_tasks(found, fmt, lang, ws.tier_labels(lang), today)


def _show_tasks(found: Sequence[Any], fmt: str, lang: str, labels: dict[str, str],
                today: dt.date) -> None:
    if fmt == "json":
        click.echo(json.dumps([{**t.to_json(), "text": t.describe(lang, labels)}
                               for t in found], ensure_ascii=False))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["id", "customer_id", "kind", "owner", "due_date", "priority",
                         "status", "text"])
        for t in found:
            writer.writerow([t.id, t.customer_id, t.kind, t.owner or "", t.due_date,
                             t.priority or "", t.status, t.describe(lang, labels)])
        return
    zh = is_zh(lang)
    table = Table()
    for header in (["编号", "客户", "类型", "负责人", "截止日期", "优先级", "说明"] if zh else
                   ["ID", "Customer", "Kind", "Owner", "Due", "Priority", "What"]):
        table.add_column(header)
    for t in found:
        due = f"[red]{t.due_date}[/]" if t.overdue(today) else str(t.due_date)
        table.add_row(str(t.id), t.customer_id, t.kind, t.owner or "", due,
                      str(t.priority or ""), t.describe(lang, labels))
    out.print(table)
    out.print(f"{len(found):,} " + ("项任务" if zh else "tasks"), highlight=False)


@tasks_cmd.command("done")
@click.argument("task_id", type=int)
@click.option("--note", help="What was done.")
@workspace_option
@handles_errors
def task_done_cmd(task_id: int, note: str | None, workspace: str | None) -> None:
    """Mark a task done; it stays done, and is not raised again while its condition lasts.

    \b
    Example:
      tierwise tasks done 42 --note "已电话回访"
    """
    with open_workspace(workspace) as ws:
        task = ws.task_done(task_id, note)
        out.print(("已完成：" if is_zh(ws.language) else "Done: ")
                  + f"#{task.id} {task.customer_id} {task.kind}", highlight=False)


@main.group("reps", invoke_without_command=True)
@format_option
@workspace_option
@click.pass_context
@handles_errors
def reps_cmd(ctx: click.Context, fmt: str, workspace: str | None) -> None:
    """The sales reps who own accounts: level, region, capacity per tier.

    \b
    Examples:
      tierwise reps import 销售名单.xlsx
      tierwise reps
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_workspace(workspace) as ws:
        reps = ws.reps()
        if fmt == "json":
            click.echo(json.dumps([{**r.__dict__, "capacity": dict(r.capacity)} for r in reps],
                                  ensure_ascii=False))
            return
        zh = is_zh(ws.language)
        keys, labels = _policy_tiers(ws)
        _print_reps(reps, keys, labels, zh)


def _print_reps(reps: Sequence[Any], keys: list[str], labels: dict[str, str], zh: bool) -> None:
    table = Table()
    for header in (["销售", "级别", "区域", "在职"] if zh
                   else ["Rep", "Level", "Region", "Active"]):
        table.add_column(header)
    for key in keys:
        table.add_column(labels.get(key, key), justify="right")
    for r in reps:
        caps = [("—" if r.cap(k) is None else str(r.cap(k))) for k in keys]
        table.add_row(r.name, str(r.level), r.region or "",
                      ("是" if r.active else "否") if zh else ("yes" if r.active else "no"),
                      *caps)
    out.print(table)


def _policy_tiers(ws: Workspace) -> tuple[list[str], dict[str, str]]:
    policy, _ = ws.policy()
    return policy.keys, {t.key: t.display(ws.language) for t in policy.tiers}


@reps_cmd.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@workspace_option
@handles_errors
def reps_import_cmd(path: str, workspace: str | None) -> None:
    """Load the reps from a CSV (UTF-8 or GBK) or Excel file: columns 姓名/name, 级别/level,
    区域/region, 在职/active, and one capacity column per tier (its key or label; empty: no
    limit). The file is the whole list: reps not in it are marked as left.

    \b
    Examples:
      tierwise reps import 销售名单.xlsx
      tierwise reps import reps.csv -w /srv/tierwise
    """
    with open_workspace(workspace) as ws:
        result = ws.import_reps(path)
        zh = is_zh(ws.language)
        out.print((f"新增 {result.added} 名，更新 {result.updated} 名，标记离职 "
                   f"{result.deactivated} 名" if zh else
                   f"{result.added} added, {result.updated} updated, {result.deactivated} "
                   "marked as left"), highlight=False)
        if result.ignored_columns:
            out.print(("未使用的列：" if zh else "columns not used: ")
                      + ", ".join(result.ignored_columns), highlight=False)


@main.command("assign")
@click.option("--apply", "apply_", is_flag=True, help="Write the proposed owners.")
@click.option("--limit", type=int, default=50, show_default=True,
              help="Moves shown in the table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@workspace_option
@handles_errors
def assign_cmd(apply_: bool, limit: int, fmt: str, workspace: str | None) -> None:
    """Propose account owners from the latest run: top-tier accounts to the most experienced
    reps, within each rep's capacity per tier, keeping current owners unless over capacity
    or gone, preferring the account's region. Shows the changes; --apply writes them and
    records each in the history.

    \b
    Examples:
      tierwise assign
      tierwise assign --format csv > 负责人调整.csv
      tierwise assign --apply
    """
    with open_workspace(workspace) as ws:
        proposal = ws.assign(apply=apply_)
        lang = ws.language
        zh = is_zh(lang)
        if fmt == "json":
            click.echo(json.dumps({**proposal.to_json(lang), "applied": apply_},
                                  ensure_ascii=False))
            return
        if fmt == "csv":
            _write_moves_csv(proposal, lang)
            return
        keys, labels = _policy_tiers(ws)
        _print_loads(proposal, keys, labels, zh)
        _print_moves(proposal, labels, lang, limit)
        _print_assign_totals(proposal, apply_, zh)


def _write_moves_csv(proposal: Proposal, lang: str) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(["customer_id", "name", "tier", "from_owner", "to_owner", "reason"])
    for m in proposal.moves:
        writer.writerow([m.customer_id, m.name or "", m.tier, m.from_owner or "",
                         m.to_owner or "", m.reason_text(lang)])


def _print_assign_totals(proposal: Proposal, applied: bool, zh: bool) -> None:
    placed, unplaced = len(proposal.placed), len(proposal.unplaced)
    out.print((f"运行 #{proposal.run_id}：{proposal.accounts:,} 个客户，保留 "
               f"{proposal.kept:,}，调整 {placed:,}，无人可接 {unplaced:,}" if zh else
               f"run #{proposal.run_id}: {proposal.accounts:,} accounts, {proposal.kept:,} "
               f"kept, {placed:,} to move, {unplaced:,} with no rep free"), highlight=False)
    if applied:
        out.print(f"已写入 {placed:,} 项负责人调整并记入历史" if zh
                  else f"{placed:,} owner changes written and recorded", highlight=False)
    elif placed:
        out.print("未写入：确认后加 --apply" if zh else "not written: add --apply to apply",
                  highlight=False)


def _print_loads(proposal: Proposal, keys: list[str], labels: dict[str, str], zh: bool) -> None:
    table = Table(title="负责人负荷：调整前 → 调整后 / 上限" if zh
                  else "Accounts per rep: before → after / capacity")
    table.add_column("销售" if zh else "Rep")
    for key in keys:
        table.add_column(labels.get(key, key), justify="right")
    cells: dict[str, dict[str, str]] = {}
    for load in proposal.loads:
        cap = "∞" if load.capacity is None else str(load.capacity)
        arrow = (f"{load.before}" if load.before == load.after
                 else f"{load.before} → {load.after}")
        cells.setdefault(load.rep, {})[load.tier] = f"{arrow} / {cap}"
    for rep, by_tier in cells.items():
        table.add_row(rep, *[by_tier.get(k, "") for k in keys])
    out.print(table)


def _print_moves(proposal: Proposal, labels: dict[str, str], lang: str, limit: int) -> None:
    if not proposal.moves:
        return
    zh = is_zh(lang)
    table = Table(title="调整" if zh else "Changes")
    for header in (["客户", "名称", "等级", "原负责人", "新负责人", "原因"] if zh else
                   ["Customer", "Name", "Tier", "From", "To", "Why"]):
        table.add_column(header)
    for m in proposal.moves[:limit]:
        to = m.to_owner or ("[red]无人可接[/]" if zh else "[red]nobody free[/]")
        table.add_row(m.customer_id, m.name or "", labels.get(m.tier, m.tier),
                      m.from_owner or "—", to, m.reason_text(lang))
    out.print(table)
    if len(proposal.moves) > limit:
        out.print(f"  … {len(proposal.moves) - limit:,} "
                  + ("项未列出（--limit 或 --format csv）" if zh
                     else "more (--limit or --format csv)"), highlight=False)


@main.group("webhooks")
def webhooks_group() -> None:
    """Webhooks: signed JSON POSTs to the URLs under `webhooks:` in tierwise.yaml.

    \b
    Examples:
      tierwise webhooks test --event tier.changed
      tierwise webhooks log --limit 50
    """


@webhooks_group.command("test")
@click.option("--event", type=click.Choice(["run.completed", "tier.changed", "warning.created"]),
              default="run.completed", show_default=True, help="Event name to send.")
@format_option
@workspace_option
@handles_errors
def webhooks_test(event: str, fmt: str, workspace: str | None) -> None:
    """Send a test event (one attempt) to the endpoints subscribed to it; exit 1 if any fails.

    \b
    Examples:
      tierwise webhooks test
      tierwise webhooks test --event tier.changed
    """
    with open_workspace(workspace) as ws:
        deliveries = ws.test_webhooks(event)
    _print_deliveries(deliveries, fmt)
    if not all(d.delivered for d in deliveries):
        sys.exit(1)


@webhooks_group.command("log")
@click.option("--limit", type=int, default=20, show_default=True, help="How many deliveries.")
@format_option
@workspace_option
@handles_errors
def webhooks_log(limit: int, fmt: str, workspace: str | None) -> None:
    """List recent webhook deliveries, newest first.

    \b
    Examples:
      tierwise webhooks log
      tierwise webhooks log --limit 100 --format json
    """
    with open_workspace(workspace) as ws:
        _print_deliveries(ws.webhook_deliveries(limit), fmt)


def _print_deliveries(deliveries: Sequence[Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([d.to_json() for d in deliveries], ensure_ascii=False))
        return
    table = Table()
    for header in ("created", "event", "url", "status", "attempts", "code", "error"):
        table.add_column(header)
    for d in deliveries:
        table.add_row(f"{d.created_at:%Y-%m-%d %H:%M:%S}", d.event, d.url, d.status,
                      str(d.attempts), "" if d.status_code is None else str(d.status_code),
                      d.error or "")
    out.print(table)



@main.command("run-due")
@engine_option
@workspace_option
@handles_errors
def run_due_cmd(engine: str | None, workspace: str | None) -> None:
    """Run every scheduled run that is due, once (`schedule:` in tierwise.yaml). Safe to
    call from cron or a systemd timer: a run missed while the machine was off is caught up,
    a second call at the same time does not run anything twice, a failed run is retried at
    the next call. Exits with 1 when a run failed.

    \b
    Examples:
      tierwise run-due
      tierwise run-due -w /srv/tierwise --engine spark
      # crontab, every 15 minutes:
      */15 * * * *  tierwise run-due -w /srv/tierwise >> /var/log/tierwise.log 2>&1
    """
    with open_workspace(workspace) as ws:
        zh = is_zh(ws.language)
        outcomes = ws.run_due(engine=engine)
        _print_outcomes(outcomes, zh)
        if any(o.status == "failed" for o in outcomes):
            sys.exit(1)


def _print_outcomes(outcomes: Sequence[Any], zh: bool) -> None:
    if not outcomes:
        out.print("没有到期的分级" if zh else "nothing is due", highlight=False)
    for o in outcomes:
        head = f"{o.slot.key} (as of {o.slot.as_of})"
        if o.status == "done":
            done = f"完成，运行 #{o.run_id}" if zh else f"done, run {o.run_id}"
            out.print(f"{head}: {done}", highlight=False)
        elif o.status == "skipped":
            out.print(f"{head}: " + ("另一进程正在运行" if zh else "claimed by another call"),
                      highlight=False)
        else:
            failed = "失败，下次重试：" if zh else "failed, retried next time: "
            err.print(f"{head}: {failed}{o.error}", highlight=False)
