"""Exact per-customer schedules by label setting with state-space refinement (numba).

The catalogue kernel's core. One customer at a time, no Spark, no Python objects:

* Every rule atom is compiled (:mod:`contact_spark.solver.catalogue`) to a type and a few
  integers, and every month action to its *footprint* on each atom (month weight for a
  window, "touches a / touches b" flags for a pair). An atom's state is a handful of small
  integers: the last ``w - 1`` monthly weights of a short window, the cumulative count of a
  window as long as the horizon, the clipped months since the last ``a`` / ``b`` contact of
  a pair (the same encoding as :mod:`contact_spark.solver.automaton`).
* **State-space relaxation.** A DP over all atoms at once would need the product of
  their states, far too many with dozens of offers. So the DP only *tracks* some atoms
  and ignores the rest: its optimum is an upper bound on the customer's value. The plan
  it returns is then checked against every atom; when it is legal it is optimal (proved:
  it reaches the bound), otherwise the atoms it breaks join the tracked set and the DP
  runs again (decremental state-space relaxation, as in column generation for routing).
  Each round only adds atoms, so bounds never increase and the loop ends.
* **Action classes.** Actions with the same footprint on the tracked atoms move the DP
  state identically, so per month only the best action of each class is expanded. With
  few atoms tracked, 400 month actions collapse to a dozen classes.
* **Label setting with bounds.** Layers are months; a label is a state with its best
  value so far (ties: first found, actions in order, empty first) and a back pointer.
  Labels whose value plus an optimistic completion (per-month best class from here on,
  after the first round: the previous round's exact completion from the projected state)
  cannot beat the best legal plan known are dropped.

Work is bounded: a round that would create more than ``max_labels`` labels stops, and the
customer keeps the best legal plan found with the last proved bound (not proved optimal).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# atom types
SHORT = 0  # rolling window shorter than the horizon: last w-1 monthly weights
LONG = 1  # window >= horizon: cumulative count since plan month 0
TOGETHER = 2  # never_together: ages of the last a and b contacts
FOLLOWED = 3  # never_followed_by: age of the last a contact
AFTER = 4  # only_after: age of the last a contact (window -1: "ever")

NEG = -1e300

# solve_customer status codes
DONE = 0  # proved optimal
BOUNDED = 1  # legal plan, upper bound above it (work limit)
NO_PLAN = 2  # no legal plan found (min rules the empty repair breaks)


@njit(cache=True)
def _slots(typ: int, win: int) -> int:
    if typ == SHORT:
        return win - 1
    if typ == TOGETHER:
        return 2
    return 1


@njit(cache=True)
def _clip(typ: int, win: int, age: int) -> int:
    if typ == TOGETHER:
        return age if age < win else 0
    if typ == FOLLOWED:
        return age if age <= win else 0
    if win < 0:  # only_after, any time before
        return 1 if age > 0 else 0
    return age if age <= win else 0


@njit(cache=True)
def step_atom(
    typ: int,
    win: int,
    lim: int,
    ismin: bool,
    f: int,
    cap_t: int,
    src: np.ndarray,
    so: int,
    dst: np.ndarray,
    do: int,
) -> bool:
    """Advance one atom by one month with footprint ``f``: reads ``src[so:]``, writes
    ``dst[do:]``; returns False when the month breaks the atom (``dst`` is still written,
    as if allowed, so a check can go on past a violation)."""
    ok = True
    if typ == SHORT:
        n = win - 1
        past = 0
        for i in range(n):
            past += src[so + i]
        if ismin:
            ok = past + f >= lim
        else:
            ok = f == 0 or past + f <= lim
        # shift in the new month, keep only the `lim` most recent units
        left = lim
        for i in range(n - 1, 0, -1):
            dst[do + i] = src[so + i - 1]
        if n > 0:
            dst[do] = f
        for i in range(n):
            v = dst[do + i]
            take = v if v < left else left
            dst[do + i] = take
            left -= take
    elif typ == LONG:
        cum = src[so]
        if ismin:
            ok = cum + f >= cap_t
        else:
            ok = f == 0 or cum + f <= cap_t
        v = cum + f
        dst[do] = v if v < lim + 1 else lim + 1
    elif typ == TOGETHER:
        ha = (f & 1) != 0
        hb = (f & 2) != 0
        age_a = src[so]
        age_b = src[so + 1]
        ok = not ((hb and age_a > 0) or (ha and age_b > 0))
        dst[do] = _clip(typ, win, 1 if ha else (age_a + 1 if age_a > 0 else 0))
        dst[do + 1] = _clip(typ, win, 1 if hb else (age_b + 1 if age_b > 0 else 0))
    elif typ == FOLLOWED:
        ha = (f & 1) != 0
        hb = (f & 2) != 0
        age = src[so]
        ok = not (hb and age > 0)
        dst[do] = _clip(typ, win, 1 if ha else (age + 1 if age > 0 else 0))
    else:  # AFTER
        ha = (f & 1) != 0
        hb = (f & 2) != 0
        age = src[so]
        ok = not (hb and age == 0)
        if ha:
            nxt = 1
        elif age > 0 and win >= 0:
            nxt = age + 1
        else:
            nxt = age
        dst[do] = _clip(typ, win, nxt)
    return ok


@njit(cache=True)
def check_plan(
    plan: np.ndarray,
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    init: np.ndarray,
    off: np.ndarray,
    cap: np.ndarray,
    broken: np.ndarray,
) -> int:
    """Mark in ``broken[j]`` every atom the plan (month actions) breaks; returns how many."""
    n_t = plan.shape[0]
    n_j = typ.shape[0]
    cur = init.copy()
    nxt = init.copy()
    count = 0
    for t in range(n_t):
        a = plan[t]
        for j in range(n_j):
            ok = step_atom(typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], cur, off[j], nxt, off[j])
            if not ok and not broken[j]:
                broken[j] = True
                count += 1
        cur[:] = nxt
    return count


@njit(cache=True)
def _hash(row: np.ndarray) -> np.uint64:
    h = np.uint64(1469598103934665603)
    for v in row:
        h ^= np.uint64(v + 1)
        h *= np.uint64(1099511628211)
    return h


@njit(cache=True)
def _classes(fp: np.ndarray, atoms: np.ndarray, avail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group actions by footprint on ``atoms``: (class of each action or -1, representative
    action of each class). Unavailable actions (never legal for this customer) get -1."""
    n_a = fp.shape[0]
    n_j = atoms.shape[0]
    cls = np.full(n_a, -1, dtype=np.int64)
    reps = np.empty(n_a, dtype=np.int64)
    n_q = 0
    for a in range(n_a):
        if not avail[a]:
            continue
        found = -1
        for q in range(n_q):
            r = reps[q]
            same = True
            for i in range(n_j):
                if fp[a, atoms[i]] != fp[r, atoms[i]]:
                    same = False
                    break
            if same:
                found = q
                break
        if found < 0:
            reps[n_q] = a
            found = n_q
            n_q += 1
        cls[a] = found
    return cls, reps[:n_q]


@njit(cache=True)
def _layout(typ: np.ndarray, win: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Offsets of the tracked atoms' slots in a compact state (``[len(atoms) + 1]``)."""
    toff = np.zeros(atoms.shape[0] + 1, dtype=np.int64)
    for i in range(atoms.shape[0]):
        toff[i + 1] = toff[i] + _slots(typ[atoms[i]], win[atoms[i]])
    return toff


@njit(cache=True)
def _find(st: np.ndarray, table: np.ndarray, t0: int, tsize: int, row: np.ndarray) -> int:
    """Label holding state ``row`` in the hash table ``table[t0 : t0 + tsize]``, or -1."""
    d = row.shape[0]
    pos = np.int64(_hash(row) & np.uint64(tsize - 1))
    while True:
        e = table[t0 + pos]
        if e < 0:
            return -1
        same = True
        for s in range(d):
            if st[e, s] != row[s]:
                same = False
                break
        if same:
            return e
        pos = (pos + 1) & (tsize - 1)


@njit(cache=True)
def _relaxed_dp(
    val: np.ndarray,
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    init: np.ndarray,
    off: np.ndarray,
    cap: np.ndarray,
    atoms: np.ndarray,
    lower: float,
    completion: np.ndarray,
    max_labels: int,
    use_prev: bool,
    p_st: np.ndarray,
    p_lstart: np.ndarray,
    p_tab: np.ndarray,
    p_tstart: np.ndarray,
    p_tsize: np.ndarray,
    p_bound: np.ndarray,
    proj: np.ndarray,
    lam: np.ndarray,
    priced: np.ndarray,
    p_lam: np.ndarray,
    p_lam_cap: float,
) -> tuple:  # 12 arrays and scalars, see below
    """Best plan under the ``atoms`` only, among plans worth more than ``lower``.

    A label is dropped when its value plus a bound on the rest of the horizon cannot beat
    ``lower``: ``completion[t]`` (best action of each later month, rules ignored),
    ``priced[t] - sum(lam[j] * used_j)`` (each later month's best action after pricing the
    long windows' contacts at ``lam``, plus what is left of their caps: tracked windows
    know what the label used, the others count nothing used) and, with
    ``use_prev``, the previous round's bound at the label's projected state (``proj``
    picks the previous round's slots out of this round's state). A projected state the
    previous round never created lies only on paths that round proved no better than its
    ``lower``; its labels are dropped too.

    Returns (value, plan, labels, finished, st, g, parent, act, lstart, tab, tstart, tsize);
    value is NEG when no plan beats ``lower``. Labels: states ``st[P, d]``, values ``g``,
    back pointers ``parent`` / ``act``; layer t is ``lstart[t]:lstart[t+1]``, and its
    open-addressing table (label ids) is ``tab[tstart[t] : tstart[t] + tsize[t]]``: what
    :func:`_backward` and the next round read.
    """
    n_t, n_a = val.shape
    n_j = atoms.shape[0]
    toff = _layout(typ, win, atoms)
    d = max(int(toff[n_j]), 1)
    avail = np.zeros(n_a, dtype=np.bool_)
    for a in range(n_a):
        for t in range(n_t):
            if val[t, a] > NEG:
                avail[a] = True
                break
    cls, reps = _classes(fp, atoms, avail)
    n_q = reps.shape[0]
    best = np.full((n_t, n_q), -1, dtype=np.int64)
    for t in range(n_t):
        for a in range(n_a):
            q = cls[a]
            if q >= 0 and val[t, a] > NEG and (best[t, q] < 0 or val[t, a] > val[t, best[t, q]]):
                best[t, q] = a
    size = 1024
    st = np.zeros((size, d), dtype=np.int32)
    g = np.empty(size, dtype=np.float64)
    parent = np.empty(size, dtype=np.int64)
    act = np.empty(size, dtype=np.int64)
    for i in range(n_j):
        j = atoms[i]
        for s in range(toff[i + 1] - toff[i]):
            st[0, toff[i] + s] = init[off[j] + s]
    g[0] = 0.0
    parent[0] = -1
    act[0] = -1
    lstart = np.zeros(n_t + 2, dtype=np.int64)
    lstart[1] = 1
    tstart = np.zeros(n_t + 2, dtype=np.int64)
    tsize = np.ones(n_t + 2, dtype=np.int64)
    tab = np.full(64, -1, dtype=np.int64)
    tab[0] = 0  # layer 0: one label, table of size 1 (tstart[0] = 0)
    tab_used = 1
    start, stop = 0, 1
    tmp = np.zeros(d, dtype=np.int32)
    old = np.zeros(p_st.shape[1], dtype=np.int32)  # unused slots stay 0, as stored
    for t in range(n_t):
        ts = 16
        while ts < 4 * (stop - start):
            ts *= 2
        table = np.full(ts, -1, dtype=np.int64)
        new_start = stop
        for lab in range(start, stop):
            for q in range(n_q):
                a = best[t, q]
                if a < 0:
                    continue
                v = g[lab] + val[t, a]
                if v + completion[t + 1] <= lower:
                    continue
                ok = True
                for i in range(n_j):
                    j = atoms[i]
                    if not step_atom(
                        typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], st[lab], toff[i], tmp, toff[i]
                    ):
                        ok = False
                        break
                if not ok:
                    continue
                rest = priced[t + 1]
                for i in range(n_j):
                    j = atoms[i]
                    if lam[j] > 0.0:
                        rest -= lam[j] * tmp[toff[i]]
                if v + rest <= lower:
                    continue
                if use_prev:
                    for s in range(proj.shape[0]):
                        old[s] = tmp[proj[s]]
                    e_old = _find(p_st, p_tab, p_tstart[t + 1], p_tsize[t + 1], old)
                    if e_old < 0:
                        continue
                    # windows the previous round priced: what is left of their caps
                    rest = p_bound[e_old] + p_lam_cap
                    for i in range(n_j):
                        j = atoms[i]
                        if p_lam[j] > 0.0:
                            rest -= p_lam[j] * tmp[toff[i]]
                    if v + rest <= lower:
                        continue
                pos = np.int64(_hash(tmp) & np.uint64(ts - 1))
                while True:
                    e = table[pos]
                    if e < 0:
                        break
                    same = True
                    for s in range(d):
                        if st[e, s] != tmp[s]:
                            same = False
                            break
                    if same:
                        break
                    pos = (pos + 1) & (ts - 1)
                e = table[pos]
                if e >= 0:
                    if v > g[e]:
                        g[e] = v
                        parent[e] = lab
                        act[e] = a
                    continue
                if stop >= max_labels:
                    return (
                        NEG,
                        np.zeros(n_t, dtype=np.int64),
                        stop,
                        False,
                        st,
                        g,
                        parent,
                        act,
                        lstart,
                        tab,
                        tstart,
                        tsize,
                    )
                if stop >= size:
                    size *= 2
                    st2 = np.zeros((size, d), dtype=np.int32)
                    st2[:stop] = st[:stop]
                    st = st2
                    g2 = np.empty(size, dtype=np.float64)
                    g2[:stop] = g[:stop]
                    g = g2
                    p2 = np.empty(size, dtype=np.int64)
                    p2[:stop] = parent[:stop]
                    parent = p2
                    a2 = np.empty(size, dtype=np.int64)
                    a2[:stop] = act[:stop]
                    act = a2
                st[stop] = tmp
                g[stop] = v
                parent[stop] = lab
                act[stop] = a
                table[pos] = stop
                stop += 1
                if (stop - new_start) * 2 > ts:  # keep the table sparse
                    ts *= 2
                    table = np.full(ts, -1, dtype=np.int64)
                    for e2 in range(new_start, stop):
                        p = np.int64(_hash(st[e2]) & np.uint64(ts - 1))
                        while table[p] >= 0:
                            p = (p + 1) & (ts - 1)
                        table[p] = e2
        # keep the layer's table for the backward pass and the next round
        while tab_used + ts > tab.shape[0]:
            tab2 = np.full(tab.shape[0] * 2, -1, dtype=np.int64)
            tab2[:tab_used] = tab[:tab_used]
            tab = tab2
        tab[tab_used : tab_used + ts] = table
        tstart[t + 1] = tab_used
        tsize[t + 1] = ts
        tab_used += ts
        lstart[t + 2] = stop
        start = new_start
        if start == stop:
            return (
                NEG,
                np.zeros(n_t, dtype=np.int64),
                stop,
                True,
                st,
                g,
                parent,
                act,
                lstart,
                tab,
                tstart,
                tsize,
            )
    top = start
    for lab in range(start, stop):
        if g[lab] > g[top]:
            top = lab
    plan = np.zeros(n_t, dtype=np.int64)
    lab = top
    for t in range(n_t - 1, -1, -1):
        plan[t] = act[lab]
        lab = parent[lab]
    return g[top], plan, stop, True, st, g, parent, act, lstart, tab, tstart, tsize


@njit(cache=True)
def _backward(
    val: np.ndarray,
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    cap: np.ndarray,
    atoms: np.ndarray,
    lower: float,
    st: np.ndarray,
    g: np.ndarray,
    lstart: np.ndarray,
    tab: np.ndarray,
    tstart: np.ndarray,
    tsize: np.ndarray,
    lam_u: np.ndarray,
) -> np.ndarray:
    """Bound on the value of the rest of the horizon from each label's state: the best
    continuation through labels that were kept, or what the pruning test allowed the
    dropped ones (``lower - g``), whichever is larger. Contacts of the long windows this
    round did not track are priced at ``lam_u``: a true continuation is worth at most
    ``bound + sum(lam_u[j] * (cap_end[j] - used_j))`` (Lagrangian relaxation)."""
    n_t, n_a = val.shape
    n_j = atoms.shape[0]
    toff = _layout(typ, win, atoms)
    d = max(int(toff[n_j]), 1)
    n_lab = lstart[n_t + 1]
    bound = np.zeros(n_lab, dtype=np.float64)
    # values with the untracked long windows priced (see solve_customer)
    pv = val.copy()
    for a in range(n_a):
        for j in range(fp.shape[1]):
            if lam_u[j] > 0.0 and fp[a, j] != 0:
                for t in range(n_t):
                    if pv[t, a] > NEG:
                        pv[t, a] -= lam_u[j] * fp[a, j]
    avail = np.ones(n_a, dtype=np.bool_)
    cls, reps = _classes(fp, atoms, avail)
    n_q = reps.shape[0]
    best = np.full((n_t, n_q), -1, dtype=np.int64)
    for t in range(n_t):
        for a in range(n_a):
            q = cls[a]
            if val[t, a] > NEG and (best[t, q] < 0 or val[t, a] > val[t, best[t, q]]):
                best[t, q] = a
    tmp = np.zeros(d, dtype=np.int32)
    for t in range(n_t):
        for q in range(n_q):
            best[t, q] = -1
        for a in range(n_a):
            if pv[t, a] > NEG:
                q = cls[a]
                if best[t, q] < 0 or pv[t, a] > pv[t, best[t, q]]:
                    best[t, q] = a
    for t in range(n_t - 1, -1, -1):
        for lab in range(lstart[t], lstart[t + 1]):
            b = lower - g[lab]
            for q in range(n_q):
                a = best[t, q]
                if a < 0:
                    continue
                ok = True
                for i in range(n_j):
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
    return bound


@njit(cache=True)
def solve_customer(
    val: np.ndarray,
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    init: np.ndarray,
    off: np.ndarray,
    cap: np.ndarray,
    tracked0: np.ndarray,
    max_labels: int,
    nz_ptr: np.ndarray,
    nz_idx: np.ndarray,
) -> tuple[np.ndarray, float, float, int, int, int]:
    """Optimal month actions of one customer: (plan, value, upper bound, status, rounds,
    labels). ``val[t, a]`` is action a's value in month t (NEG: not allowed)."""
    n_t, n_a = val.shape
    n_j = typ.shape[0]
    tracked = tracked0.copy()
    broken = np.zeros(n_j, dtype=np.bool_)
    completion = np.zeros(n_t + 1, dtype=np.float64)
    for t in range(n_t - 1, -1, -1):
        m = 0.0
        for a in range(n_a):
            if val[t, a] > m:
                m = val[t, a]
        completion[t] = completion[t + 1] + m
    upper = completion[0]
    min_atoms = np.flatnonzero(ismin)
    # first legal plan: each month's best action, repaired greedily
    greedy = np.zeros(n_t, dtype=np.int64)
    for t in range(n_t):
        for a in range(n_a):
            if val[t, a] > val[t, greedy[t]]:
                greedy[t] = a
    best_plan = _repair(greedy, val, typ, win, lim, ismin, fp, init, off, cap, nz_ptr, nz_idx, min_atoms)
    have = best_plan[0] >= 0
    lower = NEG
    if have:
        lower = 0.0
        for t in range(n_t):
            lower += val[t, best_plan[t]]
    else:
        best_plan = np.zeros(n_t, dtype=np.int64)
    # prices of the long max windows (yearly caps) for a tighter bound on the months left
    priceable = np.flatnonzero((typ == LONG) & ~ismin)
    cap_end = np.zeros(n_j, dtype=np.float64)
    for j in priceable:
        cap_end[j] = cap[j, n_t - 1]
    lam = np.zeros(n_j, dtype=np.float64)
    if priceable.shape[0] > 0 and have:
        lam = _prices(val, fp, priceable, cap_end, lower, 40)
    priced = _priced_completion(val, fp, priceable, cap_end, lam)
    upper = min(upper, priced[0])
    rounds = 0
    labels = 0
    use_prev = False
    p_atoms = np.zeros(0, dtype=np.int64)
    p_st = np.zeros((1, 1), dtype=np.int32)
    p_lstart = np.zeros(n_t + 2, dtype=np.int64)
    p_tab = np.full(1, -1, dtype=np.int64)
    p_tstart = np.zeros(n_t + 2, dtype=np.int64)
    p_tsize = np.ones(n_t + 2, dtype=np.int64)
    p_bound = np.zeros(1, dtype=np.float64)
    p_lam = np.zeros(n_j, dtype=np.float64)
    p_lam_cap = 0.0
    while True:
        rounds += 1
        atoms = np.flatnonzero(tracked)
        # the previous round's slots inside this round's state
        toff = _layout(typ, win, atoms)
        p_toff = _layout(typ, win, p_atoms)
        proj = np.zeros(p_toff[p_atoms.shape[0]], dtype=np.int64)
        k = 0
        for i in range(atoms.shape[0]):
            if k < p_atoms.shape[0] and atoms[i] == p_atoms[k]:
                for s in range(p_toff[k + 1] - p_toff[k]):
                    proj[p_toff[k] + s] = toff[i] + s
                k += 1
        value, plan, used, finished, st, g, _parent, _act, lstart, tab, tstart, tsize = _relaxed_dp(
            val,
            typ,
            win,
            lim,
            ismin,
            fp,
            init,
            off,
            cap,
            atoms,
            lower,
            completion,
            max_labels,
            use_prev,
            p_st,
            p_lstart,
            p_tab,
            p_tstart,
            p_tsize,
            p_bound,
            proj,
            lam,
            priced,
            p_lam,
            p_lam_cap,
        )
        labels += used
        if not finished:
            break
        if value <= NEG:
            upper = lower  # nothing beats the incumbent: it is optimal
            break
        upper = min(upper, value)
        broken[:] = False
        if check_plan(plan, typ, win, lim, ismin, fp, init, off, cap, broken) == 0:
            return plan, value, value, DONE, rounds, labels
        repaired = _repair(plan, val, typ, win, lim, ismin, fp, init, off, cap, nz_ptr, nz_idx, min_atoms)
        if repaired[0] >= 0:
            rv = 0.0
            for t in range(n_t):
                rv += val[t, repaired[t]]
            if not have or rv > lower:
                lower = rv
                best_plan = repaired
                have = True
        # the bound this round proved, for the next round's pruning (lower only grew)
        p_lam = lam.copy()
        p_lam[atoms] = 0.0
        p_lam_cap = 0.0
        for jj in range(n_j):
            p_lam_cap += p_lam[jj] * cap_end[jj]
        p_bound = _backward(
            val, typ, win, lim, ismin, fp, cap, atoms, lower, st, g, lstart, tab, tstart, tsize, p_lam
        )
        p_st, p_lstart, p_tab, p_tstart, p_tsize, p_atoms = st, lstart, tab, tstart, tsize, atoms
        use_prev = True
        for jj in range(n_j):
            if broken[jj]:
                tracked[jj] = True
    if not have:
        return best_plan, NEG, upper, NO_PLAN, rounds, labels
    value = 0.0
    for t in range(n_t):
        value += val[t, best_plan[t]]
    status = DONE if upper <= value + 1e-9 * max(1.0, abs(value)) else BOUNDED
    return best_plan, value, max(upper, value), status, rounds, labels


@njit(cache=True)
def _repair(
    plan: np.ndarray,
    val: np.ndarray,
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    init: np.ndarray,
    off: np.ndarray,
    cap: np.ndarray,
    nz_ptr: np.ndarray,
    nz_idx: np.ndarray,
    min_atoms: np.ndarray,
) -> np.ndarray:
    """A legal plan near ``plan``: each month keeps its action when every rule allows it,
    else takes the most valuable action the rules allow (the empty one at worst). Returns
    [-1] when no action is legal in some month (a min rule).

    Only the atoms an action touches (``nz_idx[nz_ptr[a]:nz_ptr[a+1]]``) and the min
    atoms can forbid it: an untouched max window or pair never does.
    """
    n_t, n_a = val.shape
    n_j = typ.shape[0]
    out = plan.copy()
    cur = init.copy()
    nxt = init.copy()
    for t in range(n_t):
        choice = -1
        if _allowed(out[t], t, typ, win, lim, ismin, fp, cur, off, cap, nz_ptr, nz_idx, min_atoms, nxt):
            choice = out[t]
        else:
            for a in range(n_a):
                if val[t, a] > NEG and (choice < 0 or val[t, a] > val[t, choice]):
                    if _allowed(
                        a, t, typ, win, lim, ismin, fp, cur, off, cap, nz_ptr, nz_idx, min_atoms, nxt
                    ):
                        choice = a
        if choice < 0:
            return np.full(1, -1, dtype=np.int64)
        out[t] = choice
        for j in range(n_j):
            step_atom(typ[j], win[j], lim[j], ismin[j], fp[choice, j], cap[j, t], cur, off[j], nxt, off[j])
        cur[:] = nxt
    return out


@njit(cache=True)
def _allowed(
    a: int,
    t: int,
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    cur: np.ndarray,
    off: np.ndarray,
    cap: np.ndarray,
    nz_ptr: np.ndarray,
    nz_idx: np.ndarray,
    min_atoms: np.ndarray,
    scratch: np.ndarray,
) -> bool:
    """Every rule allows action ``a`` in month ``t`` from full state ``cur``."""
    for i in range(nz_ptr[a], nz_ptr[a + 1]):
        j = nz_idx[i]
        if not step_atom(typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], cur, off[j], scratch, off[j]):
            return False
    for j in min_atoms:
        if not step_atom(typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], cur, off[j], scratch, off[j]):
            return False
    return True


@njit(cache=True)
def _prices(
    val: np.ndarray, fp: np.ndarray, priceable: np.ndarray, cap_end: np.ndarray, target: float, iters: int
) -> np.ndarray:
    """Prices ``lam >= 0`` of the long max windows that make the bound
    ``sum_t max_a (val[t, a] - lam . fp[a]) + lam . cap_end`` small (Polyak subgradient
    steps toward ``target``, a legal plan's value); any prices give a valid bound."""
    n_t, n_a = val.shape
    n_j = fp.shape[1]
    lam = np.zeros(n_j, dtype=np.float64)
    best_lam = lam.copy()
    best_b = np.inf
    count = np.zeros(n_j, dtype=np.float64)
    for _ in range(iters):
        b = 0.0
        count[:] = 0.0
        for t in range(n_t):
            top = 0
            tv = val[t, 0]
            for a in range(1, n_a):
                if val[t, a] <= NEG:
                    continue
                v = val[t, a]
                for j in priceable:
                    v -= lam[j] * fp[a, j]
                if v > tv:
                    tv = v
                    top = a
            b += tv
            for j in priceable:
                count[j] += fp[top, j]
        norm = 0.0
        for j in priceable:
            b += lam[j] * cap_end[j]
            gj = cap_end[j] - count[j]
            if lam[j] > 0.0 or gj < 0.0:
                norm += gj * gj
        if b < best_b:
            best_b = b
            best_lam[:] = lam
        if norm == 0.0 or b - target <= 1e-9:
            break
        step = (b - target) / norm
        for j in priceable:
            lam[j] = max(0.0, lam[j] - step * (cap_end[j] - count[j]))
    return best_lam


@njit(cache=True)
def _priced_completion(
    val: np.ndarray, fp: np.ndarray, priceable: np.ndarray, cap_end: np.ndarray, lam: np.ndarray
) -> np.ndarray:
    """``out[t]`` = sum over months u >= t of the best priced action, plus ``lam . cap_end``."""
    n_t, n_a = val.shape
    out = np.zeros(n_t + 1, dtype=np.float64)
    for t in range(n_t - 1, -1, -1):
        tv = val[t, 0]
        for a in range(1, n_a):
            if val[t, a] <= NEG:
                continue
            v = val[t, a]
            for j in priceable:
                v -= lam[j] * fp[a, j]
            if v > tv:
                tv = v
        out[t] = out[t + 1] + tv
    extra = 0.0
    for j in priceable:
        extra += lam[j] * cap_end[j]
    out += extra
    return out
