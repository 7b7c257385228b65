"""Report section: planned contacts per month against the monthly contact capacities.

The volumes are stacked by channel; each monthly contacts capacity is a dashed line on the
same axis while its scale is comparable with the volumes. A capacity whose bound is ten
times (or more) smaller or larger than the monthly volume would be a flat line on the floor
(or the ceiling) of that axis: it is drawn apart instead, in a small multiple of its own,
its usage (bars) against its bounds (lines) on an axis scaled to it.

Only ``run_metrics`` rows reach this module (aggregates per month, rule and channel).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any

from contact_spark.config.models import AppConfig
from contact_spark.report.widgets import CHANNEL_COLOURS, Charts, html_table

# A capacity line shares the volume chart's axis only within this factor of the volumes.
SHARED_AXIS_MAX_RATIO = 10.0
CAPACITY_LINE = {"dash": "dash", "color": "#1f2933"}


def shares_axis(volume_peak: float, bound_peak: float) -> bool:
    """Whether a capacity whose largest bound is ``bound_peak`` stays readable on the axis of
    volumes peaking at ``volume_peak``: their ratio, either way, is below
    :data:`SHARED_AXIS_MAX_RATIO`. With nothing to compare (no volume, or a bound of 0) the
    line stays on the shared axis."""
    if volume_peak <= 0 or bound_peak <= 0:
        return True
    return max(volume_peak, bound_peak) / min(volume_peak, bound_peak) < SHARED_AXIS_MAX_RATIO


def period_label(labels: dict[tuple[str, Any], str], rule: str, month: Any) -> str:
    """A capacity row's period (its rule and first month) as a label; a spread rule's month."""
    return labels.get((rule, month)) or (f"{month:%Y-%m}" if month else "year")


def monthly_contact_rules(config: AppConfig, capacity: list[dict[str, Any]]) -> list[str]:
    """The monthly contacts capacities that have usage rows, by name."""
    rules = {r.name: r for r in config.capacities.rules}
    return [
        name
        for name in sorted({r["metric"] for r in capacity})
        if name in rules and rules[name].measure == "contacts" and rules[name].period == "month"
    ]


def volume_figures(
    metrics: dict[str, list[dict[str, Any]]], config: AppConfig
) -> tuple[Any, Any | None, list[str]]:
    """The optimizer's volumes with the capacity lines that share their axis; the small
    multiples of the capacities drawn apart (None when there are none); the names of those."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    months = config.run.months()
    labels = [f"{m:%b %Y}" for m in months]
    volume = [r for r in metrics.get("volume", []) if r["plan"] == "optimizer"]
    per_channel: dict[str, defaultdict[Any, float]] = {h: defaultdict(float) for h in config.channel_names}
    for r in volume:
        if r["channel"] in per_channel:
            per_channel[r["channel"]][r["month"]] += r["value"]
    volume_peak = max((sum(per_channel[h].get(m, 0.0) for h in per_channel) for m in months), default=0.0)
    main = go.Figure()
    for i, channel in enumerate(config.channel_names):
        main.add_bar(
            x=labels,
            y=[per_channel[channel].get(m, 0.0) for m in months],
            name=channel,
            marker_color=CHANNEL_COLOURS[i % 6],
        )
    capacity = [r for r in metrics.get("capacity", []) if r["plan"] == "optimizer"]
    apart: list[str] = []
    for name in monthly_contact_rules(config, capacity):
        rows = {r["month"]: r for r in capacity if r["metric"] == name}
        bounds = [(rows.get(m) or {}).get("bound_max") for m in months]
        if not shares_axis(volume_peak, max((b for b in bounds if b is not None), default=0.0)):
            apart.append(name)
            continue
        main.add_scatter(
            x=labels, y=bounds, name=f"capacity {name}", mode="lines+markers", line=CAPACITY_LINE
        )
    lines = " (dashed: monthly capacity)" if len(main.data) > len(config.channel_names) else ""
    main.update_layout(barmode="stack", title=f"Planned contacts per month and channel{lines}")
    if not apart:
        return main, None, apart
    cols = min(2, len(apart))
    # One capacity apart is named in the title; several get a title each.
    titles = [f"capacity {n}" for n in apart] if len(apart) > 1 else None
    grid = make_subplots(rows=math.ceil(len(apart) / cols), cols=cols, subplot_titles=titles)
    for i, name in enumerate(apart):
        rows = {r["month"]: r for r in capacity if r["metric"] == name}
        at = {"row": i // cols + 1, "col": i % cols + 1}
        first = i == 0  # one legend entry per kind of trace
        grid.add_bar(
            x=labels,
            y=[(rows.get(m) or {}).get("value", 0.0) for m in months],
            name="usage",
            marker_color="#2f80ed",
            showlegend=first,
            legendgroup="usage",
            **at,
        )
        for bound, dash in (("bound_max", "dash"), ("bound_min", "dot")):
            values = [(rows.get(m) or {}).get(bound) for m in months]
            if any(v is not None for v in values):
                grid.add_scatter(
                    x=labels,
                    y=values,
                    name="max" if bound == "bound_max" else "min",
                    mode="lines+markers",
                    line={"dash": dash, "color": "#1f2933"},
                    showlegend=first,
                    legendgroup=bound,
                    **at,
                )
    named = (
        f"capacity {apart[0]} per month (bars) against its"
        if len(apart) == 1
        else "capacities per month (bars) against their"
    )
    grid.update_layout(title=f"Usage of the {named} bounds (lines)")
    return main, grid, apart


def volume_section(charts: Charts, metrics: dict[str, list[dict[str, Any]]], config: AppConfig) -> str:
    main, grid, apart = volume_figures(metrics, config)
    out = "<h2>Contact volume against capacity</h2>" + charts.div(main)
    if grid is not None:
        out += (
            f"<p class='muted'>Drawn apart, each on its own scale: {html.escape(', '.join(apart))} "
            f"(bounds {SHARED_AXIS_MAX_RATIO:.0f}× or more away from the monthly volume, which would "
            "flatten the line on a shared axis).</p>" + charts.div(grid, 360 * math.ceil(len(apart) / 2))
        )
    table_rows = []
    periods = config.capacities.period_labels(config.run.months())
    for r in sorted(metrics.get("capacity", []), key=lambda r: (r["metric"], r["plan"], str(r["month"]))):
        table_rows.append(
            (
                r["metric"],
                r["plan"],
                period_label(periods, r["metric"], r["month"]),
                r["value"],
                r["bound_min"],
                r["bound_max"],
            )
        )
    return (
        out
        + "<details><summary>Capacity usage per rule (optimizer and greedy)</summary>"
        + html_table(["capacity", "plan", "period", "usage", "min", "max"], table_rows)
        + "</details>"
    )
