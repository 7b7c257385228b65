"""Plans under the offer-attribute constructs, pinned and computed by hand.

The config is loaded, compiled and solved as the planning stage does it
(``planning.frame.layout_for``, ``StaticInputs.from_config``, ``solver.kernel.solve``), on one
customer, without Spark: the pins are the optimum worked out in each docstring.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from contact_spark.config import AppConfig, config_from_dict
from contact_spark.planning.frame import layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch


def offers_config(rules: list[dict[str, Any]], **campaign_keys: dict[str, Any]) -> AppConfig:
    """Three offers; e-mail costs 1, a call 4; a 3-month plan weighing 1, 1.2 and 1.1 a month."""
    campaigns: dict[str, dict[str, Any]] = {
        "POWER_FIX": {"success_value": 100.0, "family": "power", "attributes": {"margin": 60}},
        "POWER_EV": {"success_value": 80.0, "family": "power", "attributes": {"margin": 20}},
        "GAS_FIX": {"success_value": 50.0, "family": "gas", "attributes": {"margin": 30}},
    }
    for name, keys in campaign_keys.items():
        campaigns[name] = {**campaigns[name], **keys}
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 3},
            "campaigns": campaigns,
            "channels": {
                "DEM": {"cost": 1.0, "contact_kind": "email"},
                "TLS": {"cost": 4.0, "contact_kind": "phone"},
            },
            "seasonality": [1.0, 1.2, 1.1],
            "policy": {"rules": rules},
        }
    )


def plan_of(config: AppConfig, propensity: dict[str, float]) -> tuple[list[tuple[dt.date, str, str]], float]:
    """One customer with ``propensity`` per channel on every offer: its plan and value."""
    layout, policy = layout_for(config)
    p = np.array([[[propensity[h] for h in layout.channels] for _ in layout.campaigns]])
    static = StaticInputs.from_config(config)
    batch = KernelBatch(
        propensity=p,
        eligible=np.ones_like(p, dtype=bool),
        history=np.zeros((1, max(layout.history_months, 1), *p.shape[1:]), dtype=np.int64),
        success_value=static.success_value,
        channel_cost=static.channel_cost,
        horizon=layout.horizon,
        seasonality=static.seasonality,
    )
    result = solve(policy, batch)
    assert result.status[0] == ErrorCode.OK
    months = config.run.months()
    plan = [
        (months[t], layout.campaigns[c], layout.channels[h])
        for t, c, h in zip(*np.nonzero(result.x[0]), strict=True)
    ]
    return plan, float(result.objective[0])


ONE_A_MONTH = {"name": "one_a_month", "type": "max_offers", "window_months": 1, "limit": 1}
NO_REPEAT = {"name": "no_repeat", "type": "max_offers", "per_campaign": True, "window_months": 2, "limit": 1}
PREMIUM_POWER = {
    "name": "premium_power_once",
    "type": "max_offers",
    "campaigns": {"where": "family = 'power' AND margin > 50"},
    "window_months": 3,
    "limit": 1,
}
JAN, FEB, MAR = dt.date(2027, 1, 1), dt.date(2027, 2, 1), dt.date(2027, 3, 1)


def test_an_attribute_scoped_rule_binds_the_offers_it_selects_only() -> None:
    """Pinned because it is the optimum by hand, and differs from the plan without the rule.

    Propensity 0.5 by e-mail (calls never pay here: 0 by phone). An e-mail is worth
    POWER_FIX 0.5·100 − 1 = 49, POWER_EV 39, GAS_FIX 24, times 1.2 in February. One contact
    a month, never the same offer two months running. ``premium_power_once`` selects
    ``family = 'power' AND margin > 50`` = POWER_FIX alone: once in the quarter. Best:
    POWER_EV, POWER_FIX (in the heaviest month), POWER_EV = 39 + 58.8 + 42.9 = 140.7.
    Without the rule: POWER_FIX, POWER_EV, POWER_FIX = 49 + 46.8 + 53.9 = 149.7.
    """
    email = {"DEM": 0.5, "TLS": 0.0}
    plan, value = plan_of(offers_config([ONE_A_MONTH, NO_REPEAT, PREMIUM_POWER]), email)
    assert plan == [(JAN, "POWER_EV", "DEM"), (FEB, "POWER_FIX", "DEM"), (MAR, "POWER_EV", "DEM")]
    assert value == pytest.approx(140.7)
    free, free_value = plan_of(offers_config([ONE_A_MONTH, NO_REPEAT]), email)
    assert free == [(JAN, "POWER_FIX", "DEM"), (FEB, "POWER_EV", "DEM"), (MAR, "POWER_FIX", "DEM")]
    assert free_value == pytest.approx(149.7)


ONCE_A_QUARTER = {
    "name": "once_a_quarter",
    "type": "max_offers",
    "per_campaign": True,
    "window_months": 3,
    "limit": 1,
}


def test_an_offer_that_costs_more_on_a_channel_is_planned_by_its_cost_there() -> None:
    """Pinned because it is the optimum by hand, and the channel costs change it.

    Propensity 0.2 by e-mail, 0.5 by phone; one contact a month, each offer once in the
    quarter, so the three offers take one month each, the best in February (×1.2), the
    next in March (×1.1). A call is worth POWER_FIX 0.5·100 − 4 = 46, POWER_EV 36, GAS_FIX
    21 (an e-mail: 19, 15, 9): GAS_FIX, POWER_FIX, POWER_EV, all called = 21 + 55.2 + 39.6
    = 115.8. A POWER_FIX call costing 40 (``channel_costs: {TLS: 40}``) is worth 10 < its
    e-mail's 19: POWER_FIX by e-mail in January, POWER_EV in February, GAS_FIX in March =
    19 + 43.2 + 23.1 = 85.3.
    """
    rules = [ONE_A_MONTH, ONCE_A_QUARTER]
    mixed = {"DEM": 0.2, "TLS": 0.5}
    plan, value = plan_of(offers_config(rules), mixed)
    assert plan == [(JAN, "GAS_FIX", "TLS"), (FEB, "POWER_FIX", "TLS"), (MAR, "POWER_EV", "TLS")]
    assert value == pytest.approx(115.8)
    costly = offers_config(rules, POWER_FIX={"channel_costs": {"TLS": 40.0}})
    plan, value = plan_of(costly, mixed)
    assert plan == [(JAN, "POWER_FIX", "DEM"), (FEB, "POWER_EV", "TLS"), (MAR, "GAS_FIX", "TLS")]
    assert value == pytest.approx(85.3)
