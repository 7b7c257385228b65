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

import numpy as np

from contact_spark.capacity.bundle import (
    DUAL_TOLERANCE_SHARE,
    MIN_RADIUS,
    NULL_SHRINK,
    PRICE_CAP,
    SERIOUS_FRACTION,
    BundleState,
    next_point,
)
from contact_spark.capacity.iterations import IterationLog

log = logging.getLogger(__name__)

class DualPhase(IterationLog):
    """The dual phase of ``CapacityEngine``."""

    initial_prices: np.ndarray
    _charged: np.ndarray

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
