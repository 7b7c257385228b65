"""The comparison page: a scenario and its base run side by side, one offline HTML file.

Built from the :class:`~contact_spark.scenarios.compare.Comparison` alone (the aggregate rows
written to ``run_comparison`` and the counts of changed customers by kind) with the run
report's style, tables and inline Plotly charts. It holds no customer, phone or address:
the changed customers are counted by kind here and listed in the Delta table.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from contact_spark.report.widgets import CHANNEL_COLOURS, STYLE, Charts, _fmt, html_table
from contact_spark.scenarios.compare import CHANGE_KINDS, Comparison

BASE_COLOUR, SCENARIO_COLOUR = "#9aa5b1", "#2f80ed"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else ("+" if value > 0 else "") + _fmt(float(value))


def _scenario_text(comparison: Comparison) -> str:
    """Who is compared: the runs, the scenario's name and the overrides that made it."""
    parts = [
        f"<p>Base: <b>{html.escape(comparison.base.label)}</b>. Scenario: "
        f"<b>{html.escape(comparison.scenario.label)}</b>. Rows in table run_comparison, "
        f"run_id <code>{html.escape(comparison.id)}</code>.</p>"
    ]
    record = comparison.scenario.record
    if record is not None:
        recorded_base = record.scenario.base_run_id
        if recorded_base and recorded_base != comparison.base.run_id:
            parts.append(
                f"<p class='bad'>The scenario was recorded as a variant of run {html.escape(recorded_base)}, "
                "not of this base.</p>"
            )
        overrides = record.scenario.overrides
        parts.append(
            html_table(["override (--set)", "value"], [(k, v) for k, v in overrides])
            if overrides
            else "<p class='muted'>The scenario was recorded without overrides.</p>"
        )
    return "".join(parts)


def headline(comparison: Comparison) -> str:
    value = comparison.total("value")
    prediction = comparison.prediction()
    kpis = [
        ("Expected value, base", _fmt(value["base"])),
        ("Expected value, scenario", _fmt(value["scenario"])),
        ("Value change, measured", _signed(value["difference"])),
        ("Value change, predicted", _signed(prediction["predicted"])),
        ("Contacts, change", _signed(comparison.total("contacts")["difference"])),
        ("Cost, change", _signed(comparison.total("cost")["difference"])),
        ("Customers with a changed plan", _fmt(sum(n for n, _ in comparison.changes.values()))),
    ]
    cells = "".join(f"<div class='kpi'>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in kpis)
    return f"<div class='kpis'>{cells}</div>"


def prediction_section(charts: Charts, comparison: Comparison) -> str:
    import plotly.graph_objects as go

    bounds = [r for r in comparison.section("prediction") if r["metric"] == "bound"]
    total = comparison.prediction()
    prices = {
        r["constraint_name"]: r["base"]
        for r in comparison.section("capacity")
        if r["metric"] == "shadow_price"
    }
    fig = go.Figure(
        go.Bar(
            x=["predicted by the base run's shadow prices", "measured (scenario − base)"],
            y=[total["predicted"] or 0.0, total["difference"] or 0.0],
            marker_color=["#f2994a", SCENARIO_COLOUR],
        )
    )
    fig.update_layout(title="Value change: first-order prediction against the measured change")
    unpredicted = sum(1 for r in bounds if r["predicted"] is None)
    note = (
        f"<p class='bad'>{unpredicted} constraint(s) exist in one run only: their change is not in the "
        "prediction.</p>"
        if unpredicted
        else ""
    )
    return (
        "<h2>Predicted against measured</h2>"
        "<p class='muted'>A capacity's shadow price in the base run is what one more unit of its bound is "
        "worth. Σ price × Δbound over the bounds the scenario moved predicts the value change to first "
        "order; the measured change is the difference of the two plans' values (each within its run's "
        "optimality gap).</p>"
        + charts.div(fig, 360)
        + html_table(
            [
                "constraint",
                "bound, base",
                "bound, scenario",
                "Δ bound",
                "shadow price (base)",
                "predicted Δ value",
            ],
            [
                (
                    r["constraint_name"],
                    r["base"],
                    r["scenario"],
                    r["difference"],
                    prices.get(r["constraint_name"]),
                    r["predicted"],
                )
                for r in bounds
            ]
            + [("total", None, None, None, None, total["predicted"])],
        )
        + f"<p>Measured value change: <b>{html.escape(_signed(total['difference']))}</b>; predicted: "
        f"<b>{html.escape(_signed(total['predicted']))}</b>.</p>" + note
    )


def _cells(comparison: Comparison) -> dict[tuple[Any, str, str], dict[str, dict[str, Any]]]:
    table: dict[tuple[Any, str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in comparison.section("cell"):
        table[(r["month"], r["campaign"], r["channel"])][r["metric"]] = r
    return table


def cells_section(charts: Charts, comparison: Comparison) -> str:
    import plotly.graph_objects as go

    cells = _cells(comparison)
    months = sorted({key[0] for key in cells})
    labels = [f"{m:%Y-%m}" for m in months]
    by_month: dict[tuple[Any, str], float] = defaultdict(float)
    for (month, _, _), metrics in cells.items():
        for role in ("base", "scenario"):
            by_month[(month, role)] += metrics["value"][role] or 0.0
    value_fig = go.Figure()
    for role, colour in (("base", BASE_COLOUR), ("scenario", SCENARIO_COLOUR)):
        value_fig.add_bar(x=labels, y=[by_month[(m, role)] for m in months], name=role, marker_color=colour)
    value_fig.update_layout(barmode="group", title="Expected value per month (net of contact costs)")
    channels = sorted({key[2] for key in cells})
    delta_fig = go.Figure()
    for i, channel in enumerate(channels):
        delta: dict[Any, float] = defaultdict(float)
        for (month, _, ch), metrics in cells.items():
            if ch == channel:
                delta[month] += metrics["contacts"]["difference"] or 0.0
        delta_fig.add_bar(
            x=labels, y=[delta[m] for m in months], name=channel, marker_color=CHANNEL_COLOURS[i % 6]
        )
    delta_fig.update_layout(barmode="relative", title="Change in planned contacts per month and channel")
    rows = []
    for (month, campaign, channel), m in sorted(cells.items()):
        rows.append(
            (
                f"{month:%Y-%m}",
                campaign,
                channel,
                *(
                    m[metric][role]
                    for metric in ("contacts", "cost", "value")
                    for role in ("base", "scenario")
                ),
                m["value"]["difference"],
            )
        )
    totals = html_table(
        ["", "base", "scenario", "difference"],
        [
            (metric.replace("_", " "), r["base"], r["scenario"], r["difference"])
            for metric in (
                "value",
                "contacts",
                "cost",
                "customers_contacted",
                "objective",
                "dual_bound",
                "gap",
            )
            for r in [comparison.total(metric)]
        ],
    )
    return (
        "<h2>Value, contacts and cost</h2>"
        + totals
        + charts.div(value_fig)
        + charts.div(delta_fig)
        + "<details><summary>By month × campaign × channel</summary>"
        + html_table(
            [
                "month",
                "campaign",
                "channel",
                "contacts, base",
                "contacts, scenario",
                "cost, base",
                "cost, scenario",
                "value, base",
                "value, scenario",
                "Δ value",
            ],
            rows,
        )
        + "</details>"
    )


def _share(metrics: dict[str, dict[str, Any]], role: str) -> float | None:
    """A constraint's usage in % of its bound in one run (None: not in the run, or bound 0)."""
    usage, bound = metrics["usage"][role], metrics["bound"][role]
    return None if usage is None or not bound else 100.0 * usage / bound


def capacity_section(charts: Charts, comparison: Comparison) -> str:
    import plotly.graph_objects as go

    by_name: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in comparison.section("capacity"):
        by_name[r["constraint_name"]][r["metric"]] = r
    names = list(by_name)  # in rule and month order (compare.capacity_rows)
    usage_fig = go.Figure()
    price_fig = go.Figure()
    # Usage as a share of the bound: a call centre's 250 calls and a budget of 20,000 on one
    # scale. Constraints whose bound is 0 (averages, spreads) are in the table only.
    shown = [n for n in names if any(_share(by_name[n], role) is not None for role in ("base", "scenario"))]
    for role, colour in (("base", BASE_COLOUR), ("scenario", SCENARIO_COLOUR)):
        usage_fig.add_bar(
            x=shown, y=[_share(by_name[n], role) for n in shown], name=role, marker_color=colour
        )
        price_fig.add_bar(
            x=names, y=[by_name[n]["shadow_price"][role] for n in names], name=role, marker_color=colour
        )
    usage_fig.add_hline(y=100, line_dash="dash", line_color="#1f2933", annotation_text="bound")
    usage_fig.update_layout(
        barmode="group", title="Capacity usage as a share of its bound (100 % = the bound), both runs"
    )
    usage_fig.update_yaxes(ticksuffix=" %")
    price_fig.update_layout(barmode="group", title="Shadow price of every capacity constraint, both runs")
    table = html_table(
        [
            "constraint",
            "bound, base",
            "bound, scenario",
            "usage, base",
            "usage, scenario",
            "price, base",
            "price, scenario",
        ],
        [
            (
                n,
                by_name[n]["bound"]["base"],
                by_name[n]["bound"]["scenario"],
                by_name[n]["usage"]["base"],
                by_name[n]["usage"]["scenario"],
                by_name[n]["shadow_price"]["base"],
                by_name[n]["shadow_price"]["scenario"],
            )
            for n in names
        ],
    )
    return "<h2>Capacity usage and shadow prices</h2>" + charts.div(usage_fig) + charts.div(price_fig) + table


def changes_section(charts: Charts, comparison: Comparison) -> str:
    import plotly.graph_objects as go

    counts = [(kind, text, *comparison.changes.get(kind, (0, 0.0))) for kind, text in CHANGE_KINDS]
    fig = go.Figure(go.Bar(x=[k for k, *_ in counts], y=[n for _, _, n, _ in counts], marker_color="#9b51e0"))
    fig.update_layout(title="Customers whose planned contacts changed, by kind of change")
    return (
        "<h2>Customers whose plan changed</h2>"
        "<p class='muted'>A customer's plan changed when its planned contacts (month, campaign, channel) "
        "differ. Each such customer is a row of run_comparison (section customer) with the contacts added "
        "and removed.</p>"
        + charts.div(fig, 360)
        + html_table(
            ["change", "meaning", "customers", "Δ value"],
            [(kind, text, n, value) for kind, text, n, value in counts],
        )
    )


def comparison_page(comparison: Comparison) -> str:
    """The whole page as a string."""
    import plotly.offline

    charts = Charts()
    title = f"Scenario {comparison.scenario.run_id} against {comparison.base.run_id}"
    config = comparison.base.config
    body = "".join(
        [
            f"<h1>{html.escape(title)}</h1>",
            f"<p class='muted'>Plans from {config.run.first_month:%B %Y} over {config.run.horizon_months} "
            f"months; campaigns {', '.join(config.campaign_names)}; channels "
            f"{', '.join(config.channel_names)}.</p>",
            _scenario_text(comparison),
            headline(comparison),
            prediction_section(charts, comparison),
            cells_section(charts, comparison),
            capacity_section(charts, comparison),
            changes_section(charts, comparison),
        ]
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>contact_spark {html.escape(title)}</title><style>{STYLE}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head>"
        f"<body>{body}</body></html>"
    )


def write_comparison_page(comparison: Comparison, report_dir: str) -> str:
    """Write ``<report_dir>/<scenario run>/compare-<base run>.html`` (beside the scenario's
    report) and return its path."""
    out = Path(report_dir) / comparison.scenario.run_id
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"compare-{comparison.base.run_id}.html"
    path.write_text(comparison_page(comparison), encoding="utf-8")
    return str(path.resolve())
