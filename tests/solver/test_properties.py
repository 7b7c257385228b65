"""Property tests: the exact DP and the MILP agree on random rule sets and customers.

For random policies (every rule type, random scopes, windows shorter and longer than the
horizon, per-campaign splits, max_campaigns), random values, eligibility, prices, seasonality and
histories: both solvers report the same status, the same optimal objective within 1e-9,
and plans that the independent checker (tests/solver/rule_checker.py) finds legal.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver.automaton import StateSpaceTooLargeError
from contact_spark.solver.kernel import solve
from contact_spark.solver.milp import solve_milp_with_bounds
from contact_spark.solver.problem import ErrorCode, KernelBatch

from .rule_checker import violations

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def scope_dict(draw: st.DrawFn, campaigns: list[str], channels: list[str]) -> dict:
    out = {}
    if draw(st.booleans()):
        out["campaigns"] = draw(st.lists(st.sampled_from(campaigns), min_size=1, unique=True))
    if draw(st.booleans()):
        out["channels"] = draw(st.lists(st.sampled_from(channels), min_size=1, unique=True))
    return out


@st.composite
def policies(draw: st.DrawFn, campaigns: list[str], channels: list[str], horizon: int) -> PolicyConfig:
    rules = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(
                [
                    "max_offers",
                    "max_offers",
                    "min_offers",
                    "max_packages",
                    "max_campaigns",
                    "never_together",
                    "never_followed_by",
                    "only_after",
                ]
            )
        )
        rule: dict = {
            "name": f"r{i}",
            "type": kind,
            "window_months": draw(st.integers(1, horizon + 2)),
            "per_campaign": draw(st.booleans()) if kind != "max_campaigns" else False,
            "per_channel": draw(st.sampled_from([False, False, True])),
        }
        if kind in ("max_offers", "min_offers", "max_packages", "max_campaigns"):
            rule.update(draw(scope_dict(campaigns, channels)))
            lo = 1 if kind == "min_offers" else 0
            rule["limit"] = draw(st.integers(lo, 1 if kind == "min_offers" else 3))
        else:
            rule["a"] = draw(scope_dict(campaigns, channels))
            rule["b"] = draw(scope_dict(campaigns, channels))
            if kind == "only_after" and draw(st.booleans()):
                rule["window_months"] = None
        rules.append(rule)
    return PolicyConfig.model_validate({"rules": rules})


@st.composite
def cases(draw: st.DrawFn) -> tuple[PolicyConfig, list[str], list[str], KernelBatch]:
    n_c = draw(st.integers(1, 2))
    n_h = draw(st.integers(1, 3 if n_c == 1 else 2))
    campaigns = [f"C{i}" for i in range(n_c)]
    channels = [f"H{i}" for i in range(n_h)]
    horizon = draw(st.integers(1, 6))
    policy = draw(policies(campaigns, channels, horizon))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = 5
    m_hist = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 5]))
    history = rng.choice([0, 0, 0, 1, 1, 2], size=(n, m_hist, n_c, n_h))
    # Per-month propensities (a trigger's boost) in about a third of the cases.
    monthly = draw(st.sampled_from([False, False, True]))
    batch = KernelBatch(
        propensity=rng.uniform(0, 0.6, (n, horizon, n_c, n_h) if monthly else (n, n_c, n_h)),
        eligible=rng.uniform(size=(n, horizon, n_c, n_h)) < 0.85,
        history=history,
        success_value=rng.uniform(0, 50, n_c),
        channel_cost=rng.uniform(0, 5, n_h),
        horizon=horizon,
        seasonality=rng.uniform(0.5, 1.5, horizon) if draw(st.booleans()) else None,
        price=rng.normal(0, 2, (horizon, n_c, n_h)) if draw(st.booleans()) else None,
        unit_cost=rng.uniform(0, 2, (n, horizon, n_c, n_h)) if draw(st.booleans()) else None,
    )
    return policy, campaigns, channels, batch


@SETTINGS
@given(cases())
def test_dp_matches_milp_and_plans_obey_every_rule(case: tuple) -> None:
    policy, campaigns, channels, batch = case
    compiled = compile_policy(policy, campaigns, channels)
    try:
        dp = solve(compiled, batch, method="dp")
    except StateSpaceTooLargeError:  # rare here; "auto" then answers with the MILP
        dp = solve(compiled, batch, method="auto")
    milp = solve(compiled, batch, method="milp")
    assert dp.status.tolist() == milp.status.tolist()
    ok = dp.status == ErrorCode.OK
    np.testing.assert_allclose(dp.objective[ok], milp.objective[ok], rtol=0, atol=1e-9)
    for i in np.flatnonzero(ok):
        assert violations(policy, campaigns, channels, batch.history[i], dp.x[i]) == []
        assert violations(policy, campaigns, channels, batch.history[i], milp.x[i]) == []


@SETTINGS
@given(cases())
def test_dp_is_deterministic(case: tuple) -> None:
    policy, campaigns, channels, batch = case
    compiled = compile_policy(policy, campaigns, channels)
    first = solve(compiled, batch)
    again = solve(compiled, batch.subset(np.arange(batch.shape[0])[::-1]))
    assert (first.x[::-1] == again.x).all()
    assert first.status[::-1].tolist() == again.status.tolist()


@SETTINGS
@given(cases())
def test_a_propensity_repeated_over_months_plans_like_a_per_customer_one(case: tuple) -> None:
    """[N, T, C, H] propensities equal in every month are the [N, C, H] problem."""
    from dataclasses import replace

    policy, campaigns, channels, batch = case
    if batch.monthly:
        return
    compiled = compile_policy(policy, campaigns, channels)
    t = batch.horizon
    monthly = replace(batch, propensity=np.repeat(batch.propensity[:, None], t, axis=1))
    assert monthly.monthly
    for method in ("auto", "milp"):
        flat, per_month = solve(compiled, batch, method=method), solve(compiled, monthly, method=method)
        assert flat.status.tolist() == per_month.status.tolist()
        ok = flat.status == ErrorCode.OK
        np.testing.assert_allclose(flat.objective[ok], per_month.objective[ok], rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            monthly.schedule_value(per_month.x)[ok], per_month.objective[ok], atol=1e-9
        )


@st.composite
def tiny_cases(draw: st.DrawFn) -> tuple[PolicyConfig, list[str], list[str], KernelBatch]:
    """Cases with at most 9 contact cells (T x C x H), small enough to enumerate."""
    n_c = draw(st.integers(1, 3))
    n_h = 1 if n_c == 3 else draw(st.integers(1, 2))
    horizon = draw(st.integers(1, min(4, 9 // (n_c * n_h))))
    campaigns = [f"C{i}" for i in range(n_c)]
    channels = [f"H{i}" for i in range(n_h)]
    policy = draw(policies(campaigns, channels, horizon))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m_hist = draw(st.sampled_from([0, 1, 2, 3]))
    batch = KernelBatch(
        propensity=rng.uniform(0, 0.8, (1, n_c, n_h)),
        eligible=rng.uniform(size=(1, horizon, n_c, n_h)) < 0.9,
        history=rng.choice([0, 0, 1], size=(1, m_hist, n_c, n_h)),
        success_value=rng.uniform(0, 50, n_c),
        channel_cost=rng.uniform(0, 5, n_h),
        horizon=horizon,
        price=rng.normal(0, 2, (horizon, n_c, n_h)) if draw(st.booleans()) else None,
    )
    return policy, campaigns, channels, batch


@SETTINGS
@given(tiny_cases())
def test_milp_matches_brute_force(case: tuple) -> None:
    """The MILP's plan is the best legal plan by exhaustive enumeration, judged by the
    independent checker, and its proved upper bound is that optimum: this covers the rules
    the DP does not take (max_campaigns over several months), where DP == MILP compares
    the MILP with itself."""
    policy, campaigns, channels, batch = case
    _, n_t, n_c, n_h = batch.shape
    n_cells = n_t * n_c * n_h
    codes = np.arange(2**n_cells)
    plans = ((codes[:, None] >> np.arange(n_cells)) & 1).astype(bool).reshape(-1, n_t, n_c, n_h)
    plans = plans[~(plans & ~batch.eligible[0]).any(axis=(1, 2, 3))]
    big = KernelBatch(
        propensity=np.repeat(batch.propensity, len(plans), axis=0),
        eligible=np.ones((len(plans), n_t, n_c, n_h), dtype=bool),
        history=np.repeat(batch.history, len(plans), axis=0),
        success_value=batch.success_value,
        channel_cost=batch.channel_cost,
        horizon=n_t,
        price=batch.price,
    )
    values = big.schedule_value(plans)
    best = None
    for j in np.argsort(-values, kind="stable"):
        if violations(policy, campaigns, channels, batch.history[0], plans[j]) == []:
            best = float(values[j])
            break
    compiled = compile_policy(policy, campaigns, channels)
    milp = solve(compiled, batch, method="milp")
    _, status, upper = solve_milp_with_bounds(compiled, batch)
    if best is None:
        assert milp.status[0] == status[0] == ErrorCode.INFEASIBLE
        assert upper[0] == -np.inf
    else:
        assert milp.status[0] == status[0] == ErrorCode.OK
        assert float(milp.objective[0]) == pytest.approx(best, abs=1e-9)
        # HiGHS's proved bound: never below the optimum, and closed up to its 1e-6 gap
        assert best - 1e-9 <= upper[0] <= best + 1e-6
