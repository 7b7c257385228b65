"""Every documented capacity kind through the plan stage (``planning.stage.solve_plan``), on
one small world whose optimum is worked out by hand, and the Lagrangian settings as the
engine reads them (docs/config_coverage.md lists which test runs each option).

Four groups of customers (T, D, S, E), each eligible on one slice of the catalogue only, so
that each rule binds on its own group and the optimum is the sum of four small ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.capacity.columns import COLUMN_SCHEMA
from contact_spark.capacity.constraints import expand_capacities
from contact_spark.capacity.engine import CapacityEngine
from contact_spark.config import AppConfig, config_from_dict
from contact_spark.config.capacity import LagrangianSettings
from contact_spark.planning.frame import customer_frame, layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.planning.stage import SolvedPlan, _attribute_columns, default_scope, solve_plan
from tests.capacity.test_offer_capacity import margin_config

CAMPAIGNS = ("OFFER", "EXTRA")
CHANNELS = ("DEM", "SMS", "TLS")
# customer: (campaign, channel, propensity, annual_value): the one cell it is eligible on.
CELLS: dict[str, tuple[str, str, float, float]] = {
    "T1": ("OFFER", "TLS", 0.8, 0.0),
    "T2": ("OFFER", "TLS", 0.3, 0.0),
    "T3": ("OFFER", "TLS", 0.4, 0.0),
    "D1": ("OFFER", "DEM", 0.3, 100.0),
    "D2": ("OFFER", "DEM", 0.5, 200.0),
    "D3": ("OFFER", "DEM", 0.9, 300.0),
    "S1": ("OFFER", "SMS", 0.9, 0.0),
    "S2": ("OFFER", "SMS", 0.8, 0.0),
    "S3": ("OFFER", "SMS", 0.7, 0.0),
    "S4": ("OFFER", "SMS", 0.6, 0.0),
    "E1": ("EXTRA", "TLS", 0.09, 0.0),
    "E2": ("EXTRA", "TLS", 0.08, 0.0),
    "E3": ("EXTRA", "TLS", 0.05, 0.0),
}
CALL_MIX = {  # the average of a contact measure, scoped by campaign and channel
    "name": "call_mix",
    "measure": "average",
    "column": "propensity",
    "campaigns": ["OFFER"],
    "channels": ["TLS"],
    "period": "year",
    "max": 0.45,
}
VALUE_BUDGET = {  # the sum of a numeric customers column
    "name": "value_budget",
    "measure": "sum",
    "column": "annual_value",
    "channels": ["DEM"],
    "period": "year",
    "max": 400,
}
EXTRA_FLOOR = {  # a minimum in one month only, given as a month exception
    "name": "extra_floor",
    "campaigns": ["EXTRA"],
    "channels": ["TLS"],
    "exceptions": [{"month": "2027-02-01", "min": 2}],
}
EVEN_SMS = {"name": "even_sms", "channels": ["SMS"], "tolerance": 0.5}


def world_config(capacities: dict[str, Any]) -> AppConfig:
    """January and February, February worth half (seasonality); one contact per customer over
    the two months; every contact costs 0 except an EXTRA call (10, its channel_costs)."""
    return config_from_dict(
        {
            "run": {"first_month": "2027-01-01", "horizon_months": 2},
            "seasonality": [1.0, 0.5],
            "campaigns": {
                "OFFER": {"success_value": 100.0},
                "EXTRA": {"success_value": 100.0, "channel_costs": {"TLS": 10.0}},
            },
            "channels": {
                "DEM": {"cost": 0.0, "contact_kind": "email"},
                "SMS": {"cost": 0.0, "contact_kind": "mobile"},
                "TLS": {"cost": 0.0, "contact_kind": "phone"},
            },
            "policy": {
                "rules": [{"name": "one_contact", "type": "max_offers", "window_months": 2, "limit": 1}]
            },
            "capacities": capacities,
        }
    )


def plan_world(spark: SparkSession, config: AppConfig, groups: str) -> SolvedPlan:
    """The plan stage's solve for the customers of ``groups`` (first letters of their ids),
    each eligible on its own cell only; nothing is recorded (no store)."""
    cells = {c: cell for c, cell in CELLS.items() if c[0] in groups}
    rows = []
    for customer, (campaign, channel, p, _) in cells.items():
        for c in CAMPAIGNS:
            for h in CHANNELS:
                own = (c, h) == (campaign, channel)
                rows.append((customer, c, h, own, p if own else 0.0, f"{customer}-{h}"))
    elig = spark.createDataFrame(
        rows,
        "customer_id string, campaign string, channel string, eligible boolean, propensity double, "
        "contact_id string",
    )
    customers = spark.createDataFrame(
        [(c, cell[3]) for c, cell in cells.items()], "customer_id string, annual_value double"
    )
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    contacts = elig.select(
        "customer_id", "channel", "contact_id", F.concat(F.lit("to-"), "contact_id").alias("contact")
    ).distinct()
    return solve_plan(
        spark, None, config, default_scope(config), elig, history, customers, "r1", contacts=contacts
    )


def planned(solved: SolvedPlan) -> list[tuple[str, int, str, str, float]]:
    return sorted(
        (r["customer_id"], r["month"].month, r["campaign"], r["channel"], round(r["expected_value"], 9))
        for r in solved.plan.collect()
    )


def test_every_documented_capacity_kind_holds_in_the_plan_stage(spark: SparkSession) -> None:
    """The optimum by hand (a contact is worth p × 100 in January, half in February; an EXTRA
    call p × 100 − 10, halved in February):

    * call_mix, the average propensity of OFFER's calls <= 0.45: T2 and T3 (mean 0.35,
      30 + 40); any set with T1 averages 0.5 or more: 70;
    * value_budget, annual value of the e-mailed customers <= 400: D1 + D3 (400, 30 + 90)
      beat D2 + D3 (500, over) and D1 + D2 (80): 120;
    * even_sms, each month within ±50 % of the monthly average: January <= 3 × February, so
      S4, the least valuable, moves to February (0.6 × 50 = 30): 90 + 80 + 70 + 30 = 270;
    * extra_floor, two EXTRA calls in February: E1 and E2, the smallest losses
      ((9 − 10) / 2 = −0.5 and (8 − 10) / 2 = −1): −1.5.

    Total 458.5. The scope matters: counted with EXTRA's calls (p 0.05-0.09), T1's call
    would fit the average. Two batches: the customer frame has two partitions (the plan is
    the same with 1, 3 or the default 4).
    """
    config = world_config(
        {
            "rules": [CALL_MIX, VALUE_BUDGET, EXTRA_FLOOR],
            "spread": [EVEN_SMS],
            "lagrangian": {"batches": 2},
        }
    )
    solved = plan_world(spark, config, "TDSE")
    plan = planned(solved)
    assert plan == [
        ("D1", 1, "OFFER", "DEM", 30.0),
        ("D3", 1, "OFFER", "DEM", 90.0),
        ("E1", 2, "EXTRA", "TLS", -0.5),
        ("E2", 2, "EXTRA", "TLS", -1.0),
        ("S1", 1, "OFFER", "SMS", 90.0),
        ("S2", 1, "OFFER", "SMS", 80.0),
        ("S3", 1, "OFFER", "SMS", 70.0),
        ("S4", 2, "OFFER", "SMS", 30.0),
        ("T2", 1, "OFFER", "TLS", 30.0),
        ("T3", 1, "OFFER", "TLS", 40.0),
    ]
    result = solved.capacity
    assert result.primal_value == pytest.approx(458.5, abs=1e-9)
    usage = {c.name: round(float(u), 9) for c, u in zip(result.constraints, result.usage, strict=True)}
    assert usage == {
        "call_mix:max": -0.2,  # Σ (p − 0.45): −0.15 − 0.05
        "value_budget:max": 400.0,
        "extra_floor[2027-02]:min": 2.0,  # January has no bound: no constraint
        "even_sms[2027-01]:max": 0.0,  # 3 − 1.5 × 4 / 2
        "even_sms[2027-01]:min": 2.0,  # 3 − 0.5 × 4 / 2
        "even_sms[2027-02]:max": -2.0,
        "even_sms[2027-02]:min": 0.0,
    }
    assert not result.max_violations() and not result.shortfalls()
    assert solved.frame.rdd.getNumPartitions() == 2
    solved.frame.unpersist()


def test_a_primal_round_missing_a_minimum_never_replaces_the_plan(spark: SparkSession) -> None:
    """The whole world with two rules only: an average minimum on the calls (mean propensity
    >= 0.55) and the SMS spread. Before,
    a primal round that met every max but not the minimums counted as feasible, replaced
    the repaired plan, and its re-solve failed the check of every constraint: the plan stage
    crashed ("re-solving a feasible primal round gave an infeasible plan").

    Now the stage ends with every max exact and the spread met (S4 in February, as in the
    test above). The average minimum is not always met by the engine (minimums are pursued
    by prices only, docs/capacity.md): a miss is reported as its shortfall, nothing else is.
    """
    quality = {**CALL_MIX, "name": "call_quality", "max": None, "min": 0.55}
    config = world_config({"rules": [quality], "spread": [EVEN_SMS], "lagrangian": {"batches": 4}})
    solved = plan_world(spark, config, "TDSE")
    result = solved.capacity
    assert not result.max_violations()
    assert set(result.shortfalls()) <= {"call_quality:min"}
    sms = [row for row in planned(solved) if row[3] == "SMS"]
    assert sms == [
        ("S1", 1, "OFFER", "SMS", 90.0),
        ("S2", 1, "OFFER", "SMS", 80.0),
        ("S3", 1, "OFFER", "SMS", 70.0),
        ("S4", 2, "OFFER", "SMS", 30.0),
    ]
    solved.frame.unpersist()


def margin_engine(spark: SparkSession, **settings: Any) -> CapacityEngine:
    """The two-customer margin world of tests/capacity/test_fill.py (A p 0.6, B p 0.5; offers
    of margin 60 and 30; a margin budget of 90), built as the plan stage builds it."""
    config = margin_config([{"name": "margin_budget", "measure": "sum", "column": "margin", "max": 90}])
    layout, policy = layout_for(config)
    elig = spark.createDataFrame(
        [(c, o, "DEM", True, p) for c, p in (("A", 0.6), ("B", 0.5)) for o in ("POWER_FIX", "GAS_FIX")],
        "customer_id string, campaign string, channel string, eligible boolean, propensity double",
    )
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    frame = customer_frame(elig, history, layout, config.run.first_month, 1)
    frame = _attribute_columns(frame, elig, elig.select("customer_id"), layout, config, ["margin"])
    return CapacityEngine(
        spark,
        frame.persist(),
        policy,
        layout,
        StaticInputs.from_config(config),
        expand_capacities(config.capacities, layout, config.run.months()),
        LagrangianSettings.model_validate(settings),
        ["margin"],
    )


def test_the_dual_phase_takes_its_box_its_smoothing_and_its_tolerance_from_the_settings(
    spark: SparkSession,
) -> None:
    """At prices 0 both customers take POWER_FIX, worth 0.6 × 100 − 1 = 59 and 49: the mean
    contact value is 54, so a smoothing of 0.2 charges at most 0.2 × 54 = 10.8 a contact.
    After one iteration the box still has its initial radius (the first point is the
    centre, neither a serious nor a null step). A gap tolerance of 1 (the largest) lets the
    phase stop as converged at once; the default 0.001 needs more iterations."""
    engine = margin_engine(spark, max_iterations=1, initial_step=0.25, smoothing=0.2)
    state = engine._dual_phase(resume=False)
    assert state.value_scale == pytest.approx(54.0, abs=1e-12)
    assert state.radius == 0.25
    assert np.max(engine.perturbation) == pytest.approx(10.8, abs=1e-12)
    engine.frame.unpersist()

    loose = margin_engine(spark, max_iterations=30, gap_tolerance=1.0)
    stopped = loose._dual_phase(resume=False)
    strict = margin_engine(spark, max_iterations=30)
    default = strict._dual_phase(resume=False)
    assert stopped.converged and default.converged
    assert stopped.iteration < default.iteration
    loose.frame.unpersist()
    strict.frame.unpersist()


def test_the_master_step_takes_its_price_sets_customers_and_rounds_from_the_settings(
    spark: SparkSession,
) -> None:
    """What the restricted master reads from the settings, on the engine's own methods.

    Price sets: the kept prices, the dual centre, then an even spread of the primal rounds,
    latest first, at most ``master_price_sets`` vectors. Customers: of the split customers
    only the ``master_max_customers`` whose columns differ most in value (``spread``) go to
    the master; another keeps its price-set-0 column, added to the fixed totals (C: value 4,
    one call). Rounds: ``master_rounds: 0`` runs no column generation at all."""
    kept, centre = np.array([9.0]), np.array([8.0])
    trail = [np.array([float(r)]) for r in range(5)]  # five primal rounds' prices

    def price_sets(limit: int) -> list[float]:
        engine = margin_engine(spark, master_price_sets=limit)
        engine._best_prices, engine._price_trail = kept, trail
        return [float(p[0]) for p in engine._price_sets(centre)]

    assert price_sets(8) == [9.0, 8.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    assert price_sets(3) == [9.0, 8.0, 0.0]
    assert price_sets(1) == [9.0]

    cols = spark.createDataFrame(
        [
            (None, None, 100.0, [1.0], None, 5),  # a task's fixed customers: 5, one call used
            ("A", [0], 10.0, [1.0], 10.0, 1),
            ("A", [1], 0.0, [0.0], 10.0, 1),
            ("B", [0], 9.0, [1.0], 9.0, 1),
            ("B", [2], 0.0, [0.0], 9.0, 1),
            ("C", [0, 1], 4.0, [1.0], 0.5, 1),
            ("C", [2], 3.5, [0.0], 0.5, 1),
        ],
        COLUMN_SCHEMA,
    )
    capped = margin_engine(spark, master_max_customers=2)
    found = capped._columns(cols)
    assert found is not None
    columns, fixed_value, fixed_usage, base = found
    assert columns.customers.tolist() == ["A", "A", "B", "B"]
    assert (fixed_value, fixed_usage.tolist(), base) == (104.0, [2.0], 8)
    whole = margin_engine(spark)._columns(cols)
    assert whole is not None and whole[0].customers.tolist() == ["A", "A", "B", "B", "C", "C"]
    assert (whole[1], whole[2].tolist()) == (100.0, [1.0])

    no_rounds = margin_engine(spark, master_rounds=0)
    generated, _, _, args, rounds = no_rounds._generate(cols, found, set(), [])
    assert rounds == 0 and args == [] and generated is columns
