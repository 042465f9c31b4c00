"""Commands that grade: grade (and its --dry-run what-if) and backtest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

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
    parse_date,
    workspace_option,
)
from tierwise.common import formatting
from tierwise.common.i18n import is_zh
from tierwise.grading.backtest import Backtest, period_ends
from tierwise.grading.what_if import WhatIf
from tierwise.record.runs import RunSummary, TierSummary
from tierwise.workspace import Workspace


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
        with open_workspace(workspace) as ws:
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
    with open_workspace(workspace) as ws:
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
    with open_workspace(workspace) as ws:
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
