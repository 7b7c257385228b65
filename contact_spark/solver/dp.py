"""Exact fast path: dynamic programming over the policy automaton, batched with numba.

For each customer the DP walks the layered graph (month, short state, counters) reachable
from the customer's history state, then takes the best path backwards. The value of an
action in a month does not depend on the state, so the DP is a longest path in a DAG.

Yearly-style counters (windows >= horizon) multiply the state space, so they are added
lazily: solve without them (a relaxation), keep every customer whose plan satisfies all
counters (a feasible optimum of a relaxation is optimal), and re-solve the others with
the violated counters in the state until nobody violates. Ties go to the action listed
first (empty action first) at the earliest month, deterministically.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver.automaton import DPModel, StateSpaceTooLarge
from contact_spark.solver.problem import ErrorCode, KernelBatch

OVERFLOW = -1  # internal status: buffers too small, use the MILP for this customer
MAX_TABLE = 40_000_000  # states x counter combinations addressable per kernel call
NODE_CAP = 400_000
EDGE_CAP = 4_000_000


@nb.njit(cache=True, nogil=True)
def _dp_kernel(
    delta: np.ndarray,  # [S, A] int32
    reward: np.ndarray,  # [N, T, A] float64, -inf = action not allowed
    init: np.ndarray,  # [N] int32
    inc: np.ndarray,  # [A, R] int64 counter increments
    lo: np.ndarray,  # [N, T, R] int64
    hi: np.ndarray,  # [N, T, R] int64
    radix: np.ndarray,  # [R] int64
    out_act: np.ndarray,  # [N, T] int32
    out_status: np.ndarray,  # [N] int8
) -> None:
    n, n_t, n_a = reward.shape
    n_s = delta.shape[0]
    n_r = radix.shape[0]
    stride = np.ones(n_r, dtype=np.int64)
    n_code = 1
    for j in range(n_r):
        stride[j] = n_code
        n_code *= radix[j]
    mark = np.zeros(n_s * n_code, dtype=np.int64)
    slot = np.zeros(n_s * n_code, dtype=np.int32)
    node_s = np.empty(NODE_CAP, dtype=np.int32)
    node_k = np.empty(NODE_CAP, dtype=np.int64)
    value = np.empty(NODE_CAP, dtype=np.float64)
    choice = np.empty(NODE_CAP, dtype=np.int64)
    first_edge = np.empty(NODE_CAP + 1, dtype=np.int64)
    edge_act = np.empty(EDGE_CAP, dtype=np.int32)
    edge_dst = np.empty(EDGE_CAP, dtype=np.int32)
    edge_rew = np.empty(EDGE_CAP, dtype=np.float64)
    layer = np.empty(n_t + 2, dtype=np.int64)
    stamp = 0
    for i in range(n):
        n_nodes = 1
        n_edges = 0
        node_s[0] = init[i]
        node_k[0] = 0
        layer[0] = 0
        layer[1] = 1
        overflow = False
        for t in range(n_t):
            stamp += 1
            for u in range(layer[t], layer[t + 1]):
                first_edge[u] = n_edges
                s = node_s[u]
                k = node_k[u]
                for a in range(n_a):
                    r = reward[i, t, a]
                    if r == -np.inf:
                        continue
                    s2 = delta[s, a]
                    if s2 < 0:
                        continue
                    k2 = k
                    ok = True
                    for j in range(n_r):
                        c = (k // stride[j]) % radix[j]
                        c2 = c + inc[a, j]
                        if c2 > hi[i, t, j] or c2 < lo[i, t, j]:
                            ok = False
                            break
                        if c2 > radix[j] - 1:
                            c2 = radix[j] - 1  # saturated: every lower bound is met
                        k2 += (c2 - c) * stride[j]
                    if not ok:
                        continue
                    key = s2 * n_code + k2
                    if mark[key] != stamp:
                        if n_nodes >= NODE_CAP:
                            overflow = True
                            break
                        mark[key] = stamp
                        slot[key] = n_nodes
                        node_s[n_nodes] = s2
                        node_k[n_nodes] = k2
                        n_nodes += 1
                    if n_edges >= EDGE_CAP:
                        overflow = True
                        break
                    edge_act[n_edges] = a
                    edge_dst[n_edges] = slot[key]
                    edge_rew[n_edges] = r
                    n_edges += 1
                if overflow:
                    break
            if overflow:
                break
            first_edge[layer[t + 1]] = n_edges
            layer[t + 2] = n_nodes
        if overflow:
            out_status[i] = OVERFLOW
            continue
        for u in range(layer[n_t], layer[n_t + 1]):
            value[u] = 0.0
        for t in range(n_t - 1, -1, -1):
            for u in range(layer[t], layer[t + 1]):
                best = -np.inf
                best_e = -1
                for e in range(first_edge[u], first_edge[u + 1]):
                    v = edge_rew[e] + value[edge_dst[e]]
                    if v > best:
                        best = v
                        best_e = e
                value[u] = best
                choice[u] = best_e
        if value[0] == -np.inf:
            out_status[i] = 5  # ErrorCode.INFEASIBLE
            continue
        u = 0
        for t in range(n_t):
            e = choice[u]
            out_act[i, t] = edge_act[e]
            u = edge_dst[e]
        out_status[i] = 0


def action_rewards(model: DPModel, batch: KernelBatch) -> np.ndarray:
    """``[N, T, A]`` value of each month action; -inf when it uses an ineligible cell."""
    n, n_t, n_c, n_h = batch.shape
    p = batch.clean_propensity()  # [N, C, H]
    lin = batch.linear_cost().reshape(n, n_t, n_c * n_h)
    elig = batch.eligible.reshape(n, n_t, n_c * n_h)
    seas = batch.seasonality
    out = np.zeros((n, n_t, len(model.actions)), dtype=np.float64)
    for a, act in enumerate(model.actions):
        if not act:
            continue
        cells = np.asarray(sorted(act))
        total = np.zeros(n)
        for c in sorted({k // n_h for k in act}):
            hs = [k % n_h for k in act if k // n_h == c]
            miss = np.prod(1.0 - p[:, c, hs], axis=1)
            total += batch.success_value[c] * (1.0 - miss) - batch.channel_cost[hs].sum()
        val = total[:, None] * seas[None, :] - lin[:, :, cells].sum(axis=2)
        ok = elig[:, :, cells].all(axis=2)
        out[:, :, a] = np.where(ok, val, -np.inf)
    return out


_MODELS: dict[tuple[CompiledPolicy, int], DPModel | None] = {}


def get_model(policy: CompiledPolicy, horizon: int) -> DPModel | None:
    """Cached DP model for (policy, horizon), or None when the DP is not applicable."""
    key = (policy, horizon)
    if key not in _MODELS:
        try:
            _MODELS[key] = DPModel.build(policy, horizon)
        except StateSpaceTooLarge:
            _MODELS[key] = None
    return _MODELS[key]


def solve_dp(
    model: DPModel, batch: KernelBatch, customers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``customers`` exactly: returns (actions[N, T] int32, status[N] int8).

    Status OVERFLOW (-1) marks customers the DP could not handle (caller uses the MILP).
    Raises StateSpaceTooLarge when the short automaton explodes.
    """
    n, n_t = batch.shape[0], batch.horizon
    acts = np.zeros((n, n_t), dtype=np.int32)
    status = np.zeros(n, dtype=np.int8)
    if customers.size == 0:
        return acts, status
    hist = batch.clean_history()[customers]
    init = model.initial_states(hist)
    delta = model.delta
    reward = action_rewards(model, batch.subset(customers))
    lo_all, hi_all = model.counter_bounds(hist)
    inc_all = model.window_weight[:, model.long_windows].astype(np.int64)
    limits = np.array([model.policy.window_atoms[j].limit for j in model.long_windows], dtype=np.int64)
    n_r = len(model.long_windows)

    included = np.zeros(customers.size, dtype=np.int64)  # bit mask of counters in the state
    pending = np.arange(customers.size)
    sub_acts = np.zeros((customers.size, n_t), dtype=np.int32)
    sub_status = np.zeros(customers.size, dtype=np.int8)
    while pending.size:
        masks, groups = np.unique(included[pending], return_inverse=True)
        groups = groups.reshape(-1)
        for g, mask in enumerate(masks):
            members = pending[groups == g]
            sel = np.array([r for r in range(n_r) if (int(mask) >> r) & 1], dtype=np.int64)
            radix = limits[sel] + 1
            if delta.shape[0] * int(np.prod(radix)) > MAX_TABLE:
                sub_status[members] = OVERFLOW
                continue
            ga = np.zeros((members.size, n_t), dtype=np.int32)
            gs = np.zeros(members.size, dtype=np.int8)
            _dp_kernel(
                delta,
                np.ascontiguousarray(reward[members]),
                np.ascontiguousarray(init[members]),
                np.ascontiguousarray(inc_all[:, sel]),
                np.ascontiguousarray(lo_all[members][:, :, sel]),
                np.ascontiguousarray(hi_all[members][:, :, sel]),
                np.ascontiguousarray(radix),
                ga,
                gs,
            )
            sub_acts[members] = ga
            sub_status[members] = gs
        solved = pending[sub_status[pending] == ErrorCode.OK]
        if n_r == 0 or solved.size == 0:
            break
        cum = np.cumsum(inc_all[sub_acts[solved]], axis=1)  # [n, T, R]
        bad = ((cum > hi_all[solved]) | (cum < lo_all[solved])).any(axis=1)  # [n, R]
        bits = (bad.astype(np.int64) << np.arange(n_r, dtype=np.int64)).sum(axis=1)
        again = bits != 0
        included[solved[again]] |= bits[again]
        pending = solved[again]
    acts[customers] = sub_acts
    status[customers] = sub_status
    return acts, status
