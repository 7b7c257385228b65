"""Dominance between the labels of one month (numba): drop a label when another label of
the same month has at least its value and a state no rule treats more strictly.

Each tracked atom's slots map to numbers that are larger the freer the state
(:func:`freedom`), and the map keeps its order through every month's step:

* a max window: minus the running sums of its last monthly weights, most recent first
  (a future window sees a suffix of them); a min window: plus those sums;
* a long window: minus its count (max) or plus it (min);
* never_together / never_followed_by: the age of the last contact, none (0) freest, and
  an older contact freer than a recent one (it stops blocking sooner);
* only_after: the prerequisite's recency, a recent one freest (it enables longer), none
  (0) not at all.

So every plan that continues a dominated label continues its dominator too, with the same
value: dropping it loses no optimum, and its completion bound is its dominator's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from contact_spark.solver.label_atoms import AFTER, FOLLOWED, LONG, SHORT, TOGETHER


@njit(cache=True)
def freedom(
    typ: np.ndarray,
    win: np.ndarray,
    ismin: np.ndarray,
    atoms: np.ndarray,
    toff: np.ndarray,
    row: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write the freedom numbers of compact state ``row`` into ``out`` (same layout)."""
    for i in range(atoms.shape[0]):
        j = atoms[i]
        o = toff[i]
        w = win[j]
        sign = 1 if ismin[j] else -1
        if typ[j] == SHORT:
            acc = 0
            for s in range(w - 1):
                acc += row[o + s]
                out[o + s] = sign * acc
        elif typ[j] == LONG:
            out[o] = sign * row[o]
        elif typ[j] == TOGETHER:
            for s in range(2):
                out[o + s] = w if row[o + s] == 0 else row[o + s]
        elif typ[j] == FOLLOWED:
            out[o] = w + 1 if row[o] == 0 else row[o]
        elif typ[j] == AFTER:
            age = row[o]
            out[o] = age if w < 0 else (0 if age == 0 else w + 1 - age)


@njit(cache=True)
def mark_dominated(
    typ: np.ndarray,
    win: np.ndarray,
    ismin: np.ndarray,
    atoms: np.ndarray,
    toff: np.ndarray,
    st: np.ndarray,
    g: np.ndarray,
    start: int,
    stop: int,
    dom: np.ndarray,
) -> None:
    """``dom[lab]`` = a label of ``start:stop`` that dominates ``lab``, or -1. Labels are
    visited by decreasing value (ties: creation order); each is compared with the labels
    kept so far."""
    n = stop - start
    d = st.shape[1]
    key = np.zeros((n, d), dtype=np.int32)
    for r in range(n):
        freedom(typ, win, ismin, atoms, toff, st[start + r], key[r])
    order = np.argsort(-g[start:stop], kind="mergesort")
    kept = np.empty(n, dtype=np.int64)
    n_kept = 0
    for r in order:
        dom[start + r] = -1
        for k in range(n_kept):
            q = kept[k]
            free = True
            for s in range(d):
                if key[q, s] < key[r, s]:
                    free = False
                    break
            if free:
                dom[start + r] = start + q
                break
        if dom[start + r] < 0:
            kept[n_kept] = r
            n_kept += 1
