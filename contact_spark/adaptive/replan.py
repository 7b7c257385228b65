"""Monthly re-plan: freeze what was executed, plan the rest of the year, explain the drift.

``replan(…, parent_run_id, executed_through)`` plans the months after ``executed_through``
for a new run (``run_id``) whose lineage points at the parent run:

* contacts, consent and propensities are re-read (the contacts and eligibility stages run
  again for the new run), so a withdrawn consent or a new propensity takes effect;
* executed contacts are the rows of ``contact_history`` in the plan year up to
  ``executed_through``: they are history for every rolling-window rule, and their usage of
  every capacity is subtracted from its bound (:mod:`contact_spark.adaptive.window`);
* the price iterations start from the parent run's shadow prices;
* ``plan_drift`` lists every contact added or removed against the parent's plan for the
  remaining months (and every deviation of the execution from the plan in the frozen
  months) with a reason; ``plan_drift_summary`` counts them; ``plan_lineage`` records
  the run's parent and window; ``capacity_carryover`` each constraint's frozen usage.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.adaptive.window import (
    ReplanWindowError,
    frozen_contacts,
    month_index,
    rest_of_year,
    shifted_config,
)
from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.io.catalog import CARRYOVER_TABLE, DRIFT_SUMMARY_TABLE, DRIFT_TABLE, LINEAGE_TABLE
from contact_spark.io.runs import Inputs, require_run
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.planning.frame import layout_for
from contact_spark.planning.stage import run_planning_stage

log = logging.getLogger(__name__)

PLAN_KEY = ["customer_id", "month", "campaign", "channel"]

LINEAGE_SCHEMA = (
    "run_id string, parent_run_id string, kind string, revision int, plan_first_month date, "
    "replanned_from date, executed_through date, customers_replanned long, events long, detail string"
)


class ReplanStages(Protocol):
    """What a re-plan needs from the run layer, which passes it in (this layer may not import
    it): :class:`contact_spark.stage_job.StageRunner` runs a stage for the re-plan's run and
    records a stage's row in ``run_stages``."""

    def run(self, stage: str, config: AppConfig, inputs: Inputs) -> None: ...

    def record(self, stage: str, tables: dict[str, str], seconds: float, rows: int) -> None: ...


@dataclass(frozen=True)
class ReplanResult:
    run_id: str
    parent_run_id: str
    replanned_from: dt.date
    tables: dict[str, str]
    drift: dict[str, int]
    gap: float


def check_history_until(contact_history: DataFrame, start_month: dt.date) -> None:
    """Stop when the history already has contacts in the months about to be planned."""
    late = contact_history.filter(F.col("contact_date").cast("date") >= F.lit(start_month)).count()
    if late:
        raise ReplanWindowError(
            f"table 'contact_history' has {late} contact(s) on or after {start_month}: "
            f"set executed_through to the month of the latest contact"
        )


def lineage_row(
    spark: SparkSession,
    run_id: str,
    parent_run_id: str | None,
    kind: str,
    revision: int,
    config: AppConfig,
    replanned_from: dt.date,
    executed_through: dt.date | None,
    customers: int,
    events: int = 0,
    detail: str = "",
) -> DataFrame:
    """One ``plan_lineage`` row."""
    return spark.createDataFrame(
        [
            (
                run_id,
                parent_run_id,
                kind,
                revision,
                config.run.first_month,
                replanned_from,
                executed_through,
                customers,
                events,
                detail,
            )
        ],
        LINEAGE_SCHEMA,
    )


def execution_drift(parent_plan: DataFrame, frozen: DataFrame, stop: dt.date) -> DataFrame:
    """Deviations of the execution from the parent's plan in the frozen months."""
    planned = parent_plan.filter(F.col("month") < F.lit(stop)).select(*PLAN_KEY).distinct()
    executed = frozen.select(*PLAN_KEY).distinct()
    not_executed = planned.join(executed, PLAN_KEY, "left_anti").select(
        *PLAN_KEY, F.lit("not_executed").alias("change"), F.lit("NOT_EXECUTED").alias("reason")
    )
    off_plan = executed.join(planned, PLAN_KEY, "left_anti").select(
        *PLAN_KEY, F.lit("executed_off_plan").alias("change"), F.lit("EXECUTED_OFF_PLAN").alias("reason")
    )
    return not_executed.unionByName(off_plan)


def plan_drift(
    parent_plan: DataFrame,
    new_plan: DataFrame,
    parent_eligibility: DataFrame,
    new_eligibility: DataFrame,
    frozen: DataFrame,
    start_month: dt.date,
) -> DataFrame:
    """Contacts added or removed against the parent's plan from ``start_month`` on, each with
    the first reason that applies, in this order:

    ``ELIGIBILITY_CHANGED`` the cell's eligibility flipped (consent, opt-out, rule…);
    ``EXECUTION_DIFFERED`` the customer's executed contacts differ from its planned ones;
    ``PROPENSITY_CHANGED`` the cell's propensity changed;
    ``CAPACITY_REBALANCED`` none of these: the capacities' prices moved the contact.
    """
    old = parent_plan.filter(F.col("month") >= F.lit(start_month)).select(*PLAN_KEY, F.lit(1).alias("_old"))
    new = new_plan.select(*PLAN_KEY, F.lit(1).alias("_new"))
    changed = (
        old.join(new, PLAN_KEY, "full_outer")
        .filter(F.col("_old").isNull() | F.col("_new").isNull())
        .select(*PLAN_KEY, F.when(F.col("_new").isNull(), "removed").otherwise("added").alias("change"))
    )
    cell = ["customer_id", "campaign", "channel"]
    before = parent_eligibility.select(
        *cell, F.col("eligible").alias("_e0"), F.col("propensity").alias("_p0")
    )
    after = new_eligibility.select(
        *cell,
        F.col("eligible").alias("_e1"),
        F.col("propensity").alias("_p1"),
        F.element_at("reasons", 1).alias("_why"),
    )
    deviating = (
        execution_drift(parent_plan, frozen, start_month)
        .select("customer_id")
        .distinct()
        .withColumn("_dev", F.lit(1))
    )
    explained = (
        changed.join(before, cell, "left").join(after, cell, "left").join(deviating, "customer_id", "left")
    )
    flipped = ~F.coalesce(F.col("_e0"), F.lit(False)).eqNullSafe(F.coalesce(F.col("_e1"), F.lit(False)))
    reason = (
        F.when(flipped, "ELIGIBILITY_CHANGED")
        .when(F.col("_dev").isNotNull(), "EXECUTION_DIFFERED")
        .when(~F.col("_p0").eqNullSafe(F.col("_p1")), "PROPENSITY_CHANGED")
        .otherwise("CAPACITY_REBALANCED")
    )
    return explained.select(*PLAN_KEY, "change", reason.alias("reason"))


def drift_rows(
    parent_plan: DataFrame,
    new_plan: DataFrame,
    parent_eligibility: DataFrame,
    new_eligibility: DataFrame,
    frozen: DataFrame,
    start_month: dt.date,
    run_id: str,
    parent_run_id: str,
) -> DataFrame:
    """``plan_drift`` rows: the execution's deviations and the re-plan's changes."""
    rows = execution_drift(parent_plan, frozen, start_month).unionByName(
        plan_drift(parent_plan, new_plan, parent_eligibility, new_eligibility, frozen, start_month)
    )
    return rows.select(
        F.lit(run_id).alias("run_id"),
        F.lit(parent_run_id).alias("parent_run_id"),
        F.lit(0).alias("revision"),
        *rows.columns,
    )


def drift_summary(
    drift: DataFrame, new_plan: DataFrame, parent_plan: DataFrame, start_month: dt.date, run_id: str
) -> DataFrame:
    """Counts per (change, reason), plus the contacts kept unchanged."""
    kept = (
        parent_plan.filter(F.col("month") >= F.lit(start_month))
        .select(*PLAN_KEY)
        .join(new_plan.select(*PLAN_KEY), PLAN_KEY, "inner")
        .agg(F.count(F.lit(1)).alias("contacts"), F.countDistinct("customer_id").alias("customers"))
        .select(F.lit("kept").alias("change"), F.lit("UNCHANGED").alias("reason"), "contacts", "customers")
    )
    counted = drift.groupBy("change", "reason").agg(
        F.count(F.lit(1)).alias("contacts"), F.countDistinct("customer_id").alias("customers")
    )
    return counted.unionByName(kept).select(
        F.lit(run_id).alias("run_id"), "change", "reason", "contacts", "customers"
    )


def carryover_rows(spark: SparkSession, carried: list, run_id: str) -> DataFrame:
    """``capacity_carryover``: each constraint's year bound, frozen usage and remaining bound."""
    rows = [
        (
            run_id,
            c.original.name,
            c.original.rule,
            c.original.month,
            c.original.sense,
            float(c.original.bound),
            float(c.used),
            None if c.remaining is None else float(c.remaining.bound),
        )
        for c in carried
    ]
    return spark.createDataFrame(
        rows,
        "run_id string, constraint_name string, rule string, month date, sense string, "
        "year_bound double, frozen_usage double, remaining_bound double",
    )


def replan(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    parent_run_id: str,
    executed_through: dt.date,
    run_id: str,
    stages: ReplanStages,
) -> ReplanResult:
    """Re-plan the months after ``executed_through`` as run ``run_id`` (see module docstring);
    ``stages`` re-runs the contacts and eligibility stages for it and records its plan stage."""
    from contact_spark.inputs import load_inputs

    check_run_id(run_id)
    check_run_id(parent_run_id)
    if run_id == parent_run_id:
        raise ReplanWindowError(
            "a re-plan needs its own --run-id (the parent run's rows are kept as they are)"
        )
    require_run(store, "plan", parent_run_id, "plan")
    start = month_index(config, executed_through, "executed_through") + 1
    months = config.run.months()
    if start >= len(months):
        raise ReplanWindowError(
            f"nothing left to re-plan: executed_through {executed_through:%Y-%m} is the last month of the plan year"
        )
    start_month = months[start]
    inputs = load_inputs(store, config)
    check_history_until(inputs.contact_history, start_month)
    sub_config = shifted_config(config, start)
    for stage in ("contacts", "eligibility"):
        stages.run(stage, sub_config, inputs)

    full_layout, _ = layout_for(config)
    parent_eligibility = store.read_run("eligibility", parent_run_id)
    frozen = frozen_contacts(inputs.contact_history, config, full_layout, start).persist()
    parent_sensitivity = (
        store.read_run("capacity_sensitivity", parent_run_id)
        if store.exists("capacity_sensitivity")
        else None
    )
    window = rest_of_year(config, start, frozen, parent_eligibility, inputs.customers, parent_sensitivity)
    carried, scope = window.carried, window.scope
    began = time.perf_counter()
    new_eligibility = store.read_run("eligibility", run_id)
    planning = run_planning_stage(
        spark,
        store,
        sub_config,
        new_eligibility,
        inputs.contact_history,
        inputs.customers,
        run_id,
        config_hash(config),
        scope=scope,
    )
    seconds = round(time.perf_counter() - began, 3)
    stages.record("plan", dict(planning.tables), seconds, store.read_run("plan", run_id).count())

    new_plan = store.read_run("plan", run_id)
    parent_plan = store.read_run("plan", parent_run_id)
    drift = drift_rows(
        parent_plan, new_plan, parent_eligibility, new_eligibility, frozen, start_month, run_id, parent_run_id
    )
    store.replace_run(drift, DRIFT_TABLE, run_id)
    written_drift = store.read_run(DRIFT_TABLE, run_id)
    store.replace_run(
        drift_summary(written_drift, new_plan, parent_plan, start_month, run_id), DRIFT_SUMMARY_TABLE, run_id
    )
    store.replace_run(carryover_rows(spark, carried, run_id), CARRYOVER_TABLE, run_id)
    customers = new_eligibility.select("customer_id").distinct().count()
    store.replace_run(
        lineage_row(
            spark, run_id, parent_run_id, "replan", 0, config, start_month, months[start - 1], customers
        ),
        LINEAGE_TABLE,
        run_id,
    )
    frozen.unpersist()
    summary = {
        f"{r['change']}/{r['reason']}": int(r["contacts"])
        for r in store.read_run(DRIFT_SUMMARY_TABLE, run_id).collect()  # a handful of rows
    }
    log.info("re-plan %s from %s (parent %s): drift %s", run_id, start_month, parent_run_id, summary)
    tables = dict(planning.tables)
    for name in (DRIFT_TABLE, DRIFT_SUMMARY_TABLE, CARRYOVER_TABLE, LINEAGE_TABLE):
        tables[name] = store.location(name)
    return ReplanResult(run_id, parent_run_id, start_month, tables, summary, planning.capacity.gap)
