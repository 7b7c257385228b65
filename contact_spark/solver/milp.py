"""Reference solver: one MILP per customer with ``scipy.optimize.milp`` (HiGHS).

Works for every rule the language expresses. It serves as the oracle for the DP, as the
fallback when the DP state space is too big, and gives a proved upper bound per customer
(:func:`solve_milp_with_bounds`).

Variables: ``x[t, k]`` binary (contact in cell k at month t), worth the contact's own value
``cell_gains``; continuous indicators and channel-subset variables that are exact once x is
integral (see :mod:`contact_spark.solver.milp_rows`, which builds the rows: one aggregated
row per window and per month, and the convex hull of each month-campaign's channel
choice for the union probability ``1 - prod(1 - p_h)``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, milp

from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver.milp_rows import CustomerModel, blocked_by_history
from contact_spark.solver.problem import ErrorCode, KernelBatch


class HistoryFeatures:
    """Per-customer history summaries every solver needs (computed once per batch)."""

    def __init__(self, policy: CompiledPolicy, history: np.ndarray, horizon: int) -> None:
        self.window = [policy.history_in_windows(a, history, horizon) for a in policy.window_atoms]
        self.age_a = [policy.last_contact_age(p.a, history) for p in policy.pair_atoms]
        self.age_b = [policy.last_contact_age(p.b, history) for p in policy.pair_atoms]
        self.campaigns = [policy.history_campaigns(a, history, horizon) for a in policy.campaign_atoms]


def build_model(
    policy: CompiledPolicy,
    batch: KernelBatch,
    feats: HistoryFeatures,
    i: int,
    cell_gain: np.ndarray,
    propensity: np.ndarray,
    prune: bool = True,
) -> CustomerModel:
    """Customer ``i``'s MILP (maximise); its first ``T*K`` variables are ``x[t, k]``.

    ``prune=False`` keeps the contacts and channel patterns that lose value and only
    tighten rules (needed when the model is embedded in a larger one with capacities)."""
    n_t, n_k = batch.horizon, policy.n_cells
    age_a = [int(a[i]) for a in feats.age_a]
    age_b = [int(b[i]) for b in feats.age_b]
    eligible = batch.eligible[i].reshape(n_t, n_k) & ~blocked_by_history(policy, age_a, age_b, n_t)
    value = batch.season_by_campaign() * batch.success_value[None, :]  # [T, C]
    model = CustomerModel(policy, cell_gain, eligible, value, propensity, prune)
    for j, atom in enumerate(policy.window_atoms):
        model.window_rows(atom, feats.window[j][i])
    for j, catom in enumerate(policy.campaign_atoms):
        model.campaign_rows(catom, feats.campaigns[j][i])
    for j, pair in enumerate(policy.pair_atoms):
        if j not in model.facts.implied:
            model.pair_rows(pair, age_a[j])
    return model


def _solve_one(
    policy: CompiledPolicy,
    batch: KernelBatch,
    feats: HistoryFeatures,
    i: int,
    cell_gain: np.ndarray,
    propensity: np.ndarray,
    time_limit: float | None,
    prune: bool = True,
) -> tuple[np.ndarray, int, float]:
    """(x[T, K] bool, ErrorCode, proved upper bound); x is HiGHS's best plan, also when a
    time limit cut the search short (SOLVER_FAILURE), and all False without one."""
    n_t, n_k = batch.horizon, policy.n_cells
    model = build_model(policy, batch, feats, i, cell_gain, propensity, prune)
    c_vec = -np.asarray(model.obj)
    # HiGHS stops at an absolute gap of 1e-6; scaling makes that negligible.
    scale = 1e6 / max(1.0, float(np.abs(c_vec).max()))
    cons = model.constraint()
    res = milp(
        c_vec * scale,
        integrality=np.asarray(model.integrality),
        bounds=Bounds(np.asarray(model.lbs), np.asarray(model.ubs)),
        constraints=[cons] if cons is not None else [],
        options={"mip_rel_gap": 0.0, "presolve": False, **({"time_limit": time_limit} if time_limit else {})},
    )
    bound = getattr(res, "mip_dual_bound", None)
    upper = -float(bound) / scale if bound is not None and np.isfinite(bound) else np.nan
    x = np.zeros((n_t, n_k), dtype=bool) if res.x is None else res.x[: n_t * n_k].reshape(n_t, n_k) > 0.5
    if res.status == 2:
        return np.zeros((n_t, n_k), dtype=bool), int(ErrorCode.INFEASIBLE), -np.inf
    if res.status != 0 or res.x is None:
        return x, int(ErrorCode.SOLVER_FAILURE), upper
    return x, int(ErrorCode.OK), upper


def solve_one_milp(
    policy: CompiledPolicy,
    batch: KernelBatch,
    feats: HistoryFeatures,
    i: int,
    cell_gain: np.ndarray,
    propensity: np.ndarray,
    time_limit: float | None = None,
) -> tuple[np.ndarray, int]:
    """Solve customer ``i``: returns (x[T, K] bool, ErrorCode); x is all False unless OK.

    Builds the customer's complete model (no pruning): contact_spark.capacity.reference
    captures it to embed it in the global model with capacity rows."""
    x, code, _ = _solve_one(policy, batch, feats, i, cell_gain, propensity, time_limit, prune=False)
    return (x if code == ErrorCode.OK else np.zeros_like(x)), code


def cell_gains(batch: KernelBatch) -> np.ndarray:
    """``[N, T, C, H]`` value of each contact alone (before channel interactions)."""
    p = batch.propensity_by_month()  # [N, T, C, H]
    base = p * batch.success_value[None, None, :, None] - batch.channel_cost[None, None]
    return base * batch.season_by_campaign()[None, :, :, None] - batch.linear_cost()


def solve_milp_with_bounds(
    policy: CompiledPolicy,
    batch: KernelBatch,
    customers: np.ndarray | None = None,
    time_limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``customers`` (default all): returns (x[N, T, C, H], status[N], upper_bound[N]).

    ``upper_bound`` is HiGHS's proved bound on the customer's optimal value (its
    ``mip_dual_bound``, in value units): equal to the plan's value up to 1e-6 relative
    when status is OK, -inf when INFEASIBLE, NaN when HiGHS proved nothing. When a time
    limit stops the search (SOLVER_FAILURE) x holds HiGHS's best legal plan found, if
    any, and the bound still holds. Customers not in ``customers`` keep x = 0, status
    OK and a NaN bound (the caller owns them).
    """
    n, n_t, n_c, n_h = batch.shape
    x = np.zeros((n, n_t, n_c, n_h), dtype=bool)
    status = np.zeros(n, dtype=np.int8)
    upper = np.full(n, np.nan)
    idx = np.arange(n) if customers is None else np.asarray(customers)
    if idx.size == 0:
        return x, status, upper
    feats = HistoryFeatures(policy, batch.clean_history(), n_t)
    gains = cell_gains(batch)
    p = batch.propensity_by_month().reshape(n, n_t, -1)
    for i in idx:
        xi, code, ub = _solve_one(policy, batch, feats, int(i), gains[i], p[i], time_limit)
        x[i] = xi.reshape(n_t, n_c, n_h)
        status[i] = code
        upper[i] = ub
    return x, status, upper


def solve_milp(
    policy: CompiledPolicy,
    batch: KernelBatch,
    customers: np.ndarray | None = None,
    time_limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``customers`` (default all) by MILP: returns (x[N, T, C, H], status[N]).

    x is all False for a customer whose status is not OK. Customers not in ``customers``
    keep x = 0 and status OK (the caller owns them).
    """
    x, status, _ = solve_milp_with_bounds(policy, batch, customers, time_limit)
    x[status != ErrorCode.OK] = False
    return x, status
