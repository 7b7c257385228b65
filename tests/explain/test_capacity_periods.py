"""contact_decisions under a rolling-window capacity: the reason names the window."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from contact_spark.config import load_config
from contact_spark.explain.decisions import contact_decisions


def windows(rule: str) -> list[str]:
    """The constraint names of a 3-month rolling max over 2027: Jan–Mar … Oct–Dec."""
    return [f"{rule}[{dt.date(2027, s, 1):%Y-%m}..{dt.date(2027, s + 2, 1):%Y-%m}]:max" for s in range(1, 11)]


def test_a_full_rolling_window_is_named_in_the_capacity_reason(spark: SparkSession) -> None:
    """At most 1 call, and 1 e-mail, in any 3 months (usage from ``capacity_sensitivity``).

    * calls: every window holds one already. C1's call is allowed and worth it in every month
      but fits in none; June is worth most (seasonality 2) and the first full window holding
      June is April–June: ``CAPACITY:calls_rolling/2027-04..2027-06``;
    * e-mails: the three windows holding June (April–June, May–July, June–August) are empty,
      every other one full: June fits, so C1's e-mail is ROOM_LEFT.
    """
    config = load_config(
        overrides={
            "policy.rules": [],
            "capacities.rules": [
                {"name": "calls_rolling", "channels": ["TLS"], "period": "rolling", "months": 3, "max": 1},
                {"name": "emails_rolling", "channels": ["DEM"], "period": "rolling", "months": 3, "max": 1},
            ],
            "capacities.spread": [],
            "seasonality": [1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1],
        }
    )
    eligibility = spark.createDataFrame(
        [
            ("C1", "CROSS_SELLING", channel, True, [], 0.3, 0.3 * 120 - cost)
            for channel, cost in (("TLS", 4), ("DEM", 0.02))
        ],
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double",
    )
    plan = spark.createDataFrame([], "customer_id string, month date, campaign string, channel string")
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    emails = windows("emails_rolling")
    usage = [(name, 1.0) for name in windows("calls_rolling")]
    usage += [(name, 0.0 if name in emails[3:6] else 1.0) for name in emails]
    sensitivity = spark.createDataFrame(
        [(name, used, 0.0) for name, used in usage],
        "constraint_name string, usage double, shadow_price double",
    )
    found = {
        r["channel"]: r
        for r in contact_decisions(
            spark, config, eligibility, plan, history, "r1", sensitivity=sensitivity
        ).collect()
    }
    assert {h: (r["decision"], r["reason_code"]) for h, r in found.items()} == {
        "TLS": ("NOT_PLANNED", "CAPACITY:calls_rolling/2027-04..2027-06"),
        "DEM": ("NOT_PLANNED", "ROOM_LEFT"),
    }
    assert (
        "in 2027-06 one more would exceed calls_rolling[2027-04..2027-06]:max (usage 1 of 1)"
        in found["TLS"]["detail"]
    )
    assert found["DEM"]["detail"].startswith("CROSS_SELLING/DEM: fits in 1 month(s)")
