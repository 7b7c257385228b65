"""The greedy baseline's per-customer schedule (numba), built on the shared rule checker.

:func:`greedy_schedule` plans month by month with :func:`~contact_spark.baseline.rules.blocking`
deciding what one more contact may be, then fills short min_offers windows;
:func:`keep_legal` re-adds a plan's contacts in order, keeping those the rules allow. The
``counts`` layout and the rule arrays are :mod:`contact_spark.baseline.rules`'.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from contact_spark.baseline.rules import blocking, same_copy, window_total


@nb.njit(cache=True)
def _fill_min(
    counts: np.ndarray,
    order: np.ndarray,
    fill_ok: np.ndarray,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
) -> None:
    """min_offers: add allowed contacts (``order`` = cells best first, ``fill_ok[t, k]``) to
    every short window."""
    n_k = counts.shape[1]
    for r in range(kind.shape[0]):
        if kind[r] != 5:
            continue
        w = window[r]
        for k0 in range(n_k):
            if not cells[r, k0]:
                continue
            first = True  # handle each rule copy once, at its first cell
            for k1 in range(k0):
                if cells[r, k1] and same_copy(k0, k1, pc[r], ph[r], n_h):
                    first = False
            if not first:
                continue
            for e in range(horizon):
                lo = max(1, e - w + 1 + offset)
                total = window_total(counts, r, k0, lo, e + offset, False, cells, pc, ph, n_h)
                while total < limit[r]:
                    added = False
                    # The best cell first, in the latest month of the window (it covers the most windows).
                    for i in range(order.shape[0]):
                        k = order[i]
                        if not (cells[r, k] and same_copy(k0, k, pc[r], ph[r], n_h)):
                            continue
                        for t in range(e, max(0, e - w + 1) - 1, -1):
                            if not fill_ok[t, k]:
                                continue  # outside the campaign's flight that month
                            if counts[t + offset, k] == 0 and (
                                blocking(
                                    counts,
                                    t,
                                    k,
                                    kind,
                                    window,
                                    limit,
                                    pc,
                                    ph,
                                    cells,
                                    a,
                                    b,
                                    horizon,
                                    n_h,
                                    offset,
                                )
                                == 0
                            ):
                                counts[t + offset, k] = 1
                                added = True
                                break
                        if added:
                            break
                    if not added:
                        break
                    total += 1


@nb.njit(cache=True)
def greedy_schedule(
    counts: np.ndarray,
    order: np.ndarray,
    value_ok: np.ndarray,
    fill_ok: np.ndarray,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
) -> None:
    """Month by month, cells in ``order`` (best propensity first) with ``value_ok[t, k]`` while
    every max/pair rule allows; then every short min_offers window filled from ``fill_ok[t, k]``
    (both ``[T, K]``: a cell outside its campaign's flight is never ok that month).
    ``counts`` holds the history on entry and the plan added in place."""
    for t in range(horizon):
        for i in range(order.shape[0]):
            k = order[i]
            if value_ok[t, k] and counts[t + offset, k] == 0:
                if (
                    blocking(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset)
                    == 0
                ):
                    counts[t + offset, k] = 1
    _fill_min(counts, order, fill_ok, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset)


@nb.njit(cache=True)
def keep_legal(
    counts: np.ndarray,
    months: np.ndarray,
    ks: np.ndarray,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
) -> np.ndarray:
    """Add the given contacts in order, skipping any a rule blocks; returns the kept flags."""
    kept = np.zeros(months.shape[0], dtype=np.bool_)
    for i in range(months.shape[0]):
        t, k = months[i], ks[i]
        if counts[t + offset, k] == 0 and (
            blocking(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset) == 0
        ):
            counts[t + offset, k] = 1
            kept[i] = True
    return kept
