"""Every customer's result carries a proved upper bound on its optimal value: equal to
the objective when the plan is proved optimal, which the DP and an uncut MILP always are."""

from __future__ import annotations

import numpy as np

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy import compile_policy
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch, SolverKind

CAMPAIGNS = ["CROSS_SELLING", "SOLUTION", "BOILER"]
CHANNELS = ["DEM", "SMS"]


def _batch(n: int) -> KernelBatch:
    rng = np.random.default_rng(11)
    return KernelBatch(
        propensity=rng.uniform(0, 0.2, (n, 3, 2)),
        eligible=np.ones((n, 3, 2), dtype=bool),
        history=(rng.random((n, 3, 3, 2)) < 0.2).astype(np.int64),
        success_value=np.array([120.0, 450.0, 300.0]),
        channel_cost=np.array([0.02, 0.06]),
    )


def test_dp_results_are_proved_with_the_bound_equal_to_the_objective() -> None:
    policy = compile_policy(PolicyConfig.default(), ["CROSS_SELLING", "SOLUTION"], ["DEM", "SMS", "TLS"])
    rng = np.random.default_rng(3)
    batch = KernelBatch(
        propensity=rng.uniform(0, 0.1, (20, 2, 3)),
        eligible=np.ones((20, 2, 3), dtype=bool),
        history=np.zeros((20, 1, 2, 3), dtype=np.int64),
        success_value=np.array([120.0, 450.0]),
        channel_cost=np.array([0.02, 0.06, 4.0]),
    )
    result = solve(policy, batch)
    assert (result.solver == SolverKind.DP).all()
    np.testing.assert_array_equal(result.upper_bound, result.objective)
    assert result.proved.all()


def test_a_policy_the_dp_refuses_goes_to_the_milp_with_its_proved_bound() -> None:
    """At most two distinct campaigns per quarter: a set over three months, which the
    automaton has no state for; the MILP proves every customer's optimum."""
    policy = compile_policy(
        PolicyConfig.from_mapping(
            {"rules": [{"name": "two_per_quarter", "type": "max_campaigns", "window_months": 3, "limit": 2}]}
        ),
        CAMPAIGNS,
        CHANNELS,
    )
    result = solve(policy, _batch(6))
    assert (result.solver == SolverKind.MILP).all()
    assert (result.status == ErrorCode.OK).all()
    assert result.proved.all()
    assert (result.upper_bound >= result.objective).all()
