"""The bundle dual phase on a small synthetic dual (no Spark): it converges, and a failed
LP master is a logged fall-back step that never counts as convergence."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from contact_spark.capacity import bundle
from contact_spark.capacity.constraints import Constraint
from contact_spark.capacity.dual import DualPhase
from contact_spark.capacity.evaluation import Evaluation
from contact_spark.config.capacity import LagrangianSettings

VALUES = np.linspace(1.0, 10.0, 100)  # one contact per customer, worth these
BOUND = 30.0  # at most 30 contacts


class OneCapacity(DualPhase):
    """A dual phase whose customers take their contact when its value beats the price."""

    def __init__(self, max_iterations: int) -> None:
        self.constraints = [Constraint("cap", "cap", "max", BOUND, np.ones((1, 1, 1)))]
        self.settings = LagrangianSettings(max_iterations=max_iterations, smoothing=0.0)
        self.shape = (1, 1, 1)
        self.attributes = []
        self.store = None
        self.run_id, self.config_hash = "test", ""
        self.initial_prices = np.zeros(1)
        self._charged = np.ones(self.shape)
        self._pending = []
        self.perturbation = 0.0

    def evaluate(
        self, prices: np.ndarray, frame: object = None, exact: bool = False, keep: bool = True
    ) -> Evaluation:
        taken = VALUES > prices[0]
        count = float(taken.sum())
        return Evaluation(
            solved=None,
            usage=np.array([count]),
            counts=np.full(self.shape, count),
            attr_sums={},
            objective=float((VALUES[taken] - prices[0]).sum()),
            upper=float((VALUES[taken] - prices[0]).sum()),
            value=float(VALUES[taken].sum()),
            contacts=int(count),
            failed=0,
        )


def test_the_dual_phase_converges_to_the_capacity_price() -> None:
    state = OneCapacity(max_iterations=60)._dual_phase(resume=False)
    assert state.converged and state.iteration < 60
    # The dual minimum prices the 30th most valuable contact: 70 values lie below it.
    assert VALUES[69] - 1e-6 <= state.centre[0] <= VALUES[70] + 1e-6


def test_a_failed_master_lp_is_a_warned_fallback_not_convergence(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failed = SimpleNamespace(status=4, x=None, message="numerical difficulties")
    monkeypatch.setattr(bundle, "linprog", lambda *args, **kwargs: failed)
    with caplog.at_level(logging.WARNING, logger=bundle.__name__):
        state = OneCapacity(max_iterations=5)._dual_phase(resume=False)
    assert not state.converged
    assert state.iteration == 5  # ran to the cap instead of stopping at the first failure
    assert state.predicted == float("inf")
    np.testing.assert_array_equal(state.prices, state.centre)  # fell back to the centre
    assert "bundle master LP failed" in caplog.text
