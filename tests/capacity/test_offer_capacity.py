"""A custom capacity summing a numeric offer attribute, like ``cost``: its plan, by hand.

The constraints are expanded from the config as the planning stage does it, with the
stage's per-cell attribute values (``planning.stage.cell_attribute``), and solved by the
exact global MILP (``capacity.reference``, the yardstick of the Lagrangian engine), without
Spark: the pin is the optimum worked out in the docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from contact_spark.capacity.constraints import attributes_needed, expand_capacities
from contact_spark.capacity.reference import solve_reference
from contact_spark.config import AppConfig, config_from_dict
from contact_spark.planning.frame import layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.planning.stage import cell_attribute


def margin_config(capacities: list[dict[str, Any]]) -> AppConfig:
    """Two offers by e-mail (cost 1) in one month: POWER_FIX (worth 100, margin 60) and
    GAS_FIX (worth 50, margin 30); one contact a customer."""
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 1},
            "campaigns": {
                "POWER_FIX": {"success_value": 100.0, "attributes": {"margin": 60}},
                "GAS_FIX": {"success_value": 50.0, "attributes": {"margin": 30}},
            },
            "channels": {"DEM": {"cost": 1.0, "contact_kind": "email"}},
            "policy": {"rules": [{"name": "one", "type": "max_offers", "window_months": 1, "limit": 1}]},
            "capacities": {"rules": capacities},
        }
    )


def optimum(config: AppConfig, propensity: dict[str, float]) -> tuple[list[tuple[str, str]], float]:
    layout, policy = layout_for(config)
    constraints = expand_capacities(config.capacities, layout, config.run.months())
    rows = []
    for customer, p in propensity.items():
        row: dict[str, Any] = {
            "customer_id": customer,
            "propensity": [p] * layout.n_cells,
            "eligible": [True] * layout.n_cells,
            "history_index": [],
            "history_count": [],
        }
        for name in attributes_needed(constraints):
            row[f"attr_{name}"] = cell_attribute(config, layout, name)
        rows.append(row)
    result = solve_reference(
        pd.DataFrame(rows), policy, layout, StaticInputs.from_config(config), constraints
    )
    assert result.optimal
    plan = [
        (result.customer_ids[i], layout.campaigns[c])
        for i, _, c, _ in zip(*np.nonzero(result.x), strict=True)
    ]
    return plan, result.value


def test_a_capacity_on_the_offers_margin_keeps_the_best_mix() -> None:
    """Pinned because it is the optimum by hand, and the margin capacity changes it.

    A converts with 0.6, B with 0.5: POWER_FIX is worth 59 to A and 49 to B, GAS_FIX 29 and
    24. Without a capacity both get POWER_FIX (108, margin 120). With the margin of the
    month's contacts at most 90: A POWER_FIX and B GAS_FIX = 83 (margin 90) beats A GAS_FIX
    and B POWER_FIX = 78 and A POWER_FIX alone = 59.
    """
    customers = {"A": 0.6, "B": 0.5}
    free, free_value = optimum(margin_config([]), customers)
    assert free == [("A", "POWER_FIX"), ("B", "POWER_FIX")] and free_value == pytest.approx(108.0)
    capped = margin_config([{"name": "margin_budget", "measure": "sum", "column": "margin", "max": 90}])
    assert cell_attribute(capped, layout_for(capped)[0], "margin") == [60.0, 30.0]
    plan, value = optimum(capped, customers)
    assert plan == [("A", "POWER_FIX"), ("B", "GAS_FIX")]
    assert value == pytest.approx(83.0)


def test_success_value_is_a_per_offer_capacity_column_like_any_numeric_attribute() -> None:
    """``column: success_value`` (docs/capacity.md's mean_value_of_calls) reads each
    campaign's success value per cell, as ``margin`` reads its attribute: POWER_FIX 100,
    GAS_FIX 50; the engine then treats it as any per-cell constant
    (tests/capacity/test_fill.py runs ``margin`` through it)."""
    config = margin_config(
        [{"name": "mean_value", "measure": "average", "column": "success_value", "min": 60}]
    )
    layout = layout_for(config)[0]
    assert cell_attribute(config, layout, "success_value") == [100.0, 50.0]
    (constraint,) = expand_capacities(config.capacities, layout, config.run.months())
    assert (constraint.attr, constraint.offset, constraint.sense, constraint.bound) == (
        "success_value",
        60.0,
        "min",
        0.0,
    )
