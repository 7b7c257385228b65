"""Report sections of the capacity engine: price convergence and capacity sensitivity.

Read from ``capacity_iterations`` and ``capacity_sensitivity`` of the run (aggregates and
one row per iteration × constraint; nothing per customer).
"""

from __future__ import annotations

from collections import defaultdict

from pyspark.sql import functions as F

from contact_spark.io.tables import TableStore
from contact_spark.report.widgets import Charts, html_table


def convergence_section(charts: Charts, store: TableStore, run_id: str) -> str:
    import plotly.graph_objects as go

    if not store.exists("capacity_iterations"):
        return ""
    its = store.read_run("capacity_iterations", run_id)
    steps = (
        its.groupBy("phase", "iteration").agg(
            F.max("dual_bound").alias("dual"),
            F.max("primal_value").alias("primal"),
            F.min("_order").alias("o"),
        )
        if "_order" in its.columns
        else its.groupBy("phase", "iteration").agg(
            F.max("dual_bound").alias("dual"), F.max("primal_value").alias("primal")
        )
    ).collect()
    phase_order = {"dual": 0, "primal": 1, "repair": 2, "certificate": 3}
    steps = sorted(steps, key=lambda r: (phase_order.get(r["phase"], 9), r["phase"], r["iteration"]))
    labels = [f"{r['phase']} {r['iteration']}" for r in steps]
    gap_fig = go.Figure()
    gap_fig.add_scatter(x=labels, y=[r["dual"] for r in steps], name="dual bound", mode="lines+markers")
    gap_fig.add_scatter(x=labels, y=[r["primal"] for r in steps], name="plan value", mode="lines+markers")
    gaps = [
        (r["dual"] - r["primal"]) / abs(r["dual"]) if r["dual"] and r["primal"] is not None else None
        for r in steps
    ]
    gap_fig.add_scatter(x=labels, y=gaps, name="relative gap", mode="lines+markers", yaxis="y2")
    gap_fig.update_layout(
        title="Dual bound, plan value and gap per iteration",
        yaxis2={"overlaying": "y", "side": "right", "tickformat": ".2%", "title": "gap"},
    )
    prices = its.filter(F.col("phase") == "dual").select("iteration", "constraint_name", "price").collect()
    price_fig = go.Figure()
    by_constraint: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in prices:
        by_constraint[r["constraint_name"]].append((r["iteration"], r["price"]))
    for name in sorted(by_constraint):
        pts = sorted(by_constraint[name])
        if any(p for _, p in pts):
            price_fig.add_scatter(
                x=[i for i, _ in pts], y=[p for _, p in pts], name=name, mode="lines+markers"
            )
    price_fig.update_layout(
        title="Capacity prices per iteration (constraints that ever had a price)",
        xaxis_title="dual iteration",
    )
    return "<h2>Price convergence</h2>" + charts.div(gap_fig) + charts.div(price_fig)


def sensitivity_section(charts: Charts, store: TableStore, run_id: str) -> str:
    import plotly.graph_objects as go

    if not store.exists("capacity_sensitivity"):
        return ""
    rows = store.read_run("capacity_sensitivity", run_id).orderBy("rule", "month", "sense").collect()
    fig = go.Figure(
        go.Bar(
            x=[r["constraint_name"] for r in rows],
            y=[r["shadow_price"] for r in rows],
            marker_color="#f2994a",
        )
    )
    fig.update_layout(title="Value of one more unit of capacity (shadow price)")
    table = html_table(
        ["constraint", "sense", "bound", "usage", "shadow price", "binding", "shortfall"],
        [
            (
                r["constraint_name"],
                r["sense"],
                r["bound"],
                r["usage"],
                r["shadow_price"],
                r["binding"],
                r["shortfall"],
            )
            for r in rows
        ],
    )
    return "<h2>Capacity sensitivity</h2>" + charts.div(fig) + table
