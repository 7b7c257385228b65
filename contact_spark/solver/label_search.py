"""One round of the catalogue kernel: a label-setting DP over the tracked atoms (numba).

Layers are months. A *label* is a compact state (the tracked atoms' slots, layout
:func:`layout`) with its best value so far, a back pointer and the action that reached it
(ties: the first found, actions in order, the empty one first). Per month only the best
action of each *class* is expanded: actions with the same footprint on the tracked atoms
move the state identically. Labels that cannot beat ``lower`` (the best legal plan known)
are dropped, by three bounds on the rest of the horizon:

* ``plain[t]`` - each later month's best action, rules ignored;
* ``priced[t] - lam . used`` - the same with the yearly caps priced (Lagrangian), minus
  what the label used of the caps it tracks;
* the previous round's bound at the label's projected state (:func:`backward`), with the
  caps that round did not track priced at ``prev_lam``, when that round reached the state
  (it may not have: dominated labels are not expanded);
* ``lsuf[t] - straddle_use(state)`` - every window row priced
  (:mod:`contact_spark.solver.label_lagrange`), less what the tracked atoms already used
  of the rows that straddle the month (infinite until the row prices are computed).

The tracked atoms are stepped in loops written out in :func:`forward` and
:func:`backward`, not through a helper taking the rule arrays: on this hot path every
array argument of a call costs reference counting, and the helper made the kernel 1.6x
slower (measured).

Before a month's labels are expanded, those another label of the month dominates are
set aside (:mod:`contact_spark.solver.label_dominance`): kept in the table, never
expanded, bounded by their dominator.

Storage: labels ``st[P, d]``, ``g``, ``parent``, ``act``, dominator ``dom``; layer t is
``lstart[t]:lstart[t+1]``, its open-addressing table of label ids is
``tab[tstart[t] : tstart[t] + tsize[t]]`` (kept for :func:`backward` and the next round).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from contact_spark.solver.label_atoms import NEG, slots, step_atom
from contact_spark.solver.label_bounds import priced_values
from contact_spark.solver.label_dominance import mark_dominated
from contact_spark.solver.label_lagrange import straddle_use


@njit(cache=True)
def layout(rules: tuple, atoms: np.ndarray) -> np.ndarray:
    """Offsets of the ``atoms``' slots in a compact state (``[len(atoms) + 1]``)."""
    typ, win = rules[0], rules[1]
    toff = np.zeros(atoms.shape[0] + 1, dtype=np.int64)
    for i in range(atoms.shape[0]):
        toff[i + 1] = toff[i] + slots(typ[atoms[i]], win[atoms[i]])
    return toff


@njit(cache=True)
def _hash(row: np.ndarray) -> np.uint64:
    h = np.uint64(1469598103934665603)
    for v in row:
        h ^= np.uint64(v + 1)
        h *= np.uint64(1099511628211)
    return h


@njit(cache=True)
def _probe(st: np.ndarray, table: np.ndarray, t0: int, tsize: int, row: np.ndarray) -> int:
    """Position in ``table[t0 : t0 + tsize]`` (a power of 2) holding the label whose state
    is ``row``, or the empty slot where it would go."""
    pos = np.int64(_hash(row) & np.uint64(tsize - 1))
    while True:
        e = table[t0 + pos]
        if e < 0:
            return pos
        same = True
        for s in range(row.shape[0]):
            if st[e, s] != row[s]:
                same = False
                break
        if same:
            return pos
        pos = (pos + 1) & (tsize - 1)


@njit(cache=True)
def _find(st: np.ndarray, tab: np.ndarray, t0: int, tsize: int, row: np.ndarray) -> int:
    """Label holding state ``row`` in the layer table at ``t0``, or -1."""
    return tab[t0 + _probe(st, tab, t0, tsize, row)]


@njit(cache=True)
def _class_best(pv: np.ndarray, fp: np.ndarray, atoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[T, Q]`` best action of each footprint class on ``atoms`` per month (-1: none),
    and each action's class (-1: never allowed, NEG in every month)."""
    n_t, n_a = pv.shape
    cls = np.full(n_a, -1, dtype=np.int64)
    reps = np.empty(n_a, dtype=np.int64)
    n_q = 0
    for a in range(n_a):
        if pv[:, a].max() <= NEG:
            continue
        for q in range(n_q + 1):
            if q == n_q:  # a new footprint
                reps[n_q] = a
                n_q += 1
                cls[a] = q
                break
            same = True
            for j in atoms:
                if fp[a, j] != fp[reps[q], j]:
                    same = False
                    break
            if same:
                cls[a] = q
                break
    best = np.full((n_t, n_q), -1, dtype=np.int64)
    for t in range(n_t):
        for a in range(n_a):
            q = cls[a]
            if q >= 0 and pv[t, a] > NEG and (best[t, q] < 0 or pv[t, a] > pv[t, best[t, q]]):
                best[t, q] = a
    return best, cls


@njit(cache=True)
def _class_max(x: np.ndarray, cls: np.ndarray, n_q: int) -> np.ndarray:
    """``[T, Q]`` the largest ``x[t, a]`` over the actions of each class (NEG: none)."""
    n_t, n_a = x.shape
    out = np.full((n_t, n_q), NEG)
    for a in range(n_a):
        q = cls[a]
        if q < 0:
            continue
        for t in range(n_t):
            if x[t, a] > out[t, q]:
                out[t, q] = x[t, a]
    return out


@njit(cache=True)
def _by_value(key_q: np.ndarray, best: np.ndarray) -> np.ndarray:
    """``[T, Q]`` each month's classes (with an action) by ``key_q``, highest first (-1 after)."""
    n_t, n_q = best.shape
    out = np.full((n_t, n_q), -1, dtype=np.int64)
    key = np.empty(n_q, dtype=np.float64)
    for t in range(n_t):
        n = 0
        for q in range(n_q):
            if best[t, q] >= 0:
                out[t, n] = q
                key[n] = -key_q[t, q]
                n += 1
        idx = np.argsort(key[:n], kind="mergesort")  # stable: ties keep the class order
        row = out[t, :n].copy()
        for k in range(n):
            out[t, k] = row[idx[k]]
    return out


@njit(cache=True)
def _used(lam: np.ndarray, atoms: np.ndarray, toff: np.ndarray, row: np.ndarray) -> float:
    """``sum lam[j] * count_j`` over the tracked long windows (slot 0: the count)."""
    out = 0.0
    for i in range(atoms.shape[0]):
        if lam[atoms[i]] > 0.0:
            out += lam[atoms[i]] * row[toff[i]]
    return out


@njit(cache=True)
def forward(
    rules: tuple,
    val: np.ndarray,
    init_row: np.ndarray,
    atoms: np.ndarray,
    lower: float,
    bounds: tuple,
    prev: tuple,
    max_labels: int,
) -> tuple:
    """Best plan under the ``atoms`` only, among plans worth more than ``lower``.

    ``bounds = (plain, priced, lam, lsuf, lu, lusum, pv_row)``: the row prices ``lu``,
    their suffix sums ``lusum`` and the values less every row's charges ``pv_row``
    (:mod:`label_lagrange`); ``prev = (use, st, tab, tstart, tsize, bound, lam,
    lam_cap, proj)`` (``proj`` picks the previous round's slots out of this round's state).
    Returns (value, plan, labels, finished, (st, g, lstart, tab, tstart, tsize, dom)); value is
    NEG when no plan beats ``lower``, ``finished`` False when ``max_labels`` ran out.
    """
    plain, priced, lam, lsuf, lu, lusum, pv_row = bounds
    typ, win, lim, ismin, fp, _off, cap = rules
    use_prev, p_st, p_tab, p_tstart, p_tsize, p_bound, p_lam, p_lam_cap, proj = prev
    n_t = val.shape[0]
    toff = layout(rules, atoms)
    d = max(int(toff[-1]), 1)
    best, cls = _class_best(val, fp, atoms)
    # the actions of a class reach the same tracked state: the DP expands the one worth
    # most (``best``), and the priced bounds take the class's largest priced values
    # (another action of the class may be priced higher)
    row_q = _class_max(pv_row, cls, best.shape[1])
    order = _by_value(row_q, best)
    pre = np.minimum(plain, lsuf)  # both bound the months left; the state is not needed
    rows_on = lsuf[0] < np.inf  # row prices computed (else their tests are skipped)
    top_row = np.full(n_t, NEG)
    for t in range(n_t):
        for a in range(pv_row.shape[1]):
            if pv_row[t, a] > top_row[t]:
                top_row[t] = pv_row[t, a]
    size = 1024
    st = np.zeros((size, d), dtype=np.int32)
    g = np.empty(size, dtype=np.float64)
    parent = np.empty(size, dtype=np.int64)
    act = np.empty(size, dtype=np.int64)
    dom = np.full(size, -1, dtype=np.int64)  # the label that dominates, -1: none
    st[0, : init_row.shape[0]] = init_row
    g[0], parent[0], act[0] = 0.0, -1, -1
    lstart = np.zeros(n_t + 2, dtype=np.int64)
    lstart[1] = 1
    tstart = np.zeros(n_t + 2, dtype=np.int64)
    tsize = np.ones(n_t + 2, dtype=np.int64)
    tab = np.full(64, -1, dtype=np.int64)
    tab[0] = 0  # layer 0: the root alone, table of size 1
    tab_used = 1
    tmp = np.zeros(d, dtype=np.int32)
    old = np.zeros(p_st.shape[1], dtype=np.int32)  # slots the previous round lacks stay 0
    stop = 1
    for t in range(n_t):
        start, new_start = lstart[t], stop
        ts = 16
        while ts < 4 * (stop - start):
            ts *= 2
        table = np.full(ts, -1, dtype=np.int64)
        mark_dominated(typ, win, ismin, atoms, toff, st, g, start, new_start, dom)
        for lab in range(start, new_start):
            if dom[lab] >= 0:
                continue  # its dominator's continuations cover it
            # the row bound with month t still open (the Lagrangian bound of the rest, the
            # tracked rows' use so far taken off): a class q is worth trying only while
            # lab_bound + row_q[t, q] beats lower; the classes come by row_q, so the first
            # that does not ends the month
            lab_bound = np.inf
            if rows_on:
                used_t = straddle_use(typ, win, lu, lusum, atoms, toff, st[lab], t)
                lab_bound = g[lab] + lsuf[t] - used_t - top_row[t]
            for k in range(order.shape[1]):
                q = order[t, k]
                if q < 0 or lab_bound + row_q[t, q] <= lower:
                    break
                a = best[t, q]
                v = g[lab] + val[t, a]
                if v + pre[t + 1] <= lower:
                    if rows_on:
                        continue
                    break  # without prices the classes come by value: none of the rest passes
                ok = True
                for i in range(atoms.shape[0]):
                    j = atoms[i]
                    if not step_atom(
                        typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], st[lab], toff[i], tmp, toff[i]
                    ):
                        ok = False
                        break
                if not ok:
                    continue
                if v + priced[t + 1] - _used(lam, atoms, toff, tmp) <= lower:
                    continue
                if (
                    rows_on
                    and v + lsuf[t + 1] - straddle_use(typ, win, lu, lusum, atoms, toff, tmp, t + 1) <= lower
                ):
                    continue
                if use_prev:
                    for s in range(proj.shape[0]):
                        old[s] = tmp[proj[s]]
                    e_old = _find(p_st, p_tab, p_tstart[t + 1], p_tsize[t + 1], old)
                    # not found: that round never reached the state (a dominated label's
                    # successor, or pruned): no bound from it
                    if (
                        e_old >= 0
                        and v + p_bound[e_old] + p_lam_cap - _used(p_lam, atoms, toff, tmp) <= lower
                    ):
                        continue
                pos = _probe(st, table, 0, ts, tmp)
                e = table[pos]
                if e >= 0:
                    if v > g[e]:
                        g[e], parent[e], act[e] = v, lab, a
                    continue
                if stop >= max_labels:
                    return (
                        NEG,
                        np.zeros(n_t, dtype=np.int64),
                        stop,
                        False,
                        (st, g, lstart, tab, tstart, tsize, dom),
                    )
                if stop >= size:
                    size *= 2
                    st, g, parent, act, dom = _grow(st, g, parent, act, dom, stop, size)
                st[stop] = tmp
                dom[stop] = -1
                g[stop], parent[stop], act[stop] = v, lab, a
                table[pos] = stop
                stop += 1
                if (stop - new_start) * 2 > ts:  # keep the table sparse
                    ts *= 2
                    table = _rehash(st, new_start, stop, ts)
        # keep the layer's table for the backward pass and the next round
        while tab_used + ts > tab.shape[0]:
            tab = np.concatenate((tab, np.full(tab.shape[0], -1, dtype=np.int64)))
        tab[tab_used : tab_used + ts] = table
        tstart[t + 1], tsize[t + 1] = tab_used, ts
        tab_used += ts
        lstart[t + 2] = stop
        if new_start == stop:
            return NEG, np.zeros(n_t, dtype=np.int64), stop, True, (st, g, lstart, tab, tstart, tsize, dom)
    top = int(lstart[n_t])
    for lab in range(lstart[n_t], stop):
        if g[lab] > g[top]:
            top = lab
    plan = np.zeros(n_t, dtype=np.int64)
    back = top
    for t in range(n_t - 1, -1, -1):
        plan[t] = act[back]
        back = parent[back]
    return g[top], plan, stop, True, (st, g, lstart, tab, tstart, tsize, dom)


@njit(cache=True)
def _grow(
    st: np.ndarray, g: np.ndarray, parent: np.ndarray, act: np.ndarray, dom: np.ndarray, used: int, size: int
) -> tuple:
    """The label arrays with room for ``size`` labels (the first ``used`` kept)."""
    st2 = np.zeros((size, st.shape[1]), dtype=np.int32)
    st2[:used] = st[:used]
    out = (np.empty(size, dtype=np.float64), np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64))
    out[0][:used] = g[:used]
    out[1][:used] = parent[:used]
    out[2][:used] = act[:used]
    dom2 = np.full(size, -1, dtype=np.int64)
    dom2[:used] = dom[:used]
    return st2, out[0], out[1], out[2], dom2


@njit(cache=True)
def _rehash(st: np.ndarray, start: int, stop: int, ts: int) -> np.ndarray:
    """A table of size ``ts`` holding labels ``start:stop``."""
    table = np.full(ts, -1, dtype=np.int64)
    for e in range(start, stop):
        table[_probe(st, table, 0, ts, st[e])] = e
    return table


@njit(cache=True)
def backward(
    rules: tuple,
    val: np.ndarray,
    atoms: np.ndarray,
    lower: float,
    labels: tuple,
    lam_u: np.ndarray,
    priceable: np.ndarray,
) -> np.ndarray:
    """Bound on the value of the rest of the horizon from each label's state: the best
    continuation through labels that were kept, or what the pruning test allowed the
    dropped ones (``lower - g``), whichever is larger. Contacts of the long windows this
    round did not track are priced at ``lam_u``: a true continuation is worth at most
    ``bound + sum(lam_u[j] * (cap_end[j] - used_j))`` (Lagrangian relaxation)."""
    st, g, lstart, tab, tstart, tsize, dom = labels
    typ, win, lim, ismin, fp, _off, cap = rules
    n_t = val.shape[0]
    toff = layout(rules, atoms)
    pv = priced_values(val, fp, lam_u, priceable)
    best, _cls = _class_best(pv, fp, atoms)
    bound = np.zeros(lstart[n_t + 1], dtype=np.float64)
    tmp = np.zeros(st.shape[1], dtype=np.int32)
    for t in range(n_t - 1, -1, -1):
        for lab in range(lstart[t], lstart[t + 1]):
            if dom[lab] >= 0:
                continue  # takes its dominator's bound, below
            b = lower - g[lab]
            for q in range(best.shape[1]):
                a = best[t, q]
                if a < 0:
                    continue
                ok = True
                for i in range(atoms.shape[0]):
                    j = atoms[i]
                    if not step_atom(
                        typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], st[lab], toff[i], tmp, toff[i]
                    ):
                        ok = False
                        break
                if not ok:
                    continue
                e = _find(st, tab, tstart[t + 1], tsize[t + 1], tmp)
                if e >= 0 and pv[t, a] + bound[e] > b:
                    b = pv[t, a] + bound[e]
            bound[lab] = b
        for lab in range(lstart[t], lstart[t + 1]):
            if dom[lab] >= 0:
                bound[lab] = bound[dom[lab]]
    return bound
