"""Run metrics: one long Delta table ``run_metrics`` per run_id, read by the report and BI.

Columns: ``run_id, section, metric, plan, month, campaign, channel, value, bound_min, bound_max``.

| section | metric | one row per |
|---|---|---|
| ``input`` | input table name | table (rows) |
| ``funnel`` / ``funnel_first`` | reason code | campaign × channel × reason (candidates with the reason / as first reason) |
| ``customers`` | ``total``, ``eligible``, ``planned`` | (plan) |
| ``volume`` | ``contacts`` | plan × month × campaign × channel |
| ``capacity`` | capacity rule | plan × rule × month (usage against ``bound_min``/``bound_max``) |
| ``outcome`` | ``contacts``, ``expected_conversions``, ``gross_value``, ``cost``, ``expected_value`` | plan × campaign × channel |
| ``summary`` | ``expected_value``, ``gross_value``, ``cost``, ``contacts``, ``violations`` (errors), ``warnings``; optimizer also ``objective``, ``dual_bound``, ``gap``, ``iterations`` | plan |

``gross_value`` is Σ propensity × success value, ``cost`` Σ the contacts' cost, and
``expected_value`` what the plan maximises: ``gross_value − cost`` under the default
``objective: value_minus_cost``, ``gross_value`` alone under ``objective: value`` (the cost
then counts only in capacities on ``cost``). The value and the cost are shown apart either way.

``plan`` is ``optimizer`` or ``greedy``. Objective, dual bound, gap and iterations come from
``plan_summary``; stage timings stay in ``run_stages``. Values are rounded to 6 decimals so a
rerun writes identical rows.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.catalog import INPUT_TABLES
from contact_spark.io.offers import offer_attribute
from contact_spark.io.run_inputs import optional_stage_runs, pinned_versions
from contact_spark.io.tables import TableStore
from contact_spark.validation.capacity import capacity_usage, plan_attributes

METRICS_TABLE = "run_metrics"
METRIC_COLUMNS = (
    "section",
    "metric",
    "plan",
    "month",
    "campaign",
    "channel",
    "value",
    "bound_min",
    "bound_max",
)


def _rows(
    df: DataFrame,
    section: str,
    metric: Column | str,
    value: Column,
    plan: str | None = None,
    month: Column | None = None,
    campaign: Column | None = None,
    channel: Column | None = None,
    bound_min: Column | None = None,
    bound_max: Column | None = None,
) -> DataFrame:
    def lit_or(col: Column | None, dtype: str) -> Column:
        return (col if col is not None else F.lit(None)).cast(dtype)

    return df.select(
        F.lit(section).alias("section"),
        (F.lit(metric) if isinstance(metric, str) else metric).cast("string").alias("metric"),
        F.lit(plan).cast("string").alias("plan"),
        lit_or(month, "date").alias("month"),
        lit_or(campaign, "string").alias("campaign"),
        lit_or(channel, "string").alias("channel"),
        F.round(value.cast("double"), 6).alias("value"),
        F.round(lit_or(bound_min, "double"), 6).alias("bound_min"),
        F.round(lit_or(bound_max, "double"), 6).alias("bound_max"),
    )


def plan_metrics(
    spark: SparkSession,
    config: AppConfig,
    name: str,
    plan: DataFrame,
    eligibility: DataFrame,
    customers: DataFrame,
    violations: DataFrame | None,
) -> list[DataFrame]:
    """Volume, capacity usage, outcome and summary rows of one plan."""
    attributed = plan_attributes(plan, eligibility, customers, config).withColumn(
        "gross_value", F.coalesce("propensity", F.lit(0.0)) * offer_attribute(config, "success_value")
    )
    volume = attributed.groupBy("month", "campaign", "channel").agg(F.count(F.lit(1)).alias("n"))
    usage = capacity_usage(spark, attributed, config)
    outcome = attributed.groupBy("campaign", "channel").agg(
        F.count(F.lit(1)).alias("contacts"),
        F.sum(F.coalesce("propensity", F.lit(0.0))).alias("expected_conversions"),
        F.sum(F.coalesce("expected_value", F.lit(0.0))).alias("expected_value"),
        F.sum("gross_value").alias("gross_value"),
        F.sum("cost").alias("cost"),
    )
    stack = F.expr(
        "stack(5, 'contacts', cast(contacts as double), 'expected_conversions', expected_conversions, "
        "'expected_value', expected_value, 'gross_value', gross_value, 'cost', cost) as (metric, v)"
    )
    totals = attributed.agg(
        F.count(F.lit(1)).cast("double").alias("contacts"),
        F.coalesce(F.sum("expected_value"), F.lit(0.0)).alias("expected_value"),
        F.coalesce(F.sum("gross_value"), F.lit(0.0)).alias("gross_value"),
        F.coalesce(F.sum("cost"), F.lit(0.0)).alias("cost"),
        F.countDistinct("customer_id").cast("double").alias("customers"),
    )
    frames = [
        _rows(
            volume,
            "volume",
            "contacts",
            F.col("n"),
            name,
            F.col("month"),
            F.col("campaign"),
            F.col("channel"),
        ),
        _rows(
            usage,
            "capacity",
            F.col("rule"),
            F.col("usage"),
            name,
            F.col("month"),
            bound_min=F.col("bound_min"),
            bound_max=F.col("bound_max"),
        ),
        _rows(
            outcome.select("campaign", "channel", stack),
            "outcome",
            F.col("metric"),
            F.col("v"),
            name,
            campaign=F.col("campaign"),
            channel=F.col("channel"),
        ),
        _rows(totals, "summary", "contacts", F.col("contacts"), name),
        _rows(totals, "summary", "expected_value", F.col("expected_value"), name),
        _rows(totals, "summary", "gross_value", F.col("gross_value"), name),
        _rows(totals, "summary", "cost", F.col("cost"), name),
        _rows(totals, "customers", "planned", F.col("customers"), name),
    ]
    if violations is not None:
        counts = violations.agg(
            F.count(F.when(F.col("severity") != "WARNING", 1)).alias("errors"),
            F.count(F.when(F.col("severity") == "WARNING", 1)).alias("warnings"),
        )
        frames.append(_rows(counts, "summary", "violations", F.col("errors"), name))
        frames.append(_rows(counts, "summary", "warnings", F.col("warnings"), name))
    return frames


def run_metrics(spark: SparkSession, store: TableStore, config: AppConfig, run_id: str) -> DataFrame:
    """Every metric of the run (optimizer and, when written, greedy baseline)."""
    eligibility = store.read_run("eligibility", run_id)
    versions = pinned_versions(store, run_id)  # the inputs as the run read them
    customers = store.read("customers", version=versions.get("customers"))
    frames: list[DataFrame] = []
    for table in INPUT_TABLES:
        count = store.read(table, version=versions.get(table)).agg(F.count(F.lit(1)).alias("n"))
        frames.append(_rows(count, "input", table, F.col("n")))
    funnel = store.read_run("eligibility_funnel", run_id)
    frames.append(
        _rows(
            funnel,
            "funnel",
            F.col("reason"),
            F.col("candidates"),
            campaign=F.col("campaign"),
            channel=F.col("channel"),
        )
    )
    frames.append(
        _rows(
            funnel,
            "funnel_first",
            F.col("reason"),
            F.col("first_reason_candidates"),
            campaign=F.col("campaign"),
            channel=F.col("channel"),
        )
    )
    per_customer = eligibility.groupBy("customer_id").agg(F.max(F.col("eligible").cast("int")).alias("e"))
    counts = per_customer.agg(F.count(F.lit(1)).alias("total"), F.sum("e").alias("eligible"))
    frames.append(_rows(counts, "customers", "total", F.col("total")))
    frames.append(_rows(counts, "customers", "eligible", F.col("eligible")))
    plans = {"optimizer": ("plan", "violations"), "greedy": ("baseline_plan", "baseline_violations")}
    for name, (plan_table, violations_table) in plans.items():
        if not store.exists(plan_table):
            continue
        if name == "greedy" and not optional_stage_runs(store, config, run_id, "baseline"):
            continue  # the baseline stage is off for this run (config.stages)
        violations = store.read_run(violations_table, run_id) if store.exists(violations_table) else None
        frames += plan_metrics(
            spark, config, name, store.read_run(plan_table, run_id), eligibility, customers, violations
        )
    if store.exists("plan_summary"):
        summary = store.read_run("plan_summary", run_id)
        for metric in ("objective", "dual_bound", "gap", "iterations"):
            frames.append(_rows(summary, "summary", metric, F.col(metric), "optimizer"))
    out = reduce(DataFrame.unionByName, frames)
    return out.select(F.lit(run_id).alias("run_id"), *METRIC_COLUMNS)


def write_run_metrics(spark: SparkSession, store: TableStore, config: AppConfig, run_id: str) -> int:
    """Replace the run's rows of ``run_metrics``; return the number of rows."""
    store.replace_run(run_metrics(spark, store, config, run_id), METRICS_TABLE, run_id)
    return store.read_run(METRICS_TABLE, run_id).count()
