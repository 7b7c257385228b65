"""The greedy baseline under a share max, a share min and a ratio min (issue 20, item 4): the
cuts of :func:`contact_spark.baseline.capacity.cut` and the shortfall a share min leaves,
on a handful of contact rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from pyspark.sql import DataFrame, SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.baseline.capacity import Materialized, cut, shortfalls
from contact_spark.config import AppConfig, config_from_dict

ROWS = (
    "customer_id string, m int, k int, month date, campaign string, channel string, _key double, "
    "expected_value double, cost double"
)
KEY = {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4, "E": 0.5, "F": 0.6}  # the order key: A first
CELL = {("MORT", "DEM"): 0, ("MORT", "TLS"): 1, ("CARD", "DEM"): 2, ("CARD", "TLS"): 3}
COST = {"DEM": 1.0, "TLS": 10.0}


@pytest.fixture(scope="module")
def lean(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def config() -> AppConfig:
    """Mortgages at most half of each month's contacts; cards at least 60 % of them; calls'
    expected value at least 2.5 × their cost over the horizon."""
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
                    {"name": "card_share", "measure": "share", "of": {"campaigns": ["CARD"]}, "min": 0.6},
                    {
                        "name": "roi",
                        "measure": "ratio",
                        "column": "expected_value",
                        "per": "cost",
                        "channels": ["TLS"],
                        "period": "year",
                        "min": 2.5,
                    },
                ]
            },
        }
    )


def contacts(spark: SparkSession, rows: list[tuple[str, int, str, str, float]]) -> DataFrame:
    """(customer, month 1-2 of 2027, campaign, channel, expected value) → greedy contact rows."""
    return spark.createDataFrame(
        [(c, t - 1, CELL[(o, h)], dt.date(2027, t, 1), o, h, KEY[c], ev, COST[h]) for c, t, o, h, ev in rows],
        ROWS,
    )


def test_the_greedy_cuts_a_share_max_in_its_order_and_each_call_below_the_ratio(lean: SparkSession) -> None:
    """Pinned by hand, in the order A, B, C, ….

    * roi: F's call (expected value 20 < 2.5 × 10) is cut, E's (30) kept: each kept call
      meets the ratio on its own;
    * mortgage_share in January: A, B, C take mortgages, D a card: the rest (1 contact)
      leaves room for 0.5 × 1 / 0.5 = 1 mortgage: A keeps it, B's and C's are cut (D's card
      is never cut for it). February: 1 mortgage (A) next to 3 cards (B, C, E): kept;
    * card_share (at least 60 % cards): January is then A's mortgage and D's card, 1 card
      where 0.6 × 1 / 0.4 = 1.5 are needed: a shortfall of 0.5 card in January, which the
      greedy fills by adding cards; February (3 cards, 1 other) meets it.
    """
    plan = contacts(
        lean,
        [
            ("A", 1, "MORT", "DEM", 49.0),
            ("B", 1, "MORT", "DEM", 39.0),
            ("C", 1, "MORT", "DEM", 29.0),
            ("D", 1, "CARD", "DEM", 9.0),
            ("A", 2, "MORT", "DEM", 49.0),
            ("B", 2, "CARD", "DEM", 19.0),
            ("C", 2, "CARD", "DEM", 14.0),
            ("E", 2, "CARD", "TLS", 30.0),
            ("F", 2, "CARD", "TLS", 20.0),
        ],
    )
    keep = Materialized()
    kept = cut(plan, config(), keep)
    assert sorted(
        (r["customer_id"], r["month"].month, r["campaign"], r["channel"]) for r in kept.collect()
    ) == [
        ("A", 1, "MORT", "DEM"),
        ("A", 2, "MORT", "DEM"),
        ("B", 2, "CARD", "DEM"),
        ("C", 2, "CARD", "DEM"),
        ("D", 1, "CARD", "DEM"),
        ("E", 2, "CARD", "TLS"),
    ]
    assert shortfalls(kept, config()) == [(["CARD/DEM", "CARD/TLS"], [dt.date(2027, 1, 1)], None, 0.5)]
    keep.release()
