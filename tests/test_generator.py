"""The demo data generator: seeded, deterministic, messy in the documented ways."""

from __future__ import annotations

from pathlib import Path

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
from contact_spark.data.offers import family_profile, is_catalogue, offer_profiles


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


CATALOGUE_8 = Path(__file__).resolve().parents[1] / "conf" / "examples" / "catalogue_8.yaml"
# catalogue_8, 400 customers, seed 42: mean e-mail propensity per offer and the history.
PINNED_DEM_MEANS = {
    "POWER_FIX_12M": 0.0111,
    "GAS_DUAL_FUEL": 0.0195,
    "BOILER_CONDENSING": 0.0018,
    "BOILER_SERVICE_PLAN": 0.0012,
    "AC_DUAL_SPLIT": 0.006,
    "PV_6KW": 0.0008,
    "SRV_HOME_REPAIR": 0.012,
    "INS_HOME_EMERGENCY": 0.0042,
}
PINNED_HISTORY = (
    1777,
    {
        "POWER_FIX_12M": 379,
        "GAS_DUAL_FUEL": 483,
        "BOILER_CONDENSING": 72,
        "BOILER_SERVICE_PLAN": 50,
        "AC_DUAL_SPLIT": 171,
        "PV_6KW": 26,
        "SRV_HOME_REPAIR": 392,
        "INS_HOME_EMERGENCY": 204,
    },
)


def catalogue(customers: int, partitions: int = 2) -> AppConfig:
    return load_config(CATALOGUE_8, overrides={"demo.customers": customers, "demo.partitions": partitions})


def test_offer_profiles_of_the_seed_keep_the_documented_figures() -> None:
    """The seed's campaigns have no family: their rates are docs/demo_data.md's, not drawn."""
    profiles = {o.campaign: o for o in offer_profiles(load_config())}
    assert not is_catalogue(load_config())
    assert (profiles["CROSS_SELLING"].base, profiles["CROSS_SELLING"].history_rate) == (0.045, 0.05)
    assert (profiles["SOLUTION"].base, profiles["SOLUTION"].history_rate) == (0.012, 0.02)
    assert profiles["CROSS_SELLING"].no_gas_lift == 1.4 and profiles["SOLUTION"].offer_spread == 0.0


def test_catalogue_offer_rates_are_seeded_and_differ_by_family_and_offer() -> None:
    """Pinned for seed 42: a log-normal spread around each family's rate (pure, no Spark)."""
    cfg = catalogue(100)
    assert is_catalogue(cfg)
    rates = {o.campaign: round(o.base, 4) for o in offer_profiles(cfg)}
    assert rates == {
        "POWER_FIX_12M": 0.0148,
        "GAS_DUAL_FUEL": 0.0168,
        "BOILER_CONDENSING": 0.0023,
        "BOILER_SERVICE_PLAN": 0.0016,
        "AC_DUAL_SPLIT": 0.0068,
        "PV_6KW": 0.001,
        "SRV_HOME_REPAIR": 0.0153,
        "INS_HOME_EMERGENCY": 0.0073,
    }
    other_seed = offer_profiles(load_config(CATALOGUE_8, overrides={"run.seed": 7}))
    assert {o.campaign: round(o.base, 4) for o in other_seed} != rates
    # A family the generator does not know (a bank's) gets a rate drawn from its name.
    cards = family_profile(42, "credit_cards")
    assert cards == family_profile(42, "credit_cards") and 0.005 <= cards.rate <= 0.04


def test_catalogue_inputs_follow_the_contract_and_are_believable(spark: SparkSession) -> None:
    cfg = catalogue(400)
    data = generate_demo_data(spark, cfg)
    assert validate_input(data.customers, customers_spec(cfg.channel_names)) is data.customers
    assert validate_input(data.contacts, CONTACTS) is data.contacts
    assert validate_input(data.contact_history, CONTACT_HISTORY) is data.contact_history
    assert validate_input(data.propensities, PROPENSITIES) is data.propensities
    assert data.propensities.count() == 400 * 8 * 4

    # Per-offer mean propensity by e-mail, pinned for seed 42: commodities and services
    # high, photovoltaics and boilers low; the phone sells the high-ticket families better.
    dem = {
        r["campaign"]: round(r["p"], 4)
        for r in data.propensities.filter(F.col("channel") == "DEM")
        .groupBy("campaign")
        .agg(F.avg("propensity").alias("p"))
        .collect()
    }
    assert dem == PINNED_DEM_MEANS
    assert dem["GAS_DUAL_FUEL"] > 10 * dem["PV_6KW"]

    # Gas owners are likelier to take a boiler (the family's feature effect).
    by_gas = {
        r["has_gas"]: r["p"]
        for r in data.propensities.filter(F.col("campaign") == "BOILER_CONDENSING")
        .join(data.customers, "customer_id")
        .groupBy("has_gas")
        .agg(F.avg("propensity").alias("p"))
        .collect()
    }
    assert by_gas[True] > 1.5 * by_gas[False]

    # History: every offer and channel occurs, volume per customer varies (the catalogue's
    # intensity), and popular offers were contacted more often.
    history = data.contact_history
    assert {r[0] for r in history.select("campaign").distinct().collect()} == set(cfg.campaign_names)
    assert {r[0] for r in history.select("channel").distinct().collect()} == set(cfg.channel_names)
    per_customer = history.groupBy("customer_id").count().agg(F.min("count"), F.max("count")).first()
    assert per_customer[0] <= 2 and per_customer[1] >= 9
    counts = {r["campaign"]: r["count"] for r in history.groupBy("campaign").count().collect()}
    assert counts["GAS_DUAL_FUEL"] > 3 * counts["PV_6KW"]
    assert (history.count(), counts) == PINNED_HISTORY
