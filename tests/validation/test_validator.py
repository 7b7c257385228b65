"""The plan validator: tiny hand-built plans, each breaking one rule, give exactly that violation."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from spark_conf import LEAN, temporary_conf

from contact_spark.config import AppConfig, load_config
from contact_spark.errors import ContactSparkError
from contact_spark.validation import ValidationInputs, validate_plan

CHANNEL_KIND = {"DEM": "email", "SMS": "mobile", "TLS": "phone"}
CONTACT = {"DEM": "best@example.org", "SMS": "+393470000001", "TLS": "+393470000001"}

POLICY: list[dict[str, Any]] = [
    {
        "name": "dem_two_months",
        "type": "max_offers",
        "channels": ["DEM"],
        "per_campaign": True,
        "window_months": 2,
        "limit": 1,
    },
    {
        "name": "one_per_channel_month",
        "type": "max_offers",
        "per_channel": True,
        "window_months": 1,
        "limit": 1,
    },
    {"name": "two_packages", "type": "max_packages", "window_months": 1, "limit": 2},
    {
        "name": "tls_campaigns_apart",
        "type": "never_together",
        "a": {"campaigns": ["CROSS_SELLING"], "channels": ["TLS"]},
        "b": {"campaigns": ["SOLUTION"], "channels": ["TLS"]},
        "window_months": 3,
    },
    {
        "name": "no_sms_after_tls",
        "type": "never_followed_by",
        "a": {"channels": ["TLS"]},
        "b": {"channels": ["SMS"]},
        "window_months": 1,
    },
    {
        "name": "solution_after_cross",
        "type": "only_after",
        "a": {"campaigns": ["CROSS_SELLING"]},
        "b": {"campaigns": ["SOLUTION"]},
    },
]
CAPACITIES: list[dict[str, Any]] = [
    {"name": "tls_cap", "channels": ["TLS"], "max": 1, "exceptions": [{"month": "2027-03-01", "max": 0}]},
    {
        "name": "sms_budget",
        "measure": "sum",
        "column": "cost",
        "channels": ["SMS"],
        "period": "year",
        "max": 0.12,
    },
    {
        "name": "dem_avg_propensity",
        "measure": "average",
        "column": "propensity",
        "channels": ["DEM"],
        "period": "year",
        "max": 0.5,
    },
]


def config_with(
    policy: list[dict[str, Any]], capacities: list[dict[str, Any]], spread: Any = ()
) -> AppConfig:
    return load_config(
        overrides={
            "policy.rules": policy,
            "capacities.rules": capacities,
            "capacities.spread": list(spread),
            "eligibility.rules": [],
        }
    )


def m(month: int) -> dt.date:
    """Plan month index -> first day (0 = 2027-01)."""
    return dt.date(2027 + (month // 12), month % 12 + 1, 1)


def customer(cid: str, **flags: Any) -> tuple[Any, ...]:
    base = {
        "churn_risk": False,
        "outbound": False,
        "privacy_consent": True,
        "optout_dem": False,
        "optout_sms": False,
        "optout_tls": False,
    }
    base.update(flags)
    return (cid, f"H{cid}", "MASS", *base.values())


# C1's legal plan: (month, campaign, channel); C1 has a DEM CROSS_SELLING in 2026-12 in its history.
BASE = [
    (0, "CROSS_SELLING", "SMS"),
    (1, "CROSS_SELLING", "DEM"),
    (3, "SOLUTION", "TLS"),
    (5, "SOLUTION", "DEM"),
]

# One customer per case, all validated in one run (per-customer checks are independent):
# flags of the customer, its whole plan, and the violations expected.
CASES: dict[str, tuple[dict[str, Any], list[tuple[Any, ...]], set[tuple[str, str]]]] = {
    "legal": ({}, BASE, set()),
    # history DEM in 2026-12 + plan DEM in 2027-01: the window reaches back over the history
    "dem_two_months": ({}, [*BASE, (0, "CROSS_SELLING", "DEM")], {("policy", "dem_two_months")}),
    "per_channel": ({}, [*BASE, (1, "SOLUTION", "DEM")], {("policy", "one_per_channel_month")}),
    "packages": (
        {},
        [*BASE, (6, "CROSS_SELLING", "SMS"), (6, "CROSS_SELLING", "TLS"), (6, "CROSS_SELLING", "DEM")],
        {("policy", "two_packages")},
    ),
    "never_together": ({}, [*BASE, (1, "CROSS_SELLING", "TLS")], {("policy", "tls_campaigns_apart")}),
    "never_followed_by": ({}, [*BASE, (4, "CROSS_SELLING", "SMS")], {("policy", "no_sms_after_tls")}),
    "only_after": ({}, [(0, "SOLUTION", "DEM")], {("policy", "solution_after_cross")}),
    "consent_null": ({"privacy_consent": None}, BASE, {("consent", "privacy_consent")}),
    "consent_false": ({"privacy_consent": False}, BASE, {("consent", "privacy_consent")}),
    "churn_null": ({"churn_risk": None}, BASE, {("consent", "churn_risk")}),
    "outbound": ({"outbound": True}, BASE, {("consent", "outbound")}),
    "optout_null": ({"optout_dem": None}, BASE, {("consent", "channel_opt_out")}),
    "not_eligible": ({}, [*BASE, (7, "SOLUTION", "SMS")], {("eligibility", "eligibility")}),
    "not_best_contact": (
        {},
        [*BASE, (7, "CROSS_SELLING", "DEM", "second@example.org")],
        {("best_contact", "best_contact")},
    ),
    "duplicate": ({}, [*BASE, (1, "CROSS_SELLING", "DEM")], {("plan", "duplicate_contact")}),
    "outside_horizon": ({}, [*BASE, (12, "CROSS_SELLING", "TLS")], {("plan", "horizon")}),
}


@pytest.fixture(scope="module")
def lean_spark(spark: SparkSession) -> Iterator[SparkSession]:
    """Tiny inputs: one shuffle partition and no broadcast jobs make each validation faster."""
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def world(
    spark: SparkSession, flags: dict[str, dict[str, Any]], high_dem: tuple[str, ...] = ()
) -> dict[str, DataFrame]:
    """Customers (with flags), all-eligible candidates except SOLUTION/SMS, best contacts, history."""
    customers = spark.createDataFrame(
        [customer(cid, **f) for cid, f in flags.items()],
        "customer_id string, household_id string, segment string, churn_risk boolean, outbound boolean, "
        "privacy_consent boolean, optout_dem boolean, optout_sms boolean, optout_tls boolean",
    )
    elig_rows, best = [], []
    for cid in flags:
        for campaign in ("CROSS_SELLING", "SOLUTION"):
            for channel in ("DEM", "SMS", "TLS"):
                propensity = 0.95 if (cid in high_dem and channel == "DEM") else 0.3
                # Eligible even for consent-less customers: the validator must not trust eligibility.
                ok = (campaign, channel) != ("SOLUTION", "SMS")
                elig_rows.append(
                    (cid, campaign, channel, ok, [] if ok else ["EXCLUDED_BY_RULE:test"], propensity)
                )
        for channel, kind in CHANNEL_KIND.items():
            best.append((cid, channel, f"K{cid}{channel}", CONTACT[channel], kind, 900))
        best.append((cid, "DEM", f"K{cid}DEM2", "second@example.org", "email", 500))
    return {
        "customers": customers,
        "eligibility": spark.createDataFrame(
            elig_rows,
            "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
            "propensity double",
        ).withColumn("expected_value", F.lit(10.0)),
        "best": spark.createDataFrame(
            best,
            "customer_id string, channel string, contact_id string, value string, contact_kind string, score int",
        ),
        "history": spark.createDataFrame(
            [(cid, dt.date(2026, 12, 15), "CROSS_SELLING", "DEM") for cid in flags if cid != "only_after"],
            "customer_id string, contact_date date, campaign string, channel string",
        ),
    }


def plan_df(spark: SparkSession, plans: dict[str, list[tuple[Any, ...]]]) -> DataFrame:
    out = []
    for cid, rows in plans.items():
        for month, campaign, channel, *contact in rows:
            out.append((cid, m(month), campaign, channel, contact[0] if contact else CONTACT[channel]))
    return spark.createDataFrame(
        out, "customer_id string, month date, campaign string, channel string, contact string"
    )


def violations(
    spark: SparkSession,
    data: dict[str, DataFrame],
    config: AppConfig,
    plans: dict[str, list[tuple[Any, ...]]],
) -> list[dict[str, Any]]:
    inputs = ValidationInputs(
        plan=plan_df(spark, plans),
        customers=data["customers"],
        eligibility=data["eligibility"],
        best_contacts=data["best"],
        contact_history=data["history"],
    )
    return [r.asDict() for r in validate_plan(spark, config, inputs, "t").collect()]


def rules_of(found: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(v["kind"], v["rule"]) for v in found}


def test_each_broken_rule_gives_exactly_that_violation(lean_spark: SparkSession) -> None:
    config = config_with(POLICY, [])
    flags = {case: f for case, (f, _, _) in CASES.items()}
    plans = {case: rows for case, (_, rows, _) in CASES.items()}
    plans["unknown"] = [(0, "CROSS_SELLING", "TLS")]
    found = violations(lean_spark, world(lean_spark, flags), config, plans)
    assert all(v["run_id"] == "t" for v in found)
    for case, (_, _, expected) in CASES.items():
        assert rules_of([v for v in found if v["customer_id"] == case]) == expected, case
    # A customer missing from every input: unknown, not eligible, no best contact.
    assert rules_of([v for v in found if v["customer_id"] == "unknown"]) == {
        ("consent", "unknown_customer"),
        ("eligibility", "eligibility"),
        ("best_contact", "best_contact"),
    }
    assert {v["customer_id"] for v in found} == {c for c, (_, _, e) in CASES.items() if e} | {"unknown"}


def test_every_capacity_kind_is_checked_with_zero_tolerance(lean_spark: SparkSession) -> None:
    config = config_with([], CAPACITIES)
    data = world(lean_spark, {"C1": {}, "C3": {}}, high_dem=("C3",))
    assert violations(lean_spark, data, config, {"C1": BASE}) == []
    extra = [
        (2, "CROSS_SELLING", "TLS"),  # March: the month exception allows 0 calls
        (3, "CROSS_SELLING", "TLS"),  # April: the second call of the month (max 1)
        (0, "CROSS_SELLING", "SMS"),  # three SMS at 0.06 each: 0.18 > 0.12 a year
        (1, "CROSS_SELLING", "SMS"),
        (0, "CROSS_SELLING", "DEM"),  # average DEM propensity (0.3 + 0.3 + 0.95) / 3 > 0.5
    ]
    found = violations(lean_spark, data, config, {"C1": BASE, "C3": extra})
    assert sorted((v["rule"], v["month"]) for v in found) == [
        ("dem_avg_propensity", None),
        ("sms_budget", None),
        ("tls_cap", dt.date(2027, 3, 1)),
        ("tls_cap", dt.date(2027, 4, 1)),
    ]
    assert all(v["kind"] == "capacity" and v["customer_id"] is None for v in found)


def test_min_offers_counts_history_and_every_window(lean_spark: SparkSession) -> None:
    config = config_with(
        [{"name": "dem_yearly", "type": "min_offers", "channels": ["DEM"], "window_months": 12, "limit": 1}],
        [],
    )
    data = world(lean_spark, {"C1": {}})
    found = violations(lean_spark, data, config, {"C1": [(0, "CROSS_SELLING", "SMS")]})
    # The 2026-12 DEM of the history covers the windows ending 2027-01 .. 2027-11, not 2027-12.
    assert [(v["rule"], v["month"]) for v in found] == [("dem_yearly", dt.date(2027, 12, 1))]


def test_spread_bounds_each_month_against_the_yearly_average(lean_spark: SparkSession) -> None:
    config = config_with([], [], spread=[{"name": "even_dem", "channels": ["DEM"], "tolerance": 0.5}])
    data = world(lean_spark, {"C1": {}})
    found = violations(
        lean_spark, data, config, {"C1": [(1, "CROSS_SELLING", "DEM"), (5, "SOLUTION", "DEM")]}
    )
    assert rules_of(found) == {("capacity", "even_dem")}
    assert len(found) == 12  # two months far above the average, ten with nothing


def test_validate_plan_job_has_help() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "jobs/validate_plan.py", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "--plan-table" in done.stdout


def test_a_reported_min_shortfall_is_a_warning_unless_strict(lean_spark: SparkSession) -> None:
    capacities = [{"name": "dem_floor", "channels": ["DEM"], "min": 1, "max": 5}]
    data = world(lean_spark, {"C1": {}})
    # BASE has a DEM in February and June only: the ten other months are below the min.
    reported = lean_spark.createDataFrame([("dem_floor", m(0)), ("other", m(2))], "rule string, month date")

    def found(strict: bool) -> list[tuple[dt.date, str]]:
        config = load_config(
            overrides={
                "policy.rules": [],  # capacity rows only: the policy checks are the slow part
                "capacities.rules": capacities,
                "eligibility.rules": [],
                "validation.strict_min_capacity": strict,
            }
        )
        inputs = ValidationInputs(
            plan=plan_df(lean_spark, {"C1": BASE}),
            customers=data["customers"],
            eligibility=data["eligibility"],
            best_contacts=data["best"],
            contact_history=data["history"],
            reported_shortfalls=reported,
        )
        rows = validate_plan(lean_spark, config, inputs, "t").collect()
        assert {(r["kind"], r["rule"]) for r in rows} == {("capacity", "dem_floor")}
        return sorted((r["month"], r["severity"]) for r in rows)

    unmet = [m(i) for i in range(12) if i not in (1, 5)]
    # Only the month the plan stage reported is a warning; a min it did not report stays an error.
    assert found(strict=False) == [(d, "WARNING" if d == m(0) else "ERROR") for d in unmet]
    assert found(strict=True) == [(d, "ERROR") for d in unmet]


CAMPAIGN_RULES: list[dict[str, Any]] = [
    # Every world customer has a CROSS_SELLING/DEM contact in 2026-12 in its history.
    {
        "name": "one_dem_campaign_2m",
        "type": "max_campaigns",
        "channels": ["DEM"],
        "window_months": 2,
        "limit": 1,
    },
    {
        "name": "one_campaign_per_channel_month",
        "type": "max_campaigns",
        "channels": ["SMS", "TLS"],
        "per_channel": True,
        "window_months": 1,
        "limit": 1,
    },
]


def test_max_campaigns_counts_distinct_campaigns_history_included(lean_spark: SparkSession) -> None:
    """max_campaigns counts a *set* of campaigns per window, so:

    * a campaign contacted last month (history) counts in a 2-month window: a different
      campaign planned this month makes two;
    * the same campaign in every month of a window counts once (max_offers would count 3);
    * a history contact outside the window does not count;
    * per_channel: two campaigns on two channels are two copies of one each, two campaigns
      on one channel break that channel's copy;
    * the window is a rolling range: C, S, C in three months breaks the two windows
      ending at S and at the second C, not the one ending at the first C.
    """
    config = config_with(CAMPAIGN_RULES, [])
    plans: dict[str, list[tuple[Any, ...]]] = {
        "history": [(0, "SOLUTION", "DEM")],
        "same_twice": [(0, "CROSS_SELLING", "DEM"), (1, "CROSS_SELLING", "DEM")],
        "history_outside": [(1, "SOLUTION", "DEM")],
        "two_channels": [(2, "CROSS_SELLING", "SMS"), (2, "SOLUTION", "TLS")],
        "one_channel": [(2, "CROSS_SELLING", "TLS"), (2, "SOLUTION", "TLS")],
        "rolling": [(3, "CROSS_SELLING", "DEM"), (4, "SOLUTION", "DEM"), (5, "CROSS_SELLING", "DEM")],
    }
    data = world(lean_spark, {cid: {} for cid in plans})
    found = violations(lean_spark, data, config, plans)
    assert sorted((v["customer_id"], v["kind"], v["rule"], v["month"]) for v in found) == [
        ("history", "policy", "one_dem_campaign_2m", m(0)),
        ("one_channel", "policy", "one_campaign_per_channel_month", m(2)),
        ("rolling", "policy", "one_dem_campaign_2m", m(4)),
        ("rolling", "policy", "one_dem_campaign_2m", m(5)),
    ]
    details = {(v["customer_id"], v["month"]): v["detail"] for v in found}
    assert details[("history", m(0))] == (
        "max_campaigns: 2 campaigns (CROSS_SELLING, SOLUTION) in the 2-month window ending here "
        "(limit 1, 1 planned)"
    )
    assert details[("one_channel", m(2))] == (
        "max_campaigns: 2 campaigns (CROSS_SELLING, SOLUTION) in the 1-month window ending here "
        "(limit 1, 2 planned) for TLS"
    )


def test_a_policy_rule_type_without_a_check_is_refused(spark: SparkSession) -> None:
    """A rule type the validator does not know must fail the validation, not pass every plan."""
    from contact_spark.validation.policy import check_policy

    base = config_with([], [])
    bogus = SimpleNamespace(name="mystery", type="max_mystery", window_months=1)
    config = base.model_copy(update={"policy": base.policy.model_copy(update={"rules": [bogus]})})
    with pytest.raises(ContactSparkError, match="max_mystery"):
        check_policy(spark, spark.range(0), spark.range(0), config)


def test_a_contact_outside_its_campaign_flight_is_found_by_validate_plan(lean_spark: SparkSession) -> None:
    """SOLUTION flies May–December 2027: the legal plan's SOLUTION/TLS in April (month 3) is
    the one violation (rule outside_flight, read from the config, tests/test_calendars.py);
    its SOLUTION/DEM in June is inside."""
    config = load_config(
        overrides={
            "policy.rules": POLICY,
            "capacities.rules": [],
            "capacities.spread": [],
            "eligibility.rules": [],
            "campaigns.SOLUTION.flight": {"from": "2027-05", "to": "2027-12"},
        }
    )
    found = violations(lean_spark, world(lean_spark, {"legal": {}}), config, {"legal": BASE})
    assert [(v["kind"], v["rule"], v["month"]) for v in found] == [("flight", "outside_flight", m(3))]
