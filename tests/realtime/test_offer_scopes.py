"""The real-time check under the offer-attribute constructs.

The scopes are resolved to campaign names at config load; these tests show that the
real-time check, which reads the config's rules itself (no Spark, no solver), enforces
them on the offers they select and on no other, and that its capacity notes count a
contact at its offer's own channel cost and sum an offer attribute.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from offer_scopes import HIGH_MARGIN
from offer_scopes import offers_config as shared_offers_config

from contact_spark.config import AppConfig
from contact_spark.realtime import Snapshot, check

from .world import RUN_ID, customer_row, write_world

JAN, FEB, APR = dt.date(2027, 1, 12), dt.date(2027, 2, 12), dt.date(2027, 4, 12)


def offers_config(base: Path, capacities: list[dict[str, Any]] | None = None) -> AppConfig:
    """The shared offer-attribute world (tests/offer_scopes.py), stored under ``base``."""
    return shared_offers_config(capacities or [], **{"storage.base_path": str(base)})


def test_attribute_scoped_rules_refuse_the_offers_they_select(tmp_path: Path) -> None:
    """C1 was sent SOLUTION (margin 200) in December 2026, C2 CROSS_SELLING (margin 30).

    * high_margin_per_quarter: another SOLUTION before March is refused for C1, allowed in
      April (the December contact has left the window); CROSS_SELLING is out of its scope;
    * commodity_apart_from_product: C2's planned CROSS_SELLING in January keeps SOLUTION
      out of January, on any channel, and not out of February.
    """
    base = tmp_path / "lakehouse"
    history = [("C1", -1, "SOLUTION", "DEM"), ("C2", -1, "CROSS_SELLING", "DEM")]
    plan = [("C2", 0, "CROSS_SELLING", "SMS")]
    write_world(base, [customer_row("C1"), customer_row("C2")], history, plan)
    snap = Snapshot.load(offers_config(base), RUN_ID)

    refused = check(snap, "C1", "SOLUTION", "TLS", FEB)
    assert [r.rule for r in refused.reasons] == ["high_margin_per_quarter"]
    assert "2026-12..2027-02" in refused.reasons[0].detail
    assert check(snap, "C1", "SOLUTION", "TLS", APR).allowed
    assert check(snap, "C1", "CROSS_SELLING", "TLS", FEB).allowed
    apart = check(snap, "C2", "SOLUTION", "TLS", JAN)
    assert [r.rule for r in apart.reasons] == ["commodity_apart_from_product"]
    assert check(snap, "C2", "SOLUTION", "TLS", FEB).allowed


def test_capacity_notes_count_offer_scopes_offer_costs_and_offer_attributes(tmp_path: Path) -> None:
    """C2 has a SOLUTION call planned in January.

    * product_calls (high-margin offers, 1 call a month): a SOLUTION call is counted against
      it, a CROSS_SELLING call is not in its scope;
    * call_budget (calls' cost, 40 a month): C2's planned call costs 25, so another
      SOLUTION call makes 50 (over), a CROSS_SELLING call 29 (at the channel's 4);
    * margin_budget (summed margin, 300 a month): 200 planned, 400 with another SOLUTION
      contact, 230 with a CROSS_SELLING one.
    """
    base = tmp_path / "lakehouse"
    plan = [("C2", 0, "SOLUTION", "TLS")]
    write_world(base, [customer_row("C1"), customer_row("C2")], [], plan)
    capacities = [
        {"name": "product_calls", "campaigns": HIGH_MARGIN, "channels": ["TLS"], "max": 1},
        {"name": "call_budget", "measure": "sum", "column": "cost", "channels": ["TLS"], "max": 40},
        {"name": "margin_budget", "measure": "sum", "column": "margin", "max": 300},
    ]
    snap = Snapshot.load(offers_config(base, capacities), RUN_ID)
    product = check(snap, "C1", "SOLUTION", "TLS", JAN)
    assert [(n.code, n.rule, n.detail) for n in product.notes] == [
        (
            "CAPACITY_EXCEEDED",
            "product_calls",
            "contacts in 2027-01: 1 planned or confirmed, 2 with this one, max 1",
        ),
        (
            "CAPACITY_EXCEEDED",
            "call_budget",
            "cost in 2027-01: 25 planned or confirmed, 50 with this one, max 40",
        ),
        (
            "CAPACITY_EXCEEDED",
            "margin_budget",
            "margin in 2027-01: 200 planned or confirmed, 400 with this one, max 300",
        ),
    ]
    commodity = check(snap, "C1", "CROSS_SELLING", "TLS", JAN)
    assert [(n.code, n.rule, n.detail) for n in commodity.notes] == [
        ("CAPACITY", "call_budget", "cost in 2027-01: 25 planned or confirmed, 29 with this one, max 40"),
        (
            "CAPACITY",
            "margin_budget",
            "margin in 2027-01: 200 planned or confirmed, 230 with this one, max 300",
        ),
    ]
