"""Two small Spark idioms, typed: the one row of a global aggregate, and a CASE WHEN chain."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F


def one_row(aggregate: DataFrame) -> Row:
    """The row of ``df.agg(...)``: Spark returns exactly one, even for no input (counts 0,
    sums, minima and maxima NULL); none is a bug, reported as one."""
    row = aggregate.first()
    if row is None:
        raise RuntimeError("a global aggregate returned no row")
    return row


def case_when(branches: Iterable[tuple[Column, Column]]) -> Column:
    """``CASE WHEN c1 THEN v1 WHEN c2 THEN v2 … END`` (NULL when none holds), of at least one
    branch (every caller has one per configured channel, cell or month: never none)."""
    out: Column | None = None
    for condition, value in branches:
        out = F.when(condition, value) if out is None else out.when(condition, value)
    if out is None:
        raise ValueError("a CASE WHEN needs at least one branch")
    return out
