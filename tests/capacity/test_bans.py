"""The repair's choice of contacts to ban: the lowest-value contributors covering an excess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.capacity.repair import _lowest_covering_each


def _reference(pdf: pd.DataFrame, hashes: pd.Series, excess: float) -> set[tuple[str, int]]:
    """Sort everything by (value, hash); keep rows while the coefficients before them < excess."""
    ordered = pdf.assign(h=hashes).sort_values(["value", "h"], kind="mergesort")
    before = ordered["coef"].cumsum() - ordered["coef"]
    kept = ordered[before < excess]
    return set(zip(kept["customer_id"], kept["flat"], strict=True))


def _contributors(seed: int, n: int, customers: int, groups: int) -> pd.DataFrame:
    """Random contributors with many value ties on purpose (values on a coarse grid)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in rng.integers(0, customers, n)],
            "flat": rng.integers(0, 72, n).astype("int32"),
            "value": np.round(rng.uniform(0, 5, n), 1),
            "coef": rng.choice([1.0, 0.06, 4.0], n),
            "group": rng.integers(0, groups, n).astype("int32"),
        }
    ).drop_duplicates(["customer_id", "flat", "group"])


@pytest.mark.parametrize("excess", [0.5, 7.0, 120.0, 1e9])
def test_bucketed_choice_equals_a_global_sort(spark: SparkSession, excess: float) -> None:
    pdf = _contributors(7, 400, 150, 1)  # one group: one violated constraint
    df = spark.createDataFrame(pdf)
    hashes = df.select(F.xxhash64("customer_id", "flat").alias("h")).toPandas()["h"]
    got = {(r["customer_id"], r["flat"]) for r in _lowest_covering_each(df, [excess]).collect()}
    assert got == _reference(pdf.reset_index(drop=True), hashes, excess)


def test_each_violated_constraint_gets_its_own_lowest_covering_contributors(spark: SparkSession) -> None:
    """Several constraints at once (one Spark pass): each group is chosen as if alone."""
    pdf = _contributors(11, 300, 100, 3)
    excesses = [3.0, 1e9, 40.0]  # group 1 cannot be covered: all its contributors
    df = spark.createDataFrame(pdf)
    hashes = df.select(F.xxhash64("customer_id", "flat").alias("h")).toPandas()["h"]
    got = {(r["group"], r["customer_id"], r["flat"]) for r in _lowest_covering_each(df, excesses).collect()}
    expected = set()
    for g, excess in enumerate(excesses):
        mine = pdf["group"].to_numpy() == g
        part = pdf[mine].reset_index(drop=True)
        expected |= {(g, c, f) for c, f in _reference(part, hashes[mine].reset_index(drop=True), excess)}
    assert got == expected
