"""Report sections: learned propensity models (metrics, calibration, features) and customer segments.

Only the small per-model and per-segment tables reach the driver. A section is empty
when its tables have no rows for the run (propensities from the input table, segments off).
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

from pyspark.sql import functions as F

from contact_spark.io.tables import TableStore
from contact_spark.propensity.segments import BEHAVIOUR_FEATURES, SEGMENT_COLUMN
from contact_spark.report.widgets import Charts, html_table

TOP_FEATURES = 5


def _rows(store: TableStore, table: str, run_id: str) -> list[dict[str, Any]]:
    if not store.exists(table):
        return []
    return [r.asDict() for r in store.read_run(table, run_id).collect()]


def propensity_section(charts: Charts, store: TableStore, run_id: str) -> str:
    """Model metrics per campaign × channel, calibration of the chosen models, top features."""
    import plotly.graph_objects as go

    metrics = sorted(
        _rows(store, "propensity_metrics", run_id),
        key=lambda r: (str(r["campaign"]), str(r["channel"]), not r["selected"], str(r["model"])),
    )
    if not metrics:
        return ""
    table = html_table(
        [
            "campaign",
            "channel",
            "model",
            "chosen",
            "version",
            "train rows",
            "train conversions",
            "validation rows",
            "validation conversions",
            "AUC",
            "log-loss",
            "log-loss of base rate",
        ],
        [
            (
                r["campaign"],
                r["channel"],
                r["model"],
                bool(r["selected"]),
                r["model_version"] or "",
                r["train_rows"],
                r["train_positives"],
                r["validation_rows"],
                r["validation_positives"],
                r["auc"],
                r["log_loss"],
                r["base_log_loss"],
            )
            for r in metrics
        ],
    )
    first = metrics[0]
    split = (
        f"Trained on the contact history from {first['train_start'] or 'its start'} to before "
        f"{first['validation_start']}, chosen and calibrated ({html.escape(str(first['calibration']))}) on "
        f"the months from {first['validation_start']} to before {first['plan_start']}."
    )
    chosen = {(r["campaign"], r["channel"], r["model"]) for r in metrics if r["selected"]}
    bins: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in _rows(store, "propensity_calibration", run_id):
        key = (str(r["campaign"]), str(r["channel"]), str(r["model"]))
        if key in chosen:
            bins[key].append(r)
    fig = go.Figure()
    top = 0.0
    for (campaign, channel, model), rows in sorted(bins.items()):
        rows.sort(key=lambda r: int(r["bin"]))
        xs = [float(r["mean_predicted"]) for r in rows]
        ys = [float(r["observed_rate"]) for r in rows]
        top = max([top, *xs, *ys])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"{campaign} / {channel} ({model})"))
    fig.add_trace(
        go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfect calibration", line={"dash": "dot"})
    )
    fig.update_layout(
        title="Calibration on the validation months (equal-frequency bins)",
        xaxis_title="mean predicted propensity",
        yaxis_title="observed conversion rate",
    )
    weights: dict[tuple[str, str, str], list[tuple[str, float]]] = defaultdict(list)
    for r in _rows(store, "propensity_features", run_id):
        key = (str(r["campaign"]), str(r["channel"]), str(r["model"]))
        if key in chosen:
            weights[key].append((str(r["feature"]), float(r["weight"])))
    feature_rows = []
    for (campaign, channel, model), values in sorted(weights.items()):
        best = sorted(values, key=lambda v: -abs(v[1]))[:TOP_FEATURES]
        feature_rows.append(
            (campaign, channel, model, ", ".join(f"{name} ({weight:+.3f})" for name, weight in best))
        )
    return (
        "<h2>Learned propensity models</h2>"
        f"<p class='muted'>{split} One model per campaign × channel; the chosen one scored every "
        "customer. Versions lead to the saved models (table propensity_metrics).</p>"
        + table
        + (charts.div(fig) if bins else "")
        + "<p class='muted'>Top features of the chosen models: standardised coefficient (logistic "
        "regression) or importance (gradient-boosted trees).</p>"
        + html_table(["campaign", "channel", "model", "top features"], feature_rows)
    )


def segments_section(charts: Charts, store: TableStore, run_id: str) -> str:
    """Segment sizes and profiles (mean of each behaviour and value feature)."""
    import plotly.graph_objects as go

    rows = _rows(store, "segment_profiles", run_id)
    if not rows:
        return ""
    # Behaviour features first, in their documented order, then the value columns.
    names = {str(r["feature"]) for r in rows}
    features = [f for f in BEHAVIOUR_FEATURES if f in names] + sorted(names - set(BEHAVIOUR_FEATURES))
    by_segment: dict[str, dict[str, float]] = defaultdict(dict)
    sizes: dict[str, int] = {}
    for r in rows:
        segment = str(r[SEGMENT_COLUMN])
        by_segment[segment][str(r["feature"])] = float(r["mean"])
        sizes[segment] = int(r["customers"])
    order = sorted(by_segment, key=lambda s: int(s[1:]) if s[1:].isdigit() else 0)
    total = max(1, sum(sizes.values()))
    fig = go.Figure(go.Bar(x=order, y=[sizes[s] for s in order], marker_color="#9b51e0"))
    fig.update_layout(title="Customers per behaviour segment", xaxis_title="segment", yaxis_title="customers")
    table = html_table(
        ["segment", "customers", "share", *features],
        [(s, sizes[s], sizes[s] / total, *[by_segment[s].get(f, 0.0) for f in features]) for s in order],
    )
    return (
        "<h2>Customer segments</h2>"
        "<p class='muted'>k-means clusters of behaviour (past contacts, responses, conversions, "
        f"contactability) and value; B1 is the most valuable. Rules can use the column "
        f"<code>{SEGMENT_COLUMN}</code>.</p>" + charts.div(fig, height=320) + table
    )


def segment_counts(store: TableStore, run_id: str) -> dict[str, int]:
    """Customers per segment of the run (for tests and notebooks)."""
    if not store.exists("customer_segments"):
        return {}
    rows = (
        store.read_run("customer_segments", run_id).groupBy(SEGMENT_COLUMN).agg(F.count(F.lit(1)).alias("n"))
    )
    return {r[SEGMENT_COLUMN]: int(r["n"]) for r in rows.collect()}
