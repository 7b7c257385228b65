"""The ``violations`` row shape and the helpers every check module shares.

A violation row is ``customer_id, rule, kind, month, detail, severity`` (``run_id`` is
added by :func:`contact_spark.validation.run.validate_plan`); month indexes count from the
plan's first month (0) backwards into the history (-1 = the month before).
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.config.scope import Resolved
from contact_spark.io import months

VIOLATION_SCHEMA = (
    "run_id string, customer_id string, rule string, kind string, month date, detail string, severity string"
)
VIOLATION_COLUMNS = ("run_id", "customer_id", "rule", "kind", "month", "detail", "severity")
ERROR, WARNING = "ERROR", "WARNING"


def in_scope(scope: Resolved, prefix: str = "") -> Column:
    """Whether the row's (``prefix``) campaign and channel are in the scope (its names, from
    :meth:`~contact_spark.config.scope.Scoped.resolve`)."""
    return F.col(f"{prefix}campaign").isin(list(scope.campaigns)) & F.col(f"{prefix}channel").isin(
        list(scope.channels)
    )


def month_index(col: Column, config: AppConfig) -> Column:
    """Months from the plan's first month (0 = first month, -1 = the month before)."""
    return months.month_index(config.run.first_month)(col)


def month_of(index: Column, config: AppConfig) -> Column:
    """First day of the month with index ``index`` (the inverse of :func:`month_index`)."""
    return months.month_of(config.run.first_month)(index)


def violation_rows(
    df: DataFrame,
    rule: Column | str,
    kind: str,
    month: Column | None,
    detail: Column,
    severity: Column | None = None,
) -> DataFrame:
    """``df``'s rows as violation rows (without ``run_id``); no severity means ERROR."""
    return df.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        (F.lit(rule) if isinstance(rule, str) else rule).alias("rule"),
        F.lit(kind).alias("kind"),
        (month if month is not None else F.lit(None)).cast("date").alias("month"),
        detail.alias("detail"),
        (severity if severity is not None else F.lit(ERROR)).alias("severity"),
    )


def _empty(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [], "customer_id string, rule string, kind string, month date, detail string, severity string"
    )


def union_violations(spark: SparkSession, frames: list[DataFrame]) -> DataFrame:
    """All violation frames as one (an empty frame of the right shape when there are none)."""
    # A frame without a severity (e.g. the trigger checks) holds ERROR rows.
    frames = [f if "severity" in f.columns else f.withColumn("severity", F.lit(ERROR)) for f in frames]
    return reduce(DataFrame.unionByName, frames, _empty(spark))
