"""The validation stage: re-check a stored plan, write ``violations``, fail on any."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.run_inputs import read_history, read_pinned
from contact_spark.io.tables import TableStore
from contact_spark.validation.frames import ERROR, WARNING
from contact_spark.validation.run import PlanValidationError, ValidationInputs, validate_plan

log = logging.getLogger(__name__)

VIOLATIONS_TABLE = "violations"
BASELINE_VIOLATIONS = "baseline_violations"


def stored_inputs(
    store: TableStore, config: AppConfig, run_id: str, plan: DataFrame | None = None
) -> ValidationInputs:
    """The plan of ``run_id`` (or ``plan``) and everything it is checked against, from Delta."""
    quarantine = store.read_run("plan_quarantine", run_id) if store.exists("plan_quarantine") else None
    # Min capacities the plan stage reported unmeetable (WARNING unless strict_min_capacity).
    shortfalls = (
        store.read_run("capacity_sensitivity", run_id)
        .filter((F.col("sense") == "min") & (F.col("shortfall") > 0))
        .select("rule", "month")
        if store.exists("capacity_sensitivity")
        else None
    )
    return ValidationInputs(
        plan=plan if plan is not None else store.read_run("plan", run_id),
        customers=read_pinned(store, "customers", run_id),
        eligibility=store.read_run("eligibility", run_id),
        best_contacts=store.read_run("best_contacts", run_id),
        contact_history=read_history(store, run_id, config.campaign_names, config.channel_names),
        quarantine=quarantine,
        reported_shortfalls=shortfalls,
        applied_events=applied_events(store, run_id),
    )


def applied_events(store: TableStore, run_id: str) -> DataFrame | None:
    """The trigger events a trigger run applied to the run's plan (None when there are none)."""
    if not store.exists("trigger_events"):
        return None
    return (
        store.read_run("trigger_events", run_id)
        .filter(F.col("status") == "applied")
        .select("customer_id", "event_type", "event_time")
    )


def violation_summary(violations: DataFrame, limit: int = 5, severity: str = ERROR) -> tuple[int, str]:
    """Count of one severity and its most frequent (kind, rule) pairs, e.g. 'policy/one_dem_per_month: 3'."""
    violations = violations.filter(F.col("severity") == severity)
    rows = (
        violations.groupBy("kind", "rule")
        .count()
        .orderBy(F.desc("count"), "kind", "rule")
        .limit(limit)
        .collect()
    )
    total = violations.count()
    return total, ", ".join(f"{r['kind']}/{r['rule']}: {r['count']}" for r in rows)


def raise_for_violations(store: TableStore, run_id: str, table: str = VIOLATIONS_TABLE) -> None:
    """Raise :class:`PlanValidationError` when the run has rows in ``table``."""
    count, summary = violation_summary(store.read_run(table, run_id))
    if count:
        raise PlanValidationError(run_id, count, table, summary)


def run_validation_stage(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    *,
    plan: DataFrame | None = None,
    table: str = VIOLATIONS_TABLE,
    fail: bool = True,
) -> int:
    """Validate the run's plan, replace the run's rows of ``table``; raise if any ERROR.

    Returns the number of ERROR rows (0 when the plan is legal). WARNING rows (min
    capacities the plan stage reported unmeetable) are logged and never fail the run. With
    ``fail=False`` the violations are only written and counted (the greedy baseline).
    """
    violations = validate_plan(spark, config, stored_inputs(store, config, run_id, plan), run_id)
    store.replace_run(violations, table, run_id)
    warnings, warned = violation_summary(store.read_run(table, run_id), severity=WARNING)
    if warnings:
        log.warning("validation of run %s: %d warning(s): %s", run_id, warnings, warned)
    count, summary = violation_summary(store.read_run(table, run_id))
    if count:
        log.error("validation of run %s: %d violation(s): %s", run_id, count, summary)
        if fail:
            raise PlanValidationError(run_id, count, table, summary)
    else:
        log.info("validation of run %s: the plan passes every check", run_id)
    return count
