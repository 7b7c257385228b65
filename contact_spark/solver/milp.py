"""Reference solver: one MILP per customer with ``scipy.optimize.milp`` (HiGHS).

Works for every rule the language expresses; slow (milliseconds per customer), so it
serves as the oracle for the DP and as the fallback when the DP state space is too big.

Variables: ``x[t, k]`` binary (contact in cell k at month t), ``z`` package indicators of
``max_packages`` atoms and ``q`` "campaign contacted inside the window" indicators of
``max_campaigns`` atoms (continuous, pushed to ``max x`` by the constraints), and ``y_S``
for every set S of >= 2 channels of one campaign in one month: the union probability
``1 - prod(1 - p_h)`` expands by inclusion-exclusion into terms ``+-prod(p_h)`` over S
whose product ``prod(x_h)`` is linearised by ``y >= sum x - (|S|-1)`` (negative
coefficient) or ``y <= x_h`` (positive coefficient).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix

from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver.problem import ErrorCode, KernelBatch


class _Rows:
    """Sparse constraint rows ``lb <= A x <= ub`` accumulated one at a time."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []

    def add(self, cols: list[int], vals: list[float], lb: float, ub: float) -> None:
        r = len(self.lb)
        self.rows += [r] * len(cols)
        self.cols += cols
        self.vals += vals
        self.lb.append(lb)
        self.ub.append(ub)

    def constraint(self, n_vars: int) -> LinearConstraint | None:
        if not self.lb:
            return None
        a = csr_matrix((self.vals, (self.rows, self.cols)), shape=(len(self.lb), n_vars))
        return LinearConstraint(a, np.asarray(self.lb), np.asarray(self.ub))


class HistoryFeatures:
    """Per-customer history summaries every solver needs (computed once per batch)."""

    def __init__(self, policy: CompiledPolicy, history: np.ndarray, horizon: int) -> None:
        self.window = [policy.history_in_windows(a, history, horizon) for a in policy.window_atoms]
        self.age_a = [policy.last_contact_age(p.a, history) for p in policy.pair_atoms]
        self.age_b = [policy.last_contact_age(p.b, history) for p in policy.pair_atoms]
        self.campaigns = [policy.history_campaigns(a, history, horizon) for a in policy.campaign_atoms]


def _blocked_by_history(policy: CompiledPolicy, feats: HistoryFeatures, i: int, t_max: int) -> np.ndarray:
    """``[T, K]`` cells forbidden for customer ``i`` by pair atoms because of its history."""
    blocked = np.zeros((t_max, policy.n_cells), dtype=bool)
    for j, atom in enumerate(policy.pair_atoms):
        age_a, age_b = int(feats.age_a[j][i]), int(feats.age_b[j][i])
        b = list(atom.b)
        if atom.kind == "never_together":
            w = atom.window or 1
            if age_a:
                blocked[: max(0, w - age_a), b] = True
            if age_b:
                blocked[: max(0, w - age_b), list(atom.a)] = True
        elif atom.kind == "never_followed_by":
            if age_a:
                blocked[: max(0, (atom.window or 0) - age_a + 1), b] = True
    return blocked


def solve_one_milp(
    policy: CompiledPolicy,
    batch: KernelBatch,
    feats: HistoryFeatures,
    i: int,
    cell_gain: np.ndarray,
    propensity: np.ndarray,
    time_limit: float | None = None,
) -> tuple[np.ndarray, int]:
    """Solve customer ``i``: returns (x[T, K] bool, ErrorCode)."""
    n_t = batch.horizon
    n_c, n_h = len(policy.campaigns), len(policy.channels)
    n_k = n_c * n_h
    nx = n_t * n_k

    def xi(t: int, k: int) -> int:
        return t * n_k + k

    ub = batch.eligible[i].reshape(n_t, n_k) & ~_blocked_by_history(policy, feats, i, n_t)
    obj = [float(v) for v in cell_gain.reshape(-1)]
    integrality = [1] * nx
    lbs = [0.0] * nx
    ubs = [float(u) for u in ub.reshape(-1)]
    rows = _Rows()

    def new_var(c: float, integral: int, lo: float = 0.0, hi: float = 1.0) -> int:
        obj.append(c)
        integrality.append(integral)
        lbs.append(lo)
        ubs.append(hi)
        return len(obj) - 1

    for j, atom in enumerate(policy.window_atoms):
        hist = feats.window[j][i]
        if atom.packages:
            groups = policy.channel_groups(atom.cells)
            z = [[new_var(0.0, 0) for _ in groups] for _ in range(n_t)]
            for t in range(n_t):
                for g, group in enumerate(groups):
                    for k in group:
                        rows.add([z[t][g], xi(t, int(k))], [1.0, -1.0], 0.0, np.inf)
        for t in range(n_t):
            months = range(max(0, t - atom.window + 1), t + 1)
            if atom.packages:
                cols = [z[s][g] for s in months for g in range(len(groups))]
            else:
                cols = [xi(s, k) for s in months for k in atom.cells]
            if atom.kind == "max":
                rows.add(cols, [1.0] * len(cols), -np.inf, float(max(0, atom.limit - hist[t])))
            elif atom.limit - hist[t] > 0:
                rows.add(cols, [1.0] * len(cols), float(atom.limit - hist[t]), np.inf)

    for j, catom in enumerate(policy.campaign_atoms):
        seen = feats.campaigns[j][i]  # [T, C] campaigns already contacted inside the window
        groups = policy.campaigns_of(catom.cells)
        for t in range(n_t):
            months = range(max(0, t - catom.window + 1), t + 1)
            room = float(max(0, catom.limit - int(seen[t].sum())))
            fresh = [g for g in groups if not seen[t, int(g[0]) // n_h]]
            inds = []
            for group in fresh:  # indicator: this campaign is contacted inside the window
                q = new_var(0.0, 0)
                inds.append(q)
                for s in months:
                    for k in group:
                        rows.add([q, xi(s, int(k))], [1.0, -1.0], 0.0, np.inf)
            if inds:
                rows.add(inds, [1.0] * len(inds), -np.inf, room)

    for j, atom in enumerate(policy.pair_atoms):
        w = atom.window
        if atom.kind == "only_after":
            age = int(feats.age_a[j][i])
            for t in range(n_t):
                if age and (w is None or t + age <= w):
                    continue  # the prerequisite is already in the history
                start = 0 if w is None else max(0, t - w)
                prior = [xi(s, k) for s in range(start, t) for k in atom.a]
                for k in atom.b:
                    rows.add([xi(t, k), *prior], [1.0] + [-1.0] * len(prior), -np.inf, 0.0)
            continue
        seen: set[tuple[int, int]] = set()
        for s in range(n_t):
            for t in range(n_t):
                gap = t - s
                if atom.kind == "never_together":
                    if abs(gap) >= (w or 1):
                        continue
                elif not 1 <= gap <= (w or 0):
                    continue
                for ka in atom.a:
                    for kb in atom.b:
                        u, v = xi(s, ka), xi(t, kb)
                        if u == v or (min(u, v), max(u, v)) in seen:
                            continue
                        seen.add((min(u, v), max(u, v)))
                        rows.add([u, v], [1.0, 1.0], -np.inf, 1.0)

    # Union probability of several channels of one campaign in one month.
    for t in range(n_t):
        weight = batch.seasonality[t]
        for c in range(n_c):
            cells = [c * n_h + h for h in range(n_h) if ub[t, c * n_h + h]]
            for size in range(2, len(cells) + 1):
                for subset in combinations(cells, size):
                    coef = weight * batch.success_value[c] * (-1.0) ** (size + 1)
                    coef *= float(np.prod([propensity[t, k] for k in subset]))
                    if coef == 0.0:
                        continue
                    y = new_var(coef, 0)
                    cols = [xi(t, k) for k in subset]
                    if coef < 0:
                        rows.add([y, *cols], [1.0] + [-1.0] * size, -(size - 1.0), np.inf)
                    else:
                        for col in cols:
                            rows.add([y, col], [1.0, -1.0], -np.inf, 0.0)

    c_vec = -np.asarray(obj)
    # HiGHS stops at an absolute gap of 1e-6; scaling makes that negligible.
    scale = 1e6 / max(1.0, float(np.abs(c_vec).max()))
    cons = rows.constraint(len(obj))
    res = milp(
        c_vec * scale,
        integrality=np.asarray(integrality),
        bounds=Bounds(np.asarray(lbs), np.asarray(ubs)),
        constraints=[cons] if cons is not None else [],
        options={"mip_rel_gap": 0.0, "presolve": True, **({"time_limit": time_limit} if time_limit else {})},
    )
    if res.status == 2:
        return np.zeros((n_t, n_k), dtype=bool), int(ErrorCode.INFEASIBLE)
    if res.x is None or res.status != 0:
        return np.zeros((n_t, n_k), dtype=bool), int(ErrorCode.SOLVER_FAILURE)
    return res.x[:nx].reshape(n_t, n_k) > 0.5, int(ErrorCode.OK)


def cell_gains(batch: KernelBatch) -> np.ndarray:
    """``[N, T, C, H]`` value of each contact alone (before channel interactions)."""
    p = batch.propensity_by_month()  # [N, T, C, H]
    base = p * batch.success_value[None, None, :, None] - batch.channel_cost[None, None, None, :]
    return base * batch.seasonality[None, :, None, None] - batch.linear_cost()


def solve_milp(
    policy: CompiledPolicy,
    batch: KernelBatch,
    customers: np.ndarray | None = None,
    time_limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``customers`` (default all) by MILP: returns (x[N, T, C, H], status[N]).

    Customers not in ``customers`` keep x = 0 and status OK (the caller owns them).
    """
    n, n_t, n_c, n_h = batch.shape
    x = np.zeros((n, n_t, n_c, n_h), dtype=bool)
    status = np.zeros(n, dtype=np.int8)
    idx = np.arange(n) if customers is None else np.asarray(customers)
    if idx.size == 0:
        return x, status
    hist = batch.clean_history()
    feats = HistoryFeatures(policy, hist, n_t)
    gains = cell_gains(batch)
    p = batch.propensity_by_month().reshape(n, n_t, -1)
    for i in idx:
        xi, code = solve_one_milp(policy, batch, feats, int(i), gains[i], p[i], time_limit)
        x[i] = xi.reshape(n_t, n_c, n_h)
        status[i] = code
    return x, status
