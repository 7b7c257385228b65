"""contact_decisions under a rolling-window capacity: the reason names the window."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from contact_spark.config import load_config
from contact_spark.explain.decisions import contact_decisions


def test_a_full_rolling_window_is_named_in_the_capacity_reason(spark: SparkSession) -> None:
    """At most 1 call in any 3 months and every window already holds one (the usage of
    ``capacity_sensitivity``): C1's call is allowed and worth it in every month but fits in
    none. June is worth most (seasonality 2) and the first full window holding June is
    April–June: the reason is ``CAPACITY:calls_rolling/2027-04..2027-06``. With the three
    windows holding June empty instead (April–June, May–July, June–August), June fits:
    ROOM_LEFT."""
    config = load_config(
        overrides={
            "policy.rules": [],
            "capacities.rules": [
                {"name": "calls_rolling", "channels": ["TLS"], "period": "rolling", "months": 3, "max": 1}
            ],
            "capacities.spread": [],
            "seasonality": [1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1],
        }
    )
    eligibility = spark.createDataFrame(
        [(cid, "CROSS_SELLING", "TLS", True, [], 0.3, 0.3 * 120 - 4) for cid in ("C1", "C2")],
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double",
    )
    plan = spark.createDataFrame([], "customer_id string, month date, campaign string, channel string")
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    windows = [
        f"calls_rolling[{dt.date(2027, s, 1):%Y-%m}..{dt.date(2027, s + 2, 1):%Y-%m}]:max"
        for s in range(1, 11)
    ]
    full = spark.createDataFrame(
        [(name, 1.0, 0.0) for name in windows], "constraint_name string, usage double, shadow_price double"
    )
    found = contact_decisions(
        spark, config, eligibility.filter("customer_id = 'C1'"), plan, history, "r1", sensitivity=full
    ).collect()
    assert [(r["decision"], r["reason_code"]) for r in found] == [
        ("NOT_PLANNED", "CAPACITY:calls_rolling/2027-04..2027-06")
    ]
    assert (
        "in 2027-06 one more would exceed calls_rolling[2027-04..2027-06]:max (usage 1 of 1)"
        in found[0]["detail"]
    )
    june_empty = spark.createDataFrame(
        [(name, 0.0 if name in windows[3:6] else 1.0, 0.0) for name in windows],
        "constraint_name string, usage double, shadow_price double",
    )
    found = contact_decisions(
        spark, config, eligibility.filter("customer_id = 'C2'"), plan, history, "r1", sensitivity=june_empty
    ).collect()
    assert [(r["decision"], r["reason_code"]) for r in found] == [("NOT_PLANNED", "ROOM_LEFT")]
    assert found[0]["detail"].startswith("CROSS_SELLING/TLS: fits in 1 month(s)")
