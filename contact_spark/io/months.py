"""Month arithmetic, written once (no pyspark import at module level): plan-month indices as Spark columns, absolute month
numbers and month shifts as plain Python (the real-time check runs without Spark).

A plan month index counts from the plan's first month: 0 = ``run.first_month``, -1 = the
month before (history), ``horizon - 1`` = the last planned month.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column


def month_number(day: dt.date) -> int:
    """Absolute month number of a date: ``year * 12 + month - 1``."""
    return day.year * 12 + day.month - 1


def add_months(month: dt.date, n: int) -> dt.date:
    """The first day of the month ``n`` months after ``month``'s (n may be negative)."""
    index = month_number(month) + n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_index(first_month: dt.date) -> Callable[[Column], Column]:
    """Column -> Column: the plan month index of a date or timestamp column (quinn-style,
    for ``.withColumn("t", month_index(first)(F.col("month")))``)."""
    from pyspark.sql import functions as F  # here, so the real-time check loads no pyspark

    first = F.lit(first_month).cast("date")

    def index(col: Column) -> Column:
        return F.months_between(F.trunc(col.cast("date"), "month"), first).cast("int")

    return index


def months_apart(later: Column, earlier: Column) -> Column:
    """Column, Column -> Column: whole months from the month of ``earlier`` to the month of
    ``later`` (int; date or timestamp columns, the days ignored)."""
    from pyspark.sql import functions as F

    month = F.trunc(later.cast("date"), "month")
    return F.months_between(month, F.trunc(earlier.cast("date"), "month")).cast("int")


def month_of(first_month: dt.date) -> Callable[[Column], Column]:
    """Column -> Column: the first day of the month with a given plan month index."""
    from pyspark.sql import functions as F

    first = F.lit(first_month).cast("date")

    def month(index: Column) -> Column:
        return F.add_months(first, index)

    return month
