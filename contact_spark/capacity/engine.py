"""Global capacities by Lagrangian prices: bundle dual, primal price tuning, exact repair.

Dual decomposition: each capacity constraint ``k`` has a price ``λ_k ≥ 0``. For given
prices every customer's schedule is solved exactly against ``value − Σ_k s_k λ_k a_k``;
the Lagrangian dual ``L(λ) = Σ_i max_x [v_i(x) − λ·a_i(x)] + Σ_k s_k λ_k b_k`` is an
upper bound on the best feasible plan's value (weak duality), whatever ``λ``.

``CapacityEngine.run`` (method in docs/capacity.md):

1. **Dual phase** (``dual.py``) – a proximal box-step bundle method on the dual smoothed
   by small deterministic per-contact charges: cuts of ``L``, an LP master in a box
   around the stability centre, serious and null steps; stops when the predicted
   decrease is below tolerance or at the iteration cap.
2. **Primal phase** (``primal.py``) – from the dual centre, prices are tuned by
   proportional (log-usage) steps until every max capacity holds with little slack; the
   best round is kept (a feasible round of higher value may replace the repaired plan).
3. **Repair** (``repair.py``) – the lowest-value contributors of each still-exceeded max
   are banned and their customers re-solved (first allowed to move, then only to drop),
   until every max holds exactly.
4. **Master** (``master.py``) – a MILP over the schedules the prices produced picks the
   best mix for the customers near a tie.
5. **Fill** (``fill.py``) – every customer's plan takes the contacts that still fit the
   room left in every capacity and its own rules, the most valuable first, so that no
   single contact can be added with gain.
6. **Certificate** – the exact (unsmoothed) dual at the dual centre, the primal prices
   and the master LP's prices; the lowest is the reported bound, so the gap is certified.

Only per (month, cell) aggregates and a few sums reach the driver (``evaluation.py``).
Every iteration is appended to the Delta table ``capacity_iterations``
(``iterations.py``); a crashed run resumes from its last recorded dual iteration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from contact_spark.capacity.constraints import Constraint
from contact_spark.capacity.evaluation import Evaluation, _split_by_charged_slots
from contact_spark.capacity.fill import Fill
from contact_spark.capacity.result import CapacityResult
from contact_spark.config.capacity import LagrangianSettings
from contact_spark.io.tables import TableStore
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import StaticInputs
from contact_spark.policy.compiler import CompiledPolicy

log = logging.getLogger(__name__)


class CapacityEngine(Fill):
    """Runs the price iterations over a cached customer frame."""

    def __init__(
        self,
        spark: SparkSession,
        frame: DataFrame,
        policy: CompiledPolicy,
        layout: Layout,
        static: StaticInputs,
        constraints: list[Constraint],
        settings: LagrangianSettings,
        attributes: list[str],
        store: TableStore | None = None,
        run_id: str = "run",
        config_hash: str = "",
        initial_prices: np.ndarray | None = None,
    ) -> None:
        self.spark = spark
        self.frame = frame
        self.policy = policy
        self.layout = layout
        self.static = static
        self.constraints = constraints
        self.settings = settings
        self.attributes = attributes
        self.store = store
        self.run_id = run_id
        self.config_hash = config_hash
        self.shape = (layout.horizon, len(layout.campaigns), len(layout.channels))
        self._cached: list[DataFrame] = []
        self.perturbation: float | np.ndarray = 0.0
        # The tie-breaking charge goes only on slots some constraint counts: elsewhere it
        # would only cost value (a cheap e-mail dropped for a charge it need not pay).
        self._charged = np.zeros(self.shape)
        for c in constraints:
            self._charged = np.maximum(self._charged, (np.abs(c.weight) > 0).astype(np.float64))
        # Customers with no eligible slot that a constraint counts plan the same at any price:
        # summed once, then only the others are solved in each price iteration.
        self._fixed: Evaluation | None = None
        self._fixed_frame, self._priced_frame = _split_by_charged_slots(frame, self._charged)
        self._best_prices = np.zeros(len(constraints))
        self._feasible_round: tuple[float, np.ndarray] | None = None  # (value, prices)
        self._best_exact = False
        self._pending: list[tuple] = []  # iteration rows not written yet
        # Warm start (e.g. last run's shadow prices in a re-plan): the dual phase's first point.
        self.initial_prices = (
            np.zeros(len(constraints))
            if initial_prices is None
            else np.maximum(np.asarray(initial_prices, dtype=np.float64), 0.0)
        )
        if self.initial_prices.shape != (len(constraints),):
            raise ValueError(
                f"initial_prices has {self.initial_prices.shape[0]} entries for {len(constraints)} constraints"
            )

    def run(self, resume: bool = True) -> CapacityResult:
        """Dual phase (bundle), primal phase (price tuning), exact trim; returns the feasible
        plan with the certified dual bound (the lower of the exact duals at the dual centre
        and at the primal prices)."""
        n_k = len(self.constraints)
        if n_k == 0:
            ev = self.evaluate(np.zeros(0), exact=True)
            self._release(ev.solved)
            return CapacityResult(ev.solved, [], np.zeros(0), np.zeros(0), ev.value, ev.objective, 1, 0, 0)
        state = self._dual_phase(resume)
        self._reset_phases_after_dual()
        centre = np.asarray(state.centre, dtype=np.float64)
        candidate = self._primal_phase(state)
        result = self._repair(candidate, self._best_prices, centre, state.iteration)
        result = self._better_feasible_round(result)
        result = self._master_step(result, centre)
        result = self._fill_step(result)
        # The certificate: the exact (unsmoothed) dual, a valid upper bound on every plan
        # meeting the max capacities and the minimums the plan meets, whatever the prices.
        # Three points are tried: the dual centre, the primal phase's prices (where the
        # smoothed demand meets the capacities) and the master LP's last prices (near the
        # dual's optimum when column generation has converged); the lowest wins.
        unmet = set(result.shortfalls())
        candidates = [centre]
        for extra in (self._best_prices, self.master_prices):
            if extra is not None and not any(np.allclose(extra, c) for c in candidates):
                candidates.append(np.asarray(extra, dtype=np.float64))
        best_bound, best_lam = math.inf, centre
        for i, prices in enumerate(candidates):
            lam = np.array(
                [0.0 if c.name in unmet else p for c, p in zip(self.constraints, prices, strict=True)]
            )
            exact = self.evaluate(lam, exact=True, keep=False)
            bound = self.dual_value(exact, lam)
            self._record("certificate", i, lam, exact, dual=bound)
            if bound < best_bound:
                best_bound, best_lam = bound, lam
        self._flush_records()
        self._release(result.solved)
        result.dual_bound = best_bound
        result.prices = best_lam
        return result

    def _better_feasible_round(self, repaired: CapacityResult) -> CapacityResult:
        """A feasible primal round worth more than the repaired candidate replaces it."""
        if self._feasible_round is None or self._feasible_round[0] <= repaired.primal_value + 1e-9:
            return repaired
        _, prices = self._feasible_round
        ev = self.evaluate(prices)
        self._release(ev.solved)
        if not self._feasible(ev.usage):  # pragma: no cover - the same deterministic solve
            raise RuntimeError("re-solving a feasible primal round gave an infeasible plan")
        log.info(
            "capacity: a feasible primal round (value %.2f) beats the repaired one (%.2f)",
            ev.value,
            repaired.primal_value,
        )
        self._best_prices = prices
        self._plan_source = (self.frame, np.asarray(prices, dtype=np.float64), False)
        self._record("primal", -2, prices, ev, dual=None)
        return replace(
            repaired,
            solved=ev.solved,
            usage=ev.usage,
            primal_value=ev.value,
            repair_rounds=0,
            trimmed_contacts=0,
        )
