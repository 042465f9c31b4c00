"""The `tierwise` command line: a thin layer over `tierwise.workspace.Workspace`.

Results go to stdout (tables, JSON, CSV); progress and notes go to stderr, so
`tierwise grade --format json | jq` always sees exactly one JSON document.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import secrets
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from tierwise.common import formatting
from tierwise.common.i18n import is_zh, t
from tierwise.common.vocabulary import interaction_label, metric_label
from tierwise.data.ingest import KINDS, ImportResult
from tierwise.errors import TierwiseError
from tierwise.grading.backtest import Backtest, period_ends
from tierwise.grading.explanation import Explanation
from tierwise.grading.lifecycle import stage_label
from tierwise.grading.run import RunSummary, TierSummary
from tierwise.grading.what_if import WhatIf
from tierwise.policy.loading import load_policy_file, load_policy_text
from tierwise.policy.presets import PRESETS, policy_source, preset_text
from tierwise.reports.targets import write_target_list
from tierwise.work.owners import REASONS, Proposal
from tierwise.work.tasks import KINDS as TASK_KINDS
from tierwise.workspace import Workspace

# Piped output is not cut to 80 columns: tables stay readable in files and pagers.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

workspace_option = click.option(
    "-w", "--workspace", "workspace", type=click.Path(file_okay=False), default=None,
    help="Workspace folder (default: $TIERWISE_WORKSPACE, else the current folder).")
format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table", show_default=True, help="Output format.")
run_option = click.option("--run", "run_id", type=int, default=None,
                          help="Run id (default: the latest run).")


def handles_errors(command: F) -> F:
    """Turn TierwiseError and file-system errors into a one-line message and exit status 1."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TierwiseError as error:
            err.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
            sys.exit(1)
        except OSError as error:     # missing folder, no permission, file open in Excel
            where = f" ({error.filename})" if error.filename else ""
            err.print(f"[bold red]error:[/] {error.strerror or error}{where}", markup=True,
                      highlight=False)
            sys.exit(1)
    return wrapper  # type: ignore[return-value]


def parse_date(_ctx: Any, _param: Any, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierwise")
def main() -> None:
    """tierwise — customer tiering (客户分级).

    \b
    Typical session:
      tierwise init mycompany && cd mycompany
      tierwise import customers 客户.xlsx
      tierwise import orders 订单.csv
      tierwise grade
      tierwise explain C000123
      tierwise export -o 客户分级表.xlsx
    """


# -- workspace ---------------------------------------------------------------------------
@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--policy", default="value-tiers", show_default=True,
              help=f"Preset ({', '.join(PRESETS)}) or policy file to start from.")
@handles_errors
def init(directory: str, policy: str) -> None:
    """Create a workspace folder with a commented tierwise.yaml and policy.yaml.

    \b
    Example:
      tierwise init mycompany --policy abc
    """
    with Workspace.init(directory, policy=policy) as ws:
        err.print(f"Created workspace {ws.root}\n  settings: {ws.root / 'tierwise.yaml'}"
                  f"\n  policy:   {ws.root / 'policy.yaml'} (edit it to change tiers and rules)")


# -- import ------------------------------------------------------------------------------
@main.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("files", nargs=-1, required=True)
@click.option("--map", "mappings", multiple=True, metavar="源列=field",
              help="Map a source column to a field, e.g. --map 单据号=order_id (repeatable).")
@click.option("--strict", is_flag=True, help="Fail the whole import if any row is rejected.")
@workspace_option
@handles_errors
def import_(kind: str, files: tuple[str, ...], mappings: tuple[str, ...], strict: bool,
            workspace: str | None) -> None:
    """Import customers, orders, interactions or payments from CSV, Excel (.xlsx) or Parquet.

    \b
    Headers map automatically from English and common Chinese names; encodings (UTF-8,
    UTF-8 with BOM, GBK) are detected. Rejected rows are kept in the workspace's rejects/
    folder with file, row, column and reason. Re-importing the same file changes nothing.
    \b
    Examples:
      tierwise import customers 客户.xlsx
      tierwise import orders 订单.csv 订单2.csv --map 单据号=order_id
      tierwise import orders 'lake/orders-*.parquet' --strict
      tierwise import payments 应收账款.xlsx
    """
    column_map = _parse_mappings(mappings)
    with Workspace(workspace) as ws:
        with err.status(f"Importing {kind}…"):
            result = ws.import_files(kind, list(files), column_map=column_map,  # type: ignore[arg-type]
                                     strict=strict)
        _print_import(result)


def _parse_mappings(mappings: Sequence[str]) -> dict[str, str]:
    column_map: dict[str, str] = {}
    for item in mappings:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise click.BadParameter(f"expected 源列=field, got {item!r}", param_hint="--map")
        column_map[source.strip()] = target.strip()
    return column_map


def _print_import(result: ImportResult) -> None:
    for report in result.files:
        mapped = ", ".join(f"{src}→{dst}" for src, dst in report.mapping.items())
        err.print(f"{report.path}: {report.rows} rows  [{mapped}]", highlight=False)
    out.print(f"{result.kind}: accepted {result.accepted}, updated {result.updated}, "
              f"unchanged {result.unchanged}, rejected {result.rejected}", highlight=False)
    if result.created_customers:
        sample = ", ".join(result.created_customers[:5])
        more = " …" if len(result.created_customers) > 5 else ""
        out.print(f"created {len(result.created_customers)} customers known only by id: "
                  f"{sample}{more}", highlight=False)
    if result.rejects_path:
        out.print(f"rejected rows and reasons: {result.rejects_path}", highlight=False)


# -- grading -----------------------------------------------------------------------------
@main.command("log")
@click.argument("customer_id")
@click.argument("kind", metavar="TYPE")
@click.option("--date", "day", callback=parse_date, help="YYYY-MM-DD (default: today).")
@click.option("--note", help="What happened.")
@click.option("--satisfaction", type=click.FloatRange(1, 5), help="1–5.")
@workspace_option
@handles_errors
def log_cmd(customer_id: str, kind: str, day: dt.date | None, note: str | None,
            satisfaction: float | None, workspace: str | None) -> None:
    """Record one interaction: visit/拜访, video/视频会议, call/电话, email/邮件, event/活动,
    survey/回访 or complaint/投诉.

    \b
    Examples:
      tierwise log C000123 拜访 --date 2025-06-18 --note "季度回访，提出新需求"
      tierwise log C000123 complaint --note "交货延迟" --satisfaction 2
    """
    with Workspace(workspace) as ws:
        logged = ws.log_interaction(customer_id, kind, date=day, note=note,
                                    satisfaction=satisfaction)
        zh = is_zh(ws.language)
        what = f"{logged.customer_id} {interaction_label(logged.kind, ws.language)} {logged.date}"
        if logged.created:
            out.print(("已记录：" if zh else "Recorded: ") + what, highlight=False)
        else:
            again = "已有相同记录，未重复添加：" if zh else "Already recorded, not added again: "
            out.print(again + what, highlight=False)


engine_option = click.option(
    "--engine", type=click.Choice(["duckdb", "spark"]),
    help="Engine to grade on (default: engine: in tierwise.yaml, else duckdb).")


@main.command("grade")
@click.option("--as-of", callback=parse_date, help="As-of date YYYY-MM-DD (default: latest order).")
@click.option("--policy", help="Policy file or preset (default: the workspace's policy).")
@click.option("--orders", "orders", multiple=True,
              help="Grade straight from order files (path or glob; CSV/Excel/Parquet).")
@click.option("--customers", "customers", multiple=True, help="Customer file(s) for --orders.")
@click.option("--interactions", "interactions", multiple=True,
              help="Interaction file(s) for --orders.")
@click.option("--payments", "payments", multiple=True,
              help="Invoice file(s) for --orders (receivables: overdue_amount, overdue_days).")
@click.option("--dry-run", is_flag=True,
              help="What-if: grade without recording a run and list who would move against "
                   "the latest run (as of its date unless --as-of).")
@click.option("--limit", type=int, default=20, show_default=True,
              help="With --dry-run: list at most N moving customers (table output).")
@engine_option
@format_option
@workspace_option
@handles_errors
def grade_cmd(as_of: dt.date | None, policy: str | None, orders: tuple[str, ...],
              customers: tuple[str, ...], interactions: tuple[str, ...],
              payments: tuple[str, ...], dry_run: bool,
              limit: int, engine: str | None, fmt: str, workspace: str | None) -> None:
    """Grade every customer and record an immutable run.

    \b
    Examples:
      tierwise grade
      tierwise grade --as-of 2025-12-31 --policy rfm
      tierwise grade --orders 'exports/orders-*.parquet' --customers exports/customers.csv
      tierwise grade --format json | jq .tiers
      tierwise grade --dry-run --policy new-policy.yaml
      tierwise grade --engine spark        # on Spark (engine: in tierwise.yaml sets master)
    """
    if (customers or interactions or payments) and not orders:
        raise click.UsageError("--customers/--interactions/--payments grade from files: "
                               "give --orders too")
    if dry_run:
        if orders:
            raise click.UsageError("--dry-run compares with the workspace's runs: it does not "
                                   "take --orders")
        with Workspace(workspace) as ws:
            with err.status("Grading (dry run)…"):
                result = ws.what_if(policy=policy, as_of=as_of)
            if fmt == "json":
                click.echo(json.dumps(result.to_json(), ensure_ascii=False, default=str))
            else:
                _print_what_if(result, ws, limit)
        return
    files: dict[str, Sequence[str]] | None = (
        {"orders": orders, "customers": customers, "interactions": interactions,
         "payments": payments}
        if orders else None)
    with Workspace(workspace) as ws:
        with err.status("Grading…"):
            summary = ws.grade(as_of=as_of, policy=policy, files=files, engine=engine)
        if summary.rejected_rows:
            err.print(f"[yellow]{summary.rejected_rows} rows of the files were rejected and "
                      f"left out; see {ws.rejects_dir}[/]", highlight=False)
        if fmt == "json":
            click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
        else:
            _print_summary(summary, ws.language)


def _target_text(tier: TierSummary) -> str:
    low, high = tier.target_share or (None, None)
    return "" if low is None or high is None else f"{low * 100:.0f}–{high * 100:.0f}%"


def _print_summary(summary: RunSummary, lang: str) -> None:
    zh = is_zh(lang)
    table = Table(title=(f"Run {summary.run_id} · as of {summary.as_of} · "
                         f"{summary.policy_name} ({summary.policy_hash})"))
    headers = (["等级", "客户数", "占比", "目标占比", "收入", "收入占比", "利润", "利润占比"] if zh
               else ["Tier", "Customers", "Share", "Target", "Revenue", "Rev. share", "Profit",
                     "Profit share"])
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for tier in summary.tiers:
        target = _target_text(tier)
        table.add_row(tier.label, f"{tier.customers:,}",
                      formatting.share(tier.customer_share), target,
                      formatting.money(tier.revenue, lang), formatting.share(tier.revenue_share),
                      formatting.money(tier.profit, lang), formatting.share(tier.profit_share))
    out.print(table)
    c = summary.changes
    words = (("升级", "降级", "新增", "不变") if zh
             else ("upgraded", "downgraded", "new", "unchanged"))
    since = (f" since run {summary.previous_run_id}" if summary.previous_run_id
             else " (first run)")
    out.print(f"{summary.customers:,} customers; changes{since}: "
              f"{words[0]} {c['upgraded']}, {words[1]} {c['downgraded']}, "
              f"{words[2]} {c['new']}, {words[3]} {c['unchanged']}", highlight=False)


def _print_what_if(result: WhatIf, ws: Workspace, limit: int) -> None:
    lang = ws.language
    zh = is_zh(lang)
    table = Table(title=(f"{'试算（未保存）' if zh else 'Dry run (not recorded)'} · "
                         f"{'截至' if zh else 'as of'} {result.as_of} · "
                         f"{result.policy_name} ({result.policy_hash})"))
    headers = (["等级", "客户数", "占比", "目标占比", "收入占比"] if zh
               else ["Tier", "Customers", "Share", "Target", "Rev. share"])
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for tier in result.tiers:
        target = _target_text(tier)
        table.add_row(tier.label, f"{tier.customers:,}", formatting.share(tier.customer_share),
                      target, formatting.share(tier.revenue_share))
    out.print(table)
    if result.against is None:
        out.print("没有已保存的分级可比较" if zh else "No recorded run to compare with.")
        return
    old_labels = {t.key: t.display(lang) for t in result.against.policy.tiers}
    new_labels = {t.tier: t.label for t in result.tiers}
    none = "（无）" if zh else "(none)"
    out.print(("与第{id}次分级（{policy}，截至 {as_of}）相比：{moved:,} 位客户会变动，"
               "{same:,} 位不变" if zh else
               "Against run {id} ({policy}, as of {as_of}): {moved:,} customers would move, "
               "{same:,} would not").format(
        id=result.against.id, policy=result.against.policy_name, as_of=result.against.as_of,
        moved=result.moved, same=result.unchanged), highlight=False)
    pairs = Table(box=None, padding=(0, 2))
    for header in (["原等级", "新等级", "客户数"] if zh else ["From", "To", "Customers"]):
        pairs.add_column(header, justify="right" if header in ("客户数", "Customers") else "left")
    for item in result.to_json()["pairs"]:
        pairs.add_row(old_labels.get(item["from"], item["from"] or none),
                      new_labels.get(item["to"], item["to"] or none), f"{item['customers']:,}")
    out.print(pairs)
    if result.moves and limit > 0:
        out.print("变动客户：" if zh else "Customers who would move:")
        for move in result.moves[:limit]:
            out.print(f"  {move.customer_id}: {old_labels.get(move.from_tier or '', none)} → "
                      f"{new_labels.get(move.to_tier or '', none)}", highlight=False)
        if len(result.moves) > limit:
            out.print(f"  … {len(result.moves) - limit:,} "
                      + ("位未列出（--limit 或 --format json）" if zh
                         else "more (--limit or --format json)"))


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
    with Workspace(workspace) as ws:
        today = dt.date.today()
        found = [t for t in ws.tasks(owner=owner, kind=kind, status=status)
                 if not overdue or t.overdue(today)]
        lang = ws.language
        labels = ws.tier_labels(lang)
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
    """Mark a task done; it stays done, and is not raised again while its condition lasts."""
    with Workspace(workspace) as ws:
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
    with Workspace(workspace) as ws:
        reps = ws.reps()
        if fmt == "json":
            click.echo(json.dumps([{**r.__dict__, "capacity": dict(r.capacity)} for r in reps],
                                  ensure_ascii=False))
            return
        zh = is_zh(ws.language)
        keys, labels = _policy_tiers(ws)
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
    limit). The file is the whole list: reps not in it are marked as left."""
    with Workspace(workspace) as ws:
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
    with Workspace(workspace) as ws:
        proposal = ws.assign(apply=apply_)
        lang = ws.language
        zh = is_zh(lang)
        if fmt == "json":
            click.echo(json.dumps({**proposal.to_json(lang), "applied": apply_},
                                  ensure_ascii=False))
            return
        if fmt == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(["customer_id", "name", "tier", "from_owner", "to_owner", "reason"])
            for m in proposal.moves:
                writer.writerow([m.customer_id, m.name or "", m.tier, m.from_owner or "",
                                 m.to_owner or "", m.reason_text(lang)])
            return
        keys, labels = _policy_tiers(ws)
        _print_loads(proposal, keys, labels, zh)
        _print_moves(proposal, labels, lang, limit)
        placed, unplaced = len(proposal.placed), len(proposal.unplaced)
        out.print((f"运行 #{proposal.run_id}：{proposal.accounts:,} 个客户，保留 "
                   f"{proposal.kept:,}，调整 {placed:,}，无人可接 {unplaced:,}" if zh else
                   f"run #{proposal.run_id}: {proposal.accounts:,} accounts, {proposal.kept:,} "
                   f"kept, {placed:,} to move, {unplaced:,} with no rep free"), highlight=False)
        if apply_:
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


@main.command("backtest")
@click.option("--from", "start", required=True, metavar="YYYY-MM", help="First month graded.")
@click.option("--to", "end", required=True, metavar="YYYY-MM", help="Last month graded.")
@click.option("--every", type=click.Choice(["month", "quarter"]), default="month",
              show_default=True, help="Grade at every month end or every quarter end.")
@click.option("--policy", help="Policy file or preset (default: the workspace's policy).")
@click.option("--compare", help="A second policy to put side by side.")
@format_option
@workspace_option
@handles_errors
def backtest_cmd(start: str, end: str, every: str, policy: str | None, compare: str | None,
                 fmt: str, workspace: str | None) -> None:
    """Grade each period end of a span without recording runs, and measure the grading:
    tier stability and flapping, next-12-month revenue by tier (lift of the top tier, share
    captured), and Pareto concentration.

    \b
    Examples:
      tierwise backtest --from 2024-01 --to 2025-12
      tierwise backtest --from 2024-01 --to 2025-12 --every quarter --compare abc
    """
    ends = period_ends(start, end, "quarter" if every == "quarter" else "month")
    with Workspace(workspace) as ws:
        refs: list[str | None] = [policy] if compare is None else [policy, compare]
        with err.status(f"Backtesting {len(ends)} periods…"):
            results = ws.backtest(ends, policies=refs)
        if fmt == "json":
            click.echo(json.dumps({"periods": [e.isoformat() for e in ends],
                                   "policies": [r.to_json() for r in results]},
                                  ensure_ascii=False))
            return
        for result in results:
            _print_backtest(result, ends, ws.language)
        if len(results) == 2:
            _print_backtest_comparison(results, ws.language)


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _print_backtest(result: Backtest, ends: Sequence[dt.date], lang: str) -> None:
    zh = is_zh(lang)
    full = sum(p.complete for p in result.periods)
    title = (f"回测 {result.policy_name} · {ends[0]} … {ends[-1]} · {len(ends)} 期"
             f"（{full} 期有完整的后续12个月）" if zh else
             f"Backtest {result.policy_name} · {ends[0]} … {ends[-1]} · {len(ends)} periods "
             f"({full} with a full next 12 months)")
    table = Table(title=title)
    headers = (["等级", "平均客户占比", "后12个月人均收入", "提升倍数", "累计收入捕获"] if zh
               else ["Tier", "Mean share", "Next-12m revenue / customer", "Lift",
                     "Revenue captured (cum.)"])
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for tier in result.tiers:
        table.add_row(tier.label, formatting.share(tier.share),
                      formatting.money(tier.revenue_next_12m, lang), _ratio(tier.lift),
                      formatting.share(tier.captured))
    out.print(table)
    stability = formatting.share(result.stability)
    pareto = formatting.share(result.pareto_top20)
    out.print(("等级稳定性（每期保持原等级的客户占比）{s}；反复升降 {f:,} 次（{c:,} 位客户）；"
               "消费最高的20%客户贡献 {p} 的年度消费" if zh else
               "Stability (customers keeping their tier each period) {s}; flapping {f:,} "
               "times ({c:,} customers); the top 20% of customers hold {p} of annual spend")
              .format(s=stability, f=result.flaps, c=result.flapping_customers, p=pareto),
              highlight=False)
    for note in result.notes:
        err.print(f"[yellow]{note}[/]", highlight=False)


def _print_backtest_comparison(results: Sequence[Backtest], lang: str) -> None:
    zh = is_zh(lang)
    a, b = results
    table = Table(title="对比" if zh else "Side by side")
    table.add_column("指标" if zh else "Measure")
    table.add_column(a.policy_name, justify="right")
    table.add_column(b.policy_name, justify="right")
    rows = [
        ("等级稳定性" if zh else "Stability", formatting.share(a.stability),
         formatting.share(b.stability)),
        ("反复升降次数" if zh else "Flaps", f"{a.flaps:,}", f"{b.flaps:,}"),
        ("最高等级提升倍数" if zh else "Top tier lift", _ratio(a.top_lift), _ratio(b.top_lift)),
        ("最高等级平均占比" if zh else "Top tier share", formatting.share(a.tiers[0].share),
         formatting.share(b.tiers[0].share)),
        ("最高等级收入捕获" if zh else "Top tier revenue captured",
         formatting.share(a.tiers[0].captured), formatting.share(b.tiers[0].captured)),
    ]
    for row in rows:
        table.add_row(*row)
    out.print(table)


@main.command("customers")
@run_option
@click.option("--tier", help="Only customers of this tier key.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--limit", type=int, default=None, help="Show at most N customers (table only).")
@workspace_option
@handles_errors
def customers_cmd(run_id: int | None, tier: str | None, fmt: str, limit: int | None,
                  workspace: str | None) -> None:
    """List graded customers with tier, score, metrics and reasons.

    \b
    Examples:
      tierwise customers --tier vip
      tierwise customers --format csv > customers.csv
    """
    with Workspace(workspace) as ws:
        explanations = ws.explanations(run_id, tier=tier)
        if fmt == "json":
            click.echo(json.dumps([_customer_json(e) for e in explanations],
                                  ensure_ascii=False))
        elif fmt == "csv":
            _write_customers_csv(explanations)
        else:
            _print_customers(explanations, limit, ws.language)


def _customer_json(e: Any) -> dict[str, Any]:
    data = e.to_json()
    return {"customer_id": e.customer_id, "name": e.name, "tier": e.tier,
            "tier_label": e.tier_label, "computed_tier": e.computed_tier, "basis": e.basis,
            "score": data["score"], "dimension_scores": data["dimension_scores"],
            "metrics": data["metrics"], "reasons": data["reasons"]}


def _write_customers_csv(explanations: Any) -> None:
    writer: Any = None
    for e in explanations:
        row = _customer_json(e)
        flat = {k: v for k, v in row.items() if k not in ("metrics", "dimension_scores",
                                                          "reasons")}
        flat.update(row["dimension_scores"])
        flat.update({k: v for k, v in row["metrics"].items() if k not in flat})
        flat["reasons"] = "; ".join(row["reasons"])
        if writer is None:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(flat))
            writer.writeheader()
        writer.writerow(flat)


def _print_customers(explanations: Any, limit: int | None, lang: str) -> None:
    table = Table()
    for name in ("customer_id", "name", "tier", "score", "annual_spend"):
        table.add_column(metric_label(name, lang) if name != "tier" else t("tier", lang),
                         overflow="fold")
    table.add_column(t("reasons", lang), overflow="fold")
    for e in itertools.islice(explanations, limit):
        table.add_row(e.customer_id, e.name or "", e.tier_label,
                      formatting.value("score", e.score, lang),
                      formatting.money(e.metrics.get("annual_spend"), lang),
                      "\n".join(e.reasons()))
    out.print(table)


@main.command("explain")
@click.argument("customer_id")
@run_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None)
@workspace_option
@handles_errors
def explain_cmd(customer_id: str, run_id: int | None, fmt: str, lang: str | None,
                workspace: str | None) -> None:
    """Why a customer has its tier, and what would move it up.

    \b
    Example:
      tierwise explain C000123 --lang en
    """
    with Workspace(workspace) as ws:
        e = ws.explain(customer_id, run_id, lang=lang)
        if fmt == "json":
            click.echo(json.dumps(e.to_json(), ensure_ascii=False))
            return
        _print_explanation(e)


def _print_explanation(e: Explanation) -> None:
    lang = e.lang
    out.print(f"[bold]{e.customer_id}[/] {e.name or ''} — "
              + t("run_heading", lang, run=e.run_id, as_of=e.as_of))
    score = f"; {t('score', lang)} {formatting.value('score', e.score, lang)}" if (
        e.score is not None) else ""
    stage = e.metrics.get("stage")
    shown_stage = (f"; {'阶段' if is_zh(lang) else 'stage'}: {stage_label(stage, lang)}"
                   if stage else "")
    out.print(f"{t('tier', lang)}: [bold]{e.tier_label}[/] ({e.tier}); "
              f"{t('basis', lang)}: {t('basis.' + e.basis, lang)}{score}{shown_stage}")
    for line in e.reasons():
        out.print(f"  • {line}", highlight=False)
    if e.checks:
        out.print(f"\n{t('rules', lang)}:")
    for check in e.checks:
        mark = "[green]✓[/]" if check.holds else "[red]✗[/]"
        out.print(f"  {mark} {check.label}: {check.rule or t('everyone_else', lang)}")
        for c in check.conditions:
            sign = "✓" if c.holds else "✗"
            seen = formatting.value(c.name or "", c.left, lang)
            out.print(f"      {sign} {c.text}   [dim]({seen})[/]", highlight=False)
    service = e.service_level()
    if service:
        out.print(f"\n{'服务标准' if is_zh(lang) else 'Service level'}:")
        for line in service:
            out.print(f"  {line}", highlight=False)
    if e.clusters is not None:
        _print_cluster_centres(e)
    if e.dimension_scores:
        dims = ", ".join(f"{e.labels.get(k, k)} {formatting.value(k, v, lang)}"
                         for k, v in e.dimension_scores.items())
        out.print(f"\n{t('dimension_scores', lang)}: {dims}")
    out.print(f"\n{t('metrics', lang)}:")
    metrics = Table(show_header=False, box=None, padding=(0, 2))
    for name, value in e.metrics.items():
        note = e.model_notes.get(name)
        metrics.add_row(metric_label(name, lang), name, formatting.value(name, value, lang),
                        f"[dim]{note}[/]" if note else "")
    out.print(metrics)
    if e.moves_up:
        out.print(f"{t('moves_up', lang)}:")
        for line in e.moves_up_text():
            out.print(f"  → {line}", highlight=False)
    if e.override is not None:
        o = e.override
        out.print("\n" + t("override", lang, id=o.id, tier=e.labels.get(o.tier, o.tier),
                           by=o.created_by, at=f"{o.created_at:%Y-%m-%d %H:%M}",
                           reason=o.reason)
                  + (t("until", lang, until=o.until) if o.until else ""), highlight=False)
    if e.history:
        out.print(f"\n{t('history', lang)}:")
        for h in e.history:
            note = ("" if h.basis == "policy" else
                    t("computed", lang, tier=e.labels.get(h.computed_tier, h.computed_tier),
                      basis=t("basis." + h.basis, lang)))
            stage = f" · {stage_label(h.stage, lang)}" if h.stage else ""
            out.print("  " + t("run_heading", lang, run=h.run_id, as_of=h.as_of)
                      + f": {e.labels.get(h.tier, h.tier)}{stage}{note}", highlight=False)
    if e.owner_changes:
        zh = is_zh(lang)
        out.print("\n负责人变更：" if zh else "\nOwner changes:")
        for c in e.owner_changes:
            out.print(f"  {c.changed_at:%Y-%m-%d} {c.from_owner or '—'} → {c.to_owner}"
                      f"（{REASONS[c.reason][0]}，{c.changed_by}）" if zh else
                      f"  {c.changed_at:%Y-%m-%d} {c.from_owner or '—'} → {c.to_owner}"
                      f" ({REASONS[c.reason][1]}, by {c.changed_by})", highlight=False)


def _print_cluster_centres(e: Explanation) -> None:
    assert e.clusters is not None
    lang = e.lang
    out.print()
    table = Table(title="聚类中心" if is_zh(lang) else "Cluster centres", box=None,
                  padding=(0, 2), title_justify="left")
    table.add_column("指标" if is_zh(lang) else "Metric")
    table.add_column("本客户" if is_zh(lang) else "This customer", justify="right")
    for tier in e.clusters.centres:
        table.add_column(e.labels.get(tier, tier), justify="right")
    for feature in e.clusters.features:
        table.add_row(metric_label(feature, lang),
                      formatting.value(feature, e.clusters.values.get(feature), lang),
                      *[formatting.value(feature, centre.get(feature), lang)
                        for centre in e.clusters.centres.values()])
    out.print(table)


@main.command("runs")
@format_option
@workspace_option
@handles_errors
def runs_cmd(fmt: str, workspace: str | None) -> None:
    """List grading runs: as-of date, policy and hash, customers per tier.

    \b
    Examples:
      tierwise runs
      tierwise runs --format json   # with data fingerprints and the run each continues
    """
    with Workspace(workspace) as ws:
        runs = ws.runs()
        if fmt == "json":
            click.echo(json.dumps([{"run_id": r.id, "as_of": r.as_of.isoformat(),
                                    "created_at": r.created_at.isoformat(),
                                    "created_by": r.created_by,
                                    "policy": {"name": r.policy_name, "hash": r.policy_hash},
                                    "customers": r.customers, "source": r.source,
                                    "data_fingerprint": r.data_fingerprint,
                                    "previous_run_id": r.previous_run_id,
                                    "tiers": {row["tier"]: row["customers"] for row in r.summary}}
                                   for r in runs], ensure_ascii=False))
            return
        table = Table()
        for header in ("run", "as of", "created", "by", "policy", "customers", "tiers"):
            table.add_column(header)
        for r in runs:
            tiers = " ".join(f"{row['tier']}:{row['customers']}" for row in r.summary)
            table.add_row(str(r.id), str(r.as_of), f"{r.created_at:%Y-%m-%d %H:%M}",
                          r.created_by, f"{r.policy_name} ({r.policy_hash})",
                          f"{r.customers:,}", tiers)
        out.print(table)


@main.command("diff")
@click.argument("run_a", type=int, required=False)
@click.argument("run_b", type=int, required=False)
@format_option
@click.option("--limit", type=int, default=50, show_default=True,
              help="Show at most N moved customers (table only).")
@workspace_option
@handles_errors
def diff_cmd(run_a: int | None, run_b: int | None, fmt: str, limit: int,
             workspace: str | None) -> None:
    """Who moved between two runs, and the migration matrix.

    \b
    Examples:
      tierwise diff            # the two latest runs
      tierwise diff 12         # run 12 against the run it continues
      tierwise diff 3 12
    """
    with Workspace(workspace) as ws:
        d = ws.diff(run_a, run_b)
        if fmt == "json":
            click.echo(json.dumps({
                "run_a": d.run_a.id, "run_b": d.run_b.id, "unchanged": d.unchanged,
                "moves": [m.__dict__ for m in d.moves],
                "matrix": [{"from": a, "to": b, "customers": n}
                           for (a, b), n in sorted(d.matrix.items(), key=str)],
            }, ensure_ascii=False))
            return
        keys = _matrix_keys(d, ws)
        matrix = Table(title=f"Run {d.run_a.id} ({d.run_a.as_of}) → run {d.run_b.id} "
                             f"({d.run_b.as_of})")
        matrix.add_column("from \\ to")
        for key in keys:
            matrix.add_column(key or "—", justify="right")
        for a in keys:
            matrix.add_row(a or "—", *[str(d.matrix.get((a, b), "")) for b in keys])
        out.print(matrix)
        out.print(f"{len(d.moves)} moved, {d.unchanged} unchanged")
        for move in d.moves[:limit]:
            out.print(f"  {move.customer_id}: {move.from_tier or '—'} → {move.to_tier or '—'}",
                      highlight=False)


def _matrix_keys(d: Any, ws: Workspace) -> list[str | None]:
    order = d.run_b.policy.keys + [k for k in d.run_a.policy.keys
                                   if k not in d.run_b.policy.keys]
    present = {k for pair in d.matrix for k in pair}
    keys: list[str | None] = [k for k in order if k in present]
    if None in present:
        keys.append(None)
    return keys


@main.command("override")
@click.argument("customer_id")
@click.argument("tier", required=False)
@click.option("--reason", help="Why (required when setting an override).")
@click.option("--until", callback=parse_date, help="Last as-of date it applies to (YYYY-MM-DD).")
@click.option("--remove", is_flag=True, help="End the customer's active override.")
@workspace_option
@handles_errors
def override_cmd(customer_id: str, tier: str | None, reason: str | None, until: dt.date | None,
                 remove: bool, workspace: str | None) -> None:
    """Set a manual tier that wins over the policy from the next run on.

    \b
    Examples:
      tierwise override C000123 vip --reason "战略合作伙伴" --until 2026-12-31
      tierwise override C000123 --remove
    """
    with Workspace(workspace) as ws:
        if remove:
            ended = ws.remove_override(customer_id)
            if not ended:
                raise TierwiseError(f"{customer_id} has no active override")
            out.print(f"ended {ended} override(s) of {customer_id}; takes effect at the next run")
            return
        if tier is None or not reason:
            raise click.UsageError("give a TIER and --reason (or --remove)")
        override_id = ws.override(customer_id, tier, reason=reason, until=until)
        out.print(f"override #{override_id}: {customer_id} → {tier}; it applies from the next "
                  "run (tierwise grade)", highlight=False)


@main.command("export")
@run_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write: .xlsx or .csv")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Header language (default: the workspace's).")
@workspace_option
@handles_errors
def export_cmd(run_id: int | None, output: str, lang: str | None,
               workspace: str | None) -> None:
    """Write the grading table (客户基本信息 | 分级指标 | 分级结果 | 备注).

    \b
    Examples:
      tierwise export -o 客户分级表.xlsx
      tierwise export --run 3 -o grading.csv --lang en
    """
    with Workspace(workspace) as ws:
        with err.status("Exporting…"):
            rows = ws.export(output, run_id, lang=lang)
        out.print(f"wrote {rows} customers to {output}", highlight=False)


# -- classification axes and target lists ------------------------------------------------
@main.command("breakdown")
@click.option("--by", "by", multiple=True, required=True, metavar="COLUMN",
              help="Attribute (industry, region, size, channel, …) or stage; repeat for two "
                   "axes.")
@run_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Labels language (default: the workspace's).")
@workspace_option
@handles_errors
def breakdown_cmd(by: tuple[str, ...], run_id: int | None, fmt: str, lang: str | None,
                  workspace: str | None) -> None:
    """Customers, revenue and profit per attribute value (or stage) and tier (分类 × 分级).

    \b
    Examples:
      tierwise breakdown --by industry
      tierwise breakdown --by industry --by region --format json
      tierwise breakdown --by stage --format csv > 阶段分布.csv
    """
    with Workspace(workspace) as ws:
        result = ws.breakdown(list(by), run_id, lang=lang)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    elif fmt == "csv":
        _write_breakdown_csv(result)
    else:
        _print_breakdown(result)


def _write_breakdown_csv(result: Any) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow([*result.by, "tier", "tier_label", "customers", "revenue", "profit",
                     "customer_share", "revenue_share", "profit_share"])
    for cell in result.flat_cells():
        labels = [cell["label"][c] if cell["key"][c] is not None else "" for c in result.by]
        writer.writerow([*labels, cell["tier"], cell["tier_label"], cell["customers"],
                         cell["revenue"], cell["profit"],
                         *("" if cell[k] is None else cell[k]
                           for k in ("customer_share", "revenue_share", "profit_share"))])


def _print_breakdown(result: Any) -> None:
    lang = result.lang
    zh = is_zh(lang)
    table = Table(title=(f"第{result.run_id}次分级 · 截至 {result.as_of}" if zh
                         else f"run {result.run_id} · as of {result.as_of}"),
                  caption=("每格：客户数 · 收入占比" if zh
                           else "each cell: customers · share of revenue"))
    for column in result.by:
        table.add_column(result.axis_label(column), overflow="fold")
    for _key, label in result.tiers:
        table.add_column(label, justify="right")
    total_words = ("合计", "客户数", "收入", "利润") if zh else (
        "Total", "Customers", "Revenue", "Profit")
    for word in total_words[1:]:
        table.add_column(f"{total_words[0]}·{word}" if zh else word, justify="right")

    def cell_text(cell: Any) -> str:
        if not cell.customers:
            return "—"
        return f"{cell.customers:,} · {formatting.share(result.shares(cell)['revenue_share'])}"

    def totals(cell: Any) -> list[str]:
        return [f"{cell.customers:,}", formatting.money(cell.revenue, lang),
                formatting.money(cell.profit, lang)]

    for key in result.rows:
        table.add_row(*result.key_labels(key),
                      *(cell_text(result.cell(key, tier)) for tier, _ in result.tiers),
                      *totals(result.row_total(key)))
    table.add_section()
    table.add_row(total_words[0], *([""] * (len(result.by) - 1)),
                  *(cell_text(result.tier_total(tier)) for tier, _ in result.tiers),
                  *totals(result.total), style="bold")
    out.print(table)


@main.command("targets")
@click.option("--tier", "tiers", multiple=True, metavar="TIER",
              help="Tier key or label (repeatable: any of them).")
@click.option("--stage", "stages", multiple=True, metavar="STAGE",
              help="Lifecycle stage: at-risk, at_risk or 风险, … (repeatable).")
@click.option("--where", "wheres", multiple=True, metavar="ATTR=VALUE",
              help="Attribute filter, e.g. --where channel=直销 (repeat an attribute for any "
                   "of several values; ATTR= matches blank values).")
@click.option("--industry", "industries", multiple=True, help="Same as --where industry=…")
@click.option("--region", "regions", multiple=True, help="Same as --where region=…")
@click.option("--owner", "owners", multiple=True, help="Same as --where owner=…")
@run_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="File to write: .xlsx or .csv (default: a table on stdout).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Header language (default: the workspace's).")
@click.option("--limit", type=int, default=None, help="Show at most N customers (table only).")
@workspace_option
@handles_errors
def targets_cmd(tiers: tuple[str, ...], stages: tuple[str, ...], wheres: tuple[str, ...],
                industries: tuple[str, ...], regions: tuple[str, ...], owners: tuple[str, ...],
                run_id: int | None, output: str | None, lang: str | None, limit: int | None,
                workspace: str | None) -> None:
    """Marketing and service lists: customers of some tiers and stages, with contact fields.

    \b
    Examples:
      tierwise targets --tier vip --stage at-risk
      tierwise targets --tier vip --tier important --industry 制造业 -o 重点维护名单.xlsx
      tierwise targets --stage 流失 --where region=华东 -o winback.csv --lang en
    """
    filters: dict[str, list[str]] = {}
    for text in wheres:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected ATTR=VALUE, got {text!r}",
                                     param_hint="--where")
        filters.setdefault(name.strip(), []).append(value.strip())
    for name, values in (("industry", industries), ("region", regions), ("owner", owners)):
        if values:
            filters.setdefault(name, []).extend(values)
    with Workspace(workspace) as ws:
        lang = lang or ws.language
        record = ws.run(run_id)
        chosen = ws.targets(record.id, tiers=tiers, stages=stages, filters=filters, lang=lang)
        if output is None:
            _print_targets(chosen, limit, lang)
            return
        title = (f"目标客户名单 {record.as_of.isoformat()}" if is_zh(lang)
                 else f"Targets {record.as_of.isoformat()}")
        rows = write_target_list(output, chosen, lang=lang, title=title)
        out.print(f"wrote {rows} customers to {output}", highlight=False)


def _print_targets(chosen: Any, limit: int | None, lang: str) -> None:
    if not chosen.num_rows:
        err.print("no customers match" if not is_zh(lang) else "没有符合条件的客户")
        return
    shown = [c for c in ("customer_id", "name", "contact", "owner", "industry", "region",
                         "tier_label", "stage_label", "annual_spend", "last_order_date")
             if c in chosen.column_names]
    headers = {"tier_label": t("tier", lang), "stage_label": "阶段" if is_zh(lang) else "Stage"}
    table = Table()
    for name in shown:
        table.add_column(headers.get(name) or metric_label(name, lang), overflow="fold")
    for row in itertools.islice(chosen.select(shown).to_pylist(), limit):
        table.add_row(*(formatting.value(name, row[name], lang)
                        if name not in ("tier_label", "stage_label") else (row[name] or "—")
                        for name in shown))
    out.print(table)
    if limit is not None and chosen.num_rows > limit:
        err.print(f"… {chosen.num_rows - limit} more" if not is_zh(lang)
                  else f"… 另有 {chosen.num_rows - limit} 位客户")


# -- policies ----------------------------------------------------------------------------
@main.group()
def policy() -> None:
    """Show, list, check and calibrate tier policies."""


@policy.command("list")
def policy_list() -> None:
    """List the built-in presets.

    \b
    Example:
      tierwise policy list
    """
    for name in PRESETS:
        parsed = load_policy_text(preset_text(name), source=name)
        out.print(f"{name:12} {parsed.name} — {', '.join(t.display() for t in parsed.tiers)}",
                  highlight=False)


@policy.command("show")
@click.argument("name", required=False)
@click.option("--run", "run_id", type=int, default=None,
              help="Print the policy text a past run was graded with.")
@workspace_option
@handles_errors
def policy_show(name: str | None, run_id: int | None, workspace: str | None) -> None:
    """Print a preset (value-tiers, abc, rfm, pyramid), a policy file, or a run's policy.

    \b
    Examples:
      tierwise policy show rfm
      tierwise policy show --run 12
    """
    if run_id is not None:
        with Workspace(workspace) as ws:
            click.echo(ws.run(run_id).policy_text, nl=False)
        return
    if name is None:
        raise click.UsageError("give a preset or policy file name, or --run ID")
    click.echo(policy_source(name)[0], nl=False)


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@workspace_option
@handles_errors
def policy_check(file: str, workspace: str | None) -> None:
    """Validate a policy file: every problem with its line and field.

    Inside a workspace, customer attribute names imported there are known to rules.

    \b
    Example:
      tierwise policy check policy.yaml
    """
    attributes = None
    try:
        with Workspace(workspace) as ws:
            from tierwise.data.store import customer_attribute_columns
            attributes = customer_attribute_columns(ws.store())
    except TierwiseError:
        pass
    parsed = load_policy_file(Path(file), attributes=attributes)
    out.print(f"{file}: OK — {parsed.name} ({parsed.hash}), tiers: "
              + ", ".join(f"{t.display()} ({t.key})" for t in parsed.tiers), highlight=False)


@policy.command("calibrate")
@click.option("--metric", required=True,
              help="Metric or score whose thresholds move, e.g. annual_spend or score.")
@click.option("--target", "target_text", metavar="KEY=LOW:HIGH,...",
              help="Target shares, e.g. vip=5%:10%,important=0.15:0.20 "
                   "(default: the policy's target_share).")
@click.option("--policy", "policy_ref", help="Policy file or preset (default: the workspace's).")
@click.option("--as-of", callback=parse_date, help="As-of date YYYY-MM-DD (default: latest order).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Policy file to write (default: <policy>.calibrated.yaml in the workspace).")
@format_option
@workspace_option
@handles_errors
def policy_calibrate(metric: str, target_text: str | None, policy_ref: str | None,
                     as_of: dt.date | None, output: str | None, fmt: str,
                     workspace: str | None) -> None:
    """Move a metric's thresholds so each tier's share of customers hits its target.

    Tiers are calibrated best first; the numbers each rule compares the metric with move
    (together, keeping their ratio) and are rounded to nice values. A new policy file is
    written, with a comment above each changed rule; the original is left as it is.

    \b
    Examples:
      tierwise policy calibrate --metric annual_spend
      tierwise policy calibrate --metric annual_spend --target vip=5%:10%,important=15%:20%
      tierwise policy calibrate --metric score --policy rfm --as-of 2025-12-31 -o rfm-new.yaml
    """
    import ibis

    from tierwise.grading.calibration import calibrate, parse_targets

    targets = parse_targets(target_text) if target_text is not None else None
    with Workspace(workspace) as ws:
        ref = policy_ref or str(ws.config.get("policy") or "value-tiers")
        _, source = policy_source(ref, ws.root)
        chosen, text = ws.policy(ref)
        with err.status("Calibrating…"):
            result = calibrate(ibis.duckdb.from_connection(ws.store()), ws.sources(), chosen,
                               text, metric=metric, targets=targets, as_of=as_of)
        stem = Path(source).stem.removesuffix(".calibrated")
        target = Path(output) if output else ws.root / f"{stem}.calibrated.yaml"
        target.write_text(result.text, encoding="utf-8")
        if fmt == "json":
            click.echo(json.dumps({**result.to_json(), "output": str(target)},
                                  ensure_ascii=False))
        else:
            _print_calibration(result, ws.language)
            out.print(f"wrote {target}", highlight=False)
        for tier in result.tiers:
            if tier.note:
                err.print(f"[yellow]{tier.key}: {tier.note}[/]", highlight=False)


def _print_calibration(result: Any, lang: str) -> None:
    from tierwise.grading.calibration import describe_target

    zh = is_zh(lang)
    table = Table(title=(f"{'阈值校准' if zh else 'Calibration'} · {result.metric} · "
                         f"{'截至' if zh else 'as of'} {result.as_of} · "
                         f"{result.customers:,} {'位客户' if zh else 'customers'}"))
    headers = (["等级", "原阈值", "新阈值", "原占比", "新占比", "目标占比", "说明"] if zh
               else ["Tier", "Old threshold", "New threshold", "Old share", "New share",
                     "Target", "Note"])
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if 0 < i < 6 else "left")
    statuses = {"calibrated": ("已校准", "calibrated"), "kept": ("已在目标内", "already on target"),
                "unmet": ("未达目标", "target not met"), "fixed": ("无目标，未改", "no target"),
                "remainder": ("其余客户", "everyone else")}
    for tier in result.tiers:
        mark = {True: " ✓", False: " ✗", None: ""}[tier.met]
        target = describe_target(tier.target) + mark if tier.target else ""
        table.add_row(result.policy.tier(tier.key).display(lang),
                      " / ".join(tier.old_thresholds), " / ".join(tier.new_thresholds),
                      formatting.share(tier.old_share), formatting.share(tier.new_share),
                      target, statuses[tier.status][0 if zh else 1])
    out.print(table)


# -- webhooks ----------------------------------------------------------------------------
@main.group("webhooks")
def webhooks_group() -> None:
    """Webhooks: signed JSON POSTs to the URLs under `webhooks:` in tierwise.yaml."""


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
    from tierwise.work import webhooks

    with Workspace(workspace) as ws:
        endpoints = [e for e in ws.webhook_endpoints() if e.wants(event)]
        if not endpoints:
            raise TierwiseError(f"no webhook in tierwise.yaml is subscribed to {event}")
        payload = {"test": True, "message": "tierwise webhook test · 测试消息",
                   "workspace": str(ws.root)}
        deliveries = webhooks.deliver(ws.appdb, endpoints, [webhooks.Event(event, payload)],
                                      attempts=1)
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
    from tierwise.work import webhooks

    with Workspace(workspace) as ws:
        _print_deliveries(webhooks.recent_deliveries(ws.appdb, limit), fmt)


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


# -- report ------------------------------------------------------------------------------
@main.command("report")
@run_option
@click.option("-o", "--output", default="report.html", show_default=True,
              type=click.Path(dir_okay=False), help="HTML file to write.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Report language (default: the workspace's).")
@click.option("--owner", default=None, help="Only this account manager's customers.")
@workspace_option
@handles_errors
def report_cmd(run_id: int | None, output: str, lang: str | None, owner: str | None,
               workspace: str | None) -> None:
    """Write the HTML report: tier distribution against target shares, Pareto/ABC,
    migration, tier history, work by tier. One self-contained file that opens offline.

    \b
    Examples:
      tierwise report -o 客户分级报告.html
      tierwise report --run 3 --lang en -o report-en.html
      tierwise report --owner 张伟 -o 张伟.html
    """
    from tierwise.reports.html_report import write_report

    with Workspace(workspace) as ws:
        zh = is_zh(lang or ws.language)
        with err.status("正在生成报告…" if zh else "Writing the report…"):
            path = write_report(ws, output, run_id, lang=lang, owner=owner)
        record = ws.run(run_id)
        out.print(f"已生成报告 {path}（第{record.id}次分级，截至 {record.as_of}）" if zh
                  else f"wrote the report of run {record.id} (as of {record.as_of}) to {path}",
                  highlight=False)


# -- demo --------------------------------------------------------------------------------
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
    crontab:  */15 * * * *  tierwise run-due -w /srv/tierwise >> /var/log/tierwise.log 2>&1
    """
    with Workspace(workspace) as ws:
        zh = is_zh(ws.language)
        outcomes = ws.run_due(engine=engine)
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
        if any(o.status == "failed" for o in outcomes):
            sys.exit(1)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@workspace_option
@handles_errors
def serve_cmd(host: str, port: int, workspace: str | None) -> None:
    """Start the web workbench and the REST API (/api/v1, OpenAPI at /docs).

    On the first start with no users, an admin account is created and its password
    printed once. Add people with `tierwise user add`. With a `schedule:` in tierwise.yaml,
    the server also runs due runs (checked every minute): no cron job is needed then.
    """
    import uvicorn

    from tierwise.web import create_app
    from tierwise.work import users

    with Workspace(workspace) as ws:
        root = ws.root
        if not users.has_users(ws.appdb):
            password = secrets.token_urlsafe(12)
            users.add_user(ws.appdb, "admin", "admin", password)
            out.print(("首次启动：已创建管理员 admin，密码 " if is_zh(ws.language)
                       else "First start: created the admin user 'admin' with the password ")
                      + f"[bold]{password}[/]", highlight=False)
    out.print(f"http://{host}:{port}/", highlight=False)
    uvicorn.run(create_app(root, scheduler=True), host=host, port=port, log_level="info")


@main.group("user")
def user_group() -> None:
    """People who use the web workbench and the API (roles admin, manager, rep)."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "manager", "rep"]), required=True)
@click.option("--rep-name", help="For a rep: the owner name their customers carry "
                                 "(default: NAME).")
@click.password_option(help="The password (asked for when not given).")
@workspace_option
@handles_errors
def user_add_cmd(name: str, role: str, rep_name: str | None, password: str,
                 workspace: str | None) -> None:
    """Add a user: tierwise user add 张伟 --role rep"""
    from tierwise.work import users

    with Workspace(workspace) as ws:
        user = users.add_user(ws.appdb, name, role, password, rep_name=rep_name)
        users.audit(ws.appdb, current_cli_user(), "user", user.name, f"added as {role}")
        out.print(("已添加用户 " if is_zh(ws.language) else "Added user ")
                  + f"{user.name} ({user.role})", highlight=False)


@user_group.command("list")
@workspace_option
@handles_errors
def user_list_cmd(workspace: str | None) -> None:
    from tierwise.work import users

    with Workspace(workspace) as ws:
        table = Table()
        for header in ("name", "role", "rep_name", "active"):
            table.add_column(header)
        for u in users.list_users(ws.appdb):
            table.add_row(u.name, u.role, u.owner_scope or "", "yes" if u.active else "no")
        out.print(table)


@user_group.command("token")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="What the token is for.")
@workspace_option
@handles_errors
def user_token_cmd(name: str, label: str, workspace: str | None) -> None:
    """Create a personal API token for a user (printed once):
    curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8000/api/v1/customers"""
    from tierwise.work import users

    with Workspace(workspace) as ws:
        token = users.create_token(ws.appdb, users.get_user(ws.appdb, name), label)
        users.audit(ws.appdb, current_cli_user(), "token", name, label)
        click.echo(token)


def current_cli_user() -> str:
    from tierwise.workspace import current_user

    return current_user()


@main.command("demo")
@click.argument("directory", type=click.Path(file_okay=False), default="tierwise-demo")
@click.option("--customers", "n_customers", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@handles_errors
def demo_cmd(directory: str, n_customers: int, seed: int) -> None:
    """Build a demo workspace with synthetic Chinese B2B data, graded monthly for a year.

    \b
    Example:
      tierwise demo demo --customers 5000 && tierwise -h
    """
    from tierwise.demo.build import build_demo

    summary, ws_root = build_demo(Path(directory), n_customers=n_customers, seed=seed,
                                  report=lambda text: err.print(text, highlight=False))
    _print_summary(summary, "zh")
    out.print(f"\nDemo workspace: {ws_root}\nTry:\n"
              f"  tierwise customers -w {ws_root} --tier vip --limit 10\n"
              f"  tierwise diff -w {ws_root}\n"
              f"  tierwise export -w {ws_root} -o 客户分级表.xlsx", highlight=False)


if __name__ == "__main__":
    main()
