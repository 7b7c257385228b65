"""The greedy baseline: exact distributed running sums, minimums filled, the validator agrees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from spark_conf import LEAN, temporary_conf

from contact_spark.baseline.capacity import running_sum
from contact_spark.baseline.greedy import greedy_plan
from contact_spark.config import load_config
from contact_spark.validation import ValidationInputs, validate_plan

KINDS = {
    "DEM": ("email", "a@example.org"),
    "SMS": ("mobile", "+393470000001"),
    "TLS": ("phone", "+393470000001"),
}


@pytest.fixture(scope="module")
def lean(spark: SparkSession) -> Iterator[SparkSession]:
    """Tiny inputs: one shuffle partition, no adaptive re-planning or broadcast jobs."""
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def test_running_sum_equals_one_ordered_window(lean: SparkSession) -> None:
    spark = lean
    # Ties on the key across customers and buckets on both sides of the grid.
    rows = [
        (f"C{i % 7}", i % 3, i % 6, dt.date(2027, 1 + i % 2, 1), round((i * 37 % 100) / 100, 2), float(i % 5))
        for i in range(80)
    ]
    df = spark.createDataFrame(
        rows, "customer_id string, m int, k int, month date, _key double, v double"
    ).dropDuplicates(["customer_id", "m", "k", "month"])
    found = running_sum(df, ["month"], F.col("v")).select("customer_id", "m", "k", "month", "_run")
    order = Window.partitionBy("month").orderBy("_key", F.xxhash64("customer_id"), "customer_id", "m", "k")
    expected = df.select(
        "customer_id",
        "m",
        "k",
        "month",
        F.sum(F.col("v").cast("decimal(38,12)"))
        .over(order.rowsBetween(Window.unboundedPreceding, 0))
        .alias("_run"),
    )
    assert_df_equality(found, expected, ignore_row_order=True, ignore_nullable=True)


def test_greedy_cuts_maxima_fills_minimums_and_passes_the_validator(lean: SparkSession) -> None:
    spark = lean
    config = load_config(
        overrides={
            "policy.rules": [
                {
                    "name": "one_per_channel",
                    "type": "max_offers",
                    "per_channel": True,
                    "window_months": 1,
                    "limit": 1,
                },
                {
                    "name": "sms_yearly",
                    "type": "min_offers",
                    "channels": ["SMS"],
                    "window_months": 12,
                    "limit": 1,
                },
            ],
            "capacities.rules": [
                {
                    "name": "dem_year",
                    "channels": ["DEM"],
                    "campaigns": ["CROSS_SELLING"],
                    "period": "year",
                    "max": 30,
                },
                {"name": "tls_floor", "channels": ["TLS"], "period": "year", "min": 3},
            ],
            "capacities.spread": [],
            "eligibility.rules": [],
        }
    )
    customers = ["C1", "C2", "C3"]
    # Only CROSS_SELLING/DEM is worth a contact; SMS and TLS are planned only to meet the minimums.
    propensity = {"DEM": {"C1": 0.5, "C2": 0.4, "C3": 0.3}, "SMS": 0.0001, "TLS": 0.001}
    elig, best = [], []
    for cid in customers:
        for channel, (kind, value) in KINDS.items():
            p = propensity[channel][cid] if channel == "DEM" else propensity[channel]
            elig.append(
                (
                    cid,
                    "CROSS_SELLING",
                    channel,
                    True,
                    [],
                    p,
                    p * 120 - {"DEM": 0.02, "SMS": 0.06, "TLS": 4.0}[channel],
                    f"K{cid}{channel}",
                )
            )
            elig.append(
                (cid, "SOLUTION", channel, False, ["EXCLUDED_BY_RULE:test"], p, None, f"K{cid}{channel}")
            )
            best.append((cid, channel, f"K{cid}{channel}", value, kind, 900))
    # Eligibility names the contact by its key (the raw value is in the best contacts only).
    eligibility = spark.createDataFrame(
        elig,
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double, contact_id string",
    )
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    people = spark.createDataFrame(
        [(cid, f"H{cid}", "MASS", False, False, True, False, False, False) for cid in customers],
        "customer_id string, household_id string, segment string, churn_risk boolean, outbound boolean, "
        "privacy_consent boolean, optout_dem boolean, optout_sms boolean, optout_tls boolean",
    )
    plan = greedy_plan(spark, config, eligibility, history, people, "g").cache()
    counts = {
        r["channel"]: r["n"] for r in plan.groupBy("channel").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    # 36 DEM wanted, cut to the 30 of the yearly max (C3's, the lowest propensity, go first);
    # exactly 3 calls for the yearly min of 3; one SMS each for the min_offers rule.
    assert counts == {"DEM": 30, "TLS": 3, "SMS": 3}
    dem = {
        r["customer_id"]: r["n"]
        for r in plan.filter("channel = 'DEM'")
        .groupBy("customer_id")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    assert dem == {"C1": 12, "C2": 12, "C3": 6}
    # The baseline refers to the contact by its key, never by the raw value.
    assert "contact" not in plan.columns
    assert {(r["customer_id"], r["channel"], r["contact_id"]) for r in plan.collect()} <= {
        (cid, channel, f"K{cid}{channel}") for cid in customers for channel in KINDS
    }
    best_contacts = spark.createDataFrame(
        best,
        "customer_id string, channel string, contact_id string, value string, contact_kind string, score int",
    )
    inputs = ValidationInputs(plan, people, eligibility, best_contacts, history)
    assert validate_plan(spark, config, inputs, "g").collect() == []
    plan.unpersist()


def test_greedy_keeps_one_campaign_per_window_history_included(lean: SparkSession) -> None:
    """max_campaigns (2-month window, limit 1) in the greedy, checked by the validator.

    SOLUTION is the better campaign (higher propensity), but a CROSS_SELLING e-mail of
    2026-12 is in the window ending 2027-01, so SOLUTION is blocked in January; CROSS_SELLING
    is then planned in January, which blocks SOLUTION in February, and so on: the same
    campaign every month counts once per window, so all 12 months get CROSS_SELLING.
    Without the history the greedy plans SOLUTION every month.
    """
    spark = lean
    config = load_config(
        overrides={
            "policy.rules": [
                {"name": "one_campaign_2m", "type": "max_campaigns", "window_months": 2, "limit": 1}
            ],
            "capacities.rules": [],
            "capacities.spread": [],
            "eligibility.rules": [],
        }
    )
    kind, value = KINDS["DEM"]
    elig = [
        ("C1", campaign, channel, channel == "DEM", [] if channel == "DEM" else ["X"], p, p * 100, "KC1DEM")
        for campaign, p in (("CROSS_SELLING", 0.3), ("SOLUTION", 0.5))
        for channel in KINDS
    ]
    eligibility = spark.createDataFrame(
        elig,
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double, contact_id string",
    )
    people = spark.createDataFrame(
        [("C1", "HC1", "MASS", False, False, True, False, False, False)],
        "customer_id string, household_id string, segment string, churn_risk boolean, outbound boolean, "
        "privacy_consent boolean, optout_dem boolean, optout_sms boolean, optout_tls boolean",
    )
    best = spark.createDataFrame(
        [("C1", "DEM", "KC1DEM", value, kind, 900)],
        "customer_id string, channel string, contact_id string, value string, contact_kind string, score int",
    )
    schema = "customer_id string, contact_date date, campaign string, channel string"
    for history, campaign in (
        (
            spark.createDataFrame([("C1", dt.date(2026, 12, 3), "CROSS_SELLING", "DEM")], schema),
            "CROSS_SELLING",
        ),
        (spark.createDataFrame([], schema), "SOLUTION"),
    ):
        plan = greedy_plan(spark, config, eligibility, history, people, "g").cache()
        rows = sorted((r["month"], r["campaign"], r["channel"]) for r in plan.collect())
        assert rows == [(dt.date(2027, t + 1, 1), campaign, "DEM") for t in range(12)]
        inputs = ValidationInputs(plan, people, eligibility, best, history)
        assert validate_plan(spark, config, inputs, "g").collect() == []
        plan.unpersist()
