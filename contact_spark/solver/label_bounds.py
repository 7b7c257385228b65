"""Upper bounds on what the rest of a customer's horizon can add (numba).

* :func:`completion` - each later month's best action, rules ignored; with prices
  ``lam`` on the long max windows (yearly caps) the actions are priced first and
  ``lam . cap_end`` is added back: a Lagrangian relaxation of those caps, valid for any
  ``lam >= 0`` (from a state that used ``c_j`` of cap j, subtract ``lam_j * c_j``).
* :func:`prices` - per-customer ``lam`` that make that bound small (Polyak subgradient).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from contact_spark.solver.label_atoms import NEG


@njit(cache=True)
def priced_values(val: np.ndarray, fp: np.ndarray, lam: np.ndarray, priceable: np.ndarray) -> np.ndarray:
    """``val[t, a] - sum_j lam[j] * fp[a, j]`` over the ``priceable`` atoms (NEG stays NEG)."""
    out = val.copy()
    for a in range(val.shape[1]):
        charge = 0.0
        for j in priceable:
            charge += lam[j] * fp[a, j]
        if charge != 0.0:
            for t in range(val.shape[0]):
                if out[t, a] > NEG:
                    out[t, a] -= charge
    return out


@njit(cache=True)
def month_best(pv: np.ndarray) -> np.ndarray:
    """Best action of each month (the empty action 0 when nothing beats it)."""
    n_t, n_a = pv.shape
    top = np.zeros(n_t, dtype=np.int64)
    for t in range(n_t):
        for a in range(1, n_a):
            if pv[t, a] > pv[t, top[t]]:
                top[t] = a
    return top


@njit(cache=True)
def completion(
    val: np.ndarray, fp: np.ndarray, lam: np.ndarray, priceable: np.ndarray, cap_end: np.ndarray
) -> np.ndarray:
    """``out[t]``: sum over months u >= t of the best priced action, plus ``lam . cap_end``."""
    pv = priced_values(val, fp, lam, priceable)
    top = month_best(pv)
    n_t = val.shape[0]
    out = np.zeros(n_t + 1, dtype=np.float64)
    for t in range(n_t - 1, -1, -1):
        out[t] = out[t + 1] + pv[t, top[t]]
    extra = 0.0
    for j in priceable:
        extra += lam[j] * cap_end[j]
    return out + extra


@njit(cache=True)
def prices(
    val: np.ndarray, fp: np.ndarray, priceable: np.ndarray, cap_end: np.ndarray, target: float, iters: int
) -> np.ndarray:
    """Prices ``lam >= 0`` of the ``priceable`` atoms that make ``completion(...)[0]`` small:
    Polyak subgradient steps toward ``target`` (a legal plan's value); the best seen."""
    lam = np.zeros(fp.shape[1], dtype=np.float64)
    best_lam = lam.copy()
    best_b = np.inf
    count = np.zeros(fp.shape[1], dtype=np.float64)
    for _ in range(iters):
        pv = priced_values(val, fp, lam, priceable)
        top = month_best(pv)
        b = 0.0
        count[:] = 0.0
        for t in range(val.shape[0]):
            b += pv[t, top[t]]
            for j in priceable:
                count[j] += fp[top[t], j]
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
