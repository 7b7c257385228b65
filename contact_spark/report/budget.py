"""Report sections for the people who decide budgets: cost and return per channel and per
campaign, and the campaign mix over the months.

Both are computed in Spark from the run's ``run_metrics`` rows (already aggregates per
plan × campaign × channel and per month), so nothing per customer is read here:

* ROI = (value − cost) / cost, where value is Σ propensity × success value (``gross_value``)
  and cost Σ the contacts' cost, whatever the objective maximised (``objective: value``
  keeps the cost out of the objective, not out of the budget). No cost, no ROI (shown "n/a").
* The mix: contacts per month and campaign, their share of the month's contacts, and their
  cost (contacts × the campaign × channel's cost per contact of the config, which is what
  every plan row costs).
"""

from __future__ import annotations

import html
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.offers import contact_cost
from contact_spark.report.widgets import CHANNEL_COLOURS, Charts, _fmt, html_table

OUTCOME_PARTS = ("contacts", "gross_value", "cost")
ROI_COLUMNS = ("contacts", "gross_value", "cost", "net_value", "roi", "cost_per_contact", "budget_share")


def roi_table(metrics: DataFrame) -> DataFrame:
    """Cost and return of the outcome rows of ``run_metrics``, in one pass: per plan, per
    ``by`` (``channel``, ``campaign``, or ``plan`` for the whole plan) and ``key`` (its
    name): contacts, value (``gross_value``), cost, net value (value − cost), ROI (net / cost,
    null without cost), cost per contact and share of the plan's whole cost."""
    outcome = metrics.filter((F.col("section") == "outcome") & F.col("metric").isin(*OUTCOME_PARTS))
    keys = F.array(
        *[F.struct(F.lit(by).alias("by"), F.col(by).alias("key")) for by in ("channel", "campaign")],
        F.struct(F.lit("plan").alias("by"), F.lit("whole plan").alias("key")),
    )
    keyed = outcome.select("plan", "metric", "value", F.explode(keys).alias("k")).select(
        "plan", "metric", "value", "k.by", "k.key"
    )
    per_key = keyed.groupBy("plan", "by", "key").agg(
        *[
            F.coalesce(F.sum(F.when(F.col("metric") == part, F.col("value"))), F.lit(0.0)).alias(part)
            for part in OUTCOME_PARTS
        ]
    )
    budget = F.sum("cost").over(Window.partitionBy("plan", "by"))
    net = F.col("gross_value") - F.col("cost")
    return per_key.select(
        "plan",
        "by",
        "key",
        "contacts",
        "gross_value",
        "cost",
        net.alias("net_value"),
        F.when(F.col("cost") > 0, net / F.col("cost")).alias("roi"),
        F.when(F.col("contacts") > 0, F.col("cost") / F.col("contacts")).alias("cost_per_contact"),
        F.when(budget > 0, F.col("cost") / budget).alias("budget_share"),
    ).orderBy("plan", "by", "key")


def roi_by(metrics: DataFrame, key: str, plan: str = "optimizer") -> DataFrame:
    """:func:`roi_table` of ``plan`` per ``key`` (``channel`` or ``campaign``), ordered by it."""
    return (
        roi_table(metrics)
        .filter((F.col("plan") == plan) & (F.col("by") == key))
        .select(F.col("key").alias(key), *ROI_COLUMNS)
        .orderBy(key)
    )


def campaign_mix(metrics: DataFrame, config: AppConfig, plan: str = "optimizer") -> DataFrame:
    """Per month × campaign of ``plan``'s volume rows of ``run_metrics``: contacts, their share
    of the month's contacts and their cost; ordered by month and campaign."""
    volume = metrics.filter((F.col("section") == "volume") & (F.col("plan") == plan))
    per_cell = volume.groupBy("month", "campaign").agg(
        F.sum("value").alias("contacts"),
        F.sum(F.col("value") * F.coalesce(contact_cost(config), F.lit(0.0))).alias("cost"),
    )
    month_total = F.sum("contacts").over(Window.partitionBy("month"))
    return per_cell.select(
        "month",
        "campaign",
        "contacts",
        F.when(month_total > 0, F.col("contacts") / month_total).alias("share"),
        "cost",
    ).orderBy("month", "campaign")


def _roi_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+,.0%}"


def roi_section(charts: Charts, metrics: DataFrame, config: AppConfig) -> str:
    """Cost and ROI per channel and per campaign (optimizer), with the greedy baseline's overall ROI."""
    import plotly.graph_objects as go

    tables: dict[str, list[dict[str, Any]]] = {"channel": [], "campaign": []}
    totals: dict[str, dict[str, Any]] = {}
    for row in roi_table(metrics).collect():  # plans × (channels + campaigns + 1)
        r = row.asDict()
        if r["by"] == "plan":
            totals[r["plan"]] = r
        elif r["plan"] == "optimizer":
            tables[r["by"]].append(r | {r["by"]: r["key"]})
    if not tables["channel"]:
        return "<h2>Cost and return</h2><p class='muted'>No outcome rows in run_metrics for this run.</p>"
    fig = go.Figure()
    for key, colour in (("channel", "#2f80ed"), ("campaign", "#27ae60")):
        rows = tables[key]
        fig.add_bar(
            x=[f"{key} {r[key]}" for r in rows],
            y=[r["roi"] for r in rows],
            name=f"per {key}",
            marker_color=colour,
            text=[_roi_text(r["roi"]) for r in rows],
            textposition="outside",
        )
    fig.update_layout(title="Return on spend: (value − cost) / cost", yaxis_tickformat=".0%")
    overall = ", ".join(
        f"{plan} {_roi_text(totals[plan]['roi'])} on a cost of {_fmt(totals[plan]['cost'])}"
        for plan in ("optimizer", "greedy")
        if plan in totals
    )
    headers = ["contacts", "value p·v", "cost", "value − cost", "ROI", "cost per contact", "share of cost"]
    out = (
        "<h2>Cost and return</h2>"
        "<p class='muted'>Per channel and campaign of the optimizer's plan: value is Σ propensity × "
        "success value, cost Σ the contacts' cost (counted whatever the objective), ROI = (value − cost) "
        f"/ cost. Whole plan: {html.escape(overall)}.</p>" + charts.div(fig)
    )
    for key in ("channel", "campaign"):
        out += html_table(
            [key, *headers],
            [
                (
                    r[key],
                    int(r["contacts"]),
                    r["gross_value"],
                    r["cost"],
                    r["net_value"],
                    _roi_text(r["roi"]),
                    r["cost_per_contact"],
                    "n/a" if r["budget_share"] is None else f"{r['budget_share']:.1%}",
                )
                for r in tables[key]
            ],
        )
    return out


def mix_section(charts: Charts, metrics: DataFrame, config: AppConfig) -> str:
    """The optimizer's contacts per month stacked by campaign, and each campaign's share and cost."""
    import plotly.graph_objects as go

    rows = campaign_mix(metrics, config).collect()  # months × campaigns
    if not rows:
        return "<h2>Campaign mix over time</h2><p class='muted'>No planned contacts for this run.</p>"
    months = config.run.months()
    labels = [f"{m:%b %Y}" for m in months]
    cells: dict[tuple[Any, str], Any] = {(r["month"], r["campaign"]): r for r in rows}
    campaigns = [c for c in config.campaign_names if any(k[1] == c for k in cells)]
    fig = go.Figure()
    for i, campaign in enumerate(campaigns):
        mine = [cells.get((m, campaign)) for m in months]
        fig.add_bar(
            x=labels,
            y=[r["contacts"] if r else 0.0 for r in mine],
            name=campaign,
            marker_color=CHANNEL_COLOURS[(i + 3) % 6],
            customdata=[r["share"] if r else 0.0 for r in mine],
            hovertemplate="%{x}: %{y:,.0f} contacts (%{customdata:.0%} of the month)",
        )
    fig.update_layout(barmode="stack", title="Planned contacts per month and campaign")
    table = html_table(
        ["month", "campaign", "contacts", "share of the month", "cost"],
        [
            (f"{r['month']:%Y-%m}", r["campaign"], int(r["contacts"]), f"{r['share'] or 0.0:.1%}", r["cost"])
            for r in rows
        ],
    )
    return (
        "<h2>Campaign mix over time</h2>"
        + charts.div(fig)
        + "<details><summary>Contacts, share and cost per month and campaign</summary>"
        + table
        + "</details>"
    )
