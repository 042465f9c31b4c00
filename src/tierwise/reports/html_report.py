"""The HTML report: one self-contained file (inline CSS, plotly.js inlined once, the charts
and their tables) that opens offline and prints well.

The numbers come from tierwise.reports.dashboard, the figures from tierwise.reports.charts, the
page from
the Jinja2 template ``templates/report.html`` (package data).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from tierwise import __version__
from tierwise.common import formatting
from tierwise.common.i18n import is_zh
from tierwise.record.reading import RunReader
from tierwise.reports import charts
from tierwise.reports.dashboard import Dashboard, dashboard

WORDS: dict[str, tuple[str, str]] = {
    "title": ("客户分级报告", "Customer tiering report"),
    "colon": ("：", ": "),
    "run": ("第{run}次分级", "Run {run}"),
    "as_of": ("截至", "As of"),
    "policy": ("分级策略", "Policy"),
    "owner": ("客户经理", "Account manager"),
    "all_owners": ("全部客户", "All customers"),
    "summary": ("概览", "Summary"),
    "customers": ("客户数", "Customers"),
    "revenue": ("收入（年度消费）", "Revenue (annual spend)"),
    "profit": ("利润", "Profit"),
    "changes": ("等级变化", "Tier changes"),
    "since": ("相对第{run}次分级", "since run {run}"),
    "first_run": ("首次分级", "first run"),
    "upgraded": ("升级", "Upgraded"),
    "downgraded": ("降级", "Downgraded"),
    "new": ("新增", "New"),
    "unchanged": ("不变", "Unchanged"),
    "distribution": ("等级分布", "Tier distribution"),
    "tier": ("等级", "Tier"),
    "share": ("占比", "Share"),
    "target": ("目标占比", "Target share"),
    "on_target": ("是否达标", "On target"),
    "yes": ("达标", "yes"),
    "no": ("未达标", "no"),
    "revenue_short": ("收入", "Revenue"),
    "revenue_share": ("收入占比", "Revenue share"),
    "profit_share": ("利润占比", "Profit share"),
    "total": ("合计", "Total"),
    "pareto": ("帕累托分析（ABC）", "Pareto analysis (ABC)"),
    "metric.profit": ("利润", "profit"),
    "metric.annual_spend": ("年度消费金额", "annual spend"),
    "pareto_basis": ("按{metric}从高到低排列客户。", "Customers ranked by {metric}, highest "
                     "first."),
    "top_20": ("前 20% 的客户贡献", "The top 20% of customers carry"),
    "cut_80": ("贡献 80% 的客户占比", "Share of customers carrying 80%"),
    "cut_95": ("贡献 95% 的客户占比", "Share of customers carrying 95%"),
    "class": ("类别", "Class"),
    "class.A": ("A 类（前 80%）", "A (first 80%)"),
    "class.B": ("B 类（80%–95%）", "B (80%–95%)"),
    "class.C": ("C 类（其余）", "C (the rest)"),
    "losses": ("另有 {n} 个客户亏损，合计 {amount}，不计入曲线。",
               "{n} customers made a loss, {amount} in all, not on the curve."),
    "migration": ("等级迁移", "Tier migration"),
    "migration_between": ("第{a}次（{as_of_a}）→ 第{b}次（{as_of_b}）：行是上次等级，"
                          "列是本次等级。",
                          "Run {a} ({as_of_a}) → run {b} ({as_of_b}): rows are the tier "
                          "before, columns the tier now."),
    "no_migration": ("只有一次分级，暂无迁移。", "Only one run: no migration yet."),
    "gone": ("移出", "Gone"),
    "history": ("等级历史", "Tier history"),
    "work": ("各等级待办", "Work by tier"),
    "work_note": ("未关闭的预警与联系任务；逾期以 {today} 计。",
                  "Open warnings and contact tasks; overdue as of {today}."),
    "contact": ("待联系", "Contacts due"),
    "contact_overdue": ("逾期联系", "Overdue contacts"),
    "churn_risk": ("流失预警", "Churn risk"),
    "complaint": ("投诉待回访", "Complaints"),
    "credit_risk": ("信用风险", "Credit risk"),
    "warnings_overdue": ("逾期预警", "Overdue warnings"),
    "generated": ("由 tierwise {version} 生成于 {at}", "Made by tierwise {version} at {at}"),
}


def _words(lang: str) -> dict[str, str]:
    pick = 0 if is_zh(lang) else 1
    return {key: pair[pick] for key, pair in WORDS.items()}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("tierwise.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["share"] = formatting.share
    env.filters["count"] = lambda n: f"{int(n):,}"
    return env


def render_report(ws: RunReader, run_id: int | None = None, *, lang: str | None = None,
                  owner: str | None = None, today: dt.date | None = None,
                  generated_at: dt.datetime | None = None) -> str:
    """The report of a run (default: the latest) as one HTML document."""
    lang = lang or ws.language
    data = dashboard(ws, run_id, owner, lang=lang, today=today)
    return render_dashboard(data, lang=lang, generated_at=generated_at)


def render_dashboard(data: Dashboard, *, lang: str,
                     generated_at: dt.datetime | None = None) -> str:
    words = _words(lang)
    at = (generated_at or dt.datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M")
    figures: dict[str, str] = {
        "distribution": charts.figure_div(charts.distribution_figure(data.distribution, lang),
                                          div_id="chart-distribution"),
        "pareto": charts.figure_div(charts.pareto_figure(data.pareto, lang),
                                    div_id="chart-pareto"),
        "history": charts.figure_div(charts.history_figure(data.history, lang),
                                     div_id="chart-history"),
        "work": charts.figure_div(charts.work_figure(data.work, lang), div_id="chart-work"),
    }
    if data.migration is not None:
        figures["migration"] = charts.figure_div(charts.migration_figure(data.migration, lang),
                                                 div_id="chart-migration")

    def money(value: float | None) -> str:
        return formatting.money(value, lang)

    context: dict[str, Any] = {
        "lang": "zh-CN" if is_zh(lang) else "en",
        "w": words,
        "d": data,
        "o": data.overview,
        "metric": words[f"metric.{data.pareto.metric}"],
        "money": money,
        "figures": figures,
        "plotly_js": charts.plotly_js(),
        "font_family": charts.FONT_FAMILY,
        "generated": words["generated"].format(version=__version__, at=at),
        "colours": charts.tier_colours(len(data.distribution.tiers)),
    }
    return _environment().get_template("report.html").render(context)


def write_report(ws: RunReader, path: str | Path, run_id: int | None = None, *,
                 lang: str | None = None, owner: str | None = None,
                 today: dt.date | None = None) -> Path:
    """Write the report to ``path`` (UTF-8); returns the path."""
    target = Path(path)
    target.write_text(render_report(ws, run_id, lang=lang, owner=owner, today=today),
                      encoding="utf-8")
    return target
