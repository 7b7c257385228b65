"""The bundle method's state and master step, shared by the dual phase and by resuming.

Kept apart from :mod:`contact_spark.capacity.dual` so that recording and resuming
(:mod:`contact_spark.capacity.iterations`) can sit below the dual phase in the engine's
class chain and rebuild a state without importing the phase that uses it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

log = logging.getLogger(__name__)

PRICE_CAP = 50.0  # highest price, in mean contact values per unit of a constraint's coefficient
SERIOUS_FRACTION = 0.1  # serious step when the dual falls by this share of the predicted decrease
NULL_SHRINK = 0.7  # box radius factor after a null step
MIN_RADIUS = 1e-6  # smallest box radius (in units)
DUAL_TOLERANCE_SHARE = 0.1  # stop when the predicted decrease < this × gap_tolerance × |dual|


@dataclass
class BundleState:
    """Dual-phase state: the cuts of the smoothed dual, the stability centre, the box."""

    prices: np.ndarray = field(default_factory=lambda: np.zeros(0))  # next point to evaluate
    centre: np.ndarray = field(default_factory=lambda: np.zeros(0))
    centre_value: float = math.inf
    radius: float = 0.5  # box half-width, in units
    units: np.ndarray = field(default_factory=lambda: np.zeros(0))  # price per unit, per constraint
    value_scale: float = 1.0  # mean contact value
    predicted: float = math.inf
    converged: bool = False
    iteration: int = 0
    cuts: list[tuple[np.ndarray, float, np.ndarray]] = field(default_factory=list)
    history: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def next_point(state: BundleState, n_constraints: int) -> tuple[np.ndarray, float]:
    """Box-step bundle master: minimise the cutting-plane model of the (smoothed) dual in
    the box ``|λ − centre| ≤ radius·units``, ``0 ≤ λ ≤ cap``; returns the point and the
    decrease the model predicts from the centre's value.

    If HiGHS finds no solution, the centre is returned with a predicted decrease of
    ``inf``: the caller evaluates it as a null step (the box shrinks, the master is
    retried) and the phase cannot stop as converged on a step it did not take.
    """
    n_k = n_constraints
    units = state.units
    lower = np.maximum(0.0, state.centre / units - state.radius)
    upper = np.minimum(PRICE_CAP, state.centre / units + state.radius)
    upper = np.maximum(upper, lower)
    # Variables: μ (prices in units) and θ; minimise θ ≥ L_j + g_j·(units μ − λ_j).
    a_ub = np.zeros((len(state.cuts), n_k + 1))
    b_ub = np.zeros(len(state.cuts))
    for j, (lam, value, grad) in enumerate(state.cuts):
        a_ub[j, :n_k] = grad * units
        a_ub[j, n_k] = -1.0
        b_ub[j] = float(grad @ lam) - value
    cost = np.zeros(n_k + 1)
    cost[n_k] = 1.0
    res = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=[*zip(lower, upper, strict=True), (None, None)],
        method="highs",
    )
    if res.status != 0 or res.x is None:
        # Counting a failed master as "no decrease predicted" would stop the phase as
        # converged at a point the model never certified.
        log.warning(
            "capacity: the bundle master LP failed (status %s: %s); falling back to the centre, "
            "not converged",
            res.status,
            res.message,
        )
        return np.array(state.centre, copy=True), math.inf
    mu = np.clip(res.x[:n_k], lower, upper)
    predicted = max(0.0, state.centre_value - float(res.x[n_k]))
    return mu * units, predicted
