"""Validate a finished plan: every check module over the plan and its inputs.

A plan row is ``(customer_id, month, campaign, channel, contact)``, or ``contact_id`` for
``contact`` (the greedy baseline names its contacts by key). :func:`validate_plan`
runs the row checks (:mod:`.rows`: plan shape, consent, eligibility, best contact), the
campaign flights (:mod:`.flights`), the policy (:mod:`.policy`), the capacities (:mod:`.capacity`) and, when triggers are
configured, the trigger checks (:mod:`.triggers`), and returns their violations with the
run id. The per-customer checks are joins and window functions that stay in Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.validation.capacity import capacity_usage, check_capacity, plan_attributes
from contact_spark.validation.flights import check_flights
from contact_spark.validation.frames import VIOLATION_COLUMNS, month_index, union_violations
from contact_spark.validation.policy import check_policy, contact_events
from contact_spark.validation.rows import check_rows


class PlanValidationError(ContactSparkError):
    """The plan breaks at least one rule; the rows are in the violations table."""

    def __init__(self, run_id: str, count: int, table: str, summary: str) -> None:
        self.run_id = run_id
        self.count = count
        self.table = table
        super().__init__(
            f"plan of run '{run_id}' has {count} violation(s) ({summary}); "
            f"see table '{table}' where run_id = '{run_id}'"
        )


@dataclass(frozen=True)
class ValidationInputs:
    """What a plan is checked against. ``quarantine`` (customer_id) is excluded from min rules.

    ``reported_shortfalls`` (``rule, month``; month null for a yearly rule) are the min
    capacities the plan stage reported it could not meet: unless
    ``validation.strict_min_capacity`` is set, a plan below such a min gives a WARNING row
    instead of an ERROR. Everything else is an ERROR.
    """

    plan: DataFrame
    customers: DataFrame
    eligibility: DataFrame
    best_contacts: DataFrame
    contact_history: DataFrame
    quarantine: DataFrame | None = None
    reported_shortfalls: DataFrame | None = None
    applied_events: DataFrame | None = (
        None  # trigger events applied to the plan (customer_id, event_type, event_time)
    )


def min_rule_population(inputs: ValidationInputs) -> DataFrame:
    """Customers min rules apply to: at least one eligible candidate, not quarantined."""
    population = inputs.eligibility.filter(F.col("eligible")).select("customer_id").distinct()
    if inputs.quarantine is not None:
        population = population.join(inputs.quarantine.select("customer_id"), "customer_id", "left_anti")
    return population


def validate_plan(spark: SparkSession, config: AppConfig, inputs: ValidationInputs, run_id: str) -> DataFrame:
    """Every violation of the plan (empty when the plan is legal), with ``run_id``."""
    plan = inputs.plan
    if "contact" not in plan.columns and "contact_id" not in plan.columns:
        plan = plan.withColumn("contact", F.lit(None).cast("string"))
    frames = check_rows(plan, inputs.customers, inputs.eligibility, inputs.best_contacts, config)
    frames += check_flights(plan, config)
    history = inputs.contact_history
    events = contact_events(plan, history, config)
    if any(r.type == "min_offers" for r in config.policy.rules):
        population = min_rule_population(inputs)
        # Min rules count history of customers that have no planned contact too.
        past = (
            history.select(
                "customer_id", month_index(F.col("contact_date"), config).alias("m"), "campaign", "channel"
            )
            .filter(F.col("m") < 0)
            .join(population, "customer_id", "left_semi")
            .join(plan.select("customer_id").distinct(), "customer_id", "left_anti")
            .groupBy("customer_id", "m", "campaign", "channel")
            .agg(F.count(F.lit(1)).alias("n"))
            .select("*", F.lit(False).alias("planned"))
        )
        events = events.unionByName(past)
    else:
        population = plan.select("customer_id").limit(0)
    frames += check_policy(spark, events, population, config)
    attributed = plan_attributes(plan, inputs.eligibility, inputs.customers, config)
    accepted = None if config.validation.strict_min_capacity else inputs.reported_shortfalls
    frames += check_capacity(capacity_usage(spark, attributed, config), accepted)
    if config.triggers.events:
        from contact_spark.validation.triggers import check_triggers

        applied = inputs.applied_events
        if applied is None:
            applied = spark.createDataFrame([], "customer_id string, event_type string, event_time timestamp")
        frames += check_triggers(spark, config, plan, applied)
    out = union_violations(spark, frames)
    return out.select(F.lit(run_id).alias("run_id"), *VIOLATION_COLUMNS[1:])
