"""Rule atoms as flat arrays, one month at a time (numba): the catalogue kernel's rules.

:mod:`contact_spark.solver.catalogue` compiles every atom to a type and a few integers
and every month action to its *footprint* on each atom (month weight for a window,
"touches a" = 1 / "touches b" = 2 for a pair). An atom's state is a handful of small
integers, the encoding of :mod:`contact_spark.solver.automaton`: the last ``w - 1``
monthly weights of a short window (only the ``limit`` most recent units), the cumulative
count of a window as long as the horizon (its per-month cap carries the history), the
clipped months since the last ``a`` / ``b`` contact of a pair.

The arrays travel as one tuple, ``rules = (typ, win, lim, ismin, fp, off, cap)``:
``typ/win/lim/ismin [J]``, footprints ``fp [A, J]``, the full state layout ``off [J + 1]``
and the customer's caps ``cap [J, T]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SHORT = 0  # rolling window shorter than the horizon: last w-1 monthly weights
LONG = 1  # window >= horizon: cumulative count since plan month 0
TOGETHER = 2  # never_together: ages of the last a and b contacts
FOLLOWED = 3  # never_followed_by: age of the last a contact
AFTER = 4  # only_after: age of the last a contact (window -1: "ever")

NEG = -1e300  # value of an action that is not allowed


@njit(cache=True)
def slots(typ: int, win: int) -> int:
    """State slots of one atom."""
    if typ == SHORT:
        return win - 1
    if typ == TOGETHER:
        return 2
    return 1


@njit(cache=True)
def clip(typ: int, win: int, age: int) -> int:
    """A pair's age, 0 once it can no longer matter (so equivalent states merge)."""
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
        dst[do] = clip(typ, win, 1 if ha else (age_a + 1 if age_a > 0 else 0))
        dst[do + 1] = clip(typ, win, 1 if hb else (age_b + 1 if age_b > 0 else 0))
    elif typ == FOLLOWED:
        ha = (f & 1) != 0
        hb = (f & 2) != 0
        age = src[so]
        ok = not (hb and age > 0)
        dst[do] = clip(typ, win, 1 if ha else (age + 1 if age > 0 else 0))
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
        dst[do] = clip(typ, win, nxt)
    return ok


# Inlined, and the arrays one by one rather than the rules tuple: array arguments cost
# reference counting on every call (measured on repair: 135 -> 85 us a customer).
@njit(cache=True, inline="always")
def step_compact(
    typ: np.ndarray,
    win: np.ndarray,
    lim: np.ndarray,
    ismin: np.ndarray,
    fp: np.ndarray,
    cap: np.ndarray,
    atoms: np.ndarray,
    at: np.ndarray,
    a: int,
    t: int,
    src: np.ndarray,
    dst: np.ndarray,
) -> bool:
    """Step the ``atoms`` of a compact state (atom i's slots start at ``at[i]``) with
    action ``a`` in month ``t``; False at the first atom that forbids it."""
    for i in range(atoms.shape[0]):
        j = atoms[i]
        if not step_atom(typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], src, at[i], dst, at[i]):
            return False
    return True


@njit(cache=True)
def check_plan(rules: tuple, plan: np.ndarray, init: np.ndarray, broken: np.ndarray) -> int:
    """Mark in ``broken[j]`` every atom the plan (month actions) breaks; returns how many."""
    typ, win, lim, ismin, fp, off, cap = rules
    cur = init.copy()
    nxt = init.copy()
    count = 0
    for t in range(plan.shape[0]):
        a = plan[t]
        for j in range(typ.shape[0]):
            ok = step_atom(typ[j], win[j], lim[j], ismin[j], fp[a, j], cap[j, t], cur, off[j], nxt, off[j])
            if not ok and not broken[j]:
                broken[j] = True
                count += 1
        cur[:] = nxt
    return count


@njit(cache=True)
def repair(
    rules: tuple, plan: np.ndarray, val: np.ndarray, init: np.ndarray, nz_ptr: np.ndarray, nz_idx: np.ndarray
) -> np.ndarray:
    """A legal plan near ``plan``: each month keeps its action when every rule allows it,
    else takes the most valuable action the rules allow (the empty one at worst). Returns
    [-1] when no action is legal in some month (a min rule).

    Only the atoms an action touches (``nz_idx[nz_ptr[a]:nz_ptr[a+1]]``) and the min
    atoms can forbid it: an untouched max window or pair never does.
    """
    typ, win, lim, ismin, fp, off, cap = rules
    n_t, n_a = val.shape
    everything = np.arange(typ.shape[0])
    nz_off = off[nz_idx]
    min_atoms = np.flatnonzero(ismin)
    min_off = off[min_atoms]
    out = plan.copy()
    cur = init.copy()
    nxt = init.copy()
    for t in range(n_t):
        choice = -1
        for k in range(-1, n_a):
            a = out[t] if k < 0 else k  # the plan's own action first
            if k >= 0 and (val[t, a] <= NEG or (choice >= 0 and val[t, a] <= val[t, choice])):
                continue
            p0, p1 = nz_ptr[a], nz_ptr[a + 1]
            if step_compact(
                typ, win, lim, ismin, fp, cap, nz_idx[p0:p1], nz_off[p0:p1], a, t, cur, nxt
            ) and step_compact(typ, win, lim, ismin, fp, cap, min_atoms, min_off, a, t, cur, nxt):
                choice = a
                if k < 0:
                    break
        if choice < 0:
            return np.full(1, -1, dtype=np.int64)
        out[t] = choice
        # allowed, so every atom steps (none stops the loop early)
        step_compact(typ, win, lim, ismin, fp, cap, everything, off, choice, t, cur, nxt)
        cur[:] = nxt
    return out


@njit(cache=True)
def _atoms_hold(rules: tuple, plan: np.ndarray, init: np.ndarray, atoms: np.ndarray) -> bool:
    """True when the plan (month actions) breaks none of ``atoms``."""
    typ, win, lim, ismin, fp, off, cap = rules
    at = off[atoms]
    cur = init.copy()
    nxt = init.copy()
    for t in range(plan.shape[0]):
        if not step_compact(typ, win, lim, ismin, fp, cap, atoms, at, plan[t], t, cur, nxt):
            return False
        cur[:] = nxt
    return True


@njit(cache=True)
def value_first(
    rules: tuple, val: np.ndarray, init: np.ndarray, nz_ptr: np.ndarray, nz_idx: np.ndarray
) -> np.ndarray:
    """A legal plan built from the most valuable (month, action) pairs down: each joins
    the plan when its month is still empty and no rule it touches breaks (an atom the
    action does not touch keeps its trajectory). Unlike :func:`repair`, which fills the
    months in order, it does not spend a yearly cap in January on what is worth less than
    a second contact of a better offer in July (measured on the demo's 50-offer
    customers: 1-10 % below the optimum where repair is 13-43 %). [-1] when the result
    breaks a min rule."""
    ismin = rules[3]
    n_t, n_a = val.shape
    flat = np.argsort(-val.ravel(), kind="mergesort")  # ties: earlier month, lower action
    plan = np.zeros(n_t, dtype=np.int64)
    filled = np.zeros(n_t, dtype=np.bool_)
    min_atoms = np.flatnonzero(ismin)
    left = n_t
    for k in flat:
        t = k // n_a
        a = k % n_a
        if val[t, a] <= 0.0 or left == 0:
            break  # the rest adds nothing (the empty action is worth 0)
        if filled[t] or a == 0:
            continue
        plan[t] = a
        if _atoms_hold(rules, plan, init, nz_idx[nz_ptr[a] : nz_ptr[a + 1]]):
            filled[t] = True
            left -= 1
        else:
            plan[t] = 0
    if min_atoms.shape[0] > 0 and not _atoms_hold(rules, plan, init, min_atoms):
        return np.full(1, -1, dtype=np.int64)
    return plan
