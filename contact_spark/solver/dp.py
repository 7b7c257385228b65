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
LAST_WORK: list[np.ndarray] = []  # counter-DP nodes per customer of the last call
EDGE_CAP = 4_000_000


@nb.njit(cache=True, nogil=True)
def _violations(acts, inc, lo_i, hi_i) -> int:  # noqa: ANN001
    """Bit mask of counters the schedule ``acts`` violates."""
    n_t = acts.shape[0]
    n_r = inc.shape[1]
    bits = 0
    for j in range(n_r):
        cum = 0
        for t in range(n_t):
            cum += inc[acts[t], j]
            if cum > hi_i[t, j] or cum < lo_i[t, j]:
                bits |= 1 << j
                break
    return bits


@nb.njit(cache=True, nogil=True)
def _kernel(
    delta: np.ndarray,  # [S, A] int32 short-state successor, -1 = forbidden
    reward: np.ndarray,  # [N, T, A] float64, -inf = action not allowed for the customer
    init: np.ndarray,  # [N] int32 initial short state
    order: np.ndarray,  # [N] customers sorted by initial state (graph reuse)
    inc: np.ndarray,  # [A, R] int64 counter increments
    lo: np.ndarray,  # [N, T, R] int64 lower bounds on cumulative counts
    hi: np.ndarray,  # [N, T, R] int64 upper bounds on cumulative counts
    radix: np.ndarray,  # [R] int64 counter range (limit + 1)
    counter_cells: np.ndarray,  # [R] int64 cell bit mask of each counter
    action_mask: np.ndarray,  # [A] int64 cell bit mask of each action
    action_of_mask: np.ndarray,  # [2**K] int32 action index of a cell mask, -1 = none
    down_closed: bool,  # dropping contacts never breaks a rule (no min/only_after)
    g_cap: int,
    ge_cap: int,
    node_cap: int,
    out_act: np.ndarray,  # [N, T] int32
    out_status: np.ndarray,  # [N] int8
    out_work: np.ndarray,  # [N] int64 counter-DP nodes created (diagnostics)
) -> None:
    n, n_t, n_a = reward.shape
    n_s = delta.shape[0]
    n_r = radix.shape[0]
    total_code = 1
    for j in range(n_r):
        total_code *= radix[j]
    # Short-state graph reachable from one initial state, reused by consecutive customers.
    g_index = np.full((n_t + 1, n_s), -1, dtype=np.int32)
    g_s = np.empty(g_cap, dtype=np.int32)
    g_first = np.empty(g_cap + 1, dtype=np.int64)
    g_act = np.empty(ge_cap, dtype=np.int32)
    g_dst = np.empty(ge_cap, dtype=np.int32)
    g_layer = np.zeros(n_t + 2, dtype=np.int64)
    u_val = np.empty(g_cap, dtype=np.float64)
    u_choice = np.empty(g_cap, dtype=np.int64)
    cur_init = -1
    g_ok = False
    # Counter DP (forward, pruned with the short-graph values as upper bounds).
    mark = np.zeros(n_s * total_code, dtype=np.int64)
    slot = np.zeros(n_s * total_code, dtype=np.int32)
    node_s = np.empty(node_cap, dtype=np.int32)
    node_k = np.empty(node_cap, dtype=np.int64)
    node_f = np.empty(node_cap, dtype=np.float64)
    node_pred = np.empty(node_cap, dtype=np.int32)
    node_pact = np.empty(node_cap, dtype=np.int32)
    node_dead = np.empty(node_cap, dtype=np.bool_)
    layer = np.zeros(n_t + 2, dtype=np.int64)
    stride = np.zeros(n_r, dtype=np.int64)
    acts = np.empty(n_t, dtype=np.int32)
    lb_acts = np.empty(n_t, dtype=np.int32)
    cum = np.empty(n_r, dtype=np.int64)
    stamp = 0
    for idx in range(n):
        i = order[idx]
        s0 = init[i]
        if s0 != cur_init:
            # forget the previous graph, then enumerate the one of s0
            for t in range(n_t + 1):
                for u in range(g_layer[t], g_layer[t + 1]):
                    g_index[t, g_s[u]] = -1
            g_layer[:] = 0
            cur_init = s0
            g_ok = True
            g_s[0] = s0
            g_index[0, s0] = 0
            g_layer[0] = 0
            g_layer[1] = 1
            n_g = 1
            n_ge = 0
            for t in range(n_t):
                for u in range(g_layer[t], g_layer[t + 1]):
                    g_first[u] = n_ge
                    s = g_s[u]
                    for a in range(n_a):
                        s2 = delta[s, a]
                        if s2 < 0:
                            continue
                        v = g_index[t + 1, s2]
                        if v < 0:
                            if n_g >= g_cap:
                                g_ok = False
                                break
                            v = n_g
                            g_index[t + 1, s2] = v
                            g_s[v] = s2
                            n_g += 1
                        if n_ge >= ge_cap:
                            g_ok = False
                            break
                        g_act[n_ge] = a
                        g_dst[n_ge] = v
                        n_ge += 1
                    if not g_ok:
                        break
                if not g_ok:
                    break
                g_first[g_layer[t + 1]] = n_ge
                g_layer[t + 2] = n_g
            if not g_ok:
                g_layer[:] = 0
                cur_init = -1
        if not g_ok:
            out_status[i] = OVERFLOW
            continue
        # Relaxation without counters: backward DP on the short graph. Its values are
        # also upper bounds on the value-to-go once counters are added.
        for u in range(g_layer[n_t], g_layer[n_t + 1]):
            u_val[u] = 0.0
        for t in range(n_t - 1, -1, -1):
            for u in range(g_layer[t], g_layer[t + 1]):
                best = -np.inf
                best_e = -1
                for e in range(g_first[u], g_first[u + 1]):
                    r = reward[i, t, g_act[e]]
                    if r == -np.inf:
                        continue
                    v = r + u_val[g_dst[e]]
                    if v > best:
                        best = v
                        best_e = e
                u_val[u] = best
                u_choice[u] = best_e
        if u_val[0] == -np.inf:
            out_status[i] = 5  # ErrorCode.INFEASIBLE: even the relaxation has no plan
            continue
        u = 0
        for t in range(n_t):
            e = u_choice[u]
            acts[t] = g_act[e]
            u = g_dst[e]
        bad = _violations(acts, inc, lo[i], hi[i]) if n_r > 0 else 0
        included = bad
        status = 0
        while bad != 0:
            # Lower bound: drop the contacts that break a counter from the last plan.
            lb = -np.inf
            if down_closed:
                for j in range(n_r):
                    cum[j] = 0
                lb = 0.0
                for t in range(n_t):
                    m = action_mask[acts[t]]
                    for j in range(n_r):
                        a_cur = action_of_mask[m]
                        if cum[j] + inc[a_cur, j] > hi[i, t, j]:
                            m &= ~counter_cells[j]
                    a_fin = action_of_mask[m]
                    lb_acts[t] = a_fin
                    lb += reward[i, t, a_fin]
                    for j in range(n_r):
                        cum[j] += inc[a_fin, j]
            tol = 1e-9 * (1.0 + abs(lb)) if lb > -np.inf else 0.0
            code = 1
            for j in range(n_r):
                if (included >> j) & 1:
                    stride[j] = code
                    code *= radix[j]
                else:
                    stride[j] = 0
            n_nodes = 1
            node_s[0] = s0
            node_k[0] = 0
            node_f[0] = 0.0
            node_pred[0] = -1
            node_dead[0] = False
            layer[0] = 0
            layer[1] = 1
            overflow = False
            for t in range(n_t):
                stamp += 1
                for u in range(layer[t], layer[t + 1]):
                    if node_dead[u]:
                        continue
                    s = node_s[u]
                    k = node_k[u]
                    fu = node_f[u]
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
                            if stride[j] == 0:
                                continue
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
                        key = s2 * code + k2
                        v = fu + r
                        if mark[key] != stamp:
                            if n_nodes >= node_cap:
                                overflow = True
                                break
                            mark[key] = stamp
                            slot[key] = n_nodes
                            node_s[n_nodes] = s2
                            node_k[n_nodes] = k2
                            node_f[n_nodes] = v
                            node_pred[n_nodes] = u
                            node_pact[n_nodes] = a
                            n_nodes += 1
                        else:
                            w = slot[key]
                            if v > node_f[w]:
                                node_f[w] = v
                                node_pred[w] = u
                                node_pact[w] = a
                    if overflow:
                        break
                if overflow:
                    break
                layer[t + 2] = n_nodes
                for w in range(layer[t + 1], n_nodes):
                    gi = g_index[t + 1, node_s[w]]
                    ub = u_val[gi]
                    node_dead[w] = ub == -np.inf or node_f[w] + ub < lb - tol
            out_work[i] += n_nodes
            if overflow:
                status = OVERFLOW
                break
            best = -np.inf
            best_u = -1
            for w in range(layer[n_t], layer[n_t + 1]):
                if not node_dead[w] and node_f[w] > best:
                    best = node_f[w]
                    best_u = w
            if best_u < 0:
                status = 5  # ErrorCode.INFEASIBLE
                break
            w = best_u
            for t in range(n_t - 1, -1, -1):
                acts[t] = node_pact[w]
                w = node_pred[w]
            bad = _violations(acts, inc, lo[i], hi[i]) & ~included
            included |= bad
        out_status[i] = status
        if status == 0:
            for t in range(n_t):
                out_act[i, t] = acts[t]


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
    lo, hi = model.counter_bounds(hist)
    inc = np.ascontiguousarray(model.window_weight[:, model.long_windows].astype(np.int64))
    atoms = [model.policy.window_atoms[j] for j in model.long_windows]
    radix = np.array([a.limit + 1 for a in atoms], dtype=np.int64)
    n_s, n_a = delta.shape
    if n_s * int(np.prod(radix)) > MAX_TABLE:
        raise StateSpaceTooLarge("counter state table too large for the DP")
    counter_cells = np.array([sum(1 << k for k in a.cells) for a in atoms], dtype=np.int64)
    action_mask = np.array([sum(1 << k for k in act) for act in model.actions], dtype=np.int64)
    action_of_mask = np.full(1 << model.policy.n_cells, -1, dtype=np.int32)
    action_of_mask[action_mask] = np.arange(n_a, dtype=np.int32)
    down_closed = not any(a.kind == "min" for a in model.policy.window_atoms) and not any(
        p.kind == "only_after" for p in model.policy.pair_atoms
    )
    g_cap = min((n_t + 1) * n_s, NODE_CAP)
    sub_acts = np.zeros((customers.size, n_t), dtype=np.int32)
    sub_status = np.zeros(customers.size, dtype=np.int8)
    work = np.zeros(customers.size, dtype=np.int64)
    _kernel(
        delta,
        reward,
        init.astype(np.int32),
        np.argsort(init, kind="stable"),
        inc,
        lo,
        hi,
        radix,
        counter_cells,
        action_mask,
        action_of_mask,
        down_closed,
        g_cap,
        min(g_cap * n_a, EDGE_CAP),
        NODE_CAP,
        sub_acts,
        sub_status,
        work,
    )
    LAST_WORK.clear()
    LAST_WORK.append(work)
    acts[customers] = sub_acts
    status[customers] = sub_status
    return acts, status
