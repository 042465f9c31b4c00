"""Commands that make a workspace and put data in it: init, demo, import, log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import click

from tierwise.cli.common import (
    err,
    handles_errors,
    main,
    open_workspace,
    out,
    parse_date,
    workspace_option,
)
from tierwise.cli.grading import _print_summary
from tierwise.common.i18n import is_zh
from tierwise.common.vocabulary import interaction_label
from tierwise.data.ingest import KINDS, ImportResult
from tierwise.policy.presets import PRESETS
from tierwise.workspace import Workspace


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
    with open_workspace(workspace) as ws:
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
    with open_workspace(workspace) as ws:
        logged = ws.log_interaction(customer_id, kind, date=day, note=note,
                                    satisfaction=satisfaction)
        zh = is_zh(ws.language)
        what = f"{logged.customer_id} {interaction_label(logged.kind, ws.language)} {logged.date}"
        if logged.created:
            out.print(("已记录：" if zh else "Recorded: ") + what, highlight=False)
        else:
            again = "已有相同记录，未重复添加：" if zh else "Already recorded, not added again: "
            out.print(again + what, highlight=False)


@main.command("demo")
@click.argument("directory", type=click.Path(file_okay=False), default="tierwise-demo")
@click.option("--customers", "n_customers", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@handles_errors
def demo_cmd(directory: str, n_customers: int, seed: int) -> None:
    """Build a demo workspace with synthetic Chinese B2B data, graded monthly for a year.

    \b
    Examples:
      tierwise demo
      tierwise demo demo --customers 5000 && tierwise -w demo runs
    """
    from tierwise.demo.build import build_demo

    summary, ws_root = build_demo(Path(directory), n_customers=n_customers, seed=seed,
                                  report=lambda text: err.print(text, highlight=False))
    _print_summary(summary, "zh")
    out.print(f"\nDemo workspace: {ws_root}\nTry:\n"
              f"  tierwise customers -w {ws_root} --tier vip --limit 10\n"
              f"  tierwise diff -w {ws_root}\n"
              f"  tierwise export -w {ws_root} -o 客户分级表.xlsx", highlight=False)
