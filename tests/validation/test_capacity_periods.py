"""The validator's capacity periods: a quarter, a rolling window and date-range exceptions,
derived by the validator itself (``validation/capacity.py`` never imports the engine's
expansion), checked with zero tolerance on tiny plans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.config import AppConfig, load_config
from contact_spark.validation.capacity import capacity_usage, check_capacity

PLAN_SCHEMA = "customer_id string, month date, campaign string, channel string"


@pytest.fixture(scope="module")
def lean_spark(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def config_with(capacities: list[dict[str, Any]], **run: Any) -> AppConfig:
    overrides: dict[str, Any] = {"capacities.rules": capacities, "capacities.spread": [], "policy.rules": []}
    overrides.update({f"run.{key}": value for key, value in run.items()})
    return load_config(overrides=overrides)


def plan(spark: SparkSession, rows: list[tuple[str, int, str]]) -> DataFrame:
    """(customer, month of 2027, channel) → plan rows of CROSS_SELLING."""
    return spark.createDataFrame(
        [(c, dt.date(2027, month, 1), "CROSS_SELLING", h) for c, month, h in rows], PLAN_SCHEMA
    )


def test_a_plan_breaking_a_quarter_and_a_rolling_window_is_found(lean_spark: SparkSession) -> None:
    """At most 3 calls a quarter, 1 from July 1 to September 30; at most 2 e-mails in any 3
    consecutive months.

    * calls: one in each month of Q1 is 3 (the max, no violation); two in August are 2 in
      2027-Q3, over its exception's 1;
    * e-mails in January, March, April and May: Jan–Mar 2, Feb–Apr 2, Mar–May 3 (over), Apr–Jun
      2, May–Jul 1: only the window starting in March is broken, and it is named by its first
      month (as in ``capacity_sensitivity``) with the window in the detail.
    """
    config = config_with(
        [
            {
                "name": "calls_quarter",
                "channels": ["TLS"],
                "period": "quarter",
                "max": 3,
                "exceptions": [{"from": "2027-07-01", "to": "2027-09-30", "max": 1}],
            },
            {"name": "emails_rolling", "channels": ["DEM"], "period": "rolling", "months": 3, "max": 2},
        ]
    )
    rows = [("A", 1, "TLS"), ("B", 2, "TLS"), ("A", 3, "TLS"), ("A", 8, "TLS"), ("B", 8, "TLS")]
    rows += [("A", 1, "DEM"), ("A", 3, "DEM"), ("B", 4, "DEM"), ("A", 5, "DEM")]
    usage = capacity_usage(lean_spark, plan(lean_spark, rows), config).cache()
    found = sorted((r["rule"], r["month"], r["detail"]) for r in check_capacity(usage)[0].collect())
    assert found == [
        ("calls_quarter", dt.date(2027, 7, 1), "contacts 2.000000 outside [-, 1.000000] in 2027-Q3"),
        (
            "emails_rolling",
            dt.date(2027, 3, 1),
            "contacts 3.000000 outside [-, 2.000000] in 2027-03..2027-05",
        ),
    ]
    windows = sorted((r["period"], r["usage"]) for r in usage.filter("rule = 'emails_rolling'").collect())
    assert windows == [
        ("2027-01..2027-03", 2.0),
        ("2027-02..2027-04", 2.0),
        ("2027-03..2027-05", 3.0),
        ("2027-04..2027-06", 2.0),
        ("2027-05..2027-07", 1.0),
        ("2027-06..2027-08", 0.0),
        ("2027-07..2027-09", 0.0),
        ("2027-08..2027-10", 0.0),
        ("2027-09..2027-11", 0.0),
        ("2027-10..2027-12", 0.0),
    ]
    usage.unpersist()


def test_the_validator_lays_out_the_same_periods_as_the_config(lean_spark: SparkSession) -> None:
    """The validator derives periods and exception bounds on its own (Spark over the month
    grid); on a horizon from November 2027 to May 2028 (quarters cut at both ends, a year
    boundary, a recurring exception written for another year) it finds exactly the periods
    and bounds of ``CapacityRule.periods``, the layout the engine and the baseline use."""
    rules: list[dict[str, Any]] = [
        {
            "name": "q",
            "channels": ["TLS"],
            "period": "quarter",
            "min": 1,
            "max": 9,
            "exceptions": [{"from": "2028-01", "to": "2028-03", "max": 4}],
        },
        {
            "name": "r",
            "channels": ["DEM"],
            "period": "rolling",
            "months": 2,
            "max": 5,
            "exceptions": [{"from": "2024-12-01", "to": "2025-02-28", "every_year": True, "min": 2}],
        },
        {
            "name": "m",
            "channels": ["SMS"],
            "max": 7,
            "exceptions": [{"month": "2028-02-01", "max": 3}, {"from": "2027-12", "to": "2027-12", "max": 6}],
        },
        {"name": "y", "channels": ["SMS"], "period": "year", "min": 2},
    ]
    config = config_with(rules, first_month="2027-11-01", horizon_months=7)
    months = config.run.months()
    expected = sorted(
        (rule.name, period.month, period.label, period.min, period.max)
        for rule in config.capacities.rules
        for period in rule.periods(months)
    )
    usage = capacity_usage(lean_spark, plan(lean_spark, []), config)
    found = sorted(
        (r["rule"], r["month"], r["period"], r["bound_min"], r["bound_max"]) for r in usage.collect()
    )
    assert found == expected
    assert [e[2] for e in expected if e[0] == "q"] == ["2027-Q4", "2028-Q1", "2028-Q2"]
    assert [(e[2], e[3]) for e in expected if e[0] == "r"][:4] == [
        ("2027-11..2027-12", None),
        ("2027-12..2028-01", 2.0),
        ("2028-01..2028-02", 2.0),
        ("2028-02..2028-03", None),
    ]
