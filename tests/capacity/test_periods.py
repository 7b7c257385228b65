"""Capacity periods (quarter, rolling window, whole horizon) and date-range exceptions,
optionally recurring every year: each construct's optimum worked out by hand.

One campaign by e-mail (worth 100, cost 1), customers A (propensity 0.5, a contact worth
49 × the month's seasonality) and B (0.3, worth 29 ×). The constraints are expanded from
the config as the planning stage does it and solved by the exact global MILP
(``capacity.reference``, without Spark): the pins are the optima of the docstrings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from contact_spark.capacity.constraints import expand_capacities
from contact_spark.capacity.reference import solve_reference
from contact_spark.config import AppConfig, config_from_dict
from contact_spark.planning.frame import layout_for
from contact_spark.planning.solve import StaticInputs

PROPENSITY = {"A": 0.5, "B": 0.3}


def dem_config(
    first_month: str, seasonality: list[float], capacity: dict[str, Any], **extra: Any
) -> AppConfig:
    return config_from_dict(
        {
            "run": {"first_month": first_month, "horizon_months": len(seasonality)},
            "seasonality": seasonality,
            "campaigns": {"OFFER": {"success_value": 100.0}},
            "channels": {"DEM": {"cost": 1.0, "contact_kind": "email"}},
            "policy": {"rules": [{"name": "one", "type": "max_offers", "window_months": 1, "limit": 1}]},
            "capacities": {"rules": [{"name": "dem", "channels": ["DEM"], **capacity}]},
            **extra,
        }
    )


def optimum(config: AppConfig) -> tuple[list[tuple[str, str]], float]:
    """The global optimum: planned (customer, YYYY-MM) in order, and its value."""
    layout, policy = layout_for(config)
    months = config.run.months()
    constraints = expand_capacities(config.capacities, layout, months)
    rows = [
        {
            "customer_id": customer,
            "propensity": [p] * layout.n_cells,
            "eligible": [True] * layout.n_cells,
            "history_index": [],
            "history_count": [],
        }
        for customer, p in PROPENSITY.items()
    ]
    result = solve_reference(
        pd.DataFrame(rows), policy, layout, StaticInputs.from_config(config), constraints
    )
    assert result.optimal
    plan = sorted(
        (result.customer_ids[i], f"{months[t]:%Y-%m}")
        for i, t, _, _ in zip(*np.nonzero(result.x), strict=True)
    )
    return plan, result.value


def bounds(config: AppConfig) -> list[tuple[str, str, float | None]]:
    """(constraint, period, max) of every constraint the engine builds."""
    layout, _ = layout_for(config)
    return [
        (c.name, c.label, c.bound) for c in expand_capacities(config.capacities, layout, config.run.months())
    ]


def test_quarters_cut_by_the_horizon_and_an_exception_on_a_date_range() -> None:
    """Pinned because it is the optimum by hand, and each quarter is its own period.

    February to July (seasonality 1, 2, 1, 3, 1, 2): the horizon's quarters are 2027-Q1
    (February, March: the first quarter's part in the horizon), Q2 (April to June) and Q3
    (July). At most 2 e-mails a quarter, 1 from April 1 to June 30 (the exception covers Q2
    whole). Q1: A and B in March (98 + 58); Q2: A in May (147); Q3: A and B in July
    (98 + 58). Total 459 (without the capacity: all 12 contacts, 702).
    """
    config = dem_config(
        "2027-02-01",
        [1, 2, 1, 3, 1, 2],
        {"period": "quarter", "max": 2, "exceptions": [{"from": "2027-04-01", "to": "2027-06-30", "max": 1}]},
    )
    assert bounds(config) == [
        ("dem[2027-Q1]:max", "2027-Q1", 2.0),
        ("dem[2027-Q2]:max", "2027-Q2", 1.0),
        ("dem[2027-Q3]:max", "2027-Q3", 2.0),
    ]
    plan, value = optimum(config)
    assert plan == [
        ("A", "2027-03"),
        ("A", "2027-05"),
        ("A", "2027-07"),
        ("B", "2027-03"),
        ("B", "2027-07"),
    ]
    assert value == pytest.approx(459.0)


def test_a_rolling_window_bounds_every_run_of_n_months() -> None:
    """Pinned because it is the optimum by hand, and neither months nor quarters give it.

    January to April (seasonality 1, 3, 1, 2): A's contacts are worth 49, 147, 49, 98, B's
    29, 87, 29, 58. At most 2 e-mails in any 3 consecutive months: the windows Jan–Mar and
    Feb–Apr. A in January, February and April (49 + 147 + 98 = 294) puts 2 in each window;
    both in February (234) fills both windows with one month, and February with April for A
    plus January for B is 274. Calendar quarters (2 in Jan–Mar, 2 in April) would allow 390.
    """
    config = dem_config("2027-01-01", [1, 3, 1, 2], {"period": "rolling", "months": 3, "max": 2})
    assert bounds(config) == [
        ("dem[2027-01..2027-03]:max", "2027-01..2027-03", 2.0),
        ("dem[2027-02..2027-04]:max", "2027-02..2027-04", 2.0),
    ]
    plan, value = optimum(config)
    assert plan == [("A", "2027-01"), ("A", "2027-02"), ("A", "2027-04")]
    assert value == pytest.approx(294.0)
    quarterly = dem_config("2027-01-01", [1, 3, 1, 2], {"period": "quarter", "max": 2})
    assert optimum(quarterly)[1] == pytest.approx(390.0)


def test_a_recurring_exception_applies_in_every_year_of_the_horizon() -> None:
    """Pinned because it is the optimum by hand: the exception is written for December 2025
    to January 2026 with ``every_year``, so it halves December 2027 and January 2028.

    November 2027 to February 2028, 2 e-mails a month, 1 in December and January: A and B in
    November and February, A alone in December and January: 4 × 49 + 2 × 29 = 254.
    """
    config = dem_config(
        "2027-11-01",
        [1, 1, 1, 1],
        {
            "max": 2,
            "exceptions": [{"from": "2025-12-01", "to": "2026-01-31", "every_year": True, "max": 1}],
        },
    )
    assert [(label, bound) for _, label, bound in bounds(config)] == [
        ("2027-11", 2.0),
        ("2027-12", 1.0),
        ("2028-01", 1.0),
        ("2028-02", 2.0),
    ]
    plan, value = optimum(config)
    assert plan == [
        ("A", "2027-11"),
        ("A", "2027-12"),
        ("A", "2028-01"),
        ("A", "2028-02"),
        ("B", "2027-11"),
        ("B", "2028-02"),
    ]
    assert value == pytest.approx(254.0)


def test_periods_of_every_kind_over_one_horizon() -> None:
    """The periods as the config lays them out (``CapacityRule.periods``), on a horizon
    starting in November: quarters cut at both ends, a rolling window longer than the
    horizon is the whole horizon once, and the old month exception form still works."""
    months = [dt.date(2027, 11, 1), dt.date(2027, 12, 1), dt.date(2028, 1, 1), dt.date(2028, 2, 1)]

    def layout(capacity: dict[str, Any]) -> list[tuple[int, int, str, float | None]]:
        config = dem_config("2027-11-01", [1, 1, 1, 1], capacity)
        return [(p.start, p.length, p.label, p.max) for p in config.capacities.rules[0].periods(months)]

    assert layout({"period": "quarter", "max": 5}) == [(0, 2, "2027-Q4", 5.0), (2, 2, "2028-Q1", 5.0)]
    # Tables name a period by its first month (None: the whole horizon); the report shows its label.
    quarterly = dem_config("2027-11-01", [1, 1, 1, 1], {"period": "quarter", "max": 5})
    assert quarterly.capacities.period_labels(months) == {
        ("dem", dt.date(2027, 11, 1)): "2027-Q4",
        ("dem", dt.date(2028, 1, 1)): "2028-Q1",
    }
    assert layout({"period": "rolling", "months": 6, "max": 5}) == [(0, 4, "2027-11..2028-02", 5.0)]
    assert layout({"period": "rolling", "months": 1, "max": 5}) == [
        (t, 1, f"{m:%Y-%m}", 5.0) for t, m in enumerate(months)
    ]
    assert layout({"period": "year", "max": 5}) == [(0, 4, "year", 5.0)]
    assert layout({"max": 5, "exceptions": [{"month": "2027-12-01", "max": 2}]})[:2] == [
        (0, 1, "2027-11", 5.0),
        (1, 1, "2027-12", 2.0),
    ]
    # Whole months may be written as YYYY-MM; an exception applies to the windows inside it.
    assert layout(
        {
            "period": "rolling",
            "months": 2,
            "max": 5,
            "exceptions": [{"from": "2027-12", "to": "2028-02", "max": 1}],
        }
    ) == [(0, 2, "2027-11..2027-12", 5.0), (1, 2, "2027-12..2028-01", 1.0), (2, 2, "2028-01..2028-02", 1.0)]
