"""The real-time check's capacity notes under a quarter (with a date-range exception) and a
rolling window: the note speaks for the rule's period holding the contact's month, and of
the rolling windows holding it, the fullest (no Spark, no tables: the index alone)."""

from __future__ import annotations

import datetime as dt

from contact_spark.config import load_config
from contact_spark.io.months import month_number
from contact_spark.realtime.capacity import CapacityIndex


def test_the_note_names_the_quarter_and_the_fullest_rolling_window() -> None:
    """Calls planned in January and March of 2027.

    * a call in February: Jan–Mar would hold 3 calls (max 2 in any 3 months: exceeded),
      Feb–Apr 2; the quarter 2027-Q1 3 (max 3: a note, no excess);
    * a call in August: 2027-Q3 takes its exception's max of 1 (July 1 to September 30) and
      holds none yet; every window holding August is empty (the first one is named).
    """
    config = load_config(
        overrides={
            "capacities.rules": [
                {"name": "calls_rolling", "channels": ["TLS"], "period": "rolling", "months": 3, "max": 2},
                {
                    "name": "calls_quarter",
                    "channels": ["TLS"],
                    "period": "quarter",
                    "max": 3,
                    "exceptions": [{"from": "2027-07-01", "to": "2027-09-30", "max": 1}],
                },
            ],
        }
    )
    index = CapacityIndex(config)

    def month(m: int) -> int:
        return month_number(dt.date(2027, m, 1))

    usage = {(month(1), "CROSS_SELLING", "TLS"): 1, (month(3), "SOLUTION", "TLS"): 1}
    notes = [(n.code, n.rule, n.detail) for n in index.notes(usage, month(2), ("CROSS_SELLING", "TLS"))]
    assert notes == [
        (
            "CAPACITY_EXCEEDED",
            "calls_rolling",
            "contacts in 2027-01..2027-03: 2 planned or confirmed, 3 with this one, max 2",
        ),
        ("CAPACITY", "calls_quarter", "contacts in 2027-Q1: 2 planned or confirmed, 3 with this one, max 3"),
    ]
    notes = [(n.code, n.rule, n.detail) for n in index.notes(usage, month(8), ("SOLUTION", "TLS"))]
    assert notes == [
        (
            "CAPACITY",
            "calls_rolling",
            "contacts in 2027-06..2027-08: 0 planned or confirmed, 1 with this one, max 2",
        ),
        ("CAPACITY", "calls_quarter", "contacts in 2027-Q3: 0 planned or confirmed, 1 with this one, max 1"),
    ]
