"""The validator's share and ratio checks (issue 20, item 4), derived from the config on its
own (``validation/capacity.py`` uses none of the engine's expansion), with zero tolerance
on tiny plans that break each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.config import AppConfig, config_from_dict
from contact_spark.validation.capacity import capacity_usage, check_capacity

PLAN = "customer_id string, month date, campaign string, channel string, expected_value double, cost double"
COST = {"DEM": 1.0, "TLS": 10.0}


@pytest.fixture(scope="module")
def lean(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def config() -> AppConfig:
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 2},
            "campaigns": {
                "MORT": {"success_value": 100.0, "family": "mortgage"},
                "CARD": {"success_value": 50.0, "family": "card"},
            },
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "TLS": {"cost": 10.0, "contact_kind": "phone"},
            },
            "policy": {"rules": []},
            "capacities": {
                "rules": [
                    {
                        "name": "mortgage_share",
                        "measure": "share",
                        "of": {"campaigns": {"where": "family = 'mortgage'"}},
                        "max": 0.5,
                    },
                    {
                        "name": "roi",
                        "measure": "ratio",
                        "column": "expected_value",
                        "per": "cost",
                        "period": "year",
                        "min": 2.5,
                    },
                ]
            },
        }
    )


def test_a_plan_breaking_a_share_max_and_a_ratio_min_is_found(lean: SparkSession) -> None:
    """January: mortgages for A and B, a card for C: 2 of 3 (0.67) over the half; February:
    1 of 4 (the check is ``part ≤ 0.5 × whole``, in exact decimals, no division). The ratio over the horizon: expected value 40 + 30 + 20 + 9 + 5 + 0 + 3 = 107
    against 2.5 × the cost, 2.5 × (10 + 1 + 10 + 1 + 1 + 10 + 10) = 107.5: broken by 0.5,
    shown as the ratio 107 / 43 = 2.488 (without E's call, 104 against 82.5, it holds)."""
    rows = [
        ("A", 1, "MORT", "TLS", 40.0),
        ("B", 1, "MORT", "DEM", 30.0),
        ("C", 1, "CARD", "TLS", 20.0),
        ("A", 2, "MORT", "DEM", 9.0),
        ("B", 2, "CARD", "DEM", 5.0),
        ("D", 2, "CARD", "TLS", 0.0),
        ("E", 2, "CARD", "TLS", 3.0),
    ]
    plan = lean.createDataFrame(
        [(c, dt.date(2027, t, 1), o, h, ev, COST[h]) for c, t, o, h, ev in rows], PLAN
    )
    usage = capacity_usage(lean, plan, config()).cache()
    found = sorted((r["rule"], r["month"], r["detail"]) for r in check_capacity(usage)[0].collect())
    assert found == [
        ("mortgage_share", dt.date(2027, 1, 1), "share 0.666667 outside [-, 0.500000]"),
        ("roi", None, "ratio 2.488372 outside [2.500000, -]"),
    ]
    shares = sorted((r["month"], r["usage"]) for r in usage.filter("rule = 'mortgage_share'").collect())
    assert shares == [(dt.date(2027, 1, 1), pytest.approx(2 / 3)), (dt.date(2027, 2, 1), 0.25)]
    usage.unpersist()
