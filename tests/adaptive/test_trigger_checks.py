"""The validator's independent trigger checks, on tiny hand-built plans."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from contact_spark.config import AppConfig, load_config
from contact_spark.validation.triggers import check_triggers

from .conftest import TRIGGERS

PLAN = "customer_id string, month date, campaign string, channel string"
APPLIED = "customer_id string, event_type string, event_time timestamp"


def _config() -> AppConfig:
    data = load_config().model_dump(mode="json")
    data["campaigns"]["MOVING_HOME"] = {"success_value": 200.0, "trigger_only": True}
    data["triggers"] = TRIGGERS
    return AppConfig.model_validate(data)


def _violations(spark: SparkSession, plan: list[tuple], applied: list[tuple]) -> set[tuple]:
    frames = check_triggers(
        spark, _config(), spark.createDataFrame(plan, PLAN), spark.createDataFrame(applied, APPLIED)
    )
    return {(r["customer_id"], r["rule"], r["month"]) for f in frames for r in f.collect()}


def test_a_triggered_campaign_needs_an_active_event_that_opens_its_channel(spark: SparkSession) -> None:
    feb, mar, apr = dt.date(2027, 2, 1), dt.date(2027, 3, 1), dt.date(2027, 4, 1)
    plan = [
        ("A", feb, "MOVING_HOME", "SMS"),  # MOVE on Feb 3 opens SMS for Feb..Mar
        ("A", mar, "MOVING_HOME", "TLS"),
        ("A", apr, "MOVING_HOME", "SMS"),  # the effect is over
        ("B", feb, "MOVING_HOME", "DEM"),  # B has no event
        ("C", feb, "CROSS_SELLING", "DEM"),  # not a triggered campaign
    ]
    applied = [("A", "MOVE", dt.datetime(2027, 2, 3, 9))]
    assert _violations(spark, plan, applied) == {
        ("A", "trigger_window:MOVING_HOME", apr),
        ("B", "trigger_window:MOVING_HOME", feb),
    }


def test_nothing_in_scope_while_a_complaint_suppresses_it(spark: SparkSession) -> None:
    jan, feb, apr, may = (dt.date(2027, m, 1) for m in (1, 2, 4, 5))
    plan = [
        ("A", jan, "CROSS_SELLING", "DEM"),  # before the complaint
        ("A", feb, "SOLUTION", "TLS"),
        ("A", apr, "CROSS_SELLING", "SMS"),
        ("A", may, "CROSS_SELLING", "SMS"),  # three months later: allowed again
        ("B", feb, "SOLUTION", "TLS"),  # somebody else
    ]
    applied = [("A", "COMPLAINT", dt.datetime(2027, 2, 20))]
    assert _violations(spark, plan, applied) == {
        ("A", "trigger_suppress:COMPLAINT", feb),
        ("A", "trigger_suppress:COMPLAINT", apr),
    }
