"""Exact per-customer schedules by label setting with state-space refinement (numba).

The catalogue kernel's core. One customer at a time, no Spark, no Python objects:

* Every rule atom is compiled (:mod:`contact_spark.solver.catalogue`) to a type and a few
  integers, every month action to its footprint on each atom, and each month's step of
  an atom is :func:`contact_spark.solver.label_atoms.step_atom`.
* **State-space relaxation.** A DP over all atoms at once would need the product of
  their states, far too many with dozens of offers. So the DP only *tracks* some atoms
  and ignores the rest: its optimum is an upper bound on the customer's value. The plan
  it returns is then checked against every atom; when it is legal it is optimal (proved:
  it reaches the bound), otherwise the atoms it breaks join the tracked set and the DP
  runs again (decremental state-space relaxation, as in column generation for routing).
  Each round only adds atoms, so bounds never increase and the loop ends.
* Each round is a label-setting DP with action classes and bound pruning
  (:mod:`contact_spark.solver.label_search`); its bounds come from
  :mod:`contact_spark.solver.label_bounds` and from the round before. The best legal
  plan known (the pruning threshold) is each round's plan repaired month by month.
* **Row prices.** Once a round needs more than ``price_after`` labels (large
  catalogues), every window row gets a Lagrangian price
  (:mod:`contact_spark.solver.label_lagrange`), near the LP optimum. Then, in order:
  the month tops under the prices, repaired, often are the optimum, and when the
  Lagrangian bound meets them the customer is settled with no search (half of
  bench_milp's 50-offer customers); else a one-round exact search over every atom among
  the actions the prices leave open (reduced-cost fixing, :func:`_fixed_search`, with a
  small budget); else the refinement goes on with the row bound in its pruning.

Work is bounded: a round that would create more than ``max_labels`` labels stops, and the
customer keeps the best legal plan found with the last proved bound (not proved optimal).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from contact_spark.solver.label_atoms import LONG, NEG, check_plan, repair, value_first
from contact_spark.solver.label_bounds import completion, month_best, prices
from contact_spark.solver.label_lagrange import (
    dual_prices,
    month_charges,
    priced_rows,
    row_caps,
    row_priced_values,
    suffix_bound,
    suffix_prices,
)
from contact_spark.solver.label_search import backward, forward, layout

__all__ = ["BOUNDED", "DONE", "NEG", "NO_PLAN", "solve_customer"]

DONE = 0  # proved optimal
BOUNDED = 1  # legal plan, upper bound above it (work limit)
NO_PLAN = 2  # no legal plan found (min rules the repair could not meet)

PRICE_STEPS = 40  # subgradient steps for the yearly caps' prices
ROW_PRICE_STEPS = 1000  # subgradient steps for the prices of every window row
FIXED_LABELS = 2_000  # budget of each one-round search over every atom (_fixed_search)
DESCENT_START = 1e-4  # first threshold of the descent: this share of the bound below it


@njit(cache=True)
def _plan_value(val: np.ndarray, plan: np.ndarray) -> float:
    out = 0.0
    for t in range(plan.shape[0]):
        out += val[t, plan[t]]
    return out


@njit(cache=True)
def _projection(rules: tuple, atoms: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Where each slot of the ``before`` atoms' compact state sits in the ``atoms``' one
    (``before`` is a subset of ``atoms``, both sorted)."""
    toff = layout(rules, atoms)
    p_toff = layout(rules, before)
    proj = np.zeros(p_toff[-1], dtype=np.int64)
    k = 0
    for i in range(atoms.shape[0]):
        if k < before.shape[0] and atoms[i] == before[k]:
            for s in range(p_toff[k + 1] - p_toff[k]):
                proj[p_toff[k] + s] = toff[i] + s
            k += 1
    return proj


@njit(cache=True)
def _compact(rules: tuple, init: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """The ``atoms``' slots of the full state ``init``, in compact layout."""
    off = rules[5]
    toff = layout(rules, atoms)
    out = np.zeros(toff[-1], dtype=np.int32)
    for i in range(atoms.shape[0]):
        out[toff[i] : toff[i + 1]] = init[off[atoms[i]] : off[atoms[i] + 1]]
    return out


@njit(cache=True)
def _fixed_search(
    rules: tuple,
    val: np.ndarray,
    init: np.ndarray,
    lower: float,
    lag_bound: float,
    pv_row: np.ndarray,
    bounds: tuple,
    budget: int,
    nz_ptr: np.ndarray,
    nz_idx: np.ndarray,
) -> tuple[np.ndarray, float, int, bool]:
    """The exact DP over every atom, among the actions the row prices leave open: a plan
    with month t's action a is worth at most ``lag_bound - (top_t - pv_row[t, a])`` (the
    Lagrangian bound ``L(u)`` with that month fixed; not any other upper bound), so actions that cannot beat ``lower`` are
    dropped first (reduced-cost fixing). With prices near the LP optimum and a good
    incumbent only a few actions a month stay, and one round over the whole state
    settles the customer. Returns (plan, value, labels, finished): value NEG when nothing
    beats ``lower`` (the incumbent is optimal); finished False past ``budget`` labels."""
    n_t, n_a = val.shape
    typ = rules[0]
    open_val = val.copy()
    tol = 1e-9 * max(1.0, abs(lower))
    for t in range(n_t):
        top = NEG
        for a in range(n_a):
            if pv_row[t, a] > top:
                top = pv_row[t, a]
        for a in range(n_a):
            if open_val[t, a] > NEG and lag_bound - (top - pv_row[t, a]) <= lower + tol:
                open_val[t, a] = NEG
    # only the atoms an open action touches can forbid a plan of open actions (and the
    # min atoms, which an empty month can break): the others stay out of the state
    touched = rules[3].copy()  # the min atoms
    for a in range(n_a):
        for t in range(n_t):
            if open_val[t, a] > NEG:
                touched[nz_idx[nz_ptr[a] : nz_ptr[a + 1]]] = True
                break
    every = np.flatnonzero(touched)
    plain, priced, lam, lsuf, lu, lusum = bounds
    none = np.zeros(0, dtype=np.int64)
    n_j = typ.shape[0]
    no_prev = (
        False,
        np.zeros((1, 1), dtype=np.int32),
        np.full(1, -1, dtype=np.int64),
        np.zeros(n_t + 2, dtype=np.int64),
        np.ones(n_t + 2, dtype=np.int64),
        np.zeros(1),
        np.zeros(n_j),
        0.0,
        none,
    )
    value, plan, used, finished, _kept = forward(
        rules,
        open_val,
        _compact(rules, init, every),
        every,
        lower + tol,
        (plain, priced, lam, lsuf, lu, lusum, pv_row),
        no_prev,
        budget,
    )
    return plan, value, used, finished


@njit(cache=True)
def _row_prices_first(
    rules: tuple,
    val: np.ndarray,
    init: np.ndarray,
    nz_ptr: np.ndarray,
    nz_idx: np.ndarray,
    best_plan: np.ndarray,
    lower: float,
    upper: float,
    bounds: tuple,
) -> tuple:
    """Row prices, then what they settle before any refinement round.

    * The month tops under the prices, repaired: a better incumbent, often the optimum.
    * A descent of thresholds from the Lagrangian bound ``L`` down to the incumbent:
      :func:`_fixed_search` above ``L - gap`` (gap doubling from ``DESCENT_START * L``)
      either finds the best plan above it - the optimum - or proves there is none, so
      ``L - gap`` is a new upper bound. Near ``L`` few actions stay open and a search
      is a few dozen labels; where the prices are tight and the repaired tops are poor
      (conf/examples/catalogue_50.yaml: bound 0.04-0.2 % above the optimum, tops 2-15 %
      below it) this finds the optimum that a search from the incumbent would need
      100,000+ labels for. A search past ``FIXED_LABELS`` stops the descent.

    Returns (u, lsuf, lusum, pv_row, plan, lower, upper, labels, settled).
    """
    typ, win, ismin, fp = rules[0], rules[1], rules[3], rules[4]
    n_t = val.shape[0]
    plain, priced, lam = bounds
    rows = priced_rows(typ, ismin)
    rcap = row_caps(rules, init, rows, n_t)
    lu, lag_bound, top = dual_prices(rules, val, nz_ptr, nz_idx, rows, rcap, lower, ROW_PRICE_STEPS)
    upper = min(upper, lag_bound)
    pv_row = row_priced_values(val, fp, nz_ptr, nz_idx, month_charges(typ, win, rows, lu))
    lsuf = suffix_bound(pv_row, rows, lu, rcap)
    lusum = suffix_prices(typ, rows, lu)
    # incumbents: the month tops repaired by value and by priced value (the prices know
    # which caps are scarce), and the most valuable contacts first (value_first)
    for heur in (
        repair(rules, top, val, init, nz_ptr, nz_idx),
        repair(rules, top, pv_row, init, nz_ptr, nz_idx),
        value_first(rules, val, init, nz_ptr, nz_idx),
    ):
        if heur[0] >= 0 and _plan_value(val, heur) > lower:
            best_plan, lower = heur, _plan_value(val, heur)
    labels = 0
    gap = DESCENT_START * max(1.0, abs(lag_bound))
    while upper > lower + 1e-9 * max(1.0, abs(lower)):
        threshold = max(lower, upper - gap)
        plan, value, used, done = _fixed_search(
            rules,
            val,
            init,
            threshold,
            lag_bound,
            pv_row,
            (plain, priced, lam, lsuf, lu, lusum),
            FIXED_LABELS,
            nz_ptr,
            nz_idx,
        )
        labels += used
        if not done:
            return lu, lsuf, lusum, pv_row, best_plan, lower, upper, labels, False
        if value > NEG:  # the best plan above the threshold: the optimum
            return lu, lsuf, lusum, pv_row, plan, value, value, labels, True
        # nothing above the threshold (up to the search's tolerance)
        upper = min(upper, threshold + 1e-9 * max(1.0, abs(threshold)))
        gap *= 2.0
    return lu, lsuf, lusum, pv_row, best_plan, lower, max(upper, lower), labels, True


@njit(cache=True)
def solve_customer(
    val: np.ndarray,
    rules: tuple,
    init: np.ndarray,
    tracked0: np.ndarray,
    max_labels: int,
    nz_ptr: np.ndarray,
    nz_idx: np.ndarray,
    price_after: int,
) -> tuple[np.ndarray, float, float, int, int, int]:
    """Optimal month actions of one customer: (plan, value, upper bound, status, rounds,
    labels). ``val[t, a]`` is action a's value in month t (NEG: not allowed); ``rules`` as
    in :mod:`contact_spark.solver.label_atoms`, ``init`` the full state before month 0."""
    typ, ismin, fp, cap = rules[0], rules[3], rules[4], rules[6]
    n_t = val.shape[0]
    n_j = typ.shape[0]
    none = np.zeros(0, dtype=np.int64)
    plain = completion(val, fp, np.zeros(n_j), none, np.zeros(n_j))
    # first legal plan: each month's best action, repaired greedily
    best_plan = repair(rules, month_best(val), val, init, nz_ptr, nz_idx)
    have = best_plan[0] >= 0
    lower = _plan_value(val, best_plan) if have else NEG
    if not have:
        best_plan = np.zeros(n_t, dtype=np.int64)
    # prices of the long max windows (yearly caps) for a tighter bound on the months left
    priceable = np.flatnonzero((typ == LONG) & ~ismin)
    cap_end = np.zeros(n_j, dtype=np.float64)
    for j in priceable:
        cap_end[j] = cap[j, n_t - 1]
    lam = prices(val, fp, priceable, cap_end, lower, PRICE_STEPS) if have else np.zeros(n_j)
    priced = completion(val, fp, lam, priceable, cap_end)
    upper = min(plain[0], priced[0])
    # prices of every max window row, for the strong bound on the months left: computed
    # once a round needed more than ``price_after`` labels (small catalogues rarely do:
    # measured at 8 offers, pricing every customer halves the kernel's speed)
    lu = np.zeros((n_j, n_t))
    lsuf = np.full(n_t + 1, np.inf)
    lusum = np.zeros((n_j, n_t + 1))
    row_priced = False
    pv_row = val  # val less the row prices' charges (none yet)
    last_used = 0
    tracked = tracked0.copy()
    broken = np.zeros(n_j, dtype=np.bool_)
    rounds = 0
    labels = 0
    # what the previous round left: its labels, tables, bounds and unpriced caps
    p_atoms = none
    p_use = False
    p_st = np.zeros((1, 1), dtype=np.int32)
    p_tab = np.full(1, -1, dtype=np.int64)
    p_tstart = np.zeros(n_t + 2, dtype=np.int64)
    p_tsize = np.ones(n_t + 2, dtype=np.int64)
    p_bound = np.zeros(1)
    p_lam = np.zeros(n_j)
    p_lam_cap = 0.0
    while True:
        rounds += 1
        if not row_priced and last_used > price_after and have:
            row_priced = True
            lu, lsuf, lusum, pv_row, best_plan, lower, upper, used, settled = _row_prices_first(
                rules, val, init, nz_ptr, nz_idx, best_plan, lower, upper, (plain, priced, lam)
            )
            labels += used
            if settled:
                break
        atoms = np.flatnonzero(tracked)
        proj = _projection(rules, atoms, p_atoms)
        prev = (p_use, p_st, p_tab, p_tstart, p_tsize, p_bound, p_lam, p_lam_cap, proj)
        value, plan, used, finished, kept = forward(
            rules,
            val,
            _compact(rules, init, atoms),
            atoms,
            lower,
            (plain, priced, lam, lsuf, lu, lusum, pv_row),
            prev,
            max_labels,
        )
        labels += used
        last_used = used
        if not finished:
            break
        if value <= NEG:
            upper = lower  # nothing beats the incumbent: it is optimal
            break
        upper = min(upper, value)
        broken[:] = False
        if check_plan(rules, plan, init, broken) == 0:
            return plan, value, value, DONE, rounds, labels
        repaired = repair(rules, plan, val, init, nz_ptr, nz_idx)
        if repaired[0] >= 0 and (not have or _plan_value(val, repaired) > lower):
            lower = _plan_value(val, repaired)
            best_plan = repaired
            have = True
        # the bound this round proved, for the next round's pruning (lower only grew)
        p_lam = lam.copy()
        p_lam[atoms] = 0.0
        p_lam_cap = float(np.sum(p_lam * cap_end))
        p_bound = backward(rules, val, atoms, lower, kept, p_lam, priceable)
        p_st, _g, _lstart, p_tab, p_tstart, p_tsize, _dom = kept
        p_use = True
        p_atoms = atoms
        tracked |= broken
    if not have:
        return best_plan, NEG, upper, NO_PLAN, rounds, labels
    value = _plan_value(val, best_plan)
    status = DONE if upper <= value + 1e-9 * max(1.0, abs(value)) else BOUNDED
    return best_plan, value, max(upper, value), status, rounds, labels
