"""Exact fast path: dynamic programming over the policy automaton, batched with numba.

The value of a month action does not depend on the automaton state, so a customer's
problem is a longest path in a layered DAG (month, automaton state, counters).

* The DAG (:mod:`dag`) is rooted at every known short state (the history classes), built once per
  set of counters in the state, minimised bottom-up (nodes of a layer with the same
  counters and the same action -> successor edges merge) and cached on the model.
* The backward DP runs for a chunk of customers at a time with the customer as the
  innermost, contiguous axis, so the per-edge work vectorises; customers are sorted by
  history state and each chunk only visits the part of the DAG its roots reach.
* Yearly-style counters (windows >= horizon, see :mod:`automaton`) multiply the state
  space, so they are added lazily: solve without them (a relaxation), keep every
  customer whose plan satisfies all counters (a feasible optimum of a relaxation is
  optimal), and re-solve the others with the violated counters in the state until
  nobody violates. A counter's per-customer caps (limit minus history) mask DAG nodes
  per customer; states that only constrain cells of exhausted counters are merged.

Ties: every node keeps the first best edge in action order (empty action first), so the
schedule is deterministic.
"""

from __future__ import annotations

from typing import Protocol

import numba as nb
import numpy as np

from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver.automaton import DPModel, StateSpaceTooLargeError
from contact_spark.solver.dag import build_dag, minimise_dag
from contact_spark.solver.problem import ErrorCode, KernelBatch

OVERFLOW = -1  # internal status: the DAG is too large, use the MILP for this customer
MAX_TABLE = 40_000_000  # states x counter combinations addressable when building the DAG
MAX_NODES = 2_000_000
MAX_EDGES = 20_000_000
CHUNK = 64  # customers per vectorised DP pass
SMALL_COUNTER = 1  # counters with limit <= this join early when at their cap


@nb.njit(cache=True)
def _dense_dp(
    layer: np.ndarray,  # [T + 2] node offsets per layer
    node_code: np.ndarray,  # [nodes] mixed-radix counter values
    first_edge: np.ndarray,  # [nodes + 1] CSR offsets
    edge_act: np.ndarray,  # [edges] action
    edge_dst: np.ndarray,  # [edges] destination node
    reward: np.ndarray,  # [N, T, A] float64, -inf = not allowed
    root: np.ndarray,  # [N] layer-0 node per customer
    lo: np.ndarray,  # [N, T, R] int64
    hi: np.ndarray,  # [N, T, R] int64
    radix: np.ndarray,  # [R] int64
    chunk: int,
    out_act: np.ndarray,  # [N, T] int32
    out_status: np.ndarray,  # [N] int8
) -> None:
    """Backward DP over the DAG for all customers, ``chunk`` customers per pass.

    ``lo/hi [N, T, R]`` bound the counters after each month; a node violating them is
    unreachable for that customer. ``root[i]`` is the layer-0 node of customer i.
    """
    n, n_t, n_a = reward.shape
    n_r = radix.shape[0]
    n_code = 1
    for j in range(n_r):
        n_code *= radix[j]
    codes = np.empty((n_code, max(n_r, 1)), dtype=np.int64)
    for k in range(n_code):
        rest = k
        for j in range(n_r):
            codes[k, j] = rest % radix[j]
            rest //= radix[j]
    n_inner = int(layer[n_t])  # nodes of layers 0..T-1 have outgoing edges
    widest = 0
    for t in range(n_t + 1):
        widest = max(widest, layer[t + 1] - layer[t])
    choice = np.empty((max(n_inner, 1), chunk), dtype=np.int32)
    v_next = np.empty((widest, chunk), dtype=np.float64)
    v_cur = np.empty((widest, chunk), dtype=np.float64)
    rew = np.empty((n_t, n_a, chunk), dtype=np.float64)
    feas = np.empty((n_t, n_code, chunk), dtype=np.bool_)
    reach = np.zeros(layer[n_t + 1], dtype=np.bool_)
    best = np.empty(chunk, dtype=np.float64)
    best_e = np.empty(chunk, dtype=np.int32)
    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        for t in range(n_t):
            for a in range(n_a):
                for i in range(m):
                    rew[t, a, i] = reward[c0 + i, t, a]
                for i in range(m, chunk):
                    rew[t, a, i] = -np.inf
            for k in range(n_code):
                for i in range(m):
                    f = True
                    for j in range(n_r):
                        c = codes[k, j]
                        if c > hi[c0 + i, t, j] or c < lo[c0 + i, t, j]:
                            f = False
                            break
                    feas[t, k, i] = f
                for i in range(m, chunk):
                    feas[t, k, i] = False
        # Only the part of the DAG reachable from this chunk's roots matters; customers
        # are sorted by root, so a chunk usually starts from a handful of states.
        reach[:] = False
        for i in range(m):
            reach[root[c0 + i]] = True
        for t in range(n_t):
            for u in range(layer[t], layer[t + 1]):
                if reach[u]:
                    for e in range(first_edge[u], first_edge[u + 1]):
                        reach[edge_dst[e]] = True
        base_next = layer[n_t]
        for u in range(layer[n_t], layer[n_t + 1]):
            k = node_code[u]
            for i in range(chunk):
                v_next[u - base_next, i] = 0.0 if feas[n_t - 1, k, i] else -np.inf
        for t in range(n_t - 1, -1, -1):
            base = layer[t]
            for u in range(layer[t], layer[t + 1]):
                if not reach[u]:
                    continue  # its row is never read: successors of reachable nodes are reachable
                for i in range(chunk):
                    best[i] = -np.inf
                    best_e[i] = -1
                for e in range(first_edge[u], first_edge[u + 1]):
                    r_row = rew[t, edge_act[e]]
                    v_row = v_next[edge_dst[e] - base_next]
                    for i in range(chunk):
                        val = r_row[i] + v_row[i]
                        if val > best[i]:
                            best[i] = val
                            best_e[i] = e
                row = u - base
                if t > 0:
                    k = node_code[u]
                    for i in range(chunk):
                        v_cur[row, i] = best[i] if feas[t - 1, k, i] else -np.inf
                else:
                    for i in range(chunk):
                        v_cur[row, i] = best[i]
                for i in range(chunk):
                    choice[u, i] = best_e[i]
            v_next, v_cur = v_cur, v_next
            base_next = base
        for i in range(m):
            r = root[c0 + i]
            if v_next[r, i] == -np.inf:
                out_status[c0 + i] = 5  # ErrorCode.INFEASIBLE
                continue
            u = r
            for t in range(n_t):
                e = choice[u, i]
                out_act[c0 + i, t] = edge_act[e]
                u = edge_dst[e]
            out_status[c0 + i] = 0


@nb.njit(cache=True)
def _counter_bits(
    acts: np.ndarray,  # [M, T] int32 month actions
    rows: np.ndarray,  # [n] customers to check (indices into acts, lo, hi)
    inc: np.ndarray,  # [A, R] int64 counter increment of each action
    lo: np.ndarray,  # [M, T, R] int64 lowest running count allowed
    hi: np.ndarray,  # [M, T, R] int64 highest running count allowed
    join_at_cap: np.ndarray,  # [R] bool: counters that join once they reach their cap
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer of ``rows``: bit mask of the counters its plan violates, and of those
    (``join_at_cap``) it brings to their cap."""
    n, n_t, n_r = rows.shape[0], acts.shape[1], inc.shape[1]
    bits = np.zeros(n, dtype=np.int64)
    extra = np.zeros(n, dtype=np.int64)
    for j in range(n):
        i = rows[j]
        for r in range(n_r):
            cum = 0
            bad = False
            capped = False
            for t in range(n_t):
                cum += inc[acts[i, t], r]
                if cum > hi[i, t, r] or cum < lo[i, t, r]:
                    bad = True
                if cum >= hi[i, t, r]:
                    capped = True
            if bad:
                bits[j] |= np.int64(1) << r
            if capped and join_at_cap[r]:
                extra[j] |= np.int64(1) << r
    return bits, extra


class HasActions(Protocol):
    """A model whose month actions are cell sets (the automaton DP's and the catalogue's)."""

    actions: list[frozenset[int]]


def action_rewards(model: HasActions, batch: KernelBatch) -> np.ndarray:
    """``[N, T, A]`` value of each month action; -inf when it uses an ineligible cell."""
    n, n_t, n_c, n_h = batch.shape
    p = batch.clean_propensity()  # [N, C, H], or [N, T, C, H] when it varies by month
    uc = batch.clean_unit_cost()
    uc = None if uc is None else uc.reshape(n, n_t, n_c * n_h)
    price = batch.price.reshape(n_t, n_c * n_h)
    elig = batch.eligible.reshape(n, n_t, n_c * n_h)
    # eligibility given per customer only (broadcast over months): test it once
    per_customer = batch.eligible.strides[1] == 0
    elig_k = elig[:, 0] if per_customer else None
    seas = batch.seasonality
    out = np.zeros((n, n_t, len(model.actions)), dtype=np.float64)
    for a, act in enumerate(model.actions):
        if not act:
            continue
        cells = np.asarray(sorted(act))
        if seas.ndim == 1:
            total = np.zeros((n, n_t) if batch.monthly else n)
            for c in sorted({k // n_h for k in act}):
                hs = [k % n_h for k in act if k // n_h == c]
                miss = np.prod(1.0 - p[..., c, hs], axis=-1)
                total += batch.success_value[c] * (1.0 - miss) - batch.channel_cost[c, hs].sum()
            gain = total * seas[None, :] if batch.monthly else np.multiply.outer(total, seas)
        else:  # a weight per month and campaign (monthly_value): each campaign weighted alone
            gain = np.zeros((n, n_t))
            for c in sorted({k // n_h for k in act}):
                hs = [k % n_h for k in act if k // n_h == c]
                miss = np.prod(1.0 - p[..., c, hs], axis=-1)
                value = batch.success_value[c] * (1.0 - miss) - batch.channel_cost[c, hs].sum()
                gain += value * seas[None, :, c] if batch.monthly else np.multiply.outer(value, seas[:, c])
        val = gain - price[:, cells].sum(axis=1)
        if uc is not None:
            val -= uc[:, :, cells].sum(axis=2)
        if elig_k is not None:
            ok = elig_k[:, cells].all(axis=1)
            val[~ok] = -np.inf
        else:
            val[~elig[:, :, cells].all(axis=2)] = -np.inf
        out[:, :, a] = val
    return out


_MODELS: dict[tuple[CompiledPolicy, int], DPModel | None] = {}


def get_model(policy: CompiledPolicy, horizon: int) -> DPModel | None:
    """Cached DP model for (policy, horizon), or None when the DP is not applicable."""
    key = (policy, horizon)
    if key not in _MODELS:
        try:
            _MODELS[key] = DPModel.build(policy, horizon)
        except StateSpaceTooLargeError:
            _MODELS[key] = None
    return _MODELS[key]


def disable_model(policy: CompiledPolicy, horizon: int) -> None:
    """Stop using the DP for (policy, horizon), e.g. after its automaton exploded."""
    _MODELS[(policy, horizon)] = None


def _dag(
    model: DPModel, mask: int, sel: np.ndarray, radix: np.ndarray, inc: np.ndarray, is_max: np.ndarray
) -> tuple[np.ndarray, ...] | None:
    """The DAG for counter set ``mask`` rooted at every known short state (cached).

    Rooting at all states makes node ``s`` of layer 0 the root of every customer whose
    history maps to state ``s``, and lets the DAG serve every later batch until new
    history states appear.
    """
    canon = model.canonical_table([int(r) for r in sel])  # may add states: do it first
    key = (mask, len(model.states))
    cache = model.dag_cache
    if key not in cache:
        if len(cache) > 64:
            cache.clear()
        ok, layer, _, code, first, e_act, e_dst = build_dag(
            model.delta,
            np.arange(len(model.states), dtype=np.int32),
            np.ascontiguousarray(inc[:, sel]),
            radix,
            is_max[sel],
            np.ascontiguousarray(canon[: len(model.states)]),
            model.horizon,
            MAX_NODES,
            MAX_EDGES,
        )
        if ok:
            layer, code, first, e_act, e_dst, node_of = minimise_dag(
                layer, code, first, e_act, e_dst, model.horizon
            )
            # layer-0 node of state s was s; after merging it is node_of[s]
            cache[key] = (layer, code, first, e_act, e_dst, node_of[: len(model.states)])
        else:
            cache[key] = None
    return cache[key]


def solve_dp(
    model: DPModel, batch: KernelBatch, customers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``customers`` exactly: returns (actions[N, T] int32, status[N] int8, value[N]).

    ``value`` is the plan's value, the sum of its month actions' rewards (NaN unless OK).

    Status OVERFLOW (-1) marks customers the DP could not handle (caller uses the MILP).
    Raises StateSpaceTooLargeError when the short automaton explodes.
    """
    n, n_t = batch.shape[0], batch.horizon
    acts = np.zeros((n, n_t), dtype=np.int32)
    status = np.zeros(n, dtype=np.int8)
    value = np.full(n, np.nan)
    if customers.size == 0:
        return acts, status, value
    hist = batch.clean_history()[customers]
    init = model.initial_states(hist)
    reward = action_rewards(model, batch.subset(customers))
    lo, hi = model.counter_bounds(hist)
    inc = model.window_weight[:, model.long_windows].astype(np.int64)
    atoms = [model.policy.window_atoms[j] for j in model.long_windows]
    limits = np.array([a.limit for a in atoms], dtype=np.int64)
    is_max = np.array([a.kind == "max" for a in atoms], dtype=np.bool_)
    n_r = len(atoms)

    m = customers.size
    sub_acts = np.zeros((m, n_t), dtype=np.int32)
    sub_status = np.zeros(m, dtype=np.int8)
    included = np.zeros(m, dtype=np.int64)  # bit mask of the counters in the DP state
    pending = np.arange(m)
    while pending.size:
        masks, groups = np.unique(included[pending], return_inverse=True)
        groups = groups.reshape(-1)
        for g, mask in enumerate(masks):
            members = pending[groups == g]
            sel = np.array([r for r in range(n_r) if (int(mask) >> r) & 1], dtype=np.int64)
            radix = limits[sel] + 1
            if len(model.states) * int(np.prod(radix)) > MAX_TABLE:
                sub_status[members] = OVERFLOW
                continue
            dag = _dag(model, int(mask), sel, radix, inc, is_max)
            if dag is None:
                sub_status[members] = OVERFLOW
                continue
            layer, code, first, e_act, e_dst, root_of_state = dag
            members = members[np.argsort(init[members], kind="stable")]
            ga = np.zeros((members.size, n_t), dtype=np.int32)
            gs = np.zeros(members.size, dtype=np.int8)
            _dense_dp(
                layer,
                code,
                first,
                e_act,
                e_dst,
                np.ascontiguousarray(reward[members]),
                root_of_state[init[members]],
                np.ascontiguousarray(lo[members][:, :, sel]),
                np.ascontiguousarray(hi[members][:, :, sel]),
                radix,
                min(CHUNK, 1 << int(np.ceil(np.log2(members.size)))),
                ga,
                gs,
            )
            sub_acts[members] = ga
            sub_status[members] = gs
        solved = pending[sub_status[pending] == ErrorCode.OK]
        if n_r == 0 or solved.size == 0:
            break
        # A limit-1 counter at its cap (used once, or blocked by history) joins too: it
        # often breaks in the next round anyway, and its exhaustion lets the DAG forget
        # state, so the DAG often gets smaller (measured: ~10% less DP work).
        bits, extra = _counter_bits(sub_acts, solved, inc, lo, hi, is_max & (limits <= SMALL_COUNTER))
        again = bits != 0
        included[solved[again]] |= bits[again] | extra[again]
        pending = solved[again]
    acts[customers] = sub_acts
    status[customers] = sub_status
    ok = sub_status == ErrorCode.OK
    # The rewards already price every action: summing the chosen ones is the plan's value.
    chosen = np.take_along_axis(reward[ok], sub_acts[ok][:, :, None], axis=2)[:, :, 0]
    value[customers[ok]] = chosen.sum(axis=1)
    return acts, status, value
