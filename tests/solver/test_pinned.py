"""Hand-computed tiny plans: every rule type, history across the plan boundary, channel
interaction, seasonality and prices. Each case runs through the DP and the MILP."""

from __future__ import annotations

import numpy as np
import pytest

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch, SolverKind

from .rule_checker import violations

METHODS = ["dp", "milp"]


def plan(
    rules: list[dict],
    propensity: list | np.ndarray,
    value: list[float],
    cost: list[float],
    horizon: int,
    method: str,
    history: np.ndarray | None = None,
    **extra: object,
) -> tuple[np.ndarray, float]:
    """Plan one customer; campaigns C0.., channels H0..; returns (x[T, C, H], objective)."""
    p = np.asarray(propensity, dtype=float)
    n_c, n_h = p.shape
    policy = PolicyConfig.model_validate({"rules": rules})
    compiled = compile_policy(policy, [f"C{i}" for i in range(n_c)], [f"H{i}" for i in range(n_h)])
    hist = np.zeros((1, 0, n_c, n_h), dtype=int) if history is None else history[None]
    batch = KernelBatch(
        propensity=p[None],
        eligible=np.ones((1, n_c, n_h), dtype=bool),
        history=hist,
        success_value=np.asarray(value, dtype=float),
        channel_cost=np.asarray(cost, dtype=float),
        horizon=horizon,
        **extra,  # type: ignore[arg-type]
    )
    result = solve(compiled, batch, method=method)  # type: ignore[arg-type]
    assert result.status[0] == ErrorCode.OK
    assert result.solver[0] == (SolverKind.DP if method == "dp" else SolverKind.MILP)
    return result.x[0], float(result.objective[0])


def months(x: np.ndarray, c: int = 0, h: int = 0) -> list[int]:
    return [int(t) for t in np.flatnonzero(x[:, c, h])]


@pytest.mark.parametrize("method", METHODS)
def test_no_rules_contacts_every_month(method: str) -> None:
    """p=0.5, value 10, cost 1: each month is worth 0.5*10-1 = 4, three months = 12."""
    x, obj = plan([], [[0.5]], [10.0], [1.0], 3, method)
    assert months(x) == [0, 1, 2]
    assert obj == pytest.approx(12.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_negative_value_contact_is_skipped(method: str) -> None:
    """p=0.1, value 10, cost 2: a contact loses 1, so nobody is contacted."""
    x, obj = plan([], [[0.1]], [10.0], [2.0], 2, method)
    assert not x.any()
    assert obj == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_joint_probability_of_two_channels(method: str) -> None:
    """DEM p=0.5 and SMS p=0.4 of one campaign worth 100 in the same month succeed with
    1-(0.5)(0.6) = 0.7, i.e. 70, not 90. With an SMS cost of 25 the pair is worth 45 < 50
    (DEM alone); with an SMS cost of 15 it is worth 55 > 50."""
    x, obj = plan([], [[0.5, 0.4]], [100.0], [0.0, 25.0], 1, method)
    assert x[0, 0].tolist() == [True, False]
    assert obj == pytest.approx(50.0, abs=1e-12)
    x, obj = plan([], [[0.5, 0.4]], [100.0], [0.0, 15.0], 1, method)
    assert x[0, 0].tolist() == [True, True]
    assert obj == pytest.approx(55.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_three_channels_use_the_union_probability(method: str) -> None:
    """p = 0.5, 0.5, 0.5 together: 1 - 0.125 = 0.875 of 8 = 7 (inclusion-exclusion with
    a positive triple term in the MILP)."""
    x, obj = plan([], [[0.5, 0.5, 0.5]], [8.0], [0.0, 0.0, 0.0], 1, method)
    assert x[0, 0].all()
    assert obj == pytest.approx(7.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_max_offers_rolling_window_with_seasonality(method: str) -> None:
    """At most 1 contact per 2 months; seasonality 1,2,1,2 makes months 1 and 3 best:
    2 * (0.5*10) = 10 each, total 20."""
    rules = [{"name": "spacing", "type": "max_offers", "window_months": 2, "limit": 1}]
    x, obj = plan(rules, [[0.5]], [10.0], [0.0], 4, method, seasonality=np.array([1.0, 2.0, 1.0, 2.0]))
    assert months(x) == [1, 3]
    assert obj == pytest.approx(20.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_a_weight_per_month_and_campaign_picks_each_month_its_campaign(method: str) -> None:
    """One contact a month; weights [T, C] (seasonality × monthly_value) 1, 2 in month 0 and
    2, 1 in month 1: C1 in month 0 and C0 in month 1, each 2 * (0.5*10) = 10, total 20
    (a [T] weight could not tell the two campaigns apart)."""
    rules = [{"name": "one_a_month", "type": "max_offers", "window_months": 1, "limit": 1}]
    weights = np.array([[1.0, 2.0], [2.0, 1.0]])
    x, obj = plan(rules, [[0.5], [0.5]], [10.0, 10.0], [0.0], 2, method, seasonality=weights)
    assert (months(x, c=0), months(x, c=1)) == ([1], [0])
    assert obj == pytest.approx(20.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_history_blocks_the_first_months(method: str) -> None:
    """1 contact per 3 months; a contact at month -1 is inside the windows ending at months
    0 and 1; months 2 and 3 share a window, so one contact fits (5, month 2 or 3).
    Without history: months 0 and 3 (10)."""
    rules = [{"name": "spacing", "type": "max_offers", "window_months": 3, "limit": 1}]
    hist = np.zeros((2, 1, 1), dtype=int)
    hist[0] = 1  # month -1
    x, obj = plan(rules, [[0.5]], [10.0], [0.0], 4, method, history=hist)
    assert months(x) in ([2], [3])
    assert obj == pytest.approx(5.0, abs=1e-12)
    x, obj = plan(rules, [[0.5]], [10.0], [0.0], 4, method)
    assert obj == pytest.approx(10.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_yearly_cap_counts_history_until_it_leaves_the_window(method: str) -> None:
    """At most 2 per 12 months over a 12-month plan; one contact at month -3 is inside
    every window ending at months 0..8, so only 1 plan contact fits there, the second one
    must wait for month 9. Seasonality 5,4,1,...: best is month 0 (5) + month 9 (1) = 6,
    not months 0 and 1 (9)."""
    rules = [{"name": "yearly", "type": "max_offers", "window_months": 12, "limit": 2}]
    hist = np.zeros((3, 1, 1), dtype=int)
    hist[2] = 1  # month -3
    seas = np.array([5.0, 4.0] + [1.0] * 10)
    x, obj = plan(rules, [[1.0]], [1.0], [0.0], 12, method, history=hist, seasonality=seas)
    assert months(x)[0] == 0 and months(x)[1] >= 9 and len(months(x)) == 2
    assert obj == pytest.approx(6.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_history_above_the_limit_freezes_the_window(method: str) -> None:
    """History already holds 3 contacts in a window of limit 1: nothing is planned while
    they are inside the window (months 0..1), then the rule applies normally: one contact
    in months 2..3, the better one by seasonality."""
    rules = [{"name": "spacing", "type": "max_offers", "window_months": 3, "limit": 1}]
    hist = np.array([[[2]], [[1]]])  # 2 contacts at month -1, 1 at month -2
    seas = np.array([3.0, 3.0, 2.0, 1.0])
    x, obj = plan(rules, [[0.5]], [10.0], [0.0], 4, method, history=hist, seasonality=seas)
    assert months(x) == [2]
    assert obj == pytest.approx(10.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_prices_move_the_contact(method: str) -> None:
    """One contact per 2 months over 2 months; a price of 3 at month 0 makes month 1 (5)
    better than month 0 (5 - 3 = 2)."""
    rules = [{"name": "spacing", "type": "max_offers", "window_months": 2, "limit": 1}]
    price = np.array([[[3.0]], [[0.0]]])
    x, obj = plan(rules, [[0.5]], [10.0], [0.0], 2, method, price=price)
    assert months(x) == [1]
    assert obj == pytest.approx(5.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_unit_cost_per_customer(method: str) -> None:
    """A per-customer unit cost of 6 on month 1 makes that contact lose 1."""
    uc = np.zeros((1, 2, 1, 1))
    uc[0, 1] = 6.0
    x, obj = plan([], [[0.5]], [10.0], [0.0], 2, method, unit_cost=uc)
    assert months(x) == [0]
    assert obj == pytest.approx(5.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_min_offers_forces_a_losing_contact(method: str) -> None:
    """At least 1 contact per 2 months although each contact loses 1 (x seasonality
    1,1,2,1). Month -1 covers the window ending at month 0; windows [0,1], [1,2], [2,3]
    need a contact: months 1 and 3 cost 2, any other cover costs at least 3."""
    rules = [{"name": "keep_in_touch", "type": "min_offers", "window_months": 2, "limit": 1}]
    hist = np.ones((1, 1, 1), dtype=int)
    seas = np.array([1.0, 1.0, 2.0, 1.0])
    x, obj = plan(rules, [[0.1]], [10.0], [2.0], 4, method, history=hist, seasonality=seas)
    assert months(x) == [1, 3]
    assert obj == pytest.approx(-2.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_per_campaign_split(method: str) -> None:
    """max 1 per month *per campaign*: both campaigns every month (4 + 4 per month)."""
    rules = [{"name": "dup", "type": "max_offers", "window_months": 1, "limit": 1, "per_campaign": True}]
    x, obj = plan(rules, [[0.5, 0.5], [0.5, 0.5]], [8.0, 8.0], [0.0, 1.0], 2, method)
    assert x[:, :, 0].all() and not x[:, :, 1].any()
    assert obj == pytest.approx(16.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_max_packages_counts_month_channel_pairs(method: str) -> None:
    """Two campaigns on the same channel in one month are one package: with 1 package per
    month both campaigns go on channel H0 (4 + 4.5 = 8.5); on H1 each costs 0.5 more, and
    using both channels would be two packages."""
    rules = [{"name": "one_interruption", "type": "max_packages", "window_months": 1, "limit": 1}]
    x, obj = plan(rules, [[0.5, 0.5], [0.5, 0.5]], [8.0, 9.0], [0.0, 0.5], 1, method)
    assert x[0, :, 0].all() and not x[0, :, 1].any()
    assert obj == pytest.approx(8.5, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_never_together_within_window(method: str) -> None:
    """C0 and C1 never within 2 months of each other (C1-C1 pairs are fine): C1 (worth 9)
    every month, 27, beats any plan that fits C0 (worth 5) in."""
    rules = [
        {
            "name": "apart",
            "type": "never_together",
            "a": {"campaigns": ["C0"]},
            "b": {"campaigns": ["C1"]},
            "window_months": 2,
        }
    ]
    x, obj = plan(rules, [[1.0], [1.0]], [5.0, 9.0], [0.0], 3, method)
    assert not x[:, 0, 0].any() and x[:, 1, 0].all()
    assert obj == pytest.approx(27.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_never_together_same_scope_allows_one_contact_per_window(method: str) -> None:
    """a = b = channel H0: two different contacts in a window are forbidden, one is fine."""
    rules = [{"name": "solo", "type": "never_together", "a": {}, "b": {}, "window_months": 2}]
    x, obj = plan(rules, [[1.0, 1.0]], [5.0], [0.0, 1.0], 3, method)
    assert x.sum() == 2 and months(x) == [0, 2]
    assert obj == pytest.approx(10.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_never_followed_by_with_history(method: str) -> None:
    """C1 may not follow C0 within 2 months. C0 was contacted at month -1, so C1 is
    blocked at months 0 and 1 and sent at month 2 (C1 alone is allowed, C0 is worthless)."""
    rules = [
        {
            "name": "cool_down",
            "type": "never_followed_by",
            "a": {"campaigns": ["C0"]},
            "b": {"campaigns": ["C1"]},
            "window_months": 2,
        }
    ]
    hist = np.zeros((1, 2, 1), dtype=int)
    hist[0, 0, 0] = 1
    x, obj = plan(rules, [[0.0], [1.0]], [0.0, 5.0], [0.0], 3, method, history=hist)
    assert months(x, c=1) == [2]
    assert obj == pytest.approx(5.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_only_after_needs_the_prerequisite_earlier(method: str) -> None:
    """SMS (H1, p=1, worth 10) only in a month right after a DEM (H0, p=0, loses 1).
    DEM at 0,1,2 and SMS at 1,2,3 gives 30 - 3 = 27 (a DEM with p=0 adds nothing to the
    union probability of its month), better than DEM 0,2 + SMS 1,3 = 18."""
    rules = [
        {
            "name": "follow_up",
            "type": "only_after",
            "a": {"channels": ["H0"]},
            "b": {"channels": ["H1"]},
            "window_months": 1,
        }
    ]
    x, obj = plan(rules, [[0.0, 1.0]], [10.0], [1.0, 0.0], 4, method)
    assert months(x, h=1) == [1, 2, 3]
    assert months(x, h=0) == [0, 1, 2]
    assert obj == pytest.approx(27.0, abs=1e-12)


def test_max_campaigns_over_two_months_counts_the_history() -> None:
    """At most 1 distinct campaign per 2 months, one channel, p = 1, values C0 3, C1 5,
    C2 4. C0 was contacted at month -1, so the window ending at month 0 already holds one
    campaign: month 0 may only repeat C0. Plans: C0,C0,C0 = 9; C0,-,C1 = 8; -,C1,C1 = 10
    (best). Without the history C1 every month = 15. The DP has no state for windows over
    one month, so this runs through the MILP only."""
    rules = [{"name": "one_campaign", "type": "max_campaigns", "window_months": 2, "limit": 1}]
    hist = np.zeros((1, 3, 1), dtype=int)
    hist[0, 0, 0] = 1  # C0 at month -1
    x, obj = plan(rules, [[1.0], [1.0], [1.0]], [3.0, 5.0, 4.0], [0.0], 3, "milp", history=hist)
    assert x[:, :, 0].astype(int).tolist() == [[0, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert obj == pytest.approx(10.0, abs=1e-12)
    x, obj = plan(rules, [[1.0], [1.0], [1.0]], [3.0, 5.0, 4.0], [0.0], 3, "milp")
    assert x[:, :, 0].astype(int).tolist() == [[0, 1, 0]] * 3
    assert obj == pytest.approx(15.0, abs=1e-12)


def test_max_campaigns_history_over_the_limit_blocks_its_windows() -> None:
    """Limit 1 per 2 months; C0 and C1 were both contacted at month -1 (2 > 1): history is
    never repaired, so the window [-1, 0] gets no planned contact at all, not even a
    repeat of C0 or C1. Window [0, 1] has no history and holds at most 1 campaign. Values
    C0 3, C1 5, C2 9, p = 1, horizon 2: nothing, then C2 = 9."""
    rules = [{"name": "one_campaign", "type": "max_campaigns", "window_months": 2, "limit": 1}]
    hist = np.zeros((1, 3, 1), dtype=int)
    hist[0, 0, 0] = hist[0, 1, 0] = 1
    x, obj = plan(rules, [[1.0], [1.0], [1.0]], [3.0, 5.0, 9.0], [0.0], 2, "milp", history=hist)
    assert x[:, :, 0].astype(int).tolist() == [[0, 0, 0], [0, 0, 1]]
    assert obj == pytest.approx(9.0, abs=1e-12)


def test_max_campaigns_limit_zero_forbids_its_scope_whatever_the_history() -> None:
    """Limit 0 per 2 months, C0 contacted at month -1, a one-month plan: the window
    [-1, 0] already holds C0 (1 > 0), so nothing may be planned, not C0 again (worth 3)
    and not C1 (worth 5). Objective 0; the rule checker agrees with the empty plan."""
    rules = [{"name": "none", "type": "max_campaigns", "window_months": 2, "limit": 0}]
    hist = np.zeros((1, 2, 1), dtype=int)
    hist[0, 0, 0] = 1
    x, obj = plan(rules, [[1.0], [1.0]], [3.0, 5.0], [0.0], 1, "milp", history=hist)
    assert x[:, :, 0].astype(int).tolist() == [[0, 0]]
    assert obj == pytest.approx(0.0, abs=1e-12)
    assert violations(PolicyConfig.model_validate({"rules": rules}), ["C0", "C1"], ["H0"], hist, x) == []
