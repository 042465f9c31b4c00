"""Commands over recorded runs: customers, explain, runs, diff, override, export."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import sys
from collections.abc import Sequence
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
    run_option,
    workspace_option,
)
from tierwise.common import formatting
from tierwise.common.i18n import is_zh, t
from tierwise.common.vocabulary import metric_label, stage_label
from tierwise.errors import TierwiseError
from tierwise.grading.explanation import Explanation
from tierwise.record.audit import ACTIONS, AuditEntry, action_label, interface_label
from tierwise.work.owners import REASONS


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
    with open_workspace(workspace) as ws:
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
    with open_workspace(workspace) as ws:
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
        note = e.model_notes.get(name) or (t("computed_now", lang)
                                           if name in e.computed_now else None)
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
    with open_workspace(workspace) as ws:
        runs = ws.runs()
    if fmt == "json":
        click.echo(json.dumps([_run_json(r) for r in runs], ensure_ascii=False))
    else:
        _print_runs(runs)


def _run_json(r: Any) -> dict[str, Any]:
    return {"run_id": r.id, "as_of": r.as_of.isoformat(),
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
            "policy": {"name": r.policy_name, "hash": r.policy_hash},
            "customers": r.customers, "source": r.source,
            "data_fingerprint": r.data_fingerprint,
            "previous_run_id": r.previous_run_id,
            "tiers": {row["tier"]: row["customers"] for row in r.summary}}


def _print_runs(runs: Sequence[Any]) -> None:
    table = Table()
    for header in ("run", "as of", "created", "by", "policy", "customers", "tiers"):
        table.add_column(header)
    for r in runs:
        tiers = " ".join(f"{row['tier']}:{row['customers']}" for row in r.summary)
        table.add_row(str(r.id), str(r.as_of), f"{r.created_at:%Y-%m-%d %H:%M}",
                      r.created_by, f"{r.policy_name} ({r.policy_hash})",
                      f"{r.customers:,}", tiers)
    out.print(table)


@main.command("audit")
@click.option("--since", callback=parse_date, help="From this date on (YYYY-MM-DD).")
@click.option("--user", "who", metavar="NAME", help="Only this person's entries.")
@click.option("--action", type=click.Choice(list(ACTIONS)), help="Only this action.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most N entries, newest first.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format.")
@workspace_option
@handles_errors
def audit_cmd(since: dt.date | None, who: str | None, action: str | None, limit: int,
              fmt: str, workspace: str | None) -> None:
    """The audit log: who imported, graded, overrode, saved a policy, assigned owners,
    exported, … when, through which interface (cli, web, api, schedule) and from where.

    \b
    Examples:
      tierwise audit
      tierwise audit --since 2026-12-01 --user 王芳
      tierwise audit --action override --format csv > 调级记录.csv
    """
    with open_workspace(workspace) as ws:
        entries = ws.audit_log(since=since, user=who, action=action, limit=limit)
        lang = ws.language
    if fmt == "json":
        click.echo(json.dumps([e.to_json() for e in entries], ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(AUDIT_FIELDS)
        writer.writerows([e.to_json()[f] for f in AUDIT_FIELDS] for e in entries)
    else:
        _print_audit(entries, lang)


AUDIT_FIELDS = ("at", "user", "interface", "address", "action", "target", "detail")
_AUDIT_HEADERS = {"zh": ("时间", "操作人", "途径", "来源", "操作", "对象", "详情"),
                  "en": ("When", "Who", "Through", "From", "Action", "Object", "Detail")}


def _print_audit(entries: Sequence[AuditEntry], lang: str) -> None:
    table = Table()
    for header in _AUDIT_HEADERS["zh" if is_zh(lang) else "en"]:
        table.add_column(header)
    for e in entries:
        table.add_row(f"{e.at.astimezone():%Y-%m-%d %H:%M:%S}", e.user,
                      interface_label(e.interface, lang), e.address,
                      action_label(e.action, lang), e.target, e.detail)
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
    with open_workspace(workspace) as ws:
        d = ws.diff(run_a, run_b)
    if fmt == "json":
        click.echo(json.dumps(_diff_json(d), ensure_ascii=False))
    else:
        _print_diff(d, limit)


def _diff_json(d: Any) -> dict[str, Any]:
    return {
        "run_a": d.run_a.id, "run_b": d.run_b.id, "unchanged": d.unchanged,
        "moves": [m.__dict__ for m in d.moves],
        "matrix": [{"from": a, "to": b, "customers": n}
                   for (a, b), n in sorted(d.matrix.items(), key=str)],
    }


def _print_diff(d: Any, limit: int) -> None:
    keys = _matrix_keys(d)
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


def _matrix_keys(d: Any) -> list[str | None]:
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
    with open_workspace(workspace) as ws:
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
    with open_workspace(workspace) as ws:
        with err.status("Exporting…"):
            rows = ws.export(output, run_id, lang=lang)
        out.print(f"wrote {rows} customers to {output}", highlight=False)
