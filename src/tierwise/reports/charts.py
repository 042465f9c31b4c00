"""Plotly figures of the dashboard's numbers (tierwise.reports.dashboard), in Chinese or English.

One restrained palette throughout: one colour per tier, the best tier darkest; warnings in
muted warm colours. The figures carry no plotly.js: :func:`figure_div` gives an HTML
fragment for a page that loads plotly.js itself (the web app serves it from the installed
plotly package, see :func:`plotly_js_path`; the HTML report inlines it) and
:func:`figure_json` the figure for ``Plotly.newPlot``. Nothing is fetched from a CDN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from tierwise.common.formatting import money, share
from tierwise.common.i18n import phrase
from tierwise.reports.dashboard import Distribution, Migration, Pareto, TierHistory, WorkByTier

FONT_FAMILY = ('"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", '
               '"PingFang SC", sans-serif')
TEXT = "#2f3b45"
GRID = "#e6e9ec"
MUTED = "#8a96a0"
# Best tier first: a deep navy to a pale blue-grey; more tiers are interpolated between them.
DARKEST, LIGHTEST = "#123a5a", "#c5d6e3"
WORK_COLOURS = {"churn_risk": "#b5523b", "complaint": "#d08c3f", "credit_risk": "#8c6d8f",
                "contact_overdue": "#7d8a94"}
CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True,
                          "modeBarButtonsToRemove": ["lasso2d", "select2d"]}

_WORDS: dict[str, tuple[str, str]] = {
    "distribution": ("等级分布与目标占比", "Tier distribution against target shares"),
    "customers": ("客户数占比", "Share of customers"),
    "revenue": ("收入占比", "Share of revenue"),
    "profit": ("利润占比", "Share of profit"),
    "target": ("目标占比区间", "Target share range"),
    "share": ("占比", "Share"),
    "pareto": ("帕累托曲线（ABC 分析）", "Pareto curve (ABC analysis)"),
    "pareto_x": ("客户累计占比（按{metric}从高到低）", "Cumulative share of customers "
                 "(by {metric}, highest first)"),
    "pareto_y": ("{metric}累计占比", "Cumulative share of {metric}"),
    "metric.profit": ("利润", "profit"),
    "metric.annual_spend": ("年度消费金额", "annual spend"),
    "equality": ("均匀分布", "Even spread"),
    "cut": ("{x} 的客户贡献 {level} 的{metric}", "{x} of customers carry {level} of {metric}"),
    "migration": ("等级迁移：第{a}次（{as_of_a}）→ 第{b}次（{as_of_b}）",
                  "Tier migration: run {a} ({as_of_a}) → run {b} ({as_of_b})"),
    "from": ("上次等级", "Tier before"),
    "to": ("本次等级", "Tier now"),
    "customers_count": ("客户数", "Customers"),
    "history": ("各等级客户数变化", "Customers per tier over time"),
    "as_of": ("截至日期", "As of"),
    "work": ("各等级待办：预警与逾期联系", "Work by tier: warnings and overdue contacts"),
    "tasks": ("任务数", "Tasks"),
    "churn_risk": ("流失预警", "Churn risk"),
    "complaint": ("投诉待回访", "Complaint"),
    "credit_risk": ("信用风险", "Credit risk"),
    "contact_overdue": ("逾期联系", "Overdue contact"),
}


def _w(key: str, lang: str, **values: Any) -> str:
    return phrase(_WORDS, key, lang, **values)


# -- palette ----------------------------------------------------------------------------------
def _rgb(colour: str) -> tuple[int, int, int]:
    text = colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def tier_colours(count: int) -> list[str]:
    """One colour per tier, best first: the darkest first, evenly lighter after it."""
    if count <= 0:
        return []
    if count == 1:
        return [DARKEST]
    dark, light = _rgb(DARKEST), _rgb(LIGHTEST)
    colours = []
    for i in range(count):
        f = i / (count - 1)
        colours.append("#" + "".join(f"{round(d + (lo - d) * f):02x}"
                                     for d, lo in zip(dark, light, strict=True)))
    return colours


def _base_layout(title: str, *, height: int = 380, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "font": {"family": FONT_FAMILY, "size": 12, "color": TEXT},
        "template": "none",
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 56, "b": 56},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1,
                   "xanchor": "right", "font": {"size": 11}},
        "hoverlabel": {"font": {"family": FONT_FAMILY}},
        **extra,
    }


def _axis(title: str = "", **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": GRID, "linecolor": GRID,
            "zerolinecolor": GRID, "automargin": True, **extra}


# -- figures ----------------------------------------------------------------------------------
def distribution_figure(d: Distribution, lang: str | None = None) -> go.Figure:
    """Per tier: bars of customer, revenue and profit shares in the tier's colour (solid,
    hatched, dotted), the target share range drawn around the customers bar."""
    lang = lang or d.lang
    colours = tier_colours(len(d.tiers))
    labels = [t.label for t in d.tiers]
    positions = list(range(len(d.tiers)))
    series = [("customers", "", [t.customer_share for t in d.tiers],
               [f"{t.customers:,}" for t in d.tiers]),
              ("revenue", "/", [t.revenue_share for t in d.tiers],
               [money(t.revenue, lang) for t in d.tiers])]
    if d.profit is not None:
        series.append(("profit", ".", [t.profit_share for t in d.tiers],
                       [money(t.profit, lang) for t in d.tiers]))
    width = 0.8 / len(series)
    fig = go.Figure()
    for j, (name, pattern, values, amounts) in enumerate(series):
        offset = (j - (len(series) - 1) / 2) * width
        fig.add_trace(go.Bar(
            x=[p + offset for p in positions], y=[v or 0.0 for v in values], width=width * 0.9,
            name=_w(name, lang), legendgroup=name, showlegend=False,
            marker={"color": colours, "line": {"color": colours, "width": 1},
                    "pattern": {"shape": pattern, "fgcolor": "white", "solidity": 0.35}},
            customdata=[[label, share(v), amount]
                        for label, v, amount in zip(labels, values, amounts, strict=True)],
            hovertemplate="%{customdata[0]} · " + _w(name, lang)
                          + ": %{customdata[1]} (%{customdata[2]})<extra></extra>"))
        fig.add_trace(go.Bar(           # legend swatch: neutral, with the series' pattern
            x=[None], y=[None], name=_w(name, lang), legendgroup=name, showlegend=True,
            marker={"color": MUTED, "line": {"color": MUTED, "width": 1},
                    "pattern": {"shape": pattern, "fillmode": "replace", "fgcolor": MUTED,
                                "bgcolor": "white", "solidity": 0.5}}))
    first_offset = -(len(series) - 1) / 2 * width
    targets = [(p, t) for p, t in zip(positions, d.tiers, strict=True) if t.target_share]
    for p, tier in targets:
        low, high = tier.target_share or (0.0, 0.0)
        fig.add_shape(type="rect", x0=p + first_offset - width / 2,
                      x1=p + first_offset + width / 2, y0=low, y1=high,
                      line={"color": TEXT, "width": 1.2, "dash": "dot"},
                      fillcolor="rgba(47,59,69,0.06)", layer="above")
    if targets:
        fig.add_trace(go.Scatter(
            x=[p + first_offset for p, _ in targets],
            y=[sum(t.target_share or (0.0, 0.0)) / 2 for _, t in targets],
            mode="markers", marker={"symbol": "line-ew", "size": 14,
                                    "line": {"color": TEXT, "width": 1.2}},
            name=_w("target", lang),
            customdata=[[t.label, share(t.target_share[0]), share(t.target_share[1])]
                        for _, t in targets if t.target_share],
            hovertemplate="%{customdata[0]} · " + _w("target", lang)
                          + ": %{customdata[1]}–%{customdata[2]}<extra></extra>"))
    fig.update_layout(**_base_layout(_w("distribution", lang), barmode="overlay",
                                     bargap=0.2))
    fig.update_xaxes(**_axis(tickmode="array", tickvals=positions, ticktext=labels,
                             showgrid=False))
    fig.update_yaxes(**_axis(_w("share", lang), tickformat=".0%", rangemode="tozero"))
    return fig


def pareto_figure(p: Pareto, lang: str | None = None) -> go.Figure:
    """The cumulative share of value against the share of customers, with the 80% line and
    where it is reached."""
    lang = lang or p.lang
    metric = _w(f"metric.{p.metric}", lang)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_w("equality", lang),
                             line={"color": MUTED, "width": 1, "dash": "dot"},
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=list(p.customer_share), y=list(p.value_share), mode="lines",
        name=_w("pareto_y", lang, metric=metric), line={"color": DARKEST, "width": 2.5},
        fill="tozeroy", fillcolor="rgba(18,58,90,0.08)",
        hovertemplate="%{x:.1%} → %{y:.1%}<extra></extra>"))
    fig.add_hline(y=0.8, line={"color": "#b5523b", "width": 1, "dash": "dash"})
    for level, cut in ((0.8, p.cut_80), (0.95, p.cut_95)):
        if cut is None:
            continue
        fig.add_shape(type="line", x0=cut, x1=cut, y0=0, y1=level,
                      line={"color": "#b5523b" if level == 0.8 else MUTED, "width": 1,
                            "dash": "dash" if level == 0.8 else "dot"})
        fig.add_annotation(x=cut, y=level, xanchor="left", yanchor="top", showarrow=False,
                           xshift=6, yshift=-4, font={"size": 11},
                           text=_w("cut", lang, x=share(cut), level=share(level),
                                   metric=metric))
    fig.update_layout(**_base_layout(_w("pareto", lang), showlegend=False))
    fig.update_xaxes(**_axis(_w("pareto_x", lang, metric=metric), tickformat=".0%",
                             range=[0, 1.0001]))
    fig.update_yaxes(**_axis(_w("pareto_y", lang, metric=metric), tickformat=".0%",
                             range=[0, 1.05]))
    return fig


def migration_figure(m: Migration, lang: str | None = None) -> go.Figure:
    """A heatmap of customers by tier before (rows) and now (columns), counts written in."""
    lang = lang or m.lang
    shown = m.shown
    labels = [m.labels[i] for i in shown]
    rows = [[m.counts[i][j] for j in shown] for i in shown]
    top = max((n for row in rows for n in row), default=0)
    fig = go.Figure(go.Heatmap(
        z=rows, x=labels, y=labels,
        colorscale=[[0.0, "#f7f9fb"], [1.0, DARKEST]], zmin=0, zmax=max(top, 1),
        text=[[f"{n:,}" for n in row] for row in rows], texttemplate="%{text}",
        textfont={"size": 12}, xgap=2, ygap=2, showscale=False,
        hovertemplate=(_w("from", lang) + ": %{y}<br>" + _w("to", lang) + ": %{x}<br>"
                       + _w("customers_count", lang) + ": %{text}<extra></extra>")))
    title = _w("migration", lang, a=m.run_a, b=m.run_b, as_of_a=m.as_of_a.isoformat(),
               as_of_b=m.as_of_b.isoformat())
    fig.update_layout(**_base_layout(title, height=max(320, 60 * len(labels) + 140)))
    fig.update_xaxes(**_axis(_w("to", lang), side="bottom", showgrid=False))
    fig.update_yaxes(**_axis(_w("from", lang), autorange="reversed", showgrid=False))
    return fig


def history_figure(h: TierHistory, lang: str | None = None) -> go.Figure:
    """Customers per tier over the runs' as-of dates, stacked, best tier at the bottom."""
    lang = lang or h.lang
    colours = tier_colours(len(h.tiers))
    dates: Sequence[dt.date] = [r.as_of for r in h.runs]
    # Runs of the same date (a re-grade, a what-if policy) would stack on one x: then each
    # run is its own category, in run order.
    unique = len(set(dates)) == len(dates)
    xs: list[Any] = (list(dates) if unique
                     else [f"{r.as_of.isoformat()} #{r.run_id}" for r in h.runs])
    fig = go.Figure()
    for i, (key, label) in enumerate(zip(h.tiers, h.labels, strict=True)):
        fig.add_trace(go.Scatter(
            x=xs, y=[r.counts[i] for r in h.runs], name=label, legendgroup=key,
            mode="lines+markers" if len(h.runs) < 3 else "lines", stackgroup="tiers",
            line={"color": colours[i], "width": 1}, fillcolor=colours[i],
            customdata=[[r.run_id] for r in h.runs],
            hovertemplate=label + (" · %{x|%Y-%m-%d}" if unique else " · %{x}")
                          + ": %{y:,}<extra></extra>"))
    fig.update_layout(**_base_layout(_w("history", lang), hovermode="x unified"))
    fig.update_xaxes(**_axis(_w("as_of", lang), showgrid=False,
                             **({"tickformat": "%Y-%m-%d"} if unique else {"type": "category"})))
    fig.update_yaxes(**_axis(_w("customers_count", lang), rangemode="tozero",
                             separatethousands=True))
    return fig


def work_figure(w: WorkByTier, lang: str | None = None) -> go.Figure:
    """Stacked bars per tier: churn risks, complaints, credit risks, overdue contacts."""
    lang = lang or w.lang
    labels = [t.label for t in w.tiers]
    fig = go.Figure()
    for field in ("churn_risk", "complaint", "credit_risk", "contact_overdue"):
        fig.add_trace(go.Bar(
            x=labels, y=[int(getattr(t, field)) for t in w.tiers], name=_w(field, lang),
            marker={"color": WORK_COLOURS[field]},
            hovertemplate="%{x} · " + _w(field, lang) + ": %{y:,}<extra></extra>"))
    fig.update_layout(**_base_layout(_w("work", lang), barmode="stack", bargap=0.35))
    fig.update_xaxes(**_axis(showgrid=False))
    fig.update_yaxes(**_axis(_w("tasks", lang), rangemode="tozero", separatethousands=True))
    return fig


# -- embedding --------------------------------------------------------------------------------
def figure_json(fig: go.Figure) -> str:
    """The figure as JSON ({"data": …, "layout": …}) for ``Plotly.newPlot``."""
    text = pio.to_json(fig, validate=False)
    assert text is not None
    return text


def figure_div(fig: go.Figure, *, div_id: str | None = None,
               config: dict[str, Any] | None = None) -> str:
    """An HTML fragment (a <div> and the inline call that draws it) WITHOUT plotly.js: the
    page must load plotly.js before it."""
    html = pio.to_html(fig, full_html=False, include_plotlyjs=False, include_mathjax=False,
                       div_id=div_id, config={**CONFIG, **(config or {})}, validate=False)
    return str(html)


def plotly_js_path() -> Path:
    """plotly.min.js inside the installed plotly package (plotly/package_data/)."""
    found = resources.files("plotly") / "package_data" / "plotly.min.js"
    path = Path(str(found))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js is not where plotly keeps it: {path}")
    return path


def plotly_js() -> str:
    """plotly.min.js's text, safe to put inside a <script> element."""
    return plotly_js_path().read_text(encoding="utf-8").replace("</script", "<\\/script")
