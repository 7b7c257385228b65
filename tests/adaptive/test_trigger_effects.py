"""What an active trigger event does to a customer's months (``adaptive.triggers.month_overlay``):
a boost multiplies the propensity in its scope, a suppression closes its scope, a triggered
campaign opens on its channels, each for the event's months only."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession

from contact_spark.adaptive.triggers import month_overlay
from contact_spark.config import config_from_dict
from contact_spark.planning.frame import layout_for


def test_a_boost_a_suppression_and_a_triggered_campaign_last_their_months(spark: SparkSession) -> None:
    """One customer, four months, cells CROSS_SELLING, SOLUTION, MOVING_HOME × DEM, TLS with
    propensities 0.2, 0.4 | 0.1, 0.05 | none, 0.3 (the triggered call's configured one).

    * CONTRACT_ENDING on 10 February: CROSS_SELLING × 3 for February and March (the call,
      0.4 × 3, is capped at 1);
    * COMPLAINT on 3 March, suppressing calls for one month: no call in March;
    * MOVE on 1 April: MOVING_HOME's call (its only configured channel) opens in April;
      before, the triggered campaign is closed, and its e-mail never opens.
    """
    config = config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 4},
            "campaigns": {
                "CROSS_SELLING": {"success_value": 120.0},
                "SOLUTION": {"success_value": 450.0},
                "MOVING_HOME": {"success_value": 200.0, "trigger_only": True},
            },
            "channels": {
                "DEM": {"cost": 0.02, "contact_kind": "email"},
                "TLS": {"cost": 4.0, "contact_kind": "phone"},
            },
            "policy": {"rules": []},
            "triggers": {
                "events": {
                    "CONTRACT_ENDING": {
                        "months": 2,
                        "boost": {"campaigns": ["CROSS_SELLING"], "factor": 3.0},
                    },
                    "COMPLAINT": {"months": 1, "suppress": {"channels": ["TLS"]}},
                    "MOVE": {"months": 2, "campaign": "MOVING_HOME", "propensity": {"TLS": 0.3}},
                }
            },
        }
    )
    layout, _ = layout_for(config)
    eligibility = spark.createDataFrame(
        [
            ("A", "CROSS_SELLING", "DEM", 0.2),
            ("A", "CROSS_SELLING", "TLS", 0.4),
            ("A", "SOLUTION", "DEM", 0.1),
            ("A", "SOLUTION", "TLS", 0.05),
            ("A", "MOVING_HOME", "TLS", 0.3),
        ],
        "customer_id string, campaign string, channel string, propensity double",
    )
    active = spark.createDataFrame(
        [
            ("A", "CONTRACT_ENDING", dt.datetime(2027, 2, 10, 9)),
            ("A", "COMPLAINT", dt.datetime(2027, 3, 3, 17)),
            ("A", "MOVE", dt.datetime(2027, 4, 1, 8)),
        ],
        "customer_id string, event_type string, event_time timestamp",
    )
    row = month_overlay(eligibility, active, config, layout, 0).collect()[0]
    n = layout.n_cells
    eligible = [row["month_eligible"][t * n : (t + 1) * n] for t in range(4)]
    propensity = [row["month_propensity"][t * n : (t + 1) * n] for t in range(4)]
    # Cells: CS/DEM, CS/TLS, SOL/DEM, SOL/TLS, MH/DEM, MH/TLS
    assert eligible == [
        [True, True, True, True, False, False],
        [True, True, True, True, False, False],
        [True, False, True, False, False, False],
        [True, True, True, True, False, True],
    ]
    base = [0.2, 0.4, 0.1, 0.05, 0.0, 0.3]
    boosted = [0.6, 1.0, 0.1, 0.05, 0.0, 0.3]
    assert propensity == [pytest.approx(p, abs=1e-12) for p in (base, boosted, boosted, base)]
