"""Dual phase: a proximal box-step bundle method on the smoothed Lagrangian dual.

Prices are kept in *units* (one unit moves a typical contact's charge by about one mean
contact value). Each evaluated point adds a cut to a cutting-plane model of the dual;
the next point minimises that model inside a box around the stability centre (an LP
solved by HiGHS). A point that lowers the dual by enough of the predicted decrease
becomes the centre (serious step), otherwise the box shrinks (null step). The phase
stops when the predicted decrease is below tolerance or at the iteration cap. When the
LP master fails, the step falls back to the centre with an unknown (infinite) predicted
decrease: a null step, never a claim of convergence.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from contact_spark.capacity.evaluation import Evaluation, Evaluator
from contact_spark.io.tables import TableStore

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


class DualPhase(Evaluator):
    """The dual phase of ``CapacityEngine``."""

    store: TableStore | None
    run_id: str
    initial_prices: np.ndarray
    _charged: np.ndarray

    # Recording and resuming live one layer up, in iterations.IterationLog (which needs
    # BundleState from here): declared here so that the dual phase's calls are checked.
    def _recorded_state(self) -> BundleState | None:
        raise NotImplementedError

    def reset_run(self) -> None:
        raise NotImplementedError

    def _record(
        self,
        phase: str,
        iteration: int,
        prices: np.ndarray,
        ev: Evaluation,
        *,
        dual: float | None,
        step: np.ndarray | None = None,
        next_price: np.ndarray | None = None,
        best_price: np.ndarray | None = None,
        best_dual: float | None = None,
        stall: int = 0,
        value_scale: float | None = None,
        violation_signed: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ) -> None:
        raise NotImplementedError

    def _dual_phase(self, resume: bool) -> BundleState:
        """Proximal box-step bundle method on the smoothed dual (see module docstring)."""
        state = self._recorded_state() if resume else None
        if state is None:
            self.reset_run()
            state = BundleState(prices=np.array(self.initial_prices, copy=True))
        else:
            log.info("capacity: resuming run %s at iteration %d", self.run_id, state.iteration)
            self.perturbation = self.settings.smoothing * state.value_scale * self._charged
        cap = self.settings.max_iterations
        while state.iteration < cap and not state.converged:
            lam = np.array(state.prices, copy=True)
            ev = self.evaluate(lam, keep=False)
            if state.units.size == 0:
                # Prices are in value units: the mean contact value sets the scales.
                state.value_scale = max(ev.value / max(ev.contacts, 1), 1e-6)
                state.units = state.value_scale / self._coefficient_scales(ev)
                state.radius = self.settings.initial_step
                self.perturbation = self.settings.smoothing * state.value_scale * self._charged
                # The smoothed dual differs from the exact one: re-evaluate with the charge.
                ev = self.evaluate(lam, keep=False)
            value = self.dual_value(ev, lam)
            grad = self.subgradient(ev.usage)
            state.cuts.append((lam, value, grad))
            state.history.append((lam, ev.usage))
            if not math.isfinite(state.centre_value):
                state.centre, state.centre_value = lam, value
            else:
                decrease = state.centre_value - value
                moved = float(np.abs((lam - state.centre) / state.units).max(initial=0.0))
                if decrease >= SERIOUS_FRACTION * state.predicted and decrease > 0:
                    state.centre, state.centre_value = lam, value
                    if decrease >= 0.5 * state.predicted and moved >= 0.99 * state.radius:
                        state.radius = min(state.radius * 2.0, PRICE_CAP)
                else:
                    state.radius = max(state.radius * NULL_SHRINK, MIN_RADIUS)
            state.prices, state.predicted = next_point(state, len(self.constraints))
            state.converged = state.predicted <= self.settings.gap_tolerance * DUAL_TOLERANCE_SHARE * max(
                abs(state.centre_value), 1e-9
            )
            self._record(
                "dual",
                state.iteration,
                lam,
                ev,
                dual=value,
                step=state.radius * state.units,
                next_price=state.prices,
                best_price=state.centre,
                best_dual=state.centre_value,
                stall=int(state.converged),
                value_scale=state.value_scale,
                violation_signed=self.excess(ev.usage) / np.maximum(np.abs(self._bounds), 1.0),
                scale=state.units,
            )
            state.iteration += 1
        return state
