"""Month arithmetic, written once (contact_spark/io/months.py)."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.io.months import add_months, month_index, month_number, month_of, months_apart


def test_month_numbers_and_shifts_cross_year_boundaries() -> None:
    assert month_number(dt.date(2027, 1, 31)) == 2027 * 12
    assert add_months(dt.date(2027, 1, 15), -1) == dt.date(2026, 12, 1)
    assert add_months(dt.date(2026, 11, 1), 14) == dt.date(2028, 1, 1)


def test_plan_month_index_and_its_inverse_as_columns(spark: SparkSession) -> None:
    """Plan starting 2027-01: a December 2026 timestamp is month -1, mid-March 2027 is 2."""
    first = dt.date(2027, 1, 1)
    df = spark.createDataFrame(
        [(dt.datetime(2026, 12, 31, 23, 0),), (dt.datetime(2027, 3, 15, 8, 30),)], "when timestamp"
    )
    got = df.select(month_index(first)(F.col("when")).alias("t")).withColumn(
        "month", month_of(first)(F.col("t"))
    )
    expected = spark.createDataFrame(
        [(-1, dt.date(2026, 12, 1)), (2, dt.date(2027, 3, 1))], "t int, month date"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_months_apart_counts_whole_months_whatever_the_days(spark: SparkSession) -> None:
    """Days are ignored: 31 Dec 2026 to 1 Mar 2027 is 3 months (Dec -> Mar), 15 Mar to 28 Feb
    of the same year -1, and a timestamp counts like its date."""
    df = spark.createDataFrame(
        [
            (dt.date(2027, 3, 1), dt.date(2026, 12, 31)),
            (dt.date(2027, 2, 28), dt.date(2027, 3, 15)),
            (dt.date(2027, 1, 31), dt.date(2027, 1, 1)),
        ],
        "later date, earlier date",
    )
    out = df.select(months_apart(F.col("later"), F.col("earlier")).alias("m"))
    out = out.union(
        spark.createDataFrame([(dt.datetime(2027, 5, 31, 23, 59),)], "later timestamp").select(
            months_apart(F.col("later"), F.lit(dt.date(2027, 4, 1))).alias("m")
        )
    )
    expected = spark.createDataFrame([(3,), (-1,), (0,), (1,)], "m int")
    assert_df_equality(out, expected)
