"""Planning in Spark: customer frame, batch solving, plan rows and quarantine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config import AppConfig, config_from_dict
from contact_spark.planning.frame import batch_of, customer_frame, layout_for
from contact_spark.planning.solve import (
    StaticInputs,
    contact_values,
    plan_rows,
    quarantine_rows,
    solve_customers,
    tie_breaker,
)

# Cells as the tests write them, with the raw contact; plan_for stores them as the pipeline
# does: eligibility names the contact by its key, the best contacts hold the raw value.
ELIGIBILITY_SCHEMA = (
    "customer_id string, campaign string, channel string, eligible boolean, "
    "contact string, propensity double, expected_value double"
)
HISTORY_SCHEMA = (
    "customer_id string, contact_date date, campaign string, channel string, contact string, outcome string"
)


def tiny_config(rules: list[dict[str, Any]], horizon: int = 3) -> AppConfig:
    """One campaign worth 100; e-mail costs 1, SMS 2; a 3-month plan from January 2027."""
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": horizon},
            "campaigns": {"OFFER": {"success_value": 100.0}},
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "SMS": {"cost": 2.0, "contact_kind": "mobile"},
            },
            "policy": {"rules": rules},
        }
    )


ONE_PER_MONTH = {"name": "one_per_month", "type": "max_packages", "window_months": 1, "limit": 1}
DEM_EVERY_OTHER_MONTH = {
    "name": "dem_gap",
    "type": "max_offers",
    "channels": ["DEM"],
    "window_months": 2,
    "limit": 1,
}


def eligibility(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, ELIGIBILITY_SCHEMA)


def plan_for(
    spark: SparkSession, config: AppConfig, elig: DataFrame, history: DataFrame | None = None
) -> tuple[DataFrame, DataFrame]:
    layout, policy = layout_for(config)
    history = history if history is not None else spark.createDataFrame([], HISTORY_SCHEMA)
    key = F.when(F.col("contact").isNotNull(), F.concat_ws("-", "customer_id", "channel"))
    keyed = elig.withColumn("contact_id", key)
    contacts = keyed.filter(F.col("contact_id").isNotNull()).select(
        "customer_id", "channel", "contact_id", "contact"
    )
    keyed = keyed.drop("contact")
    frame = customer_frame(keyed, history, layout, config.run.first_month, 2)
    solved = solve_customers(frame, policy, layout, StaticInputs.from_config(config))
    return plan_rows(solved, keyed, layout, config.run.months(), "r1", contacts), solved


def test_a_customer_gets_the_valuable_channel_every_allowed_month(spark: SparkSession) -> None:
    """DEM is worth 0.3*100-1 = 29, SMS 0.1*100-2 = 8: one contact a month, DEM every other month."""
    config = tiny_config([ONE_PER_MONTH, DEM_EVERY_OTHER_MONTH])
    elig = eligibility(
        spark,
        [
            ("A", "OFFER", "DEM", True, "a@example.com", 0.3, 29.0),
            ("A", "OFFER", "SMS", True, "+393471234567", 0.1, 8.0),
        ],
    )
    plan, _ = plan_for(spark, config, elig)
    expected = spark.createDataFrame(
        [
            ("r1", "A", dt.date(2027, 1, 1), "OFFER", "DEM", "a@example.com", 29.0),
            ("r1", "A", dt.date(2027, 2, 1), "OFFER", "SMS", "+393471234567", 8.0),
            ("r1", "A", dt.date(2027, 3, 1), "OFFER", "DEM", "a@example.com", 29.0),
        ],
        "run_id string, customer_id string, month date, campaign string, channel string, contact string, expected_value double",
    )
    assert_approx_df_equality(plan, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_history_just_before_the_plan_counts_in_the_window(spark: SparkSession) -> None:
    """A DEM in December 2026 forbids a DEM in January 2027 (window of 2 months)."""
    config = tiny_config([ONE_PER_MONTH, DEM_EVERY_OTHER_MONTH])
    elig = eligibility(
        spark,
        [
            ("A", "OFFER", "DEM", True, "a@example.com", 0.3, 29.0),
            ("A", "OFFER", "SMS", True, "+393471234567", 0.1, 8.0),
        ],
    )
    history = spark.createDataFrame(
        [("A", dt.date(2026, 12, 15), "OFFER", "DEM", "a@example.com", "no_response")], HISTORY_SCHEMA
    )
    plan, _ = plan_for(spark, config, elig, history)
    got = sorted((r["month"].month, r["channel"]) for r in plan.collect())
    assert got == [(1, "SMS"), (2, "DEM"), (3, "SMS")]


def test_dem_and_sms_of_one_campaign_in_one_month_share_the_success(spark: SparkSession) -> None:
    """Joint success 1-(1-0.3)(1-0.1) = 0.37, worth 37 - 1 - 2 = 34, split 3:1 by propensity."""
    config = tiny_config([], horizon=1)
    elig = eligibility(
        spark,
        [
            ("A", "OFFER", "DEM", True, "a@example.com", 0.3, 29.0),
            ("A", "OFFER", "SMS", True, "+393471234567", 0.1, 8.0),
        ],
    )
    plan, solved = plan_for(spark, config, elig)
    values = {r["channel"]: r["expected_value"] for r in plan.collect()}
    assert values == pytest.approx({"DEM": 37.0 * 0.75 - 1.0, "SMS": 37.0 * 0.25 - 2.0})
    assert solved.first()["objective"] == pytest.approx(34.0)


def test_ineligible_cells_are_never_planned_and_customers_without_any_are_left_out(
    spark: SparkSession,
) -> None:
    config = tiny_config([ONE_PER_MONTH])
    elig = eligibility(
        spark,
        [
            ("A", "OFFER", "DEM", False, "a@example.com", 0.9, 89.0),
            ("A", "OFFER", "SMS", True, "+393471234567", 0.1, 8.0),
            ("B", "OFFER", "DEM", False, None, 0.5, 49.0),
            ("B", "OFFER", "SMS", False, None, 0.5, 48.0),
        ],
    )
    plan, solved = plan_for(spark, config, elig)
    assert {(r["customer_id"], r["channel"]) for r in plan.collect()} == {("A", "SMS")}
    assert [r["customer_id"] for r in solved.collect()] == ["A"]


def test_a_bad_propensity_removes_its_cell_not_the_customer(spark: SparkSession) -> None:
    """DEM's propensity is NaN (eligibility made that cell INVALID_PROPENSITY, not eligible);
    before, the NaN reached the kernel and the whole customer was quarantined."""
    config = tiny_config([ONE_PER_MONTH])
    elig = eligibility(
        spark,
        [
            ("A", "OFFER", "DEM", False, "a@example.com", float("nan"), None),
            ("A", "OFFER", "SMS", True, "+393471234567", 0.1, 8.0),
            ("B", "OFFER", "DEM", False, "b@example.com", 1.5, None),
            ("B", "OFFER", "SMS", True, "+393471234568", 0.1, 8.0),
        ],
    )
    plan, solved = plan_for(spark, config, elig)
    assert quarantine_rows(solved, "r1").count() == 0
    assert sorted((r["customer_id"], r["month"].month, r["channel"]) for r in plan.collect()) == [
        (c, m, "SMS") for c in "AB" for m in (1, 2, 3)
    ]


def test_a_customer_the_policy_cannot_serve_is_quarantined_with_a_reason(spark: SparkSession) -> None:
    """A minimum of one SMS a month cannot be met by a customer who may only get e-mail."""
    config = tiny_config(
        [{"name": "monthly_sms", "type": "min_offers", "channels": ["SMS"], "window_months": 1, "limit": 1}]
    )
    elig = eligibility(
        spark,
        [
            ("A", "OFFER", "DEM", True, "a@example.com", 0.3, 29.0),
            ("A", "OFFER", "SMS", False, None, 0.1, 8.0),
            ("B", "OFFER", "DEM", True, "b@example.com", 0.3, 29.0),
            ("B", "OFFER", "SMS", True, "+393471234568", 0.1, 8.0),
        ],
    )
    plan, solved = plan_for(spark, config, elig)
    quarantine = quarantine_rows(solved, "r1")
    expected = spark.createDataFrame(
        [("r1", "A", "INFEASIBLE_POLICY")], "run_id string, customer_id string, reason_code string"
    )
    assert_df_equality(quarantine, expected, ignore_nullable=True)
    assert plan.filter(F.col("customer_id") == "A").count() == 0
    assert plan.filter((F.col("customer_id") == "B") & (F.col("channel") == "SMS")).count() == 3


def test_contact_values_add_up_to_the_plan_value() -> None:
    static = StaticInputs(np.array([100.0]), np.array([1.0, 2.0]), np.array([1.0, 0.5]))
    x = np.array([[[[True, True]], [[True, False]]]])  # month 0 both, month 1 DEM
    p = np.array([[[0.3, 0.1]]])
    values = contact_values(x, p, static)
    assert values.sum() == pytest.approx(34.0 + 0.5 * 29.0)


def test_tie_breaker_is_deterministic_and_in_unit_interval() -> None:
    import pandas as pd

    a = tie_breaker(pd.Series(["C1", "C2"]), 5)
    b = tie_breaker(pd.Series(["C1", "C2"]), 5)
    assert a.shape == (2, 5)
    assert np.array_equal(a, b)
    assert (a >= 0).all() and (a < 1).all()
    assert not np.array_equal(a[0], a[1])


def test_each_batch_is_one_spark_partition_of_about_equal_size(spark: SparkSession) -> None:
    """The planning stage repartitions by customer: the ``batch`` column must name the partition
    each customer lands in, and 4 batches must fill 4 partitions. Pinned because hashing the
    batch number again once left two of four partitions empty (one task did 70 % of every
    price iteration)."""
    customers = spark.range(2000).select(F.format_string("C%05d", "id").alias("customer_id"))
    placed = (
        customers.select("customer_id", batch_of(F.col("customer_id"), 4).alias("batch"))
        .repartition(4, "customer_id")
        .select("batch", F.spark_partition_id().alias("partition"))
    )
    assert placed.filter(F.col("batch") != F.col("partition")).count() == 0
    sizes = sorted(r["n"] for r in placed.groupBy("batch").agg(F.count("*").alias("n")).collect())
    assert len(sizes) == 4
    assert min(sizes) >= 450 and max(sizes) <= 550


def test_pair_rules_and_per_channel_copies_shape_the_plan(spark: SparkSession) -> None:
    """The pair rules and ``per_channel`` through the planning stage: three customers, each
    eligible for one campaign worth 100 only (DEM p 0.3 worth 29, SMS p 0.4 worth 38), one
    channel a month, three months.

    * X, ``never_followed_by`` (no X e-mail the month after an X SMS) and one X SMS in three
      months: the SMS goes last, after two e-mails: 29 + 29 + 38 = 96 (an SMS first or
      second would leave a month empty: 67).
    * Y, ``only_after`` (a Y SMS needs an earlier Y e-mail): e-mail first, then SMS twice:
      29 + 38 + 38 = 105 (three SMS, 114, are refused).
    * Z, one Z contact in three months ``per_channel``: one e-mail and one SMS, in two of
      the months (which two is a tie): 67 (without ``per_channel``, one contact: 38).
    """

    def scoped(campaign: str, channel: str) -> dict[str, list[str]]:
        return {"campaigns": [campaign], "channels": [channel]}

    config = config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 3},
            "campaigns": {name: {"success_value": 100.0} for name in ("X", "Y", "Z")},
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "SMS": {"cost": 2.0, "contact_kind": "mobile"},
            },
            "policy": {
                "rules": [
                    ONE_PER_MONTH,
                    {
                        "name": "no_dem_after_sms",
                        "type": "never_followed_by",
                        "a": scoped("X", "SMS"),
                        "b": scoped("X", "DEM"),
                        "window_months": 1,
                    },
                    {
                        "name": "one_x_sms",
                        "type": "max_offers",
                        **scoped("X", "SMS"),
                        "window_months": 3,
                        "limit": 1,
                    },
                    {
                        "name": "sms_after_dem",
                        "type": "only_after",
                        "a": scoped("Y", "DEM"),
                        "b": scoped("Y", "SMS"),
                    },
                    {
                        "name": "one_z_per_channel",
                        "type": "max_offers",
                        "campaigns": ["Z"],
                        "per_channel": True,
                        "window_months": 3,
                        "limit": 1,
                    },
                ]
            },
        }
    )
    rows = []
    for customer, own in (("A", "X"), ("B", "Y"), ("C", "Z")):
        for campaign in ("X", "Y", "Z"):
            mine = campaign == own
            rows += [
                (customer, campaign, "DEM", mine, f"{customer}@example.com", 0.3, 29.0),
                (customer, campaign, "SMS", mine, f"+3934700000{ord(customer)}", 0.4, 38.0),
            ]
    plan, solved = plan_for(spark, config, eligibility(spark, rows))
    got = sorted((r["customer_id"], r["month"].month, r["campaign"], r["channel"]) for r in plan.collect())
    assert [g for g in got if g[0] != "C"] == [
        ("A", 1, "X", "DEM"),
        ("A", 2, "X", "DEM"),
        ("A", 3, "X", "SMS"),
        ("B", 1, "Y", "DEM"),
        ("B", 2, "Y", "SMS"),
        ("B", 3, "Y", "SMS"),
    ]
    c = [g for g in got if g[0] == "C"]
    assert sorted(g[3] for g in c) == ["DEM", "SMS"] and len({g[1] for g in c}) == 2
    objective = {r["customer_id"]: r["objective"] for r in solved.collect()}
    assert objective == pytest.approx({"A": 96.0, "B": 105.0, "C": 67.0})
