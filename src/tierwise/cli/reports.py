"""Commands that cut and hand out a run: breakdown, targets, report."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table

from tierwise.cli.common import (
    err,
    handles_errors,
    main,
    open_workspace,
    out,
    run_option,
    workspace_option,
)
from tierwise.common import formatting
from tierwise.common.i18n import is_zh, t
from tierwise.common.vocabulary import metric_label
from tierwise.reports.targets import write_target_list


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
    with open_workspace(workspace) as ws:
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
    filters = _parse_filters(wheres, {"industry": industries, "region": regions,
                                      "owner": owners})
    with open_workspace(workspace) as ws:
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


def _parse_filters(wheres: Sequence[str],
                   shortcuts: dict[str, Sequence[str]]) -> dict[str, list[str]]:
    """--where ATTR=VALUE (repeatable), then --industry/--region/--owner as the same."""
    filters: dict[str, list[str]] = {}
    for text in wheres:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected ATTR=VALUE, got {text!r}",
                                     param_hint="--where")
        filters.setdefault(name.strip(), []).append(value.strip())
    for name, values in shortcuts.items():
        if values:
            filters.setdefault(name, []).extend(values)
    return filters


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

    with open_workspace(workspace) as ws:
        zh = is_zh(lang or ws.language)
        with err.status("正在生成报告…" if zh else "Writing the report…"):
            path = write_report(ws, output, run_id, lang=lang, owner=owner)
        record = ws.run(run_id)
        out.print(f"已生成报告 {path}（第{record.id}次分级，截至 {record.as_of}）" if zh
                  else f"wrote the report of run {record.id} (as of {record.as_of}) to {path}",
                  highlight=False)
