"""Bad customer data is quarantined with an error code, never crashing the batch; the
default energy-retailer policy is solved exactly and legally, with history."""

from __future__ import annotations

import numpy as np
import pytest

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch, SolverKind

from .rule_checker import violations

CAMPAIGNS = ["CROSS_SELLING", "SOLUTION"]
CHANNELS = ["DEM", "SMS", "TLS"]


def default_batch(n: int, seed: int, **overrides: object) -> KernelBatch:
    rng = np.random.default_rng(seed)
    args: dict = {
        "propensity": rng.uniform(0, 0.1, (n, 2, 3)),
        "eligible": rng.uniform(size=(n, 2, 3)) < 0.9,
        "history": (rng.uniform(size=(n, 12, 2, 3)) < 0.1).astype(np.int64),
        "success_value": np.array([120.0, 450.0]),
        "channel_cost": np.array([0.02, 0.06, 4.0]),
    }
    args.update(overrides)
    return KernelBatch(**args)


@pytest.fixture(scope="module")
def default_policy() -> tuple[PolicyConfig, object]:
    policy = PolicyConfig.default()
    return policy, compile_policy(policy, CAMPAIGNS, CHANNELS)


def test_bad_customers_get_error_codes_and_the_rest_is_solved(default_policy: tuple) -> None:
    _, compiled = default_policy
    batch = default_batch(6, 1)
    p = batch.propensity.copy()
    p[0, 0, 0] = np.nan
    p[1, 1, 2] = 1.5
    hist = batch.history.copy()
    hist[2, 3, 0, 0] = -1
    uc = np.zeros((6, 12, 2, 3))
    uc[3, 0, 0, 0] = np.inf
    bad = default_batch(6, 1, propensity=p, history=hist, unit_cost=uc)
    result = solve(compiled, bad)
    assert result.status.tolist()[:4] == [
        ErrorCode.BAD_PROPENSITY,
        ErrorCode.BAD_PROPENSITY,
        ErrorCode.BAD_HISTORY,
        ErrorCode.BAD_UNIT_COST,
    ]
    assert (result.status[4:] == ErrorCode.OK).all()
    assert np.isnan(result.objective[:4]).all() and not result.x[:4].any()
    assert (result.solver[:4] == SolverKind.NONE).all()
    clean = solve(compiled, batch.subset(np.arange(4, 6)))
    np.testing.assert_allclose(result.objective[4:], clean.objective, atol=1e-12)


def test_invalid_static_inputs_flag_every_customer(default_policy: tuple) -> None:
    _, compiled = default_policy
    result = solve(compiled, default_batch(3, 2, channel_cost=np.array([0.02, -1.0, 4.0])))
    assert (result.status == ErrorCode.BAD_STATIC_INPUT).all()


def test_empty_batch(default_policy: tuple) -> None:
    _, compiled = default_policy
    batch = default_batch(0, 3)
    result = solve(compiled, batch)
    assert result.x.shape == (0, 12, 2, 3) and result.objective.shape == (0,)


def test_shape_errors_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="history must be"):
        default_batch(2, 4, history=np.zeros((2, 12, 3, 2)))


def test_infeasible_customer_is_reported(default_policy: tuple) -> None:
    """A min rule on a channel the customer cannot be reached on has no plan."""
    policy = PolicyConfig.model_validate(
        {
            "rules": [
                {
                    "name": "must_call",
                    "type": "min_offers",
                    "channels": ["TLS"],
                    "window_months": 12,
                    "limit": 1,
                }
            ]
        }
    )
    compiled = compile_policy(policy, CAMPAIGNS, CHANNELS)
    elig = np.ones((2, 2, 3), dtype=bool)
    elig[0, :, 2] = False
    for method in ("dp", "milp"):
        result = solve(compiled, default_batch(2, 5, eligible=elig), method=method)
        assert result.status.tolist() == [ErrorCode.INFEASIBLE, ErrorCode.OK]


def test_default_policy_dp_equals_milp_and_plans_are_legal(default_policy: tuple) -> None:
    """A few customers with random histories: same optimum, and both plans obey the
    seed-000 rules (one campaign per month, TLS alone, spacing, yearly maxima)."""
    policy, compiled = default_policy
    batch = default_batch(6, 6)
    dp = solve(compiled, batch, method="dp")
    milp = solve(compiled, batch, method="milp")
    assert (dp.status == ErrorCode.OK).all() and (milp.status == ErrorCode.OK).all()
    np.testing.assert_allclose(dp.objective, milp.objective, rtol=0, atol=1e-9)
    for i in range(6):
        assert violations(policy, CAMPAIGNS, CHANNELS, batch.history[i], dp.x[i]) == []
        assert violations(policy, CAMPAIGNS, CHANNELS, batch.history[i], milp.x[i]) == []


def test_default_policy_solution_lover_hits_the_yearly_maxima(default_policy: tuple) -> None:
    """A customer who only answers SOLUTION, with no history, gets exactly the SOLUTION
    yearly maxima: 2 DEM, 2 SMS, 1 TLS."""
    _, compiled = default_policy
    p = np.zeros((1, 2, 3))
    p[0, 1] = [0.2, 0.2, 0.5]
    batch = default_batch(
        1, 7, propensity=p, eligible=np.ones((1, 2, 3), bool), history=np.zeros((1, 12, 2, 3), np.int64)
    )
    result = solve(compiled, batch)
    assert result.solver[0] == SolverKind.DP
    assert result.x[0, :, 1].sum(axis=0).tolist() == [2, 2, 1]
    assert not result.x[0, :, 0].any()


def _twenty_cells(limit: int) -> tuple:
    campaigns = [f"C{i}" for i in range(5)]
    channels = [f"H{i}" for i in range(4)]
    policy = PolicyConfig.model_validate(
        {"rules": [{"name": "spacing", "type": "max_offers", "window_months": 2, "limit": limit}]}
    )
    compiled = compile_policy(policy, campaigns, channels)
    rng = np.random.default_rng(8)
    batch = KernelBatch(
        propensity=rng.uniform(0, 0.3, (2, 5, 4)),
        eligible=np.ones((2, 5, 4), dtype=bool),
        history=np.zeros((2, 1, 5, 4), dtype=np.int64),
        success_value=np.full(5, 10.0),
        channel_cost=np.full(4, 0.5),
        horizon=2,
    )
    return compiled, batch


def test_policy_too_large_for_the_automaton_goes_to_the_catalogue_kernel() -> None:
    """20 cells and at most 3 contacts a month: 1,351 month actions, too many for the
    automaton, few enough for the catalogue kernel, which proves the MILP's optimum."""
    compiled, batch = _twenty_cells(3)
    result = solve(compiled, batch)
    assert (result.solver == SolverKind.LABEL).all() and result.method == "label"
    assert result.proved.all()
    milp = solve(compiled, batch, method="milp")
    np.testing.assert_allclose(result.objective, milp.objective, rtol=0, atol=1e-9)


def test_policy_too_large_for_the_dp_falls_back_to_the_milp() -> None:
    """20 cells and up to 8 contacts a month give over 200,000 month actions: auto uses the
    MILP, 'dp' and 'label' refuse explicitly."""
    from contact_spark.solver.automaton import StateSpaceTooLargeError

    compiled, batch = _twenty_cells(8)
    result = solve(compiled, batch)
    assert (result.solver == SolverKind.MILP).all() and result.method == "milp"
    assert (result.status == ErrorCode.OK).all()
    assert (result.x.sum(axis=(2, 3)) <= 8).all()
    for method in ("dp", "label"):
        with pytest.raises(StateSpaceTooLargeError):
            solve(compiled, batch, method=method)


def test_dp_overflow_falls_back_to_the_catalogue_kernel_per_customer(
    default_policy: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a counter DAG exceeds its node budget, its customers go to the catalogue
    kernel, which proves the same optima."""
    import contact_spark.solver.dp as dp_module

    _, compiled = default_policy
    batch = default_batch(4, 9)
    reference = solve(compiled, batch, method="dp")
    monkeypatch.setattr(dp_module, "MAX_NODES", 3000)
    dp_module.get_model(compiled, 12).dag_cache.clear()
    result = solve(compiled, batch)
    dp_module.get_model(compiled, 12).dag_cache.clear()
    assert (result.solver == SolverKind.LABEL).any()
    assert result.proved.all()
    np.testing.assert_allclose(result.objective, reference.objective, rtol=0, atol=1e-9)


def test_default_policy_plans_are_legal_for_many_customers(default_policy: tuple) -> None:
    """300 random customers with random (possibly rule-breaking) histories: every DP plan
    passes the independent checker."""
    policy, compiled = default_policy
    batch = default_batch(300, 10, history=(np.random.default_rng(11).uniform(size=(300, 12, 2, 3)) < 0.25))
    result = solve(compiled, batch)
    assert (result.status == ErrorCode.OK).all() and (result.solver == SolverKind.DP).all()
    for i in range(300):
        assert violations(policy, CAMPAIGNS, CHANNELS, batch.history[i], result.x[i]) == [], i


def test_default_policy_with_max_campaigns_dp_equals_milp() -> None:
    """The default policy with "one campaign per month" written as max_campaigns (window 1,
    limit 1, which the DP takes): the MILP then leaves out the per-campaign "one channel
    pattern" rows and the tls_alone_in_month rows (implied by the patterns and the
    max_campaigns row); DP and MILP still agree to 1e-9 and both plans are legal."""
    rules = [r.model_dump() for r in PolicyConfig.default().rules if r.name != "one_campaign_per_month"]
    rules.append({"name": "one_campaign_per_month", "type": "max_campaigns", "window_months": 1, "limit": 1})
    policy = PolicyConfig.model_validate({"rules": rules})
    compiled = compile_policy(policy, CAMPAIGNS, CHANNELS)
    batch = default_batch(60, 11, propensity=np.random.default_rng(12).uniform(0, 0.3, (60, 2, 3)))
    dp = solve(compiled, batch, method="dp")
    milp = solve(compiled, batch, method="milp")
    assert (dp.status == ErrorCode.OK).all() and (milp.status == ErrorCode.OK).all()
    np.testing.assert_allclose(dp.objective, milp.objective, rtol=0, atol=1e-9)
    for i in range(batch.shape[0]):
        assert violations(policy, CAMPAIGNS, CHANNELS, batch.history[i], milp.x[i]) == []
        assert violations(policy, CAMPAIGNS, CHANNELS, batch.history[i], dp.x[i]) == []
