"""Capacity and spread rules, checked with zero tolerance over the plan's attributes.

A share is checked as ``Σ of ≤ s · Σ scope`` and a ratio as ``Σ column ≤ k · Σ per`` (and
``≥`` for a min), in exact decimals without dividing; ``usage`` shows the share or the ratio
itself (null when its denominator is 0).

:func:`capacity_usage` gives one row per constraint (rule × period: month, calendar quarter,
rolling window of N months, or the whole horizon), the periods and the exceptions' bounds
derived here again from the rule's config (not from the engine's ``capacity.constraints``);
sums are exact decimals (``decimal(38,12)``), not floats, so a max is never passed by
rounding. :func:`check_capacity` turns the rows outside their bounds into violations.
Only these small aggregates (at most rules x months rows) are ever collected.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.config.capacity import CapacityException, CapacityRule
from contact_spark.config.models import AppConfig
from contact_spark.io.columns import case_when
from contact_spark.io.offers import contact_cost, offer_attribute
from contact_spark.validation.frames import ERROR, WARNING, in_scope, violation_rows

CAPACITY_USAGE_SCHEMA = (
    "rule string, measure string, month date, period string, usage double, bound_min double, bound_max double, "
    "violated boolean, under_min_only boolean"
)
# Exact decimal arithmetic for sums: no float rounding can hide (or invent) an overrun.
DECIMAL = "decimal(38,12)"
BUILTIN_ATTRIBUTES = ("cost", "expected_value", "propensity")


def plan_attributes(
    plan: DataFrame, eligibility: DataFrame, customers: DataFrame, config: AppConfig
) -> DataFrame:
    """Plan rows with every attribute a capacity may measure (cost, propensity, ...)."""
    cand = eligibility.groupBy("customer_id", "campaign", "channel").agg(
        F.max(F.col("propensity").cast("double")).alias("propensity"),
        F.max(F.col("expected_value").cast("double")).alias("_ev"),
    )
    rows = plan.drop("propensity").join(cand, ["customer_id", "campaign", "channel"], "left")
    rows = rows.withColumn("cost", contact_cost(config))
    rows = rows.withColumn("expected_value", F.col("_ev")).drop("_ev")
    named = {name for r in config.capacities.rules for name in (r.column, r.per) if name}
    custom = {name for name in named if name not in BUILTIN_ATTRIBUTES}
    offers = {c for c in custom if config.offer_values(c) is not None}
    for name in sorted(offers):
        rows = rows.withColumn(name, offer_attribute(config, name))
    columns = custom - offers
    if columns:
        # The largest value of a duplicated customer: over-counting is the safe side of a max.
        values = customers.groupBy("customer_id").agg(
            *[F.max(F.col(c).cast("double")).alias(c) for c in sorted(columns)]
        )
        rows = rows.join(values, "customer_id", "left")
    return rows


def _value(column: str) -> Column:
    """A capacity column of the row as an exact decimal (0 where it has none)."""
    return F.coalesce(F.col(column).cast(DECIMAL), F.lit(0).cast(DECIMAL))


def _period_months(grid: DataFrame, rule: CapacityRule, horizon: int) -> DataFrame:
    """``(_start, month)`` for every month of every period of ``rule``, derived here from the
    month grid (``t, month``), not from the engine's expansion: ``_start`` is the period's
    first month (null for ``year``, the whole horizon). A quarter is the calendar quarter
    (cut by the horizon's ends); a rolling window of N months starts at every month with
    N − 1 more months in the horizon (the whole horizon when it is shorter than N)."""
    if rule.period == "month":
        return grid.select(F.col("month").alias("_start"), "month")
    if rule.period == "quarter":
        quarter = Window.partitionBy(F.trunc("month", "quarter"))
        return grid.select(F.min("month").over(quarter).alias("_start"), "month")
    if rule.period == "rolling":
        length = min(rule.months or 1, horizon)
        starts = grid.filter(F.col("t") <= horizon - length).select(
            F.col("t").alias("_s"), F.col("month").alias("_start")
        )
        inside = (F.col("t") >= F.col("_s")) & (F.col("t") < F.col("_s") + length)
        return starts.join(grid, inside).select("_start", "month")
    return grid.select(F.lit(None).cast("date").alias("_start"), "month")


def _covers(exception: CapacityException) -> Column:
    """Whether the row's ``month`` is one of the exception's (every year: by calendar month)."""
    month = F.col("month")
    if exception.month is not None:
        first, last = exception.month, exception.month
    else:
        assert exception.start is not None and exception.to is not None  # checked at config load
        first, last = exception.start, exception.to.replace(day=1)
    if not exception.every_year:
        return (month >= F.lit(first)) & (month <= F.lit(last))
    calendar_month = F.month(month)
    if first.month <= last.month:  # at most 12 months (config load)
        return calendar_month.between(first.month, last.month)
    return (calendar_month >= first.month) | (calendar_month <= last.month)  # over the new year


def _period_label(rule: CapacityRule) -> Column:
    start = F.date_format("_start", "yyyy-MM")
    if rule.period == "quarter":
        return F.concat(F.year("_start").cast("string"), F.lit("-Q"), F.quarter("_start").cast("string"))
    if rule.period == "rolling":
        return F.concat(start, F.lit(".."), F.date_format("_last", "yyyy-MM"))
    return F.coalesce(start, F.lit("year"))


def capacity_usage(spark: SparkSession, attributed: DataFrame, config: AppConfig) -> DataFrame:
    """One row per capacity constraint (rule × period: a month, a quarter, a rolling window
    or the whole horizon): usage, bounds, violated. ``month`` names the period by its first
    month (null for the whole horizon), ``period`` by its label."""
    months = config.run.months()
    horizon = len(months)
    grid = spark.createDataFrame(list(enumerate(months)), "t int, month date")
    frames = []
    for rule in config.capacities.rules:
        scoped = attributed.filter(in_scope(rule.resolve(config)))
        attr = _value(rule.column) if rule.column else F.lit(1)
        # A share's part (its ``of`` contacts) and a ratio's denominator, beside the scope's sum.
        if rule.measure == "share":
            part = F.when(in_scope(rule.numerator(config)), attr.cast(DECIMAL)).otherwise(
                F.lit(0).cast(DECIMAL)
            )
        else:
            part = _value(rule.per) if rule.per else F.lit(0)
        per_month = scoped.groupBy(F.col("month").cast("date").alias("month")).agg(
            F.count(F.lit(1)).alias("_mc"),
            F.sum(attr.cast(DECIMAL)).alias("_ms"),
            F.sum(part.cast(DECIMAL)).alias("_mp"),
        )
        # A period takes an exception's bounds when every one of its months is the exception's.
        covered = [F.min(_covers(e).cast("int")).alias(f"_in{i}") for i, e in enumerate(rule.exceptions)]
        agg = (
            _period_months(grid, rule, horizon)
            .join(per_month, "month", "left")
            .groupBy("_start")
            .agg(
                F.sum("_mc").alias("_c"),
                F.sum("_ms").alias("_s"),
                F.sum("_mp").alias("_p"),
                F.max("month").alias("_last"),
                *covered,
            )
        )
        lows = [
            (F.col(f"_in{i}") == 1, F.lit(e.min).cast("double"))
            for i, e in enumerate(rule.exceptions)
            if e.min is not None
        ]
        highs = [
            (F.col(f"_in{i}") == 1, F.lit(e.max).cast("double"))
            for i, e in enumerate(rule.exceptions)
            if e.max is not None
        ]
        low, high = F.lit(rule.min).cast("double"), F.lit(rule.max).cast("double")
        agg = agg.withColumn("_lo", case_when(lows).otherwise(low) if lows else low)
        agg = agg.withColumn("_hi", case_when(highs).otherwise(high) if highs else high)
        c = F.coalesce(F.col("_c"), F.lit(0)).cast(DECIMAL)
        s = F.coalesce(F.col("_s"), F.lit(0)).cast(DECIMAL)
        lo_d, hi_d = F.col("_lo").cast(DECIMAL), F.col("_hi").cast(DECIMAL)
        p = F.coalesce(F.col("_p"), F.lit(0)).cast(DECIMAL)
        if rule.measure == "average":
            usage = F.when(c > 0, s / c)
            over = s > hi_d * c
            under = (c > 0) & (s < lo_d * c)
        elif rule.measure == "share":  # part ≤ s · whole, exactly (no division)
            usage = F.when(s != 0, p / s)
            over = p > hi_d * s
            under = p < lo_d * s
        elif rule.measure == "ratio":  # Σ column ≤ k · Σ per, exactly
            usage = F.when(p != 0, s / p)
            over = s > hi_d * p
            under = s < lo_d * p
        else:
            usage = c if rule.measure == "contacts" else s
            over = usage > hi_d
            under = usage < lo_d
        frames.append(
            agg.select(
                F.lit(rule.name).alias("rule"),
                F.lit(rule.measure).alias("measure"),
                F.col("_start").alias("month"),
                _period_label(rule).alias("period"),
                usage.cast("double").alias("usage"),
                F.col("_lo").alias("bound_min"),
                F.col("_hi").alias("bound_max"),
                (F.coalesce(over, F.lit(False)) | F.coalesce(under, F.lit(False))).alias("violated"),
                (~F.coalesce(over, F.lit(False)) & F.coalesce(under, F.lit(False))).alias("under_min_only"),
            )
        )
    for spread in config.capacities.spread:
        counts = grid.join(
            attributed.filter(in_scope(spread.resolve(config)))
            .groupBy(F.col("month").cast("date").alias("month"))
            .agg(F.count(F.lit(1)).alias("_c")),
            "month",
            "left",
        ).withColumn("_c", F.coalesce("_c", F.lit(0)).cast(DECIMAL))
        total = F.sum("_c").over(Window.partitionBy())
        tol = F.lit(str(spread.tolerance)).cast(DECIMAL)
        frames.append(
            counts.withColumn("_total", total).select(
                F.lit(spread.name).alias("rule"),
                F.lit("spread").alias("measure"),
                "month",
                F.date_format("month", "yyyy-MM").alias("period"),
                F.col("_c").cast("double").alias("usage"),
                ((1 - tol) * F.col("_total") / horizon).cast("double").alias("bound_min"),
                ((1 + tol) * F.col("_total") / horizon).cast("double").alias("bound_max"),
                (
                    (F.col("_c") * horizon > (1 + tol) * F.col("_total"))
                    | (F.col("_c") * horizon < (1 - tol) * F.col("_total"))
                ).alias("violated"),
                (F.col("_c") * horizon < (1 - tol) * F.col("_total")).alias("under_min_only"),
            )
        )
    return reduce(DataFrame.unionByName, frames, spark.createDataFrame([], CAPACITY_USAGE_SCHEMA))


def check_capacity(usage: DataFrame, accepted: DataFrame | None = None) -> list[DataFrame]:
    """Every capacity row outside its bounds; a min shortfall listed in ``accepted``
    (``rule, month``) is a WARNING, every other row an ERROR."""
    bad = usage.filter(F.col("violated")).withColumn("customer_id", F.lit(None).cast("string"))
    severity = F.lit(ERROR)
    if accepted is not None:
        known = accepted.select("rule", F.col("month").cast("date").alias("_m")).distinct()
        bad = bad.join(
            F.broadcast(known.withColumn("_reported", F.lit(True))),
            (bad["rule"] == known["rule"]) & bad["month"].eqNullSafe(known["_m"]),
            "left",
        ).drop(known["rule"], "_m")
        severity = F.when(F.col("under_min_only") & F.col("_reported").isNotNull(), F.lit(WARNING)).otherwise(
            F.lit(ERROR)
        )
    return [
        violation_rows(
            bad,
            F.col("rule"),
            "capacity",
            F.col("month"),
            F.concat(
                F.col("measure"),
                F.lit(" "),
                F.format_number(F.col("usage"), 6),
                F.lit(" outside ["),
                F.coalesce(F.format_number(F.col("bound_min"), 6), F.lit("-")),
                F.lit(", "),
                F.coalesce(F.format_number(F.col("bound_max"), 6), F.lit("-")),
                F.lit("]"),
                # A month names its period already (column month); a quarter or window is said.
                F.when(
                    F.col("period") != F.coalesce(F.date_format("month", "yyyy-MM"), F.lit("year")),
                    F.concat(F.lit(" in "), F.col("period")),
                ).otherwise(F.lit("")),
                F.when(
                    severity == WARNING, F.lit(": a min the plan stage reported it could not meet")
                ).otherwise(F.lit("")),
            ),
            severity,
        )
    ]
