"""The run report: one self-contained HTML file (no network needed to open it).

Only aggregates computed by Spark reach the driver; no phone number or e-mail
address is ever written to the report.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.tables import TableStore

if TYPE_CHECKING:
    from contact_spark.pipeline import PipelineResult

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2933}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d9e2ec;padding:.3rem .6rem;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}.muted{color:#627d98}
"""


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An escaped HTML table."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def input_overview(store: TableStore, config: AppConfig) -> str:
    """Sections describing the input tables: sizes, consent and flags, contacts, history."""
    customers = store.read("customers")
    flag_columns = ["churn_risk", "outbound", "privacy_consent"] + [
        f"optout_{c.lower()}" for c in config.channel_names
    ]
    aggregates = [F.count(F.lit(1)).alias("customers")]
    for column in flag_columns:
        aggregates += [
            F.sum(F.when(F.col(column), 1).otherwise(0)).alias(f"{column}_true"),
            F.sum(F.when(F.col(column).isNull(), 1).otherwise(0)).alias(f"{column}_null"),
        ]
    stats = customers.agg(*aggregates).first().asDict()
    total = max(1, stats["customers"])
    flag_rows = [
        (c, stats[f"{c}_true"], stats[f"{c}_true"] / total, stats[f"{c}_null"]) for c in flag_columns
    ]
    sizes = [
        (name, store.read(name).count())
        for name in ("customers", "contacts", "contact_history", "propensities")
    ]
    contact_types = store.read("contacts").groupBy("contact_type").count().orderBy("contact_type").collect()
    outcomes = (
        store.read("contact_history")
        .groupBy("channel", "outcome")
        .count()
        .orderBy("channel", "outcome")
        .collect()
    )
    return "".join(
        [
            "<h2>Input tables</h2>",
            html_table(["table", "rows"], sizes),
            "<h2>Customer flags</h2>",
            html_table(["flag", "true", "share", "null (fail-closed)"], flag_rows),
            "<h2>Raw contacts by type</h2>",
            html_table(["contact_type", "rows"], [(r["contact_type"], r["count"]) for r in contact_types]),
            "<h2>Contact history by channel and outcome</h2>",
            html_table(
                ["channel", "outcome", "contacts"],
                [(r["channel"], r["outcome"], r["count"]) for r in outcomes],
            ),
        ]
    )


def write_run_report(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    result: PipelineResult,
    report_dir: str,
) -> str:
    """Write ``<report_dir>/<run_id>/report.html`` and return its path."""
    out = Path(report_dir) / result.run_id
    out.mkdir(parents=True, exist_ok=True)
    stage_rows = [(s.stage, s.seconds, s.rows) for s in result.stages]
    table_rows = sorted(result.tables.items())
    body = "".join(
        [
            f"<h1>contact_spark run {html.escape(result.run_id)}</h1>",
            f"<p class='muted'>Plan from {config.run.first_month:%B %Y} over "
            f"{config.run.horizon_months} months; campaigns {', '.join(config.campaign_names)}; "
            f"channels {', '.join(config.channel_names)}.</p>",
            input_overview(store, config),
            "<h2>Stages</h2>",
            html_table(["stage", "seconds", "rows"], stage_rows),
            "<h2>Delta tables</h2>",
            html_table(["table", "location"], table_rows),
        ]
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>contact_spark {html.escape(result.run_id)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return str(path.resolve())
