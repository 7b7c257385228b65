"""Planning the rest of a plan year: shifted config, carried-over capacities, warm prices.

A re-plan (or a trigger run) plans months ``start..`` of the plan year. What happened
before is *frozen*: executed contacts are contact history, so every rolling-window rule
counts them; and every capacity constraint is split at ``start`` — the part of its
coefficients on executed months is a constant moved to the bound::

    Σ_{t<start} a·x_executed + Σ_{t≥start} a·x ≤ b   ⇔   Σ_{t≥start} a·x ≤ b − used

which is exact for every linear capacity (counts, sums, averages, even spreading).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contact_spark.capacity.constraints import Constraint, attributes_needed, config_cells, expand_capacities
from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.io.months import month_index as plan_month_index
from contact_spark.io.offers import contact_cost, offer_attribute
from contact_spark.planning.frame import Layout, cell_column, layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.planning.stage import PlanScope


class ReplanWindowError(ContactSparkError):
    """The month to re-plan from is outside the plan year, or the history runs past it."""


def month_index(config: AppConfig, month: dt.date, what: str = "month") -> int:
    """Index of ``month`` (any day of it) in the plan year of ``config``."""
    months = config.run.months()
    first = dt.date(month.year, month.month, 1)
    if first not in months:
        raise ReplanWindowError(
            f"{what} {first:%Y-%m} is outside the plan year {months[0]:%Y-%m}..{months[-1]:%Y-%m} "
            f"(run.first_month and run.horizon_months)"
        )
    return months.index(first)


def shifted_config(config: AppConfig, start: int) -> AppConfig:
    """``config`` planning months ``start..`` of its horizon (seasonality sliced to match)."""
    months = config.run.months()
    if not 0 <= start < len(months):
        raise ReplanWindowError(f"cannot plan from month index {start}: the horizon has {len(months)} months")
    run = config.run.model_copy(update={"first_month": months[start], "horizon_months": len(months) - start})
    seasonality = None if config.seasonality is None else list(config.seasonality[start:])
    return config.model_copy(update={"run": run, "seasonality": seasonality})


def extended_layout(layout: Layout, full_layout: Layout, start: int) -> Layout:
    """The shifted layout, reaching back over the frozen months plus the original history."""
    return replace(layout, history_months=max(layout.history_months, full_layout.history_months + start))


@dataclass(frozen=True)
class CarriedConstraint:
    """A capacity constraint of the year, what the frozen months used, what is left."""

    original: Constraint
    used: float
    remaining: Constraint | None  # None when the constraint only covers frozen months


def split_constraints(
    constraints: list[Constraint], start: int, counts: np.ndarray, attr_sums: dict[str, np.ndarray]
) -> list[CarriedConstraint]:
    """Split every constraint at month ``start``: frozen usage from ``counts``/``attr_sums``
    (``[T, C, H]`` over the whole year, zero from ``start`` on), bounds reduced by it.

    A maximum already exceeded by the frozen months leaves a bound of 0 (nothing more can
    be added; the excess is reported, not repaired)."""
    carried = []
    for constraint in constraints:
        past = np.array(constraint.weight, copy=True)
        past[start:] = 0.0
        used = replace(constraint, weight=past).usage(counts, attr_sums)
        future = constraint.weight[start:]
        if not future.any():
            carried.append(CarriedConstraint(constraint, used, None))
            continue
        bound = constraint.bound - used
        if constraint.sense == "max" and bound < 0 and not constraint.has_offset and (future >= 0).all():
            bound = 0.0
        # A per-slot offset (a ratio's k · per) is cut at ``start`` like the weight.
        offset = (
            constraint.offset if np.ndim(constraint.offset) == 0 else np.array(constraint.offsets[start:])
        )
        remaining = replace(constraint, weight=np.array(future, copy=True), bound=float(bound), offset=offset)
        carried.append(CarriedConstraint(constraint, used, remaining))
    return carried


def subtract_usage(
    carried: list[CarriedConstraint], start: int, counts: np.ndarray, attr_sums: dict[str, np.ndarray]
) -> list[CarriedConstraint]:
    """Lower the remaining bounds by fixed usage in months ``start..`` (e.g. the plan of the
    customers a trigger run leaves as they are); ``counts``/``attr_sums`` are ``[T, C, H]``
    over the whole plan year."""
    out = []
    for c in carried:
        if c.remaining is None:
            out.append(c)
            continue
        future = np.array(c.original.weight, copy=True)
        future[:start] = 0.0
        fixed = replace(c.original, weight=future).usage(counts, attr_sums)
        bound = c.remaining.bound - fixed
        if c.original.sense == "max" and bound < 0 and not c.original.has_offset and (future >= 0).all():
            bound = 0.0
        out.append(CarriedConstraint(c.original, c.used + fixed, replace(c.remaining, bound=float(bound))))
    return out


def year_cells(
    rows: DataFrame, config: AppConfig, layout: Layout, start: int, stop: int | None, date_column: str
) -> DataFrame:
    """Rows (contacts made or planned) in plan-year months ``start..stop-1`` as
    (customer_id, t, cell, campaign, channel, month); ``t`` indexes the whole plan year."""
    months = config.run.months()
    month = F.trunc(F.col(date_column).cast("date"), "month")
    cells = rows.withColumn("_month", month).withColumn("cell", cell_column(layout))
    keep = (F.col("_month") >= F.lit(months[start])) & F.col("cell").isNotNull()
    if stop is not None and stop < len(months):
        keep &= F.col("_month") < F.lit(months[stop])
    else:
        keep &= F.col("_month") <= F.lit(months[-1])
    return cells.filter(keep).select(
        "customer_id",
        plan_month_index(months[0])(F.col("_month")).alias("t"),
        "cell",
        "campaign",
        "channel",
        F.col("_month").alias("month"),
    )


def frozen_contacts(contact_history: DataFrame, config: AppConfig, layout: Layout, start: int) -> DataFrame:
    """Contacts of the history inside the plan year before month ``start``."""
    return year_cells(contact_history, config, layout, 0, start, "contact_date")


def frozen_usage(
    frozen: DataFrame,
    eligibility: DataFrame,
    customers: DataFrame,
    config: AppConfig,
    layout: Layout,
    attributes: list[str],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``[T, C, H]`` counts and attribute sums of the frozen contacts (only these aggregates
    reach the driver). Attributes: the contact's cost, the cell's expected value / propensity
    from ``eligibility`` (0 when it has none), a numeric offer attribute or a numeric
    customers column."""
    n_t = config.run.horizon_months
    n_h = len(layout.channels)
    rows = frozen
    sums = []
    for name in attributes:
        if name == "cost":
            value = contact_cost(config)
        elif config.offer_values(name) is not None:
            value = offer_attribute(config, name)
        elif name in ("expected_value", "propensity"):
            cells = eligibility.select(
                "customer_id", "campaign", "channel", F.col(name).cast("double").alias(f"_v_{name}")
            ).dropDuplicates(["customer_id", "campaign", "channel"])
            rows = rows.join(cells, ["customer_id", "campaign", "channel"], "left")
            value = F.col(f"_v_{name}")
        else:
            column = customers.select("customer_id", F.col(name).cast("double").alias(f"_v_{name}"))
            rows = rows.join(column.dropDuplicates(["customer_id"]), "customer_id", "left")
            value = F.col(f"_v_{name}")
        sums.append(F.sum(F.coalesce(value, F.lit(0.0))).alias(f"s_{name}"))
    aggregated = rows.groupBy("t", "cell").agg(F.count(F.lit(1)).alias("n"), *sums).collect()  # ≤ T × cells
    counts = np.zeros((n_t, len(layout.campaigns), n_h))
    attr_sums = {a: np.zeros_like(counts) for a in attributes}
    for row in aggregated:
        t, k = int(row["t"]), int(row["cell"])
        counts[t, k // n_h, k % n_h] = row["n"]
        for a in attributes:
            attr_sums[a][t, k // n_h, k % n_h] = row[f"s_{a}"] or 0.0
    return counts, attr_sums


def warm_prices(parent_sensitivity: DataFrame | None, constraints: list[Constraint]) -> np.ndarray:
    """The parent run's shadow prices for the constraints of the same name (0 for new ones)."""
    if parent_sensitivity is None:
        return np.zeros(len(constraints))
    prices = {
        r["constraint_name"]: float(r["shadow_price"] or 0.0)
        for r in parent_sensitivity.select(
            "constraint_name", "shadow_price"
        ).collect()  # one row per constraint
    }
    return np.array([prices.get(c.name, 0.0) for c in constraints], dtype=np.float64)


@dataclass(frozen=True)
class RestOfYear:
    """What planning months ``start..`` of the plan year needs."""

    config: AppConfig  # the shifted config (its run covers the re-planned months)
    scope: PlanScope
    carried: list[CarriedConstraint]


def rest_of_year(
    config: AppConfig,
    start: int,
    frozen: DataFrame,
    eligibility: DataFrame,
    customers: DataFrame,
    sensitivity: DataFrame | None,
    fixed_plan: DataFrame | None = None,
) -> RestOfYear:
    """The scope of a re-plan or a trigger run from month ``start``: the shifted layout
    reaching back over the frozen months, every capacity with the usage of ``frozen``
    contacts (and of ``fixed_plan`` rows in later months, left as they are) taken off its
    bound, and prices warm-started from ``sensitivity``'s shadow prices. Attribute values of
    those contacts come from ``eligibility``."""
    months = config.run.months()
    sub_config = shifted_config(config, start)
    full_layout, _ = layout_for(config)
    layout, policy = layout_for(sub_config)
    constraints = expand_capacities(config.capacities, full_layout, months, config_cells(config, full_layout))
    attributes = attributes_needed(constraints)
    counts, sums = frozen_usage(frozen, eligibility, customers, config, full_layout, attributes)
    carried = split_constraints(constraints, start, counts, sums)
    if fixed_plan is not None:
        fixed = year_cells(fixed_plan, config, full_layout, start, None, "month")
        counts, sums = frozen_usage(fixed, eligibility, customers, config, full_layout, attributes)
        carried = subtract_usage(carried, start, counts, sums)
    remaining = [c.remaining for c in carried if c.remaining is not None]
    scope = PlanScope(
        layout=extended_layout(layout, full_layout, start),
        policy=policy,
        months=months[start:],
        static=StaticInputs.from_config(sub_config),
        constraints=remaining,
        initial_prices=warm_prices(sensitivity, remaining),
    )
    return RestOfYear(sub_config, scope, carried)
