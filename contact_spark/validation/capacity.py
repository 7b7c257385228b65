"""Capacity and spread rules, checked with zero tolerance over the plan's attributes.

:func:`capacity_usage` gives one row per constraint (rule x month, or rule for a year);
sums are exact decimals (``decimal(38,12)``), not floats, so a max is never passed by
rounding. :func:`check_capacity` turns the rows outside their bounds into violations.
Only these small aggregates (at most rules x months rows) are ever collected.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.columns import case_when
from contact_spark.io.offers import contact_cost, offer_attribute
from contact_spark.validation.frames import ERROR, WARNING, in_scope, violation_rows

CAPACITY_USAGE_SCHEMA = (
    "rule string, measure string, month date, usage double, bound_min double, bound_max double, "
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
    custom = {r.column for r in config.capacities.rules if r.column and r.column not in BUILTIN_ATTRIBUTES}
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


def capacity_usage(spark: SparkSession, attributed: DataFrame, config: AppConfig) -> DataFrame:
    """One row per capacity constraint (rule × month, or rule for a year): usage, bounds, violated."""
    months = config.run.months()
    horizon = len(months)
    grid = spark.createDataFrame([(m,) for m in months], "month date")
    frames = []
    for rule in config.capacities.rules:
        scoped = attributed.filter(in_scope(rule.resolve(config)))
        attr = (
            F.coalesce(F.col(rule.column).cast(DECIMAL), F.lit(0).cast(DECIMAL)) if rule.column else F.lit(1)
        )
        aggs = [F.count(F.lit(1)).alias("_c"), F.sum(attr.cast(DECIMAL)).alias("_s")]
        if rule.period == "month":
            agg = grid.join(
                scoped.groupBy(F.col("month").cast("date").alias("month")).agg(*aggs), "month", "left"
            )
            bounds = {e.month: e for e in rule.exceptions}
            lows, highs = [], []
            for m in months:
                e = bounds.get(m)
                mn = e.min if e is not None and e.min is not None else rule.min
                mx = e.max if e is not None and e.max is not None else rule.max
                cond = F.col("month") == F.lit(m)
                lows.append((cond, F.lit(mn).cast("double")))
                highs.append((cond, F.lit(mx).cast("double")))
            agg = agg.withColumn("_lo", case_when(lows)).withColumn("_hi", case_when(highs))
        else:
            agg = scoped.agg(*aggs).select(
                F.lit(None).cast("date").alias("month"),
                "_c",
                "_s",
                F.lit(rule.min).cast("double").alias("_lo"),
                F.lit(rule.max).cast("double").alias("_hi"),
            )
        c = F.coalesce(F.col("_c"), F.lit(0)).cast(DECIMAL)
        s = F.coalesce(F.col("_s"), F.lit(0)).cast(DECIMAL)
        lo_d, hi_d = F.col("_lo").cast(DECIMAL), F.col("_hi").cast(DECIMAL)
        if rule.measure == "average":
            usage = F.when(c > 0, s / c)
            over = s > hi_d * c
            under = (c > 0) & (s < lo_d * c)
        else:
            usage = c if rule.measure == "contacts" else s
            over = usage > hi_d
            under = usage < lo_d
        frames.append(
            agg.select(
                F.lit(rule.name).alias("rule"),
                F.lit(rule.measure).alias("measure"),
                "month",
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
                F.when(
                    severity == WARNING, F.lit(": a min the plan stage reported it could not meet")
                ).otherwise(F.lit("")),
            ),
            severity,
        )
    ]
