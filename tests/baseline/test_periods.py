"""The greedy baseline under capacity periods: a quarter with a date-range exception and a
rolling window cut in the global order; a quarter's minimum filled inside that quarter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from pyspark.sql import DataFrame, SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.baseline.capacity import Materialized, cut, fill, shortfalls
from contact_spark.config import AppConfig, load_config

ROWS = "customer_id string, m int, k int, month date, campaign string, channel string, _key double"
KEY = {"A": 0.1, "B": 0.5, "C": 0.9}  # the order key: 1 − propensity, A first
CELL = {"DEM": 0, "SMS": 1, "TLS": 2}


@pytest.fixture(scope="module")
def lean(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def config() -> AppConfig:
    return load_config(
        overrides={
            "capacities.rules": [
                {"name": "emails_rolling", "channels": ["DEM"], "period": "rolling", "months": 3, "max": 2},
                {
                    "name": "calls_quarter",
                    "channels": ["TLS"],
                    "period": "quarter",
                    "max": 1,
                    "exceptions": [{"from": "2027-04", "to": "2027-06", "max": 2}],
                },
                {"name": "sms_floor", "channels": ["SMS"], "period": "quarter", "min": 1},
            ],
            "capacities.spread": [],
        }
    )


def contacts(spark: SparkSession, rows: list[tuple[str, int, str]]) -> DataFrame:
    """(customer, month 1-12 of 2027, channel) → greedy contact rows of CROSS_SELLING."""
    return spark.createDataFrame(
        [(c, t - 1, CELL[h], dt.date(2027, t, 1), "CROSS_SELLING", h, KEY[c]) for c, t, h in rows], ROWS
    )


def planned(df: DataFrame) -> list[tuple[str, int, str]]:
    return sorted((r["customer_id"], r["month"].month, r["channel"]) for r in df.collect())


def test_a_rolling_window_and_a_quarter_are_cut_in_the_global_order(lean: SparkSession) -> None:
    """Pinned by hand, in the order A, B, C (then month).

    E-mails, at most 2 in any 3 months: January takes A (room 2); February has 1 left
    (Jan–Mar) and takes A, not B; March has none left; April has 1 left in Feb–Apr and takes
    C. Calls, 1 a quarter but 2 in April–June: Q1 keeps A's February call, not B's January
    one; Q2 keeps A's May and B's April calls, not B's June nor C's May.
    """
    keep = Materialized()
    emails = [("A", 1, "DEM"), ("A", 2, "DEM"), ("A", 3, "DEM"), ("B", 2, "DEM"), ("C", 4, "DEM")]
    calls = [("A", 2, "TLS"), ("A", 5, "TLS"), ("B", 1, "TLS"), ("B", 4, "TLS"), ("B", 6, "TLS")]
    calls.append(("C", 5, "TLS"))
    kept = cut(contacts(lean, emails + calls), config(), keep)
    assert planned(kept) == [
        ("A", 1, "DEM"),
        ("A", 2, "DEM"),
        ("A", 2, "TLS"),
        ("A", 5, "TLS"),
        ("B", 4, "TLS"),
        ("C", 4, "DEM"),
    ]
    keep.release()


def test_a_quarter_short_of_its_minimum_is_filled_inside_the_quarter(lean: SparkSession) -> None:
    """No SMS planned: each quarter is short by 1. The allowed SMS are A's in May, B's in
    February and C's in August: each fills its own quarter; nothing can fill Q4."""
    cfg = config()
    targets = shortfalls(contacts(lean, [("A", 1, "DEM")]), cfg)
    cells = [f"{c}/SMS" for c in cfg.campaign_names]
    quarters = [[dt.date(2027, m, 1) for m in range(q, q + 3)] for q in (1, 4, 7, 10)]
    assert targets == [(cells, months, None, 1.0) for months in quarters]
    allowed = contacts(lean, [("A", 5, "SMS"), ("B", 2, "SMS"), ("C", 8, "SMS")])
    assert planned(fill(lean, allowed, targets)) == [("A", 5, "SMS"), ("B", 2, "SMS"), ("C", 8, "SMS")]
