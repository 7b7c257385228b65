"""The layered DAG of the automaton DP (numba): built from the history classes, minimised.

A customer's problem under the policy automaton is a longest path in a layered DAG of
(month, short state, counters). :func:`build_dag` lays out every node reachable from the
roots (the known short states at month 0), counters from max rules never above their
limit, from min rules saturating there; :func:`minimise_dag` merges, bottom-up, nodes of a
layer with the same counters and the same action -> successor edges, so the DP
(:mod:`contact_spark.solver.dp`) visits each distinct future once.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def build_dag(
    delta: np.ndarray,  # [S, A] int32 short-state successor, -1 = forbidden
    roots: np.ndarray,  # [R0] int32 layer-0 short states
    inc: np.ndarray,  # [A, R] int64 counter increment of each action
    radix: np.ndarray,  # [R] int64 limit + 1
    is_max: np.ndarray,  # [R] bool
    canon: np.ndarray,  # [S, 2**R] state after forgetting exhausted counters' cells
    n_t: int,
    max_nodes: int,
    max_edges: int,
) -> tuple:
    """Layered DAG of (month, short state, counters) reachable from ``roots`` at month 0.

    Counters from max rules never exceed their limit (radix - 1); counters from min rules
    saturate there. Returns (ok, layer, node_s, node_code, first_edge, edge_act, edge_dst).
    """
    n_s, n_a = delta.shape
    n_r = radix.shape[0]
    stride = np.ones(n_r, dtype=np.int64)
    n_code = 1
    for j in range(n_r):
        stride[j] = n_code
        n_code *= radix[j]
    mark = np.full(n_s * n_code, -1, dtype=np.int64)
    slot = np.zeros(n_s * n_code, dtype=np.int64)
    node_s = np.empty(max_nodes, dtype=np.int32)
    node_code = np.empty(max_nodes, dtype=np.int64)
    first_edge = np.empty(max_nodes + 1, dtype=np.int64)
    edge_act = np.empty(max_edges, dtype=np.int32)
    edge_dst = np.empty(max_edges, dtype=np.int64)
    layer = np.zeros(n_t + 2, dtype=np.int64)
    n_nodes = 0
    for r in range(roots.shape[0]):
        node_s[n_nodes] = roots[r]
        node_code[n_nodes] = 0
        n_nodes += 1
    layer[1] = n_nodes
    n_edges = 0
    for t in range(n_t):
        for u in range(layer[t], layer[t + 1]):
            first_edge[u] = n_edges
            s = node_s[u]
            k = node_code[u]
            for a in range(n_a):
                s2 = delta[s, a]
                if s2 < 0:
                    continue
                k2 = 0
                exhausted = 0
                ok = True
                for j in range(n_r):
                    c2 = (k // stride[j]) % radix[j] + inc[a, j]
                    if c2 > radix[j] - 1:
                        if is_max[j]:
                            ok = False
                            break
                        c2 = radix[j] - 1
                    if is_max[j] and c2 == radix[j] - 1:
                        exhausted |= 1 << j
                    k2 += c2 * stride[j]
                if not ok:
                    continue
                s2 = canon[s2, exhausted]
                key = s2 * n_code + k2
                if mark[key] != t:
                    if n_nodes >= max_nodes:
                        return False, layer, node_s, node_code, first_edge, edge_act, edge_dst
                    mark[key] = t
                    slot[key] = n_nodes
                    node_s[n_nodes] = s2
                    node_code[n_nodes] = k2
                    n_nodes += 1
                if n_edges >= max_edges:
                    return False, layer, node_s, node_code, first_edge, edge_act, edge_dst
                edge_act[n_edges] = a
                edge_dst[n_edges] = slot[key]
                n_edges += 1
        first_edge[layer[t + 1]] = n_edges
        layer[t + 2] = n_nodes
    return (
        True,
        layer,
        node_s[:n_nodes],
        node_code[:n_nodes],
        first_edge[: n_nodes + 1],
        edge_act[:n_edges],
        edge_dst[:n_edges],
    )


@nb.njit(cache=True)
def _same_node(
    u: int,
    v: int,
    node_code: np.ndarray,
    first_edge: np.ndarray,
    edge_act: np.ndarray,
    edge_dst: np.ndarray,
    rep: np.ndarray,
) -> bool:
    if node_code[u] != node_code[v]:
        return False
    n_u = first_edge[u + 1] - first_edge[u]
    if n_u != first_edge[v + 1] - first_edge[v]:
        return False
    for d in range(n_u):
        eu = first_edge[u] + d
        ev = first_edge[v] + d
        if edge_act[eu] != edge_act[ev] or rep[edge_dst[eu]] != rep[edge_dst[ev]]:
            return False
    return True


@nb.njit(cache=True)
def minimise_dag(
    layer: np.ndarray,
    node_code: np.ndarray,
    first_edge: np.ndarray,
    edge_act: np.ndarray,
    edge_dst: np.ndarray,
    n_t: int,
) -> tuple:
    """Merge nodes of a layer with the same counters and the same (action -> successor)
    edges, bottom-up: they have the same value for every customer, so the DP is unchanged
    (same choices, same schedules) on a smaller graph. Returns the compacted DAG and the
    new index of every old node."""
    n_nodes = layer[n_t + 1]
    rep = np.arange(n_nodes)
    max_code = 0
    for u in range(n_nodes):
        max_code = max(max_code, node_code[u])
    first_with_code = np.full(max_code + 1, -1, dtype=np.int64)
    for u in range(layer[n_t], layer[n_t + 1]):  # last layer: value depends on counters only
        k = node_code[u]
        if first_with_code[k] < 0:
            first_with_code[k] = u
        rep[u] = first_with_code[k]
    for t in range(n_t - 1, -1, -1):
        lo_u, hi_u = layer[t], layer[t + 1]
        h = np.empty(hi_u - lo_u, dtype=np.int64)
        for u in range(lo_u, hi_u):
            x = node_code[u] * 1000003 + 17
            for e in range(first_edge[u], first_edge[u + 1]):
                x = x * 31 + edge_act[e]
                x = x * 1000003 + rep[edge_dst[e]]
            h[u - lo_u] = x
        order = np.argsort(h, kind="mergesort")
        g0 = 0
        while g0 < order.shape[0]:
            g1 = g0
            while g1 < order.shape[0] and h[order[g1]] == h[order[g0]]:
                g1 += 1
            for a in range(g0, g1):
                u = lo_u + order[a]
                for b in range(g0, a):
                    v = lo_u + order[b]
                    if rep[v] == v and _same_node(u, v, node_code, first_edge, edge_act, edge_dst, rep):
                        rep[u] = v
                        break
            g0 = g1
    new_id = np.full(n_nodes, -1, dtype=np.int64)
    n_new = 0
    new_layer = np.zeros(n_t + 2, dtype=np.int64)
    for t in range(n_t + 1):
        new_layer[t] = n_new
        for u in range(layer[t], layer[t + 1]):
            if rep[u] == u:
                new_id[u] = n_new
                n_new += 1
    new_layer[n_t + 1] = n_new
    n_edges = 0
    for u in range(n_nodes):
        if rep[u] == u:
            n_edges += first_edge[u + 1] - first_edge[u] if u < layer[n_t] else 0
    code2 = np.empty(n_new, dtype=np.int64)
    first2 = np.zeros(n_new + 1, dtype=np.int64)
    act2 = np.empty(n_edges, dtype=np.int32)
    dst2 = np.empty(n_edges, dtype=np.int64)
    e2 = 0
    for u in range(n_nodes):
        if rep[u] != u:
            continue
        w = new_id[u]
        code2[w] = node_code[u]
        first2[w] = e2
        if u < layer[n_t]:
            for e in range(first_edge[u], first_edge[u + 1]):
                act2[e2] = edge_act[e]
                dst2[e2] = new_id[rep[edge_dst[e]]]
                e2 += 1
    first2[n_new] = e2
    for u in range(n_nodes):
        new_id[u] = new_id[rep[u]]
    return new_layer, code2, first2, act2, dst2, new_id
