"""The planning stage: per-customer schedules under global capacities, written to Delta."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.capacity.constraints import (
    Constraint,
    attributes_needed,
    cell_attribute,
    config_cells,
    expand_capacities,
)
from contact_spark.capacity.engine import CapacityEngine
from contact_spark.capacity.result import CapacityResult
from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.io.catalog import PLAN_TABLES
from contact_spark.io.columns import one_row
from contact_spark.io.tables import LocalRows, TableStore
from contact_spark.planning.frame import Layout, cell_column, customer_frame, layout_for
from contact_spark.planning.solve import StaticInputs, plan_rows, quarantine_rows
from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.spark import available_cores

log = logging.getLogger(__name__)


class CapacityAttributeError(ContactSparkError):
    """A custom capacity names an attribute that is neither built in nor a numeric customers column."""


@dataclass(frozen=True)
class PlanningResult:
    tables: dict[str, str]
    capacity: CapacityResult


def _dense(by_cell: Column, n_cells: int) -> Column:
    """A cell → value map as an array over every cell, 0.0 where the map has none."""
    # One-argument lambda: F.transform reads a two-argument one as (element, index); a
    # default argument binding the column once became the index (UNRESOLVED_COLUMN _m_Column).
    return F.transform(
        F.sequence(F.lit(0), F.lit(n_cells - 1)),
        lambda k: F.coalesce(F.element_at(by_cell, k.cast("long")), F.lit(0.0)),
    )


def _attribute_columns(
    frame: DataFrame,
    eligibility: DataFrame,
    customers: DataFrame,
    layout: Layout,
    config: AppConfig,
    names: list[str],
) -> DataFrame:
    """Add ``attr_<name>`` arrays (one value per cell) for the custom capacities."""
    for name in names:
        cells = cell_attribute(config, layout, name)
        if cells is not None:
            if name != "cost" and name in customers.columns:
                raise CapacityAttributeError(
                    f"capacity column '{name}' is both an offer attribute and a customers column: "
                    "rename one of them"
                )
            frame = frame.withColumn(f"attr_{name}", F.array(*[F.lit(float(v)) for v in cells]))
        elif name in ("expected_value", "propensity"):
            # A cell that is not eligible is never planned; 0.0 keeps a bad value (NaN) of it
            # out of the capacity sums.
            value = F.when(F.col("eligible"), F.coalesce(F.col(name).cast("double"), F.lit(0.0)))
            per_cell = (
                eligibility.select(
                    "customer_id",
                    F.struct(
                        cell_column(layout).alias("cell"), F.coalesce(value, F.lit(0.0)).alias("value")
                    ).alias("kv"),
                )
                .filter(F.col("kv.cell").isNotNull())
                .groupBy("customer_id")
                .agg(F.map_from_entries(F.collect_list("kv")).alias(f"_m_{name}"))
            )
            frame = (
                frame.join(per_cell, "customer_id", "left")
                .withColumn(f"attr_{name}", _dense(F.col(f"_m_{name}"), layout.n_cells))
                .drop(f"_m_{name}")
            )
        else:
            field = next((f for f in customers.schema.fields if f.name == name), None)
            if field is None or field.dataType.typeName() not in (
                "double",
                "float",
                "integer",
                "long",
                "short",
                "decimal",
            ):
                raise CapacityAttributeError(
                    f"capacity column '{name}' is not cost, expected_value, propensity, a numeric offer "
                    "attribute or a numeric customers column"
                )
            values = customers.select("customer_id", F.col(name).cast("double").alias("_v")).dropDuplicates(
                ["customer_id"]
            )
            frame = (
                frame.join(values, "customer_id", "left")
                .withColumn(f"attr_{name}", F.array_repeat(F.coalesce("_v", F.lit(0.0)), layout.n_cells))
                .drop("_v")
            )
    return frame


@dataclass(frozen=True)
class PlanScope:
    """What one planning solve covers: its months, array layout, statics and constraints.

    The default scope is the config's whole horizon; a re-plan or a trigger run plans the
    remaining months with constraints whose bounds already count what is used elsewhere,
    warm-started from earlier prices, and may add per-customer month overlays
    (``month_eligible`` / ``month_propensity`` arrays, see :mod:`contact_spark.adaptive`).
    """

    layout: Layout
    policy: CompiledPolicy
    months: list[dt.date]
    static: StaticInputs
    constraints: list[Constraint]
    initial_prices: np.ndarray | None = None
    overlay: DataFrame | None = None


def default_scope(config: AppConfig) -> PlanScope:
    """The whole horizon of ``config`` with its capacities expanded."""
    layout, policy = layout_for(config)
    months = config.run.months()
    return PlanScope(
        layout=layout,
        policy=policy,
        months=months,
        static=StaticInputs.from_config(config),
        constraints=expand_capacities(config.capacities, layout, months, config_cells(config, layout)),
    )


def best_contact_values(store: TableStore, run_id: str) -> DataFrame:
    """``customer_id, channel, contact_id, contact``: the run's best contacts with their raw
    value, which the plan rows join by key (:func:`~contact_spark.planning.solve.plan_rows`).

    The plan is one of the few tables that may hold a raw phone or address (execution needs
    it); eligibility and every other table name the contact by ``contact_id`` only.
    """
    return store.read_run("best_contacts", run_id).select(
        "customer_id", "channel", "contact_id", F.col("value").alias("contact")
    )


@dataclass(frozen=True)
class SolvedPlan:
    """A solve's plan rows (not yet written), quarantine rows and capacity certificate."""

    plan: DataFrame
    quarantine: DataFrame
    capacity: CapacityResult
    frame: DataFrame


def solve_plan(
    spark: SparkSession,
    store: TableStore | None,
    config: AppConfig,
    scope: PlanScope,
    eligibility: DataFrame,
    contact_history: DataFrame,
    customers: DataFrame,
    run_id: str,
    config_hash: str = "",
    *,
    contacts: DataFrame,
) -> SolvedPlan:
    """Solve every customer of ``eligibility`` in ``scope``; the caller writes the rows.

    ``contacts`` (:func:`best_contact_values`) give the plan rows their raw contact. The
    customer frame stays cached until the caller calls ``frame.unpersist()``. The price
    iterations are recorded in ``store`` (``capacity_iterations``, what a resume reads);
    with ``store=None`` nothing is recorded and nothing resumed.
    """
    layout = scope.layout
    attributes = attributes_needed(scope.constraints)
    settings = config.capacities.lagrangian
    # Two batches per core: every task costs a fixed ~50 ms (closure, Arrow stream), so
    # more, smaller partitions only add overhead to each of the many price iterations.
    batches = settings.batches or max(2, min(2000, available_cores(spark) * 2))
    frame = customer_frame(eligibility, contact_history, layout, scope.months[0], batches)
    if scope.overlay is not None:
        frame = frame.join(scope.overlay, "customer_id", "left")
    frame = _attribute_columns(frame, eligibility, customers, layout, config, attributes)
    # By customer: the partitions match the ``batch`` column and hold as many customers each.
    frame = frame.repartition(batches, "customer_id").persist(StorageLevel.MEMORY_AND_DISK)
    log.info(
        "planning: %d customers with an eligible contact, %d capacity constraints",
        frame.count(),
        len(scope.constraints),
    )
    engine = CapacityEngine(
        spark,
        frame,
        scope.policy,
        layout,
        scope.static,
        scope.constraints,
        settings,
        attributes,
        store=store,
        run_id=run_id,
        config_hash=config_hash,
        initial_prices=scope.initial_prices,
    )
    result = engine.run()
    plan = plan_rows(result.solved, eligibility, layout, scope.months, run_id, contacts)
    return SolvedPlan(plan, quarantine_rows(result.solved, run_id), result, frame)


def run_planning_stage(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    eligibility: DataFrame,
    contact_history: DataFrame,
    customers: DataFrame,
    run_id: str,
    config_hash: str = "",
    scope: PlanScope | None = None,
) -> PlanningResult:
    """Plan every customer under the policy and the capacities; write plan and certificate tables.

    The plan rows take their raw contact from the run's ``best_contacts`` (``eligibility``
    names it by ``contact_id``)."""
    scope = scope or default_scope(config)
    solved = solve_plan(
        spark,
        store,
        config,
        scope,
        eligibility,
        contact_history,
        customers,
        run_id,
        config_hash,
        contacts=best_contact_values(store, run_id),
    )
    result = solved.capacity
    store.replace_run(solved.plan, "plan", run_id)
    store.replace_run(solved.quarantine, "plan_quarantine", run_id)
    store.replace_run(sensitivity_rows(result, run_id), "capacity_sensitivity", run_id)
    store.replace_run(summary_row(store, result, run_id), "plan_summary", run_id)
    solved.frame.unpersist()
    log.info(
        "planning: value=%.2f dual_bound=%.2f gap=%.5f iterations=%d",
        result.primal_value,
        result.dual_bound,
        result.gap,
        result.iterations,
    )
    return PlanningResult({t: store.location(t) for t in PLAN_TABLES if store.exists(t)}, result)


def binding(constraint: Constraint, used: float) -> bool:
    """The plan leaves no room on ``constraint``: a count has less than one contact's weight
    of slack (9 calls of 10 is not binding), a sum (cost, expected value …) meets its bound
    within rounding. A min is binding when the plan sits on it."""
    slack = constraint.sign * (constraint.bound - used)
    if constraint.attr is None:
        positive = constraint.weight[constraint.weight > 0]
        return bool(slack < (float(positive.min()) if positive.size else 1.0) - 1e-9)
    return bool(slack <= 1e-6 * max(1.0, abs(constraint.bound)))


def sensitivity_rows(result: CapacityResult, run_id: str) -> LocalRows:
    """Per capacity constraint: the price it carries in the reported dual bound (value the
    bound gains per extra unit of capacity), whether the plan uses it up, and a min's
    shortfall."""
    rows = [
        (
            run_id,
            c.name,
            c.rule,
            c.month,
            c.sense,
            float(c.bound),
            float(used),
            float(price),
            binding(c, float(used)),
            float(max(0.0, c.bound - used)) if c.sense == "min" else 0.0,
        )
        for c, used, price in zip(result.constraints, result.usage, result.prices, strict=True)
    ]
    return LocalRows.of(
        rows,
        "run_id string, constraint_name string, rule string, month date, sense string, bound double, "
        "usage double, shadow_price double, binding boolean, shortfall double",
    )


def summary_row(store: TableStore, result: CapacityResult, run_id: str) -> LocalRows:
    """The plan's objective, dual bound, gap and size (one row)."""
    planned = one_row(
        store.read_run("plan", run_id).agg(
            F.count(F.lit(1)).alias("contacts"), F.countDistinct("customer_id").alias("customers")
        )
    )
    quarantined = store.read_run("plan_quarantine", run_id).count()
    return LocalRows.of(
        [
            (
                run_id,
                float(result.primal_value),
                float(result.dual_bound),
                float(result.gap),
                int(result.iterations),
                int(result.repair_rounds),
                int(result.trimmed_contacts),
                int(planned["contacts"]),
                int(planned["customers"]),
                int(quarantined),
            )
        ],
        "run_id string, objective double, dual_bound double, gap double, iterations int, repair_rounds int, "
        "trimmed_contacts int, contacts long, customers long, quarantined long",
    )
