"""The plan validator under the offer-attribute constructs.

Attribute scopes are resolved to campaign names at config load; the validator, which
re-checks a plan from the config alone, must find a plan breaking them, on the offers they
select and on no other. It must also price a contact at its offer's own channel cost and
sum an offer attribute for a capacity. One validation run holds every case (the policy
check is the slow part), each on its own customer or month.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from offer_scopes import HIGH_MARGIN
from offer_scopes import offers_config as shared_offers_config
from pyspark.sql import SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.config import AppConfig

from .test_validator import m, violations, world


def offers_config() -> AppConfig:
    """The shared offer-attribute world (tests/offer_scopes.py) with a capacity on the
    high-margin calls, a call budget and a sum of margins."""
    return shared_offers_config(
        [
            {"name": "product_calls", "campaigns": HIGH_MARGIN, "channels": ["TLS"], "max": 1},
            {"name": "call_budget", "measure": "sum", "column": "cost", "channels": ["TLS"], "max": 30},
            {"name": "dem_margin", "measure": "sum", "column": "margin", "channels": ["DEM"], "max": 250},
        ]
    )


@pytest.fixture(scope="module")
def lean_spark(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def test_a_plan_breaking_attribute_scoped_rules_is_found(lean_spark: SparkSession) -> None:
    """Every customer has a CROSS_SELLING e-mail in 2026-12 in its history.

    * legal: one SOLUTION a quarter, never in a CROSS_SELLING month;
    * commodity_only: CROSS_SELLING every month is out of the high-margin rule's scope;
    * two_products: SOLUTION in April and June is two in the quarter ending June;
    * same_month: CROSS_SELLING and SOLUTION both in February;
    * product_calls: the SOLUTION calls of legal and two_products are two in April (max 1);
      commodity_only's CROSS_SELLING call that month is not in the capacity's scope;
    * call_budget: April's calls cost 25 + 25 + 4 = 54 > 30 (at the channel's cost of 4 they
      would cost 12); February's one SOLUTION call costs 25;
    * dem_margin: the SOLUTION e-mails of legal and margin_over in August sum a margin of
      400 > 250; June's one (two_products) 200 and February's CROSS_SELLING 30 do not.
    """
    plans: dict[str, list[tuple[Any, ...]]] = {
        "legal": [(0, "CROSS_SELLING", "SMS"), (3, "SOLUTION", "TLS"), (7, "SOLUTION", "DEM")],
        "commodity_only": [(t, "CROSS_SELLING", "TLS" if t == 3 else "SMS") for t in range(6)],
        "two_products": [(3, "SOLUTION", "TLS"), (5, "SOLUTION", "DEM")],
        "same_month": [(1, "CROSS_SELLING", "DEM"), (1, "SOLUTION", "TLS")],
        "margin_over": [(7, "SOLUTION", "DEM")],
    }
    data = world(lean_spark, {cid: {} for cid in plans})
    found = violations(lean_spark, data, offers_config(), plans)
    assert sorted((v["customer_id"] or "", v["kind"], v["rule"], v["month"]) for v in found) == [
        ("", "capacity", "call_budget", m(3)),
        ("", "capacity", "dem_margin", m(7)),
        ("", "capacity", "product_calls", m(3)),
        ("same_month", "policy", "commodity_apart_from_product", m(1)),
        ("two_products", "policy", "high_margin_per_quarter", m(5)),
    ]
