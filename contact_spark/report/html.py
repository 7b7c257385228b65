"""The run report: one self-contained HTML file for a marketing manager (opens offline).

Plotly's JavaScript is inlined once in the page (no CDN). Only aggregates computed by Spark
reach the driver, plus a small deterministic sample of customers for the "why not contacted"
table; every phone number and e-mail address shown is masked by
:mod:`contact_spark.contacts.masking` inside Spark before it is collected.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.contacts.masking import mask_contact_col
from contact_spark.io.catalog import (
    ADAPTIVE_TABLES,
    CONTACT_TABLES,
    ELIGIBILITY_TABLES,
    INPUT_TABLES,
    PLAN_TABLES,
    PROPENSITY_TABLES,
    RUN_INPUTS_TABLE,
    RUN_STAGES_TABLE,
    SEGMENT_TABLES,
)
from contact_spark.io.columns import one_row
from contact_spark.io.run_inputs import optional_stage_runs, read_pinned
from contact_spark.io.tables import TableStore
from contact_spark.report.budget import mix_section, roi_section
from contact_spark.report.capacity import convergence_section, sensitivity_section
from contact_spark.report.drift import drift_section
from contact_spark.report.propensity import propensity_section, segments_section
from contact_spark.report.volume import period_label, volume_section
from contact_spark.report.widgets import SAMPLE_SIZE, STYLE, Charts, _fmt, html_table

METRICS_SCHEMA = (
    "run_id string, section string, metric string, plan string, month date, campaign string, "
    "channel string, value double, bound_min double, bound_max double"
)


def _metric_rows(spark: SparkSession, store: TableStore, run_id: str) -> DataFrame:
    """The run's ``run_metrics`` rows (aggregates only; none when the table does not exist)."""
    if store.exists("run_metrics"):
        return store.read_run("run_metrics", run_id)
    return spark.createDataFrame([], METRICS_SCHEMA)


def _metrics(metric_rows: DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The run's ``run_metrics`` rows grouped by section (small: aggregates only)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in metric_rows.collect():
        out[row["section"]].append(row.asDict())
    return out


def _summary(metrics: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], float]:
    return {(r["plan"], r["metric"]): r["value"] for r in metrics.get("summary", [])}


def headline(
    metrics: dict[str, list[dict[str, Any]]],
    customers: dict[tuple[str | None, str], float],
    objective: str = "value_minus_cost",
) -> str:
    s = _summary(metrics)
    opt, greedy = s.get(("optimizer", "expected_value")), s.get(("greedy", "expected_value"))
    uplift = f"{(opt - greedy) / abs(greedy):+.1%}" if opt is not None and greedy else "n/a"
    violations = s.get(("optimizer", "violations"))
    greedy_violations = s.get(("greedy", "violations"))
    # The objective and its two parts, shown apart whichever the objective is.
    maximised = "value − cost" if objective == "value_minus_cost" else "value alone, cost in budgets"
    kpis = [
        (f"Expected value ({maximised}), optimizer", _fmt(opt)),
        ("Expected value, greedy baseline", _fmt(greedy)),
        ("Optimizer vs greedy", uplift),
        ("Value p·v, optimizer", _fmt(s.get(("optimizer", "gross_value")))),
        ("Contact cost, optimizer", _fmt(s.get(("optimizer", "cost")))),
        ("Planned contacts", _fmt(int(s.get(("optimizer", "contacts"), 0)))),
        (
            "Customers contacted",
            f"{_fmt(int(customers.get(('optimizer', 'planned'), 0)))} of {_fmt(int(customers.get((None, 'total'), 0)))}",
        ),
        ("Optimality gap", f"{s[('optimizer', 'gap')]:.3%}" if ("optimizer", "gap") in s else "n/a"),
    ]
    cells = "".join(f"<div class='kpi'>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in kpis)
    if violations is None:
        check = "<p class='muted'>The plan was not validated.</p>"
    elif violations == 0:
        check = "<p class='ok'>✔ The plan passed the independent validator: every contact rule, capacity, consent, eligibility and best-contact check holds.</p>"
    else:
        check = f"<p class='bad'>✘ The plan has {int(violations)} violation(s): see the violations table.</p>"
    if greedy_violations:
        check += f"<p class='bad'>The greedy baseline has {int(greedy_violations)} violation(s) (table baseline_violations).</p>"
    return f"<div class='kpis'>{cells}</div>{check}"


def funnel_section(
    charts: Charts, metrics: dict[str, list[dict[str, Any]]], customers: dict[tuple[str | None, str], float]
) -> str:
    import plotly.graph_objects as go

    steps = [
        ("customers", customers.get((None, "total"), 0)),
        ("with an eligible contact", customers.get((None, "eligible"), 0)),
        ("contacted (optimizer)", customers.get(("optimizer", "planned"), 0)),
        ("contacted (greedy)", customers.get(("greedy", "planned"), 0)),
    ]
    funnel = go.Figure(
        go.Funnel(y=[s[0] for s in steps], x=[s[1] for s in steps], textinfo="value+percent initial")
    )
    funnel.update_layout(title="Customer funnel")
    reasons: dict[str, float] = defaultdict(float)
    for r in metrics.get("funnel_first", []):
        if r["metric"] != "ELIGIBLE":
            reasons[r["metric"]] += r["value"]
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    bars = go.Figure(
        go.Bar(
            x=[v for _, v in top][::-1], y=[k for k, _ in top][::-1], orientation="h", marker_color="#eb5757"
        )
    )
    bars.update_layout(title="Top exclusion reasons (first reason of each customer × campaign × channel)")
    total = sum(reasons.values()) or 1.0
    return (
        "<h2>Eligibility funnel</h2>"
        + charts.div(funnel, 360)
        + charts.div(bars)
        + html_table(
            ["reason", "candidates excluded", "share of exclusions"], [(k, int(v), v / total) for k, v in top]
        )
    )


def contactability_section(charts: Charts, store: TableStore, run_id: str) -> str:
    import plotly.graph_objects as go

    if not store.exists("contactability"):
        return ""
    buckets = (
        store.read_run("contactability", run_id)
        .groupBy((F.floor(F.col("score") / 50) * 50).cast("int").alias("bucket"))
        .count()
        .orderBy("bucket")
        .collect()
    )
    fig = go.Figure(
        go.Bar(
            x=[f"{b['bucket']}–{b['bucket'] + 49}" for b in buckets],
            y=[b["count"] for b in buckets],
            marker_color="#2f80ed",
        )
    )
    fig.update_layout(
        title="Customers by contactability score (0–1000)", xaxis_title="score", yaxis_title="customers"
    )
    return "<h2>Contactability</h2>" + charts.div(fig)


def outcome_section(charts: Charts, metrics: dict[str, list[dict[str, Any]]], config: AppConfig) -> str:
    import plotly.graph_objects as go

    rows = metrics.get("outcome", [])
    cells = [(c, h) for c in config.campaign_names for h in config.channel_names]
    labels = [f"{c} / {h}" for c, h in cells]
    out = "<h2>Expected conversions and value: optimizer vs greedy</h2>"
    table: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        table[(r["campaign"], r["channel"], r["metric"])][r["plan"]] = r["value"]
    for metric, title in (
        ("expected_value", "Expected value (currency)"),
        ("expected_conversions", "Expected conversions"),
    ):
        fig = go.Figure()
        for plan, colour in (("optimizer", "#27ae60"), ("greedy", "#9aa5b1")):
            fig.add_bar(
                x=labels,
                y=[table[(c, h, metric)].get(plan, 0.0) for c, h in cells],
                name=plan,
                marker_color=colour,
            )
        fig.update_layout(barmode="group", title=f"{title} by campaign and channel")
        out += charts.div(fig)
    out += html_table(
        [
            "campaign / channel",
            "contacts (opt.)",
            "contacts (greedy)",
            "conversions (opt.)",
            "conversions (greedy)",
            "value (opt.)",
            "value (greedy)",
            "p·v (opt.)",
            "cost (opt.)",
        ],
        [
            (
                f"{c} / {h}",
                int(table[(c, h, "contacts")].get("optimizer", 0)),
                int(table[(c, h, "contacts")].get("greedy", 0)),
                table[(c, h, "expected_conversions")].get("optimizer", 0.0),
                table[(c, h, "expected_conversions")].get("greedy", 0.0),
                table[(c, h, "expected_value")].get("optimizer", 0.0),
                table[(c, h, "expected_value")].get("greedy", 0.0),
                table[(c, h, "gross_value")].get("optimizer", 0.0),
                table[(c, h, "cost")].get("optimizer", 0.0),
            )
            for c, h in cells
        ],
    )
    return out


def why_not_section(spark: SparkSession, store: TableStore, config: AppConfig, run_id: str) -> str:
    """Counts of every decision and reason of ``contact_decisions``, and a deterministic,
    masked sample of customers without any planned contact with each cell's reason."""
    if not optional_stage_runs(store, config, run_id, "decisions"):
        return (
            "<h2>Why not contacted</h2><p class='muted'>The decisions stage is off for this run "
            f"(stages.decisions = {html.escape(config.stages.decisions)}, auto below "
            f"{config.stages.auto_max_customers:,} customers).</p>"
        )
    if not store.exists("contact_decisions"):
        return "<h2>Why not contacted</h2><p class='muted'>No contact_decisions table for this run.</p>"
    decisions = store.read_run("contact_decisions", run_id)
    counts = (
        decisions.groupBy("decision", "reason_code")
        .agg(F.count(F.lit(1)).alias("cells"), F.countDistinct("customer_id").alias("customers"))
        .orderBy(F.desc("cells"), "decision", "reason_code")
        .collect()
    )
    families: dict[tuple[str, str], int] = defaultdict(int)
    for r in counts:
        families[(r["decision"], (r["reason_code"] or "").split(":")[0])] += r["cells"]
    contacted = decisions.filter(F.col("decision") == "PLANNED").select("customer_id").distinct()
    sample = (
        decisions.select("customer_id")
        .distinct()
        .join(contacted, "customer_id", "left_anti")
        .orderBy(F.xxhash64("customer_id"), "customer_id")
        .limit(SAMPLE_SIZE)
    )
    reasons = (
        decisions.join(sample, "customer_id", "left_semi")
        .groupBy("customer_id")
        .agg(
            F.concat_ws(
                "; ",
                F.array_sort(
                    F.collect_list(F.concat("campaign", F.lit("/"), "channel", F.lit(": "), "reason_code"))
                ),
            ).alias("why")
        )
    )
    segments = (
        store.read_run("eligibility", run_id)
        .join(sample, "customer_id", "left_semi")
        .groupBy("customer_id")
        .agg(F.first("segment", ignorenulls=True).alias("segment"))
    )
    contacts = (
        store.read_run("best_contacts", run_id)
        .join(sample, "customer_id", "left_semi")
        .groupBy("customer_id")
        .agg(
            F.array_sort(
                F.collect_list(
                    F.concat(
                        F.col("channel"), F.lit(": "), mask_contact_col(F.col("value"), F.col("contact_kind"))
                    )
                )
            ).alias("masked")
        )
    )
    rows = (
        sample.join(reasons, "customer_id", "left")
        .join(segments, "customer_id", "left")
        .join(contacts, "customer_id", "left")
        .orderBy(F.xxhash64("customer_id"), "customer_id")
        .collect()
    )
    sample_rows = [
        (r["customer_id"], r["segment"] or "", "; ".join(r["masked"] or []), r["why"] or "") for r in rows
    ]
    return (
        "<h2>Why not contacted</h2>"
        "<p class='muted'>Every customer × campaign × channel has a decision (table contact_decisions). "
        "Exact: eligibility reasons, quarantine, NOT_WORTH (expected value ≤ 0), POLICY:&lt;rule&gt; (one more "
        "contact breaks the rule in every month given the customer's other contacts) and CAPACITY with a full "
        "capacity, and ROOM_LEFT (the contact fits every rule and capacity and adds value: the plan is not "
        "locally optimal there).</p>"
        + html_table(
            ["decision", "reason", "customer × campaign × channel"],
            [(d, f, n) for (d, f), n in sorted(families.items(), key=lambda kv: (-kv[1], kv[0]))],
        )
        + "<details><summary>Every reason code</summary>"
        + html_table(
            ["decision", "reason code", "cells", "customers"],
            [(r["decision"], r["reason_code"] or "", r["cells"], r["customers"]) for r in counts],
        )
        + "</details>"
        + f"<h3>Sample: {len(sample_rows)} customers without any planned contact</h3>"
        "<p class='muted'>Chosen by a hash of the id. Contacts are masked.</p>"
        + html_table(
            ["customer", "segment", "best contacts (masked)", "campaign/channel: reason"], sample_rows
        )
    )


def warnings_section(store: TableStore, config: AppConfig, run_id: str) -> str:
    """Min capacities the plan could not meet (WARNING rows of ``violations``)."""
    if not store.exists("violations"):
        return ""
    rows = (
        store.read_run("violations", run_id)
        .filter(F.col("severity") == "WARNING")
        .orderBy("rule", "month")
        .collect()
    )
    if not rows:
        return ""
    labels = config.capacities.period_labels(config.run.months())
    return (
        "<h2>Warnings: minimums not met</h2>"
        "<p class='muted'>Min capacities the plan stage reported it could not meet (set "
        "validation.strict_min_capacity to make them fail the run).</p>"
        + html_table(
            ["rule", "period", "detail"],
            [(r["rule"], period_label(labels, r["rule"], r["month"]), r["detail"]) for r in rows],
        )
    )


def input_overview(store: TableStore, config: AppConfig, run_id: str) -> str:
    """Sizes of the inputs and the consent/flag counts (nulls count as 'no'), as the run read them."""
    customers = read_pinned(store, "customers", run_id)
    flag_columns = ["churn_risk", "outbound", "privacy_consent"] + [
        f"optout_{c.lower()}" for c in config.channel_names
    ]
    aggregates = [F.count(F.lit(1)).alias("customers")]
    for column in flag_columns:
        aggregates += [
            F.sum(F.when(F.col(column), 1).otherwise(0)).alias(f"{column}_true"),
            F.sum(F.when(F.col(column).isNull(), 1).otherwise(0)).alias(f"{column}_null"),
        ]
    stats = one_row(customers.agg(*aggregates)).asDict()
    total = max(1, stats["customers"])
    flag_rows = [
        (c, stats[f"{c}_true"], stats[f"{c}_true"] / total, stats[f"{c}_null"]) for c in flag_columns
    ]
    return "<h2>Customer flags</h2>" + html_table(["flag", "true", "share", "null (fail-closed)"], flag_rows)


def _customers(metrics: dict[str, list[dict[str, Any]]]) -> dict[tuple[str | None, str], float]:
    return {(r["plan"], r["metric"]): r["value"] for r in metrics.get("customers", [])}


def _stage_rows(store: TableStore, run_id: str) -> list[tuple[str, float, int | None]]:
    """The run's recorded stages (``run_stages``), in run order."""
    if not store.exists(RUN_STAGES_TABLE):
        return []
    rows = store.read_run(RUN_STAGES_TABLE, run_id).orderBy("stage_order").collect()
    return [(r["stage"], r["seconds"], r["rows"]) for r in rows]


def _table_locations(store: TableStore) -> list[tuple[str, str]]:
    """Every table of the catalog that exists in the store, with its location."""
    from contact_spark.baseline.greedy import BASELINE_TABLE
    from contact_spark.explain.decisions import DECISIONS_TABLE
    from contact_spark.validation.metrics import METRICS_TABLE
    from contact_spark.validation.stage import BASELINE_VIOLATIONS, VIOLATIONS_TABLE

    names = (
        *INPUT_TABLES,
        *CONTACT_TABLES,
        *SEGMENT_TABLES,
        *PROPENSITY_TABLES,
        *ELIGIBILITY_TABLES,
        *PLAN_TABLES,
        VIOLATIONS_TABLE,
        BASELINE_TABLE,
        BASELINE_VIOLATIONS,
        METRICS_TABLE,
        DECISIONS_TABLE,
        RUN_STAGES_TABLE,
        RUN_INPUTS_TABLE,
        *ADAPTIVE_TABLES,
    )
    return sorted((name, store.location(name)) for name in names if store.exists(name))


def build_report(spark: SparkSession, store: TableStore, config: AppConfig, run_id: str) -> str:
    """The whole page as a string, from the run's tables in ``store`` alone."""
    import plotly.offline

    metric_rows = _metric_rows(spark, store, run_id)
    metrics = _metrics(metric_rows)
    customers = _customers(metrics)
    charts = Charts()
    inputs = [
        (r["metric"], int(r["value"])) for r in sorted(metrics.get("input", []), key=lambda r: r["metric"])
    ]
    body = "".join(
        [
            f"<h1>Contact plan {html.escape(run_id)}</h1>",
            f"<p class='muted'>Plan from {config.run.first_month:%B %Y} over {config.run.horizon_months} months; "
            f"campaigns {', '.join(config.campaign_names)}; channels {', '.join(config.channel_names)}.</p>",
            headline(metrics, customers, config.objective),
            roi_section(charts, metric_rows, config),
            volume_section(charts, metrics, config),
            mix_section(charts, metric_rows, config),
            drift_section(store, run_id),
            funnel_section(charts, metrics, customers),
            contactability_section(charts, store, run_id),
            outcome_section(charts, metrics, config),
            convergence_section(charts, store, run_id),
            sensitivity_section(charts, store, run_id),
            warnings_section(store, config, run_id),
            why_not_section(spark, store, config, run_id),
            propensity_section(charts, store, run_id),
            segments_section(charts, store, run_id),
            "<h2>Inputs</h2>",
            html_table(["table", "rows"], inputs),
            input_overview(store, config, run_id),
            "<h2>Stages</h2>",
            html_table(["stage", "seconds", "rows"], _stage_rows(store, run_id)),
            "<h2>Delta tables</h2>",
            html_table(["table", "location"], _table_locations(store)),
        ]
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>contact_spark {html.escape(run_id)}</title><style>{STYLE}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head>"
        f"<body>{body}</body></html>"
    )


def write_run_report(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    report_dir: str,
) -> str:
    """Write ``<report_dir>/<run_id>/report.html`` and return its path."""
    out = Path(report_dir) / run_id
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(build_report(spark, store, config, run_id), encoding="utf-8")
    return str(path.resolve())


__all__ = ["DataFrame", "build_report", "html_table", "write_run_report"]
