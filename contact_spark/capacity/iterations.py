"""The Delta record of the price iterations, and the resume of a crashed dual phase.

Every iteration's prices, usage, bounds, violations and dual bound are rows of
``capacity_iterations`` (partitioned by ``run_id``). Dual iterations are written as they
happen, so a run that stops can rebuild its ``BundleState`` from them and go on; the
rows of the later phases are written together when the run ends.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pyspark.sql import Row
from pyspark.sql import functions as F

from contact_spark.capacity.bundle import BundleState, next_point
from contact_spark.capacity.evaluation import Evaluation, Evaluator
from contact_spark.io.catalog import ITERATIONS_TABLE
from contact_spark.io.tables import LocalRows, TableStore

log = logging.getLogger(__name__)

ITERATION_SCHEMA = (
    "run_id string, config_hash string, phase string, iteration int, constraint_name string, "
    "rule string, month date, sense string, bound double, price double, usage double, "
    "violation double, dual_bound double, primal_value double, step double, "
    "next_price double, best_price double, best_dual double, stall int, value_scale double, "
    "violation_signed double, scale double"
)


class IterationLog(Evaluator):
    """Recording and resuming; ``_pending`` holds the rows not written yet."""

    store: TableStore | None
    run_id: str
    config_hash: str
    _pending: list[tuple[object, ...]]

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
        """One row per constraint; what a phase does not know stays null (``None``)."""
        rows: list[tuple[object, ...]] = []
        violations: list[float] = []
        for j, c in enumerate(self.constraints):
            violation = float(max(0.0, c.sign * (ev.usage[j] - c.bound)))
            violations.append(violation)
            rows.append(
                (
                    self.run_id,
                    self.config_hash,
                    phase,
                    iteration,
                    c.name,
                    c.rule,
                    c.month,
                    c.sense,
                    float(c.bound),
                    float(prices[j]),
                    float(ev.usage[j]),
                    violation,
                    _opt_float(dual),
                    float(ev.value),
                    _opt_float(_at(step, j)),
                    _opt_float(_at(next_price, j)),
                    _opt_float(_at(best_price, j)),
                    _opt_float(best_dual),
                    int(stall),
                    _opt_float(value_scale),
                    _opt_float(_at(violation_signed, j)),
                    _opt_float(_at(scale, j)),
                )
            )
        log.info(
            "capacity %s iteration %d: dual=%s value=%.2f max_violation=%.4g",
            phase,
            iteration,
            dual,
            ev.value,
            max(violations or [0.0]),
        )
        if self.store is None or not rows:
            return
        self._pending += rows
        # Dual iterations are written at once (a crashed run resumes from them); the later
        # phases' rows are written together when the run ends (one Delta commit, not dozens).
        if phase == "dual":
            self._flush_records()

    def _flush_records(self) -> None:
        rows, self._pending = self._pending, []
        if self.store is None or not rows:
            return
        df = LocalRows.of(rows, ITERATION_SCHEMA)
        # No application transaction id: a resume reads which iterations are recorded, and a
        # rerun first removes the rows it recomputes (an app id would skip those appends).
        if self.store.exists(ITERATIONS_TABLE):
            self.store.append(df, ITERATIONS_TABLE)
        else:  # created partitioned by run_id, so that a run's rows can be replaced
            self.store.replace_run(df, ITERATIONS_TABLE, self.run_id)

    def reset_run(self) -> None:
        """Forget this run's recorded iterations (a fresh start, not a resume)."""
        if self.store is not None and self.store.exists(ITERATIONS_TABLE):
            empty = LocalRows.of([], ITERATION_SCHEMA)
            self.store.replace_run(empty, ITERATIONS_TABLE, self.run_id)

    def _reset_phases_after_dual(self) -> None:
        """Drop this run's rows of the phases after the dual one (they are recomputed)."""
        if self.store is None or not self.store.exists(ITERATIONS_TABLE):
            return
        rows = self.store.read_run(ITERATIONS_TABLE, self.run_id)
        later = rows.filter((F.col("phase") != "dual") | (F.col("config_hash") != self.config_hash))
        if later.limit(1).count() == 0:
            return
        keep = rows.filter((F.col("phase") == "dual") & (F.col("config_hash") == self.config_hash)).collect()
        self.store.replace_run(
            LocalRows.of([tuple(r) for r in keep], ITERATION_SCHEMA), ITERATIONS_TABLE, self.run_id
        )

    def _recorded_state(self) -> BundleState | None:
        """State after this run's last recorded dual iteration, to resume from."""
        if self.store is None or not self.store.exists(ITERATIONS_TABLE):
            return None
        recorded = (
            self.store.read_run(ITERATIONS_TABLE, self.run_id)
            .filter(F.col("phase") == "dual")
            .collect()  # iterations × constraints rows: the price history, never per customer
        )
        previous = [row for row in recorded if row["config_hash"] == self.config_hash]
        if len(previous) < len(recorded):
            # config_hash holds the run's fingerprint: its config and its pinned input versions.
            log.warning(
                "capacity: run %s has price iterations recorded with other inputs or another "
                "config; they are not resumed: starting afresh",
                self.run_id,
            )
            return None
        if not previous:
            return None
        names = [c.name for c in self.constraints]
        by_iteration: dict[int, dict[str, Row]] = {}
        for row in previous:
            by_iteration.setdefault(int(row["iteration"]), {})[row["constraint_name"]] = row
        iterations = sorted(by_iteration)
        if iterations != list(range(len(iterations))) or any(
            set(by_iteration[i]) != set(names) for i in iterations
        ):
            return None  # a different constraint set or a hole: start afresh
        state: BundleState | None = None
        for i in iterations:
            rows = by_iteration[i]
            first = rows[names[0]]
            prices = np.array([rows[n]["price"] for n in names], dtype=np.float64)
            usage = np.array([rows[n]["usage"] for n in names], dtype=np.float64)
            if state is None:
                state = BundleState(
                    units=np.array([rows[n]["scale"] for n in names], dtype=np.float64),
                    value_scale=float(first["value_scale"]),
                    radius=self.settings.initial_step,
                )
            state.history.append((prices, usage))
            state.cuts.append((prices, float(first["dual_bound"]), self.subgradient(usage)))
            state.centre = np.array([rows[n]["best_price"] for n in names], dtype=np.float64)
            state.centre_value = float(first["best_dual"])
            state.prices = np.array([rows[n]["next_price"] for n in names], dtype=np.float64)
            state.radius = float(rows[names[0]]["step"]) / float(state.units[0])
            state.converged = bool(first["stall"])
            state.iteration = i + 1
        if state is not None:
            state.predicted = next_point(state, len(self.constraints))[1]
        return state


def _opt_float(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _at(values: float | np.ndarray | None, index: int) -> float | None:
    """Entry ``index`` of a per-constraint array; a scalar (or None) stands for every entry."""
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return float(values[index])
    return values
