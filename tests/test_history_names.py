"""Contact history whose names differ from the config's in case or spaces counts for every
rule; history no rule can count is reported in inputs_rejected with a reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.config import load_config
from contact_spark.inputs import write_demo_data
from contact_spark.io.fingerprint import table_fingerprint
from contact_spark.io.history import normalise_history, normalise_history_arrow
from contact_spark.io.tables import TableStore
from contact_spark.stages import run_stage

PLAN_COLUMNS = ["customer_id", "month", "campaign", "channel", "contact", "expected_value"]


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


def test_lower_case_history_gives_the_same_plan_and_odd_rows_are_reported(
    spark: SparkSession, lakehouse: Path
) -> None:
    """Before, lower-case history was ignored by the fatigue rules: the plan contacted
    customers again within their windows (a policy breach the validator did not see). The
    two odd rows (an unknown campaign dated after the plan starts) change nothing either:
    contact scores are as of the plan's first month."""
    config = load_config(
        overrides={
            "storage.base_path": str(lakehouse),
            "storage.backend": "deltalake",
            "demo.customers": 40,
            "demo.partitions": 1,
        }
    )
    store = TableStore(spark, config.storage)
    write_demo_data(spark, store, config)
    for stage in ("contacts", "eligibility", "plan"):
        run_stage(stage, spark, store, config, "exact")
    history = store.read("contact_history")
    odd = history.limit(2).select(
        "customer_id",
        F.when(F.lit(True), F.lit(dt.date(2030, 1, 1)))
        .cast(history.schema["contact_date"].dataType)
        .alias("contact_date"),
        F.lit("LEGACY_MAILING").alias("campaign"),
        "channel",
        "contact",
        "outcome",
    )
    exported = history.select(
        "customer_id",
        "contact_date",
        F.concat(F.lit(" "), F.lower("campaign")).alias("campaign"),
        F.concat(F.lower("channel"), F.lit(" ")).alias("channel"),
        "contact",
        "outcome",
    ).unionByName(odd)
    store.overwrite(exported.localCheckpoint(), "contact_history")
    for stage in ("contacts", "eligibility", "plan", "validate"):
        run_stage(stage, spark, store, config, "lower")
    plans = [store.read_run("plan", run).select(*PLAN_COLUMNS) for run in ("exact", "lower")]
    assert plans[0].count() > 0
    assert table_fingerprint(plans[1]) == table_fingerprint(plans[0])
    assert store.read_run("violations", "lower").count() == 0
    rejected = store.read_run("inputs_rejected", "lower").filter(F.col("table_name") == "contact_history")
    assert sorted(r["reason_code"] for r in rejected.collect()) == ["UNKNOWN_HISTORY_CAMPAIGN"] * 2
