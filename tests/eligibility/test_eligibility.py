"""Eligibility: every reason against every candidate, fail-closed, rules checked up front."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config import AppConfig, config_from_dict, load_config
from contact_spark.eligibility.engine import EligibilityRuleError, check_rules, compute_eligibility
from contact_spark.errors import ConfigError

CUSTOMER_SCHEMA = (
    "customer_id string, household_id string, segment string, churn_risk boolean, outbound boolean, "
    "privacy_consent boolean, optout_dem boolean, optout_tls boolean"
)
CONTACT_SCHEMA = "customer_id string, channel string, contact_id string, contact string, score int"
PROPENSITY_SCHEMA = "customer_id string, campaign string, channel string, propensity double"


def small_config(rules: list[dict[str, Any]] | None = None) -> AppConfig:
    """One campaign worth 100, e-mail at cost 1 and teleselling at cost 5."""
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01"},
            "campaigns": {"CROSS_SELLING": {"success_value": 100.0}},
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "TLS": {"cost": 5.0, "contact_kind": "phone"},
            },
            "eligibility": {"rules": rules or []},
            "policy": {"rules": []},
        }
    )


def customer(cid: str, **flags: Any) -> tuple[Any, ...]:
    values = {
        "segment": "MASS",
        "churn_risk": False,
        "outbound": False,
        "privacy_consent": True,
        "optout_dem": False,
        "optout_tls": False,
    } | flags
    return (
        cid,
        f"H{cid}",
        values["segment"],
        values["churn_risk"],
        values["outbound"],
        values["privacy_consent"],
        values["optout_dem"],
        values["optout_tls"],
    )


def reachable(spark: SparkSession, ids: list[str]) -> DataFrame:
    rows = [(c, ch, f"{c}-{ch}", f"masked-{c}", 700) for c in ids for ch in ("DEM", "TLS")]
    return spark.createDataFrame(rows, CONTACT_SCHEMA)


def propensities(spark: SparkSession, ids: list[str], p: float = 0.2) -> DataFrame:
    rows = [(c, "CROSS_SELLING", ch, p) for c in ids for ch in ("DEM", "TLS")]
    return spark.createDataFrame(rows, PROPENSITY_SCHEMA)


def decide(
    spark: SparkSession,
    customers: list[tuple[Any, ...]],
    contacts: DataFrame,
    props: DataFrame,
    config: AppConfig | None = None,
) -> DataFrame:
    result = compute_eligibility(
        spark,
        config or small_config(),
        spark.createDataFrame(customers, CUSTOMER_SCHEMA),
        contacts,
        props,
        "r1",
    )
    return result.eligibility


def summary(spark: SparkSession, rows: list[tuple[str, str, bool, list[str]]]) -> DataFrame:
    return spark.createDataFrame(
        rows, "customer_id string, channel string, eligible boolean, reasons array<string>"
    )


def test_a_clean_customer_is_eligible_on_every_channel_with_its_contact(spark: SparkSession) -> None:
    got = decide(spark, [customer("A")], reachable(spark, ["A"]), propensities(spark, ["A"]))
    expected = spark.createDataFrame(
        [
            ("r1", "A", "CROSS_SELLING", "DEM", True, [], "A-DEM", 0.2, 0.2 * 100 - 1),
            ("r1", "A", "CROSS_SELLING", "TLS", True, [], "A-TLS", 0.2, 0.2 * 100 - 5),
        ],
        "run_id string, customer_id string, campaign string, channel string, eligible boolean, "
        "reasons array<string>, contact_id string, propensity double, expected_value double",
    )
    columns = expected.columns
    assert_df_equality(got.select(*columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_every_reason_is_listed_not_only_the_first(spark: SparkSession) -> None:
    customers = [
        customer("B", churn_risk=None, outbound=True, privacy_consent=False, optout_dem=True, optout_tls=None)
    ]
    got = decide(spark, customers, reachable(spark, []), propensities(spark, []))
    expected = summary(
        spark,
        [
            (
                "B",
                "DEM",
                False,
                [
                    "CHURN_RISK_UNKNOWN",
                    "OUTBOUND",
                    "NO_PRIVACY_CONSENT",
                    "CHANNEL_OPT_OUT",
                    "NO_VALID_EMAIL",
                    "NO_PROPENSITY",
                ],
            ),
            (
                "B",
                "TLS",
                False,
                [
                    "CHURN_RISK_UNKNOWN",
                    "OUTBOUND",
                    "NO_PRIVACY_CONSENT",
                    "CHANNEL_OPT_OUT_UNKNOWN",
                    "NO_VALID_PHONE",
                    "NO_PROPENSITY",
                ],
            ),
        ],
    )
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_missing_consent_is_no_consent(spark: SparkSession) -> None:
    got = decide(
        spark, [customer("C", privacy_consent=None)], reachable(spark, ["C"]), propensities(spark, ["C"])
    )
    expected = summary(
        spark,
        [("C", "DEM", False, ["PRIVACY_CONSENT_UNKNOWN"]), ("C", "TLS", False, ["PRIVACY_CONSENT_UNKNOWN"])],
    )
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def expected_reasons(flags: dict[str, Any], channel: str, has_contact: bool) -> list[str]:
    """An independent statement of the reason rules, to check the engine against."""
    out = []
    if flags["churn_risk"] is not False:
        out.append("CHURN_RISK" if flags["churn_risk"] else "CHURN_RISK_UNKNOWN")
    if flags["outbound"] is not False:
        out.append("OUTBOUND" if flags["outbound"] else "OUTBOUND_UNKNOWN")
    if flags["privacy_consent"] is not True:
        out.append("NO_PRIVACY_CONSENT" if flags["privacy_consent"] is False else "PRIVACY_CONSENT_UNKNOWN")
    optout = flags[f"optout_{channel.lower()}"]
    if optout is not False:
        out.append("CHANNEL_OPT_OUT" if optout else "CHANNEL_OPT_OUT_UNKNOWN")
    if not has_contact:
        out.append("NO_VALID_EMAIL" if channel == "DEM" else "NO_VALID_PHONE")
    return out


def test_all_combinations_of_flags_give_exactly_the_expected_reasons(spark: SparkSession) -> None:
    """3^5 flag combinations × with/without a contact, under a permissive include rule."""
    names = ["churn_risk", "outbound", "privacy_consent", "optout_dem", "optout_tls"]
    customers, rows, reachable_ids = [], [], []
    for i, combo in enumerate(itertools.product([True, False, None], repeat=5)):
        for has_contact in (True, False):
            cid = f"K{i:03d}{int(has_contact)}"
            flags = dict(zip(names, combo, strict=True))
            customers.append(customer(cid, **flags))
            if has_contact:
                reachable_ids.append(cid)
            for channel in ("DEM", "TLS"):
                reasons = expected_reasons(flags, channel, has_contact)
                rows.append((cid, channel, not reasons, reasons))
    ids = [c[0] for c in customers]
    # An include rule that lets everyone through must not open the gate for anyone.
    config = small_config([{"name": "everyone", "action": "include", "where": "true"}])
    got = decide(spark, customers, reachable(spark, reachable_ids), propensities(spark, ids), config)
    assert_df_equality(
        got.select("customer_id", "channel", "eligible", "reasons"),
        summary(spark, rows),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    no_consent_eligible = got.filter(F.col("eligible")).join(
        spark.createDataFrame(customers, CUSTOMER_SCHEMA).filter(
            ~F.coalesce("privacy_consent", F.lit(False))
        ),
        "customer_id",
    )
    assert no_consent_eligible.count() == 0


def test_rules_exclude_by_segment_and_by_predicate_scoped_to_channels(spark: SparkSession) -> None:
    config = small_config(
        [
            {"name": "no_tls_to_vip", "segments": ["VIP"], "channels": ["TLS"]},
            {"name": "low_propensity", "where": "propensity < 0.01"},
            {"name": "only_north", "action": "include", "where": "segment <> 'SKIP'", "channels": ["DEM"]},
        ]
    )
    customers = [
        customer("V", segment="VIP"),
        customer("L"),
        customer("S", segment="SKIP"),
        customer("N", segment=None),
    ]
    props = propensities(spark, ["V", "S", "N"]).unionByName(propensities(spark, ["L"], p=0.005))
    got = decide(spark, customers, reachable(spark, ["V", "L", "S", "N"]), props, config)
    expected = summary(
        spark,
        [
            ("V", "DEM", True, []),
            ("V", "TLS", False, ["EXCLUDED_BY_RULE:no_tls_to_vip"]),
            ("L", "DEM", False, ["EXCLUDED_BY_RULE:low_propensity"]),
            ("L", "TLS", False, ["EXCLUDED_BY_RULE:low_propensity"]),
            ("S", "DEM", False, ["NOT_INCLUDED_BY_RULE:only_north"]),
            ("S", "TLS", True, []),
            # A NULL segment makes the include predicate NULL: fail-closed, not included.
            ("N", "DEM", False, ["NOT_INCLUDED_BY_RULE:only_north"]),
            ("N", "TLS", True, []),
        ],
    )
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_bad_propensities_are_reasons_not_crashes(spark: SparkSession) -> None:
    props = spark.createDataFrame(
        [
            ("P", "CROSS_SELLING", "DEM", float("nan")),
            ("P", "CROSS_SELLING", "TLS", 1.5),
            ("Q", "CROSS_SELLING", "DEM", 0.1),
            ("Q", "CROSS_SELLING", "DEM", 0.3),
            ("Q", "CROSS_SELLING", "TLS", 0.2),
            ("Q", "CROSS_SELLING", "TLS", 0.2),
        ],
        PROPENSITY_SCHEMA,
    )
    got = decide(spark, [customer("P"), customer("Q")], reachable(spark, ["P", "Q"]), props)
    expected = summary(
        spark,
        [
            ("P", "DEM", False, ["INVALID_PROPENSITY"]),
            ("P", "TLS", False, ["INVALID_PROPENSITY"]),
            ("Q", "DEM", False, ["PROPENSITY_CONFLICT"]),
            ("Q", "TLS", True, []),
        ],
    )
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_a_null_propensity_is_invalid_even_without_any_rule(spark: SparkSession) -> None:
    """Before, a null propensity was flagged by nothing: without the default
    negligible_propensity rule ``eligible`` was NULL with no reason, and the funnel crashed."""
    props = spark.createDataFrame(
        [("P", "CROSS_SELLING", "DEM", None), ("P", "CROSS_SELLING", "TLS", 0.2)], PROPENSITY_SCHEMA
    )
    got = decide(spark, [customer("P")], reachable(spark, ["P"]), props, small_config([]))
    expected = summary(spark, [("P", "DEM", False, ["INVALID_PROPENSITY"]), ("P", "TLS", True, [])])
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_funnel_counts_every_reason_and_the_first_one(spark: SparkSession) -> None:
    customers = [
        customer("A"),
        customer("B", privacy_consent=False, churn_risk=True),
        customer("C", optout_dem=True),
    ]
    result = compute_eligibility(
        spark,
        small_config(),
        spark.createDataFrame(customers, CUSTOMER_SCHEMA),
        reachable(spark, ["A", "B", "C"]),
        propensities(spark, ["A", "B", "C"]),
        "r1",
    )
    expected = spark.createDataFrame(
        [
            ("r1", "CROSS_SELLING", "DEM", "ELIGIBLE", 1, 1),
            ("r1", "CROSS_SELLING", "DEM", "CHURN_RISK", 1, 1),
            ("r1", "CROSS_SELLING", "DEM", "NO_PRIVACY_CONSENT", 1, 0),
            ("r1", "CROSS_SELLING", "DEM", "CHANNEL_OPT_OUT", 1, 1),
            ("r1", "CROSS_SELLING", "TLS", "ELIGIBLE", 2, 2),
            ("r1", "CROSS_SELLING", "TLS", "CHURN_RISK", 1, 1),
            ("r1", "CROSS_SELLING", "TLS", "NO_PRIVACY_CONSENT", 1, 0),
        ],
        "run_id string, campaign string, channel string, reason string, candidates long, first_reason_candidates long",
    )
    assert_df_equality(result.funnel, expected, ignore_row_order=True, ignore_nullable=True)


def test_unusable_input_rows_are_rejected_with_a_reason(spark: SparkSession) -> None:
    customers = [customer("A"), customer(None), customer("A")]  # type: ignore[arg-type]
    props = propensities(spark, ["A"]).unionByName(
        spark.createDataFrame(
            [
                ("A", "MORTGAGE", "DEM", 0.1),
                ("A", "CROSS_SELLING", "FAX", 0.1),
                ("Z", "CROSS_SELLING", "DEM", 0.1),
            ],
            PROPENSITY_SCHEMA,
        )
    )
    result = compute_eligibility(
        spark,
        small_config(),
        spark.createDataFrame(customers, CUSTOMER_SCHEMA),
        reachable(spark, ["A"]),
        props,
        "r1",
    )
    rejected = result.rejected.select("table_name", "reason_code", "row_ref").filter(
        F.col("table_name") == "propensities"
    )
    expected = spark.createDataFrame(
        [
            ("propensities", "UNKNOWN_CAMPAIGN", "A|MORTGAGE|DEM"),
            ("propensities", "UNKNOWN_CHANNEL", "A|CROSS_SELLING|FAX"),
            ("propensities", "UNKNOWN_CUSTOMER", "Z|CROSS_SELLING|DEM"),
        ],
        "table_name string, reason_code string, row_ref string",
    )
    assert_df_equality(rejected, expected, ignore_row_order=True, ignore_nullable=True)
    assert result.rejected.filter(F.col("reason_code") == "NULL_CUSTOMER_ID").count() == 1
    duplicated = result.eligibility.filter(F.col("customer_id") == "A").select("reasons").distinct().collect()
    assert [r["reasons"] for r in duplicated] == [["DUPLICATE_CUSTOMER_ID"]]


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("propensty < 0.01", "'where' names unknown column 'propensty' (columns: customer_id, "),
        ("contact = '+390212345678'", "'where' names unknown column 'contact' (columns: customer_id, "),
        ("propensity * 2", "'where' must be true/false, but 'propensity * 2' gives double"),
    ],
)
def test_a_bad_predicate_stops_before_any_job_naming_the_rule(
    spark: SparkSession, where: str, problem: str
) -> None:
    # Expression kinds are refused at config load (tests/test_predicates.py); the columns and
    # the type are checked here, against the customers table the stage reads.
    config = small_config([{"name": "my_rule", "where": where}])
    schema = spark.createDataFrame([], CUSTOMER_SCHEMA).schema
    with pytest.raises(EligibilityRuleError) as caught:
        check_rules(spark, config.eligibility.rules, schema)
    assert str(caught.value).startswith(f"eligibility rule 'my_rule': {problem}")
    assert "\n" not in str(caught.value)


def test_a_predicate_may_use_any_column_of_the_customers_table(spark: SparkSession) -> None:
    config = small_config([{"name": "my_rule", "where": "upper(SEGMENT) = 'VIP' AND propensity > 0.1"}])
    check_rules(spark, config.eligibility.rules, spark.createDataFrame([], CUSTOMER_SCHEMA).schema)


def test_rule_scopes_must_name_configured_campaigns_and_channels() -> None:
    with pytest.raises(ConfigError, match="eligibility rule 'x' names unknown channel 'FAX'"):
        load_config(
            overrides={"eligibility": {"rules": [{"name": "x", "segments": ["VIP"], "channels": ["FAX"]}]}}
        )
    with pytest.raises(ConfigError, match="has neither 'segments' nor 'where'"):
        load_config(overrides={"eligibility": {"rules": [{"name": "x"}]}})


def test_household_suppression_keeps_only_the_best_member(spark: SparkSession) -> None:
    """With the switch on, the non-best member (or one missing from contactability) is held back."""
    base = small_config()
    config = base.model_copy(
        update={
            "contacts": base.contacts.model_copy(
                update={
                    "household": base.contacts.household.model_copy(update={"suppress_other_members": True})
                }
            )
        }
    )
    customers = spark.createDataFrame([customer("A"), customer("B"), customer("C")], CUSTOMER_SCHEMA)
    best = spark.createDataFrame([("A", True), ("B", False)], "customer_id string, household_best boolean")
    result = compute_eligibility(
        spark,
        config,
        customers,
        reachable(spark, ["A", "B", "C"]),
        propensities(spark, ["A", "B", "C"]),
        "r1",
        best,
    )
    expected = summary(
        spark,
        [
            ("A", "DEM", True, []),
            ("A", "TLS", True, []),
            ("B", "DEM", False, ["HOUSEHOLD_MEMBER_SUPPRESSED"]),
            ("B", "TLS", False, ["HOUSEHOLD_MEMBER_SUPPRESSED"]),
            ("C", "DEM", False, ["HOUSEHOLD_MEMBER_SUPPRESSED"]),
            ("C", "TLS", False, ["HOUSEHOLD_MEMBER_SUPPRESSED"]),
        ],
    )
    got = result.eligibility.select(*expected.columns)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_rule_scoped_to_a_campaign_may_read_the_contact_score_and_the_expected_value(
    spark: SparkSession,
) -> None:
    """Two campaigns, propensity 0.2 everywhere: an e-mail is worth 0.2 × 100 − 1 = 19
    (CROSS_SELLING) or 89 (SOLUTION), a call 15 or 85. SOLUTION's e-mails go only to a
    contact scoring 600 or more (B's scores 500); calls are kept only when worth 20 or more
    (CROSS_SELLING's, worth 15, are not). Nothing outside a rule's scope moves."""
    config = config_from_dict(
        {
            "run": {"first_month": "2027-01-01"},
            "campaigns": {"CROSS_SELLING": {"success_value": 100.0}, "SOLUTION": {"success_value": 450.0}},
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "TLS": {"cost": 5.0, "contact_kind": "phone"},
            },
            "eligibility": {
                "rules": [
                    {
                        "name": "solution_mails_to_good_contacts",
                        "campaigns": ["SOLUTION"],
                        "channels": ["DEM"],
                        "where": "contact_score < 600",
                    },
                    {
                        "name": "calls_worth_it",
                        "action": "include",
                        "channels": ["TLS"],
                        "where": "expected_value >= 20",
                    },
                ]
            },
            "policy": {"rules": []},
        }
    )
    contacts = spark.createDataFrame(
        [
            (c, ch, f"{c}-{ch}", f"masked-{c}", score)
            for c, score in (("A", 700), ("B", 500))
            for ch in ("DEM", "TLS")
        ],
        CONTACT_SCHEMA,
    )
    props = spark.createDataFrame(
        [(c, k, ch, 0.2) for c in "AB" for k in ("CROSS_SELLING", "SOLUTION") for ch in ("DEM", "TLS")],
        PROPENSITY_SCHEMA,
    )
    got = decide(spark, [customer("A"), customer("B")], contacts, props, config)
    expected = spark.createDataFrame(
        [
            ("A", "CROSS_SELLING", "DEM", True, []),
            ("A", "CROSS_SELLING", "TLS", False, ["NOT_INCLUDED_BY_RULE:calls_worth_it"]),
            ("A", "SOLUTION", "DEM", True, []),
            ("A", "SOLUTION", "TLS", True, []),
            ("B", "CROSS_SELLING", "DEM", True, []),
            ("B", "CROSS_SELLING", "TLS", False, ["NOT_INCLUDED_BY_RULE:calls_worth_it"]),
            ("B", "SOLUTION", "DEM", False, ["EXCLUDED_BY_RULE:solution_mails_to_good_contacts"]),
            ("B", "SOLUTION", "TLS", True, []),
        ],
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>",
    )
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
