"""The fill step (``capacity/fill.py``): a contact that no price makes a customer's choice
but that fits the room the plan leaves is added; the plan itself is always kept."""

from __future__ import annotations

import numpy as np
from pyspark.sql import SparkSession

from contact_spark.capacity.columns import usage_matrix
from contact_spark.capacity.constraints import Constraint, expand_capacities
from contact_spark.capacity.engine import CapacityEngine
from contact_spark.capacity.fill import fitting_cells, kept_batch, room
from contact_spark.config.capacity import LagrangianSettings
from contact_spark.planning.frame import customer_frame, layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.planning.stage import _attribute_columns
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import KernelBatch
from tests.capacity.test_offer_capacity import margin_config

MARGIN = np.array([60.0, 30.0])  # POWER_FIX, GAS_FIX


def margin_budget(bound: float) -> Constraint:
    """Σ margin of the month's e-mails ≤ bound (attribute constraint, offset 0)."""
    return Constraint("margin_budget", "margin_budget", "max", bound, np.ones((1, 2, 1)), attr="margin")


def test_the_room_of_a_margin_budget_admits_the_small_offer_only() -> None:
    """Budget 90, plan A: POWER_FIX (margin 60): room 30, so GAS_FIX (30) fits, POWER_FIX not."""
    budget = margin_budget(90.0)
    slack = room([budget], np.array([60.0]), frozenset())
    assert slack.tolist() == [30.0]
    attr = {"margin": np.broadcast_to(MARGIN[None, :, None], (2, 2, 1))}
    fits = fitting_cells([budget], usage_matrix([budget], (1, 2, 1)), attr, slack, 2)
    assert fits.tolist() == [[False, True], [False, True]]
    # A min the plan does not meet has infinite room: it never blocks an addition.
    assert room([budget], np.array([60.0]), frozenset({"margin_budget"})).tolist() == [np.inf]


def test_the_kernel_keeps_the_plan_and_adds_what_fits() -> None:
    """A (p 0.6) keeps its POWER_FIX e-mail and cannot take a second offer that month (one
    contact a customer); B (p 0.5) takes GAS_FIX, worth 0.5 × 50 − 1 = 24: the plan goes
    from 59 to the optimum 83 (tests/capacity/test_offer_capacity.py), although at every
    price B prefers POWER_FIX or nothing."""
    config = margin_config([])
    policy = compile_policy(config.policy, ["POWER_FIX", "GAS_FIX"], ["DEM"])
    batch = KernelBatch(
        propensity=np.array([[[0.6], [0.6]], [[0.5], [0.5]]]),
        eligible=np.ones((2, 2, 1), dtype=bool),
        history=np.zeros((2, 1, 2, 1), dtype=np.int64),
        success_value=np.array([100.0, 50.0]),
        channel_cost=np.array([1.0]),
        horizon=1,
    )
    current = np.zeros((2, 1, 2, 1), dtype=bool)
    current[0, 0, 0, 0] = True  # A: POWER_FIX
    fits = np.array([[False, True], [False, True]])
    x = np.asarray(solve(policy, kept_batch(batch, current, fits)).x, dtype=bool)
    assert x[:, 0, :, 0].tolist() == [[True, False], [False, True]]


def test_the_engine_reaches_the_optimum_no_price_can_reach(spark: SparkSession) -> None:
    """The two-customer margin instance end to end (Spark, the Lagrangian engine with a
    short dual phase): before the fill step the engine kept 59 (A's POWER_FIX alone, a
    31 % gap); the optimum 83 needs B's GAS_FIX, which no price makes B's choice."""
    config = margin_config([{"name": "margin_budget", "measure": "sum", "column": "margin", "max": 90}])
    layout, policy = layout_for(config)
    eligibility = spark.createDataFrame(
        [(c, o, "DEM", True, p) for c, p in (("A", 0.6), ("B", 0.5)) for o in ("POWER_FIX", "GAS_FIX")],
        "customer_id string, campaign string, channel string, eligible boolean, propensity double",
    )
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    constraints = expand_capacities(config.capacities, layout, config.run.months())
    frame = customer_frame(eligibility, history, layout, config.run.first_month, 1)
    frame = _attribute_columns(
        frame, eligibility, eligibility.select("customer_id"), layout, config, ["margin"]
    )
    engine = CapacityEngine(
        spark,
        frame.persist(),
        policy,
        layout,
        StaticInputs.from_config(config),
        constraints,
        LagrangianSettings(max_iterations=3, repair_rounds=1, master_node_limit=0),
        ["margin"],
    )
    result = engine.run()
    assert round(result.primal_value, 9) == 83.0
    assert result.usage.tolist() == [90.0]
    assert engine.fill_outcome is not None and engine.fill_outcome.customers >= 1
