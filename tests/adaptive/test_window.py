"""Splitting the year's capacities at the re-plan month (no Spark)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from contact_spark.adaptive.window import ReplanWindowError, month_index, shifted_config, split_constraints
from contact_spark.capacity.constraints import expand_capacities
from contact_spark.config import load_config
from contact_spark.config.capacity import CapacitySettings
from contact_spark.planning.frame import layout_for

CONFIG = load_config()
LAYOUT, _ = layout_for(CONFIG)
MONTHS = CONFIG.run.months()


def _constraints(rules: dict) -> list:
    return expand_capacities(CapacitySettings.model_validate(rules), LAYOUT, MONTHS)


def test_a_yearly_budget_keeps_what_the_frozen_months_did_not_spend() -> None:
    constraints = _constraints(
        {
            "rules": [
                {
                    "name": "sms",
                    "measure": "sum",
                    "column": "cost",
                    "channels": ["SMS"],
                    "period": "year",
                    "max": 100,
                }
            ]
        }
    )
    counts = np.zeros((12, 2, 3))
    cost = np.zeros((12, 2, 3))
    cost[0, 0, 1], cost[1, 1, 1], cost[2, 0, 1] = 30.0, 12.5, 99.0  # month 2 is not frozen
    (carried,) = split_constraints(constraints, 2, counts, {"cost": cost})
    assert carried.used == 42.5
    assert carried.remaining.bound == 57.5
    assert carried.remaining.weight.shape == (10, 2, 3)


def test_monthly_limits_of_frozen_months_close_and_later_ones_keep_their_bound() -> None:
    constraints = _constraints({"rules": [{"name": "tls", "channels": ["TLS"], "max": 7}]})
    counts = np.zeros((12, 2, 3))
    counts[0, :, 2] = 4
    carried = split_constraints(constraints, 1, counts, {})
    assert [(c.original.name, c.used, c.remaining) for c in carried[:1]] == [("tls[2027-01]:max", 8.0, None)]
    assert [c.remaining.bound for c in carried[1:]] == [7.0] * 11


def test_an_exceeded_maximum_leaves_nothing_and_a_met_minimum_asks_nothing() -> None:
    constraints = _constraints(
        {"rules": [{"name": "dem", "channels": ["DEM"], "period": "year", "min": 5, "max": 10}]}
    )
    counts = np.zeros((12, 2, 3))
    counts[0, 0, 0] = 12
    by_sense = {c.original.sense: c.remaining.bound for c in split_constraints(constraints, 1, counts, {})}
    assert by_sense == {"min": -7.0, "max": 0.0}


def test_even_spreading_counts_the_frozen_months_in_the_yearly_average() -> None:
    """count_t − 1.5/12·Σ count ≤ 0 for a frozen month t becomes a bound on later months."""
    constraints = _constraints({"spread": [{"name": "even", "channels": ["TLS"], "tolerance": 0.5}]})
    counts = np.zeros((12, 2, 3))
    counts[0, 0, 2] = 24
    first_max = next(
        c for c in split_constraints(constraints, 1, counts, {}) if c.original.name == "even[2027-01]:max"
    )
    assert first_max.used == pytest.approx(24 - 1.5 / 12 * 24)
    assert first_max.remaining.bound == pytest.approx(-21.0)
    assert first_max.remaining.weight[0, 0, 2] == pytest.approx(-1.5 / 12)


def test_shifted_config_plans_the_rest_of_the_year() -> None:
    config = load_config(overrides={"seasonality": [float(i) for i in range(12)]})
    shifted = shifted_config(config, 3)
    assert shifted.run.months() == MONTHS[3:]
    assert shifted.seasonality == [float(i) for i in range(3, 12)]


def test_a_month_outside_the_plan_year_is_named() -> None:
    with pytest.raises(
        ReplanWindowError, match=re.escape("2026-12 is outside the plan year 2027-01..2027-12")
    ):
        month_index(CONFIG, dt.date(2026, 12, 5), "executed_through")
