"""The `policy` group: list, show, check and calibrate tier policies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from tierwise.cli.common import (
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
from tierwise.errors import TierwiseError
from tierwise.policy.loading import load_policy_file, load_policy_text
from tierwise.policy.presets import PRESETS, policy_source, preset_text


@main.group()
def policy() -> None:
    """Show, list, check and calibrate tier policies.

    \b
    Examples:
      tierwise policy list
      tierwise policy show rfm
      tierwise policy check policy.yaml
      tierwise policy calibrate --metric annual_spend
    """


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
        with open_workspace(workspace) as ws:
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
    try:
        opened = open_workspace(workspace)
    except TierwiseError:      # outside a workspace: rules know the metrics, not attributes
        parsed = load_policy_file(Path(file))
    else:
        with opened as ws:
            parsed = ws.check_policy_file(file)
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
    from tierwise.grading.calibration import parse_targets

    targets = parse_targets(target_text) if target_text is not None else None
    with open_workspace(workspace) as ws:
        with err.status("Calibrating…"):
            result, target = ws.calibrate(metric, targets=targets, policy=policy_ref,
                                          as_of=as_of, output=output)
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
