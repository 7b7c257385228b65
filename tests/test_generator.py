"""The demo data generator: seeded, deterministic, messy in the documented ways."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.config import AppConfig, load_config
from contact_spark.config.contacts import OUTCOMES
from contact_spark.contract import (
    CONTACT_HISTORY,
    CONTACTS,
    PROPENSITIES,
    customers_spec,
    validate_input,
)
from contact_spark.data.generator import generate_demo_data


def config(customers: int, partitions: int, seed: int = 42) -> AppConfig:
    return load_config(
        overrides={"demo.customers": customers, "demo.partitions": partitions, "run.seed": seed}
    )


def test_same_seed_same_rows_whatever_the_partitioning(spark: SparkSession) -> None:
    a = generate_demo_data(spark, config(200, 2))
    b = generate_demo_data(spark, config(200, 5))
    for name in ("customers", "contacts", "contact_history", "propensities"):
        assert_df_equality(getattr(a, name), getattr(b, name), ignore_row_order=True)


def test_another_seed_gives_other_data(spark: SparkSession) -> None:
    a = generate_demo_data(spark, config(200, 2, seed=1)).contacts
    b = generate_demo_data(spark, config(200, 2, seed=2)).contacts
    assert a.select("value").subtract(b.select("value")).count() > 0


def test_output_follows_the_input_contract(spark: SparkSession) -> None:
    cfg = config(100, 2)
    data = generate_demo_data(spark, cfg)
    # validate_input raises on a missing column or a wrong type and returns the frame otherwise.
    assert validate_input(data.customers, customers_spec(cfg.channel_names)) is data.customers
    assert validate_input(data.contacts, CONTACTS) is data.contacts
    assert validate_input(data.contact_history, CONTACT_HISTORY) is data.contact_history
    assert validate_input(data.propensities, PROPENSITIES) is data.propensities


def test_pinned_sizes_for_seed_42(spark: SparkSession) -> None:
    """Pinned so that an unintended change to the generator is noticed; update with care."""
    data = generate_demo_data(spark, config(1000, 2))
    assert data.customers.count() == 1000
    assert data.propensities.count() == 6000
    assert (data.contacts.count(), data.contact_history.count()) == (3518, 3570)


def test_proportions_match_the_documentation(spark: SparkSession) -> None:
    data = generate_demo_data(spark, config(20000, 4))
    stats = data.customers.agg(
        F.avg(F.col("churn_risk").cast("int")).alias("churn"),
        F.avg(F.col("outbound").cast("int")).alias("outbound"),
        F.avg(F.coalesce(F.col("privacy_consent").cast("int"), F.lit(0))).alias("consent"),
        F.avg(F.col("privacy_consent").isNull().cast("int")).alias("consent_null"),
        F.avg((F.col("segment") == "VIP").cast("int")).alias("vip"),
    ).first()
    assert abs(stats["churn"] - 0.06) < 0.01
    assert abs(stats["outbound"] - 0.02) < 0.005
    assert abs(stats["consent"] - 0.80) < 0.015
    assert abs(stats["consent_null"] - 0.05) < 0.01
    assert abs(stats["vip"] - 0.05) < 0.01
    p = data.propensities.agg(F.min("propensity"), F.max("propensity")).first()
    assert 0.0 <= p[0] and p[1] <= 0.95


def test_messy_shapes_are_present(spark: SparkSession) -> None:
    contacts = generate_demo_data(spark, config(3000, 2)).contacts
    values = contacts.select("value")
    assert values.filter(F.col("value").startswith("0039")).count() > 0
    assert values.filter(F.col("value").startswith("+39 ")).count() > 0
    assert values.filter(F.col("value").rlike(r"^\d{3}\.\d{3}\.\d{4}$")).count() > 0
    assert values.filter(F.col("value").contains("@@")).count() > 0
    assert values.filter(F.col("value").rlike("^[A-Z][A-Z0-9.]*@[A-Z]")).count() > 0
    assert values.filter(F.col("value").isNull()).count() > 0
    assert contacts.filter(F.col("contact_type") == "fax").count() > 0


def test_households_share_a_landline_and_strangers_share_an_email(spark: SparkSession) -> None:
    data = generate_demo_data(spark, config(3000, 2))
    with_household = data.contacts.join(data.customers.select("customer_id", "household_id"), "customer_id")
    shared = (
        with_household.filter(F.col("contact_type") == "phone")
        .groupBy("value")
        .agg(
            F.countDistinct("customer_id").alias("customers"),
            F.countDistinct("household_id").alias("households"),
        )
        .filter(F.col("customers") > 1)
    )
    assert shared.filter(F.col("households") == 1).count() > 0
    strangers = (
        with_household.filter(F.col("contact_type") == "email")
        .groupBy("value")
        .agg(F.countDistinct("household_id").alias("households"))
        .filter(F.col("households") > 1)
    )
    assert strangers.count() > 0


def test_history_is_before_the_plan_and_uses_known_names(spark: SparkSession) -> None:
    cfg = config(500, 2)
    history = generate_demo_data(spark, cfg).contact_history
    bounds = history.agg(F.min("contact_date"), F.max("contact_date")).first()
    assert bounds[1] < cfg.run.first_month
    assert str(bounds[0]) >= "2026-01-01"
    assert {r[0] for r in history.select("outcome").distinct().collect()} <= set(OUTCOMES)
    assert {r[0] for r in history.select("campaign").distinct().collect()} == set(cfg.campaign_names)
    assert {r[0] for r in history.select("channel").distinct().collect()} == set(cfg.channel_names)
