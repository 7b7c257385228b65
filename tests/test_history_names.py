"""Contact history names are matched to the config's ignoring case and spaces (the plan
with such history, and the rows no rule can count: tests/faults/test_odd_inputs.py)."""

from __future__ import annotations

import pyarrow as pa
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from contact_spark.io.history import normalise_history, normalise_history_arrow


def test_names_are_matched_ignoring_case_and_spaces(spark: SparkSession) -> None:
    history = spark.createDataFrame(
        [("A", " cross_selling", "dem "), ("B", "Up_Selling", "sms"), ("C", "LEGACY", "Fax")],
        "customer_id string, campaign string, channel string",
    )
    got = normalise_history(history, ["CROSS_SELLING", "UP_SELLING"], ["DEM", "SMS", "TLS"])
    expected = spark.createDataFrame(
        [("A", "CROSS_SELLING", "DEM"), ("B", "UP_SELLING", "SMS"), ("C", "LEGACY", "Fax")],
        "customer_id string, campaign string, channel string",
    )
    assert_df_equality(got, expected, ignore_nullable=True)
    arrow = pa.table({"campaign": [" cross_selling", "LEGACY", None], "channel": ["dem ", "Fax", "sms"]})
    assert normalise_history_arrow(arrow, ["CROSS_SELLING"], ["DEM", "SMS"]).to_pydict() == {
        "campaign": ["CROSS_SELLING", "LEGACY", None],
        "channel": ["DEM", "Fax", "SMS"],
    }
