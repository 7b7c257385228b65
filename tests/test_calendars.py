"""Campaign calendars: ``campaigns.<NAME>.flight`` (the whole months an offer runs, optionally
shorter on a channel) and ``campaigns.<NAME>.monthly_value`` (a factor per month on the value
of the offer's contacts, like ``seasonality`` per campaign), enforced by the solver, the
validator, the greedy and ``contact_decisions`` (the real-time check: tests/realtime/test_flights.py).

The world: a plan of January–April 2027 and one offer SPRING worth 100 that flies March–June,
on SMS only from April. E-mail costs 1, SMS 2. A is eligible by e-mail (propensity 0.3, a
contact worth 0.3 × 100 − 1 = 29); B by e-mail and SMS (0.1, alone worth 0.1 × 100 − 2 = 8).
A has no mobile number (SMS not eligible: the eligibility stage writes every customer × cell).
No policy rule: every contact worth more than 0 in a month of the flight is planned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from spark_conf import LEAN, temporary_conf

from contact_spark.baseline.customers import customer_frame as greedy_frame
from contact_spark.baseline.customers import per_customer
from contact_spark.config import AppConfig, config_from_dict
from contact_spark.config.fingerprint import config_hash
from contact_spark.errors import ConfigError
from contact_spark.explain.decisions import contact_decisions
from contact_spark.planning.frame import customer_frame, layout_for
from contact_spark.planning.solve import StaticInputs, plan_rows, solve_customers
from contact_spark.validation.flights import check_flights

SPRING_FLIGHT = {
    "from": "2027-03-01",
    "to": "2027-06-30",
    "channels": {"SMS": {"from": "2027-04", "to": "2027-06"}},
}
PLAN_SCHEMA = "customer_id string, month date, campaign string, channel string"
ELIGIBILITY = (
    "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
    "propensity double, expected_value double, contact_id string"
)
HISTORY = "customer_id string, contact_date date, campaign string, channel string"


def config(
    spring: dict[str, Any] | None = None, rules: list[dict[str, Any]] | None = None, **run: Any
) -> AppConfig:
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 4, **run},
            "campaigns": {"SPRING": {"success_value": 100.0, **(spring or {})}},
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "SMS": {"cost": 2.0, "contact_kind": "mobile"},
            },
            "policy": {"rules": rules or []},
        }
    )


@pytest.fixture(scope="module")
def lean(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def eligibility(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            ("A", "SPRING", "DEM", True, [], 0.3, 29.0, "A-DEM"),
            ("A", "SPRING", "SMS", False, ["NO_CONTACT"], None, None, None),
            ("B", "SPRING", "DEM", True, [], 0.3, 29.0, "B-DEM"),
            ("B", "SPRING", "SMS", True, [], 0.1, 8.0, "B-SMS"),
        ],
        ELIGIBILITY,
    )


def solved_plan(spark: SparkSession, cfg: AppConfig, elig: DataFrame) -> DataFrame:
    """The plan stage's functions: the customer frame, the kernel per customer, the plan rows."""
    layout, policy = layout_for(cfg)
    history = spark.createDataFrame([], HISTORY)
    frame = customer_frame(elig, history, layout, cfg.run.first_month, 2)
    solved = solve_customers(frame, policy, layout, StaticInputs.from_config(cfg))
    contacts = elig.select("customer_id", "channel", "contact_id", F.col("contact_id").alias("contact"))
    rows = plan_rows(solved, elig, layout, cfg.run.months(), "r1", contacts)
    return rows.select("customer_id", "month", "campaign", "channel", "expected_value")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("flight", {"from": "2027-06-01", "to": "2027-03-31"}, "to 2027-03-31 is before from 2027-06-01"),
        ("flight", {"from": "2027-03-15", "to": "2027-06-30"}, "give from: 2027-03-01"),
        ("flight", {"from": "2027-03-01", "to": "2027-06-15"}, "give to: 2027-06-30"),
        (
            "flight",
            {"from": "2027-03", "to": "2027-06", "channels": {"TLS": {"from": "2027-04", "to": "2027-05"}}},
            "campaigns.SPRING.flight.channels: unknown channel 'TLS' (known: DEM, SMS)",
        ),
        (
            "flight",
            {"from": "2027-03", "to": "2027-06", "channels": {"SMS": {"from": "2027-02", "to": "2027-05"}}},
            "channels.SMS runs 2027-02-01 to 2027-05-31, outside the flight",
        ),
        ("monthly_value", {"2027-03-15": 2.0}, "give 2027-03-01"),
        ("monthly_value", {"2027-03-01": -1.0}, "give a factor from 0"),
    ],
)
def test_a_wrong_calendar_is_refused_at_load_naming_the_campaign(key: str, value: Any, message: str) -> None:
    """Whole months in order, known channels, a channel's run inside the flight, factors >= 0:
    each error names the campaign and the key."""
    with pytest.raises(ConfigError) as raised:
        config({key: value})
    assert f"campaigns.SPRING.{key}" in str(raised.value)
    assert message in str(raised.value)


def test_a_config_without_calendars_keeps_its_dump_and_hash() -> None:
    """Unset, the keys are left out of the dump, so configs written before them keep their
    fingerprint (and the demo its pinned plan); set, they are another config."""
    plain = config()
    assert "flight" not in plain.model_dump()["campaigns"]["SPRING"]
    assert plain.flight_mask() is None and StaticInputs.from_config(plain).seasonality.shape == (4,)
    assert config_hash(config({"flight": SPRING_FLIGHT})) != config_hash(plain)
    assert config_hash(config({"monthly_value": {"2027-03-01": 2.0}})) != config_hash(plain)


def test_the_solver_plans_only_inside_the_flight(lean: SparkSession) -> None:
    """Without a flight A and B would get SPRING every month (4 + 8 rows). With it: A by
    e-mail in March and April (29 each); B by e-mail alone in March (SMS starts in April) and by
    both in April, where the two share the union success 1 − 0.7 × 0.9 = 0.37: e-mail
    0.37 × 0.75 × 100 − 1 = 26.75, SMS 0.37 × 0.25 × 100 − 2 = 7.25 (together 34 > 29)."""
    plan = solved_plan(lean, config({"flight": SPRING_FLIGHT}), eligibility(lean))
    mar, apr = dt.date(2027, 3, 1), dt.date(2027, 4, 1)
    expected = lean.createDataFrame(
        [
            ("A", mar, "SPRING", "DEM", 29.0),
            ("A", apr, "SPRING", "DEM", 29.0),
            ("B", mar, "SPRING", "DEM", 29.0),
            ("B", apr, "SPRING", "DEM", 26.75),
            ("B", apr, "SPRING", "SMS", 7.25),
        ],
        PLAN_SCHEMA + ", expected_value double",
    )
    assert_approx_df_equality(plan, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_a_launch_month_value_pulls_the_one_contact_into_it(lean: SparkSession) -> None:
    """One contact of SPRING in the four months (max_packages 1 in 4) and no flight: every
    month is worth 29 to A alone, but monthly_value 2 in February makes it (0.3 × 100 − 1) × 2
    = 58 there (the factor weighs the contact's value as seasonality does), so February wins."""
    one = [{"name": "one_in_four", "type": "max_packages", "window_months": 4, "limit": 1}]
    cfg = config({"monthly_value": {"2027-02-01": 2.0}}, one)
    plan = solved_plan(lean, cfg, eligibility(lean).filter("customer_id = 'A'"))
    assert [tuple(r) for r in plan.collect()] == [
        ("A", dt.date(2027, 2, 1), "SPRING", "DEM", pytest.approx(58.0))
    ]


def test_the_validator_flags_a_planned_contact_outside_the_flight(lean: SparkSession) -> None:
    """From the config alone: e-mail in February is before the flight, SMS in March before
    the SMS run; e-mail in March and SMS in April are inside."""
    plan = lean.createDataFrame(
        [
            ("A", dt.date(2027, 2, 1), "SPRING", "DEM"),
            ("A", dt.date(2027, 3, 1), "SPRING", "DEM"),
            ("B", dt.date(2027, 3, 1), "SPRING", "SMS"),
            ("B", dt.date(2027, 4, 1), "SPRING", "SMS"),
        ],
        PLAN_SCHEMA,
    )
    (found,) = check_flights(plan, config({"flight": SPRING_FLIGHT}))
    assert sorted(tuple(r) for r in found.collect()) == [
        (
            "A",
            "outside_flight",
            "flight",
            dt.date(2027, 2, 1),
            "SPRING/DEM planned in 2027-02, outside the campaign's flight",
            "ERROR",
        ),
        (
            "B",
            "outside_flight",
            "flight",
            dt.date(2027, 3, 1),
            "SPRING/SMS planned in 2027-03, outside the campaign's flight",
            "ERROR",
        ),
    ]
    assert check_flights(plan, config()) == []


def test_the_greedy_never_plans_outside_the_flight(lean: SparkSession) -> None:
    """The greedy's per-customer pass (cells k: DEM 0, SMS 1; months from 0 = January) takes
    the same contacts as the solver: months 2 and 3 only, B's SMS only in month 3."""
    cfg = config({"flight": SPRING_FLIGHT})
    frame = greedy_frame(eligibility(lean), lean.createDataFrame([], HISTORY), cfg)
    greedy = sorted(tuple(r) for r in per_customer(frame, cfg, "greedy").collect())
    assert greedy == [("A", 2, 0), ("A", 3, 0), ("B", 2, 0), ("B", 3, 0), ("B", 3, 1)]


def test_contact_decisions_say_outside_flight(lean: SparkSession) -> None:
    """A plan of January–February, before the whole flight: every cell is NOT_PLANNED with
    OUTSIDE_FLIGHT (not NOT_WORTH or ROOM_LEFT: no month of the plan could take it)."""
    cfg = config({"flight": SPRING_FLIGHT}, horizon_months=2)
    plan = lean.createDataFrame([], PLAN_SCHEMA)
    decided = contact_decisions(
        lean, cfg, eligibility(lean), plan, lean.createDataFrame([], HISTORY), "r"
    ).collect()
    assert sorted((r["customer_id"], r["channel"], r["decision"], r["reason_code"]) for r in decided) == [
        ("A", "DEM", "NOT_PLANNED", "OUTSIDE_FLIGHT"),
        ("A", "SMS", "NOT_ELIGIBLE", "NO_CONTACT"),
        ("B", "DEM", "NOT_PLANNED", "OUTSIDE_FLIGHT"),
        ("B", "SMS", "NOT_PLANNED", "OUTSIDE_FLIGHT"),
    ]
