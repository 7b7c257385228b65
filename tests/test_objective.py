"""``objective``: a contact worth p·v − cost (the default) or p·v alone, cost then counting
only in budgets; the same choice in eligibility, the solver, the greedy baseline,
``contact_decisions`` and the run metrics, and in the config fingerprint.

One customer, one offer worth 100 by e-mail at a cost of 2, propensity 0.01: the contact
is worth 0.01 × 100 − 2 = −1 under ``value_minus_cost`` (never planned) and 1 under
``value`` (planned). Pinned because the sign of that one number is the whole difference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import reduce

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.baseline.customers import customer_frame, per_customer
from contact_spark.config import AppConfig, config_from_dict
from contact_spark.config.fingerprint import config_hash
from contact_spark.eligibility.engine import compute_eligibility
from contact_spark.explain.decisions import contact_decisions
from contact_spark.planning.frame import layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import KernelBatch
from contact_spark.validation.metrics import plan_metrics

CUSTOMERS = (
    "customer_id string, household_id string, segment string, churn_risk boolean, outbound boolean, "
    "privacy_consent boolean, optout_dem boolean"
)


def config(objective: str | None) -> AppConfig:
    data = {
        "run": {"first_month": "2027-01-01", "horizon_months": 1},
        "campaigns": {"OFFER": {"success_value": 100.0}},
        "channels": {"DEM": {"cost": 2.0, "contact_kind": "email"}},
        "policy": {"rules": []},
        "capacities": {
            "rules": [{"name": "budget", "measure": "sum", "column": "cost", "period": "year", "max": 5}]
        },
    }
    if objective is not None:
        data["objective"] = objective
    return config_from_dict(data)


def no_history(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], "customer_id string, contact_date date, campaign string, channel string")


@pytest.fixture(scope="module")
def lean(spark: SparkSession) -> Iterator[SparkSession]:
    with temporary_conf(spark, LEAN) as lean:
        yield lean


def test_the_objective_is_part_of_the_config_and_its_fingerprint() -> None:
    """The default is left out of the dump, so configs written before the option keep their
    hash (and their run ids); ``value`` is another config."""
    default, explicit, value = config(None), config("value_minus_cost"), config("value")
    assert default.objective == "value_minus_cost" and "objective" not in default.model_dump()
    assert config_hash(explicit) == config_hash(default)
    assert config_hash(value) != config_hash(default)
    assert (default.objective_cost("OFFER", "DEM"), value.objective_cost("OFFER", "DEM")) == (2.0, 0.0)
    assert value.contact_cost("OFFER", "DEM") == 2.0  # the budget still counts the cost


@pytest.mark.parametrize(("objective", "planned"), [("value_minus_cost", False), ("value", True)])
def test_the_solver_plans_the_contact_only_under_value(objective: str, planned: bool) -> None:
    cfg = config(objective)
    _, policy = layout_for(cfg)
    static = StaticInputs.from_config(cfg)
    batch = KernelBatch(
        propensity=np.array([[[0.01]]]),
        eligible=np.ones((1, 1, 1), dtype=bool),
        history=np.zeros((1, 1, 1, 1), dtype=np.int64),
        success_value=static.success_value,
        channel_cost=static.channel_cost,
        horizon=1,
    )
    result = solve(policy, batch)
    assert bool(np.asarray(result.x).any()) is planned
    assert float(result.objective[0]) == pytest.approx(1.0 if planned else 0.0)


def test_eligibility_values_a_contact_without_its_cost_under_value(lean: SparkSession) -> None:
    """Under ``value`` eligibility's expected value is p·v = 1 (under the default it is
    p·v − cost, pinned by tests/eligibility/test_eligibility.py)."""
    cfg = config("value")
    customers = lean.createDataFrame([("A", "HA", "MASS", False, False, True, False)], CUSTOMERS)
    best = lean.createDataFrame(
        [("A", "DEM", "KA", "a@example.org", 900)],
        "customer_id string, channel string, contact_id string, contact string, score int",
    )
    propensities = lean.createDataFrame(
        [("A", "OFFER", "DEM", 0.01)],
        "customer_id string, campaign string, channel string, propensity double",
    )
    eligibility = compute_eligibility(lean, cfg, customers, best, propensities, "r").eligibility
    assert [(r["eligible"], r["expected_value"]) for r in eligibility.collect()] == [
        (True, pytest.approx(1.0))
    ]


@pytest.mark.parametrize(
    ("objective", "expected_value", "planned"),
    [("value_minus_cost", -1.0, []), ("value", 1.0, [("A", 0, 0)])],
)
def test_the_greedy_plans_the_contact_only_under_value(
    lean: SparkSession, objective: str, expected_value: float, planned: list[tuple[str, int, int]]
) -> None:
    """The greedy's per-customer pass takes contacts worth more than 0 (its capacity cuts do
    not look at value): eligibility's expected value, which carries the objective, decides."""
    cfg = config(objective)
    frame = customer_frame(eligibility_of(lean, expected_value), no_history(lean), cfg)
    greedy = per_customer(frame, cfg, "greedy").collect()
    assert [(r["customer_id"], r["m"], r["k"]) for r in greedy] == planned


def eligibility_of(spark: SparkSession, expected_value: float) -> DataFrame:
    """A's one eligible candidate, as the eligibility stage writes it under the objective."""
    return spark.createDataFrame(
        [("A", "OFFER", "DEM", True, [], 0.01, expected_value)],
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double",
    )


@pytest.mark.parametrize(
    ("objective", "expected_value", "reason", "detail"),
    [
        ("value_minus_cost", -1.0, "NOT_WORTH", "expected value -1.0000 ≤ 0 (propensity × value − cost)"),
        ("value", 1.0, "ROOM_LEFT", "worth 1.0000 in 2027-01"),
    ],
)
def test_contact_decisions_weigh_the_cost_only_under_value_minus_cost(
    lean: SparkSession, objective: str, expected_value: float, reason: str, detail: str
) -> None:
    """The contact left out of an empty plan: not worth it under ``value_minus_cost``; worth
    0.01 × 100 = 1 with room in the budget (2 of 5) under ``value``, so the plan could take
    it (ROOM_LEFT)."""
    cfg = config(objective)
    plan = lean.createDataFrame([], "customer_id string, month date, campaign string, channel string")
    decided = contact_decisions(
        lean, cfg, eligibility_of(lean, expected_value), plan, no_history(lean), "r"
    ).collect()
    assert [(r["decision"], r["reason_code"]) for r in decided] == [("NOT_PLANNED", reason)]
    assert detail in decided[0]["detail"]


def test_the_metrics_show_the_value_and_the_cost_apart(lean: SparkSession) -> None:
    """The contact planned under ``value``: expected value (what the plan maximised) 1, value
    p·v 1, cost 2 (the budget's), one contact."""
    cfg = config("value")
    customers = lean.createDataFrame([("A", "HA", "MASS", False, False, True, False)], CUSTOMERS)
    plan = lean.createDataFrame(
        [("A", dt.date(2027, 1, 1), "OFFER", "DEM")],
        "customer_id string, month date, campaign string, channel string",
    )
    metrics = plan_metrics(lean, cfg, "optimizer", plan, eligibility_of(lean, 1.0), customers, None)
    # The section is a literal per frame: the filter prunes every other frame before any job.
    rows = reduce(DataFrame.unionByName, metrics).filter("section = 'summary'").collect()
    assert {r["metric"]: r["value"] for r in rows} == {
        "contacts": 1.0,
        "expected_value": 1.0,
        "gross_value": 1.0,
        "cost": 2.0,
    }
