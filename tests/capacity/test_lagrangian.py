"""Global capacities: the Lagrangian engine against the global MILP, shortfalls, month
exceptions, resume and rerun of the recorded iterations, shadow prices."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from solver.rule_checker import violations

from contact_spark.capacity.constraints import Constraint, attributes_needed, expand_capacities
from contact_spark.capacity.engine import CapacityEngine
from contact_spark.capacity.reference import solve_reference
from contact_spark.capacity.result import CapacityResult
from contact_spark.config import AppConfig, load_config
from contact_spark.config.capacity import CapacitySettings, LagrangianSettings
from contact_spark.data.generator import generate_demo_data
from contact_spark.eligibility.engine import compute_eligibility
from contact_spark.io.catalog import ITERATIONS_TABLE
from contact_spark.io.tables import TableStore
from contact_spark.planning.frame import Layout, customer_frame, layout_for
from contact_spark.planning.solve import StaticInputs
from contact_spark.planning.stage import _attribute_columns
from contact_spark.policy.compiler import CompiledPolicy

CUSTOMERS = 300
AUGUST = "2027-08-01"


def capacity_rules(n: int, extra: list[dict] | None = None) -> list[dict]:
    """A monthly call-centre cap (August halved) and a yearly SMS cost budget."""
    return [
        {
            "name": "tls_calls",
            "channels": ["TLS"],
            "max": n / 20,
            "exceptions": [{"month": AUGUST, "max": n / 40}],
        },
        {
            "name": "sms_budget",
            "measure": "sum",
            "column": "cost",
            "channels": ["SMS"],
            "period": "year",
            "max": n / 5,
        },
        *(extra or []),
    ]


@dataclass
class Instance:
    config: AppConfig
    frame: DataFrame
    customers: DataFrame
    eligibility: DataFrame
    history: DataFrame
    layout: Layout
    policy: CompiledPolicy
    static: StaticInputs

    def engine(
        self,
        rules: list[dict],
        store: TableStore | None = None,
        run_id: str = "cap",
        customers: int | None = None,
        fingerprint: str = "h",
        **settings: object,
    ) -> tuple[CapacityEngine, DataFrame]:
        capacities = CapacitySettings.model_validate({"rules": rules})
        constraints = expand_capacities(capacities, self.layout, self.config.run.months())
        attributes = attributes_needed(constraints)
        base = self.frame
        if customers is not None:  # the first customers by id: a smaller, faster instance
            base = base.filter(F.col("customer_id") < F.lit(f"C{customers:09d}"))
        frame = _attribute_columns(
            base, self.eligibility, self.customers, self.layout, self.config, attributes
        ).persist(StorageLevel.MEMORY_AND_DISK)
        engine = CapacityEngine(
            self.frame.sparkSession,
            frame,
            self.policy,
            self.layout,
            self.static,
            constraints,
            LagrangianSettings.model_validate(settings),
            attributes,
            store=store,
            run_id=run_id,
            config_hash=fingerprint,
        )
        return engine, frame


@pytest.fixture(scope="module")
def instance(spark: SparkSession) -> Instance:
    config = load_config(overrides={"demo.customers": CUSTOMERS, "demo.partitions": 2})
    data = generate_demo_data(spark, config)
    contacts = (
        data.contacts.filter(F.col("value").isNotNull() & F.col("contact_type").isin("phone", "email"))
        .groupBy("customer_id", "contact_type")
        .agg(F.min("contact_id").alias("contact_id"), F.min("value").alias("contact"))
        .withColumn(
            "channel",
            F.explode(
                F.when(F.col("contact_type") == "email", F.array(F.lit("DEM"))).otherwise(
                    F.array(F.lit("SMS"), F.lit("TLS"))
                )
            ),
        )
        .withColumn("score", F.lit(500))
    )
    eligibility = compute_eligibility(
        spark, config, data.customers, contacts, data.propensities, "cap"
    ).eligibility.persist(StorageLevel.MEMORY_AND_DISK)
    layout, policy = layout_for(config)
    history = data.contact_history.persist(StorageLevel.MEMORY_AND_DISK)
    frame = customer_frame(eligibility, history, layout, config.run.first_month, 2)
    frame = frame.repartition(2, "batch").persist(StorageLevel.MEMORY_AND_DISK)
    frame.count()
    return Instance(
        config, frame, data.customers, eligibility, history, layout, policy, StaticInputs.from_config(config)
    )


def schedules(solved: DataFrame, layout: Layout) -> dict[str, np.ndarray]:
    """Per customer ``x[T, C, H]`` (test-side collect of a small instance)."""
    out = {}
    n_h = len(layout.channels)
    for row in solved.filter(F.col("status") == 0).collect():
        x = np.zeros((layout.horizon, len(layout.campaigns), n_h), dtype=bool)
        for t, k in zip(row["months"], row["cells"], strict=True):
            x[t, k // n_h, k % n_h] = True
        out[row["customer_id"]] = x
    return out


def check_plan(
    instance: Instance, result: CapacityResult, constraints: list[Constraint], frame: pd.DataFrame
) -> None:
    """Every max holds exactly (recounted from the schedules) and every per-customer rule holds."""
    plans = schedules(result.solved, instance.layout)
    n_c, n_h = len(instance.layout.campaigns), len(instance.layout.channels)
    counts = np.zeros((instance.layout.horizon, n_c, n_h))
    cost_sums = np.zeros_like(counts)
    cost = np.array([instance.config.channels[h].cost for h in instance.layout.channels])
    for x in plans.values():
        counts += x
        cost_sums += x * cost[None, None, :]
    for c, used in zip(constraints, result.usage, strict=True):
        recount = c.usage(counts, {"cost": cost_sums})
        assert recount == pytest.approx(used, abs=1e-6), c.name
        if c.sense == "max":
            assert recount <= c.bound + 1e-9, f"{c.name}: {recount} > {c.bound}"
    history = {row.customer_id: row for row in frame.itertuples()}
    m = instance.layout.history_months
    for customer_id, x in plans.items():
        row = history[customer_id]
        hist = np.zeros(m * n_c * n_h, dtype=np.int64)
        hist[np.asarray(row.history_index, dtype=np.int64)] = np.asarray(row.history_count, dtype=np.int64)
        broken = violations(
            instance.config.policy,
            instance.layout.campaigns,
            instance.layout.channels,
            hist.reshape(m, n_c, n_h),
            x,
        )
        assert not broken, (customer_id, broken)


def test_small_instance_is_within_a_tenth_of_a_percent_of_the_global_optimum(instance: Instance) -> None:
    """100 customers, where HiGHS proves the global optimum in seconds: the plan (price
    iterations, repair, then the restricted master over the schedules they found) is within
    0.1 % of it (issue 21; before the master step it was 0.65 % below on bench_alternatives'
    100 customers)."""
    n = 100
    loose = {"name": "dem_loose", "channels": ["DEM"], "period": "year", "max": 100 * n}
    engine, frame = instance.engine(
        capacity_rules(n, [loose]), customers=n, max_iterations=20, repair_rounds=4
    )
    result = engine.run()
    pdf = frame.toPandas()
    check_plan(instance, result, engine.constraints, pdf)
    reference = solve_reference(
        pdf,
        instance.policy,
        instance.layout,
        instance.static,
        engine.constraints,
        time_limit=120,
        # HiGHS proves the optimum to 0.01 % (it takes 21 s, 30 s to 0.001 %); the plan is
        # held against HiGHS's proved bound, so the 0.1 % below is exact all the same.
        mip_rel_gap=1e-4,
    )
    assert reference.optimal, reference.message
    assert (reference.usage <= np.array([c.bound for c in engine.constraints]) + 1e-6).all()
    # The certificate bounds every feasible plan; the plan is within 0.1 % of the optimum.
    assert result.dual_bound >= reference.value - 1e-6 * abs(reference.value)
    assert result.primal_value <= reference.bound + 1e-6 * abs(reference.bound)
    assert result.primal_value >= (1 - 1e-3) * reference.bound, (result.primal_value, reference.bound)
    assert engine.master_outcome is not None and engine.master_outcome.improved
    # Its own certificate (20 iterations here, for time) is within 2%.
    assert result.gap <= 0.02
    # Month exception: August has half the calls, and the cap binds there.
    names = [c.name for c in engine.constraints]
    august = names.index("tls_calls[2027-08]:max")
    assert engine.constraints[august].bound == n / 40
    assert result.usage[august] <= n / 40
    # Shadow prices: positive only where the constraint binds, zero on the loose one.
    for c, used, price in zip(engine.constraints, result.usage, result.prices, strict=True):
        slack = c.bound - used
        if price > 1e-9:
            assert slack <= max(2.0, 0.05 * c.bound), (c.name, used, c.bound, price)
        if slack > 0.2 * c.bound:
            assert price == 0.0, (c.name, used, c.bound, price)
    assert result.prices[names.index("dem_loose:max")] == 0.0
    assert result.prices[august] > 0
    frame.unpersist()


def test_unmeetable_minimum_is_reported_with_its_shortfall(instance: Instance) -> None:
    n = CUSTOMERS
    rules = [
        {"name": "tls_calls", "channels": ["TLS"], "max": 5},
        {"name": "dem_floor", "channels": ["DEM"], "period": "year", "min": 50 * n},
    ]
    engine, frame = instance.engine(rules, customers=100, max_iterations=4, repair_rounds=1)
    result = engine.run()
    shortfalls = result.shortfalls()
    assert list(shortfalls) == ["dem_floor:min"]
    floor = engine.constraints[-1]
    assert shortfalls["dem_floor:min"] == pytest.approx(floor.bound - result.usage[-1])
    assert shortfalls["dem_floor:min"] > 0
    assert not result.max_violations()
    check_plan(instance, result, engine.constraints, frame.toPandas())
    frame.unpersist()


def iteration_rows(store: TableStore, run_id: str) -> pd.DataFrame:
    return store.read_run(ITERATIONS_TABLE, run_id).toPandas()


def test_resume_and_rerun_of_recorded_iterations(instance: Instance, store: TableStore) -> None:
    rules = capacity_rules(100)
    full_engine, frame = instance.engine(
        rules, store, "full", customers=100, max_iterations=3, repair_rounds=1
    )
    full = full_engine.run()
    # A run stopped after 1 dual iteration, then resumed by a new engine.
    stopped, _ = instance.engine(rules, store, "resumed", customers=100, max_iterations=1, repair_rounds=1)
    stopped.frame = frame
    stopped.run()
    resumed, _ = instance.engine(rules, store, "resumed", customers=100, max_iterations=3, repair_rounds=1)
    resumed.frame = frame
    again = resumed.run()
    assert again.iterations == full.iterations
    np.testing.assert_allclose(again.prices, full.prices, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(again.usage, full.usage)
    assert again.primal_value == pytest.approx(full.primal_value, rel=1e-9)
    assert again.dual_bound == pytest.approx(full.dual_bound, rel=1e-9)
    a, b = iteration_rows(store, "full"), iteration_rows(store, "resumed")
    key = ["phase", "iteration", "constraint_name"]
    assert not a.duplicated(key).any() and not b.duplicated(key).any()
    assert sorted(map(tuple, a[key].to_numpy())) == sorted(map(tuple, b[key].to_numpy()))
    # A fresh rerun of the same run id replaces its rows instead of adding to them.
    rerun, _ = instance.engine(rules, store, "full", customers=100, max_iterations=3, repair_rounds=1)
    rerun.frame = frame
    rerun.run(resume=False)
    c = iteration_rows(store, "full")
    assert len(c) == len(a) and not c.duplicated(key).any()
    dual = c[c["phase"] == "dual"].sort_values(["iteration", "constraint_name"])
    assert dual["dual_bound"].notna().all() and (dual["usage"] >= 0).all()
    frame.unpersist()


def test_iterations_recorded_with_other_inputs_are_not_resumed(
    instance: Instance, store: TableStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The run's fingerprint (config and pinned input versions) differs from the recorded
    one: a rerun after the inputs changed starts afresh instead of resuming old prices."""
    rules = capacity_rules(100)
    stopped, frame = instance.engine(
        rules, store, "changed", customers=100, max_iterations=1, repair_rounds=1
    )
    stopped.run()
    rerun, _ = instance.engine(
        rules, store, "changed", customers=100, fingerprint="new-inputs", max_iterations=2, repair_rounds=1
    )
    rerun.frame = frame
    with caplog.at_level(logging.INFO, logger="contact_spark.capacity"):
        rerun.run()
    assert "recorded with other inputs or another config" in caplog.text
    assert "resuming run" not in caplog.text
    rows = iteration_rows(store, "changed")
    assert set(rows["config_hash"]) == {"new-inputs"}
    dual = rows[rows["phase"] == "dual"]
    assert sorted(set(dual["iteration"])) == [0, 1]  # both iterations computed again
    assert not rows.duplicated(["phase", "iteration", "constraint_name"]).any()
    frame.unpersist()


def test_capacities_on_expected_value_and_propensity_hold(instance: Instance) -> None:
    """The two documented per-contact columns besides cost: the expected responses a sales
    team can follow up (a sum of propensities) and a cap on the expected value. Before,
    either one crashed the plan stage (UNRESOLVED_COLUMN _m_Column<'y_12'>)."""

    def rules(responses: float) -> list[dict]:
        return [
            {
                "name": "responses",
                "measure": "sum",
                "column": "propensity",
                "period": "year",
                "max": responses,
            },
            {"name": "value_cap", "measure": "sum", "column": "expected_value", "period": "year", "max": 1e9},
        ]

    free, frame = instance.engine(rules(1e9), customers=100, max_iterations=1, repair_rounds=1)
    unconstrained = free.run().usage[0]
    engine, _ = instance.engine(rules(unconstrained / 2), customers=100, max_iterations=6, repair_rounds=2)
    engine.frame = frame
    result = engine.run()
    assert not result.max_violations()
    # Recounted from the schedules and the frame's per-cell values.
    plans = schedules(result.solved, instance.layout)
    rows = {r["customer_id"]: r for r in frame.collect()}
    for j, column in enumerate(["attr_propensity", "attr_expected_value"]):
        total = sum(
            float((x.reshape(x.shape[0], -1) * np.array(rows[c][column])[None, :]).sum())
            for c, x in plans.items()
        )
        assert result.usage[j] == pytest.approx(total, rel=1e-9), column
    assert unconstrained / 2 * 0.9 <= result.usage[0] <= unconstrained / 2 + 1e-9, (
        result.usage,
        unconstrained,
    )
    frame.unpersist()


def test_summarised_evaluation_equals_the_per_customer_aggregation(instance: Instance) -> None:
    """Price iterations sum usage in the Python workers; a kept candidate is aggregated from
    its per-customer schedules in Spark: both give the same totals at the same prices."""
    engine, frame = instance.engine(capacity_rules(100), customers=100)
    rng = np.random.default_rng(3)
    prices = rng.uniform(0.0, 5.0, len(engine.constraints))
    engine.perturbation = 0.7 * engine._charged
    kept = engine.evaluate(prices, keep=True)
    summed = engine.evaluate(prices, keep=False)
    assert summed.solved is None and kept.solved is not None
    np.testing.assert_array_equal(summed.counts, kept.counts)
    np.testing.assert_allclose(summed.attr_sums["cost"], kept.attr_sums["cost"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(summed.usage, kept.usage, rtol=1e-12, atol=1e-12)
    assert summed.contacts == kept.contacts > 0
    assert summed.objective == pytest.approx(kept.objective, rel=1e-12)
    assert summed.value == pytest.approx(kept.value, rel=1e-12)
    assert summed.failed == kept.failed == 0
    kept.solved.unpersist()
    frame.unpersist()
