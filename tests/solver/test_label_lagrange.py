"""Prices on every window row (label_lagrange): a bound the catalogue kernel prunes with.

* For any prices ``u >= 0`` the bound is an upper bound on what the rest of the horizon
  can add, from every state the optimal plan passes through (the property pruning needs);
  checked on random catalogues with histories, with random and with subgradient prices.
* The catalogue kernel with the row prices switched on for every customer still matches
  the MILP reference.
* Pinned: a row's cap has the history taken off, so what a state holds of history months
  is not counted twice.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver import catalogue
from contact_spark.solver import label_atoms as A
from contact_spark.solver import label_lagrange as L
from contact_spark.solver.catalogue import get_catalogue_model, solve_catalogue
from contact_spark.solver.dp import action_rewards
from contact_spark.solver.label_bounds import month_best
from contact_spark.solver.label_search import layout
from contact_spark.solver.problem import KernelBatch

from .test_catalogue_kernel import _disagreements, catalogues

SETTINGS = settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _one_customer(
    propensity: list[float], value: list[float], horizon: int, history: np.ndarray
) -> KernelBatch:
    """One customer, offers on DEM alone, no contact cost, flat seasonality."""
    n_c = len(value)
    return KernelBatch(
        propensity=np.array(propensity).reshape(1, n_c, 1),
        eligible=np.ones((1, n_c, 1), dtype=bool),
        history=history,
        success_value=np.array(value),
        channel_cost=np.array([0.0]),
        horizon=horizon,
        seasonality=np.ones(horizon),
    )


def _rules(model: catalogue.CatalogueModel, caps: np.ndarray) -> tuple:
    return (model.typ, model.win, model.lim, model.ismin, model.fp, model.off, np.ascontiguousarray(caps))


@SETTINGS
@given(catalogues())
def test_the_row_bound_never_falls_below_the_optimum_along_the_optimal_plan(case: tuple) -> None:
    policy, offers, channels, batch = case
    model = get_catalogue_model(compile_policy(policy, offers, channels), 12)
    assert model is not None
    n = batch.shape[0]
    sol = solve_catalogue(model, batch, np.arange(n))
    reward = action_rewards(model, batch)
    reward = np.where(np.isfinite(reward), reward, A.NEG)
    hist = batch.clean_history()
    init, caps = model.initial_states(hist), model.caps(hist)
    rows = L.priced_rows(model.typ, model.ismin)
    every = np.arange(len(model.typ))
    toff = layout(_rules(model, caps[0]), every)
    rng = np.random.default_rng(int(batch.success_value.sum() * 1000) % 2**32)
    for i in range(n):
        if sol.status[i] != 0:
            continue
        val = np.ascontiguousarray(reward[i])
        rules = _rules(model, caps[i])
        rcap = L.row_caps(rules, init[i], rows, 12)
        greedy = A.repair(rules, month_best(val), val, init[i], model.nz_ptr, model.nz_idx)
        target = float(sum(val[t, greedy[t]] for t in range(12))) if greedy[0] >= 0 else 0.0
        u_sub, b_sub, _ = L.dual_prices(rules, val, model.nz_ptr, model.nz_idx, rows, rcap, target, 100)
        u_rand = rng.exponential(5.0, rcap.shape) * (rng.uniform(size=rcap.shape) < 0.3)
        u_rand[np.setdiff1d(every, rows)] = 0.0
        assert b_sub >= sol.value[i] - 1e-7
        for u in (u_sub, u_rand):
            charges = L.month_charges(model.typ, model.win, rows, u)
            pv_row = L.row_priced_values(val, model.fp, model.nz_ptr, model.nz_idx, charges)
            lsuf = L.suffix_bound(pv_row, rows, u, rcap)
            usum = L.suffix_prices(model.typ, rows, u)
            assert lsuf[0] >= sol.value[i] - 1e-7
            cur = init[i].astype(np.int32)
            nxt = cur.copy()
            g = 0.0
            for t, a in enumerate(sol.actions[i]):
                for j in every:
                    A.step_atom(
                        model.typ[j], model.win[j], model.lim[j], model.ismin[j], model.fp[a, j],
                        caps[i][j, t], cur, model.off[j], nxt, model.off[j],
                    )  # fmt: skip
                cur[:] = nxt
                g += val[t, a]
                bound = (
                    g + lsuf[t + 1] - L.straddle_use(model.typ, model.win, u, usum, every, toff, cur, t + 1)
                )
                assert bound >= sol.value[i] - 1e-7, f"customer {i}, month {t}: {bound} < {sol.value[i]}"


@SETTINGS
@given(catalogues())
def test_the_kernel_with_row_prices_for_every_customer_matches_the_milp(case: tuple) -> None:
    policy, offers, channels, batch = case
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalogue, "ROW_PRICES_AFTER", -1)  # price before the first round
        assert _disagreements(policy, offers, channels, batch) == []


def test_a_row_cap_takes_the_history_off_and_the_state_counts_only_plan_months() -> None:
    """A at most once in 3 months, A contacted in month -1. Row caps: the windows ending in
    months 0 and 1 hold month -1, so 0 is left; later windows 1. With A in month 1 (not
    allowed, but the arithmetic is what is pinned) the state entering month 2 holds months
    1 and 0 (slots 0 and 1): row 2 holds months 0..2, so it counts slot 0 and 1 (1 unit),
    row 3 holds months 1..3: slot 0 (1 unit). With prices 2 and 5 on rows 2 and 3:
    2*1 + 5*1 = 7. Entering month 1 the state holds months 0 and -1: only slot 0 is a plan
    month, so row 1 (price 3) counts 0 units although slot 1 holds A (its cap already
    lost that unit)."""
    policy = PolicyConfig.model_validate(
        {
            "rules": [
                {
                    "name": "a_quarterly",
                    "type": "max_offers",
                    "campaigns": ["A"],
                    "window_months": 3,
                    "limit": 1,
                }
            ]
        }
    )
    model = get_catalogue_model(compile_policy(policy, ["A", "B"], ["DEM"]), 6)
    assert model is not None
    history = np.zeros((1, 2, 2, 1), dtype=np.int64)
    history[0, 0, 0, 0] = 1  # month -1: A by e-mail
    batch = _one_customer([0.1, 0.1], [100.0, 50.0], 6, history)
    init = model.initial_states(batch.clean_history())[0]
    rules = _rules(model, model.caps(batch.clean_history())[0])
    rows = L.priced_rows(model.typ, model.ismin)
    assert rows.tolist() == [0]
    rcap = L.row_caps(rules, init, rows, 6)
    assert rcap[0].tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    u = np.zeros((1, 6))
    u[0, 1], u[0, 2], u[0, 3] = 3.0, 2.0, 5.0
    usum = L.suffix_prices(model.typ, rows, u)
    toff = np.array([0, 2])
    atoms = np.array([0])
    entering_2 = np.array([1, 0], dtype=np.int32)  # A in month 1, nothing in month 0
    assert L.straddle_use(model.typ, model.win, u, usum, atoms, toff, entering_2, 2) == 7.0
    entering_1 = np.array([0, 1], dtype=np.int32)  # nothing in month 0, A in month -1
    assert L.straddle_use(model.typ, model.win, u, usum, atoms, toff, entering_1, 1) == 0.0


def test_with_row_prices_the_yearly_cap_case_is_settled_before_any_refinement_round() -> None:
    """test_catalogue_kernel's yearly-cap customer (A worth 50 a month at most twice, B
    10) with the row prices computed first: the cap's rows get a price between B's and
    A's worth, the Lagrangian bound is the LP bound, which a cardinality cap makes exact
    (135), and the repaired tops or the descent's first search reach it. So the customer
    is proved in round 1, where refinement needs 2 rounds."""
    from .test_catalogue_kernel import _yearly_cap_case

    policy, batch = _yearly_cap_case()
    model = get_catalogue_model(compile_policy(policy, ["A", "B"], ["DEM"]), 4)
    assert model is not None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalogue, "ROW_PRICES_AFTER", -1)
        sol = solve_catalogue(model, batch, np.array([0]))
    assert sol.status.tolist() == [0]
    assert sol.rounds.tolist() == [1]
    assert sol.value[0] == pytest.approx(135.0, abs=1e-9)
    assert sol.upper[0] == pytest.approx(135.0, abs=1e-9)


def test_value_first_keeps_a_yearly_cap_for_a_second_contact_of_the_best_offer() -> None:
    """P is worth 100 a month but at most once in 3 months, W worth 5; P and W together at
    most twice a year; 4 months. Filling the months in order (repair) takes P in month 0,
    W in month 1 (P is spaced out) and then the yearly cap is spent: 105. The most
    valuable month-actions first take P in month 0, skip P in months 1 and 2 (spacing),
    take P in month 3, and the cap is full: 200, the optimum."""
    policy = PolicyConfig.model_validate(
        {
            "rules": [
                {"name": "one_a_month", "type": "max_campaigns", "window_months": 1, "limit": 1},
                {
                    "name": "p_quarterly",
                    "type": "max_offers",
                    "campaigns": ["P"],
                    "window_months": 3,
                    "limit": 1,
                },
                {
                    "name": "twice_a_year",
                    "type": "max_offers",
                    "campaigns": ["P", "W"],
                    "window_months": 12,
                    "limit": 2,
                },
            ]
        }
    )
    model = get_catalogue_model(compile_policy(policy, ["P", "W"], ["DEM"]), 4)
    assert model is not None
    batch = _one_customer([1.0, 0.05], [100.0, 100.0], 4, np.zeros((1, 1, 2, 1), dtype=np.int64))
    val = np.ascontiguousarray(np.where(np.isfinite(r := action_rewards(model, batch)[0]), r, A.NEG))
    init = model.initial_states(batch.clean_history())[0]
    rules = _rules(model, model.caps(batch.clean_history())[0])

    def cells(plan: np.ndarray) -> list[list[bool]]:
        return model.action_cells[plan].reshape(4, 2).tolist()

    by_month = A.repair(rules, month_best(val), val, init, model.nz_ptr, model.nz_idx)
    assert cells(by_month) == [[True, False], [False, True], [False, False], [False, False]]
    assert val[np.arange(4), by_month].sum() == pytest.approx(105.0)
    first = A.value_first(rules, val, init, model.nz_ptr, model.nz_idx)
    assert cells(first) == [[True, False], [False, False], [False, False], [True, False]]
    assert val[np.arange(4), first].sum() == pytest.approx(200.0)
    sol = solve_catalogue(model, batch, np.array([0]))
    assert sol.value[0] == pytest.approx(200.0)
