"""The real-time check refuses a contact outside its campaign's flight (``OUTSIDE_FLIGHT``),
as the planner never plans one and the validator flags one (tests/test_calendars.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from contact_spark.config import load_config
from contact_spark.realtime import Snapshot, check

from .world import RUN_ID, customer_row, write_world

# SOLUTION runs March–June 2027, on TLS only May–June; CROSS_SELLING has no flight.
FLIGHT = {
    "from": "2027-03-01",
    "to": "2027-06-30",
    "channels": {"TLS": {"from": "2027-05", "to": "2027-06"}},
}


def test_a_contact_outside_the_flight_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A in every cell eligible, no policy: SOLUTION/DEM is refused in February (before the
    flight) and allowed in March; SOLUTION/TLS is refused in April (the channel's own range
    starts in May) and allowed in May; CROSS_SELLING (no flight) is allowed in February."""
    base = tmp_path / "lakehouse"
    write_world(base, [customer_row("A")], [], [])
    config = load_config(
        overrides={
            "storage.base_path": str(base),
            "policy.rules": [],
            "capacities.rules": [],
            "capacities.spread": [],
            "eligibility.rules": [],
            "campaigns.SOLUTION.flight": FLIGHT,
        }
    )
    snap = Snapshot.load(config, RUN_ID)
    feb, mar, apr, may = (dt.date(2027, m, 12) for m in (2, 3, 4, 5))
    outcome = {
        (campaign, channel, day.month): [r.code for r in check(snap, "A", campaign, channel, day).reasons]
        for campaign, channel, day in (
            ("SOLUTION", "DEM", feb),
            ("SOLUTION", "DEM", mar),
            ("SOLUTION", "TLS", apr),
            ("SOLUTION", "TLS", may),
            ("CROSS_SELLING", "DEM", feb),
        )
    }
    assert outcome == {
        ("SOLUTION", "DEM", 2): ["OUTSIDE_FLIGHT"],
        ("SOLUTION", "DEM", 3): [],
        ("SOLUTION", "TLS", 4): ["OUTSIDE_FLIGHT"],
        ("SOLUTION", "TLS", 5): [],
        ("CROSS_SELLING", "DEM", 2): [],
    }
    refused = check(snap, "A", "SOLUTION", "TLS", apr).reasons[0]
    assert (refused.rule, refused.detail) == (
        "outside_flight",
        "SOLUTION/TLS does not run in 2027-04 (campaigns.SOLUTION.flight)",
    )
