"""Global capacities by Lagrangian price iterations, with exact repair and a certified gap.

Dual decomposition: each capacity constraint ``k`` has a price ``λ_k ≥ 0``. For given
prices every customer's schedule is solved exactly against ``value − Σ_k s_k λ_k a_k``;
the Lagrangian dual ``L(λ) = Σ_i max_x [v_i(x) − λ·a_i(x)] + Σ_k s_k λ_k b_k`` is an
upper bound on the best feasible plan's value (weak duality), whatever ``λ``.

Method (documented in docs/capacity.md):

1. **Dual phase** – projected subgradient: ``λ_k ← max(0, λ_k + η · ν · r_k)`` with
   ``r_k = s_k (usage_k − b_k) / scale_k`` the relative violation, ``ν`` the mean value
   of a contact (so prices move in value units) and ``η`` halved whenever the dual bound
   fails to improve for two iterations. Stops when the relative violation of every
   constraint and the gap estimate are below tolerance, or at the iteration cap.
2. **Price repair** – from the best dual prices, prices of violated max constraints are
   raised until none is violated (each customer's schedule stays exactly optimal for
   its prices, so every per-customer rule holds).
3. **Exact trim** – if a max constraint is still exceeded (ties of identical
   customers), the lowest-value contributing contacts are banned and their customers
   re-solved, until every max holds exactly.

Only per (month, cell) aggregates and a few sums reach the driver. Every iteration's
prices, usage, bounds, violations and dual bound are appended to the Delta table
``capacity_iterations``; a crashed run resumes from its last recorded iteration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window
from scipy.optimize import linprog

from contact_spark.capacity.constraints import Constraint, price_arrays
from contact_spark.capacity.settings import LagrangianSettings
from contact_spark.io.tables import LocalRows, TableStore
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import StaticInputs, solve_customers
from contact_spark.policy.compiler import CompiledPolicy

log = logging.getLogger(__name__)

ITERATIONS_TABLE = "capacity_iterations"
PRICE_CAP = 50.0  # highest price, in mean contact values per unit of a constraint's coefficient
SERIOUS_FRACTION = 0.1  # serious step when the dual falls by this share of the predicted decrease
NULL_SHRINK = 0.7  # box radius factor after a null step
MIN_RADIUS = 1e-6  # smallest box radius (in units)
DUAL_TOLERANCE_SHARE = 0.1  # stop when the predicted decrease < this × gap_tolerance × |dual|
PRIMAL_TARGET_CONTACTS = 0.5  # primal phase aims this many contacts under each binding max …
PRIMAL_TARGET_SHARE = 2e-4  # … plus this share of the bound
PRIMAL_KAPPA = 0.5  # initial price step per unit of log-usage ratio, in smoothing charges
PRIMAL_ROUNDS_FACTOR = 2  # primal rounds = this × repair_rounds
PRIMAL_KAPPA_GROWTH_CAP = 16.0  # a primal step size grows to at most this × its initial size
PRIMAL_REPAIRABLE_SHARE = 0.05  # rounds over each max by ≤ this share (or 3 targets) can be repaired
ITERATION_SCHEMA = (
    "run_id string, config_hash string, phase string, iteration int, constraint_name string, "
    "rule string, month date, sense string, bound double, price double, usage double, "
    "violation double, dual_bound double, primal_value double, step double, "
    "next_price double, best_price double, best_dual double, stall int, value_scale double, "
    "violation_signed double, scale double"
)


@dataclass
class Evaluation:
    """Aggregates of one solve of every customer at given prices."""

    solved: DataFrame | None  # None when only the aggregates were computed (``keep=False``)
    usage: np.ndarray
    counts: np.ndarray
    attr_sums: dict[str, np.ndarray]
    objective: float  # Σ_i optimal value against the prices
    value: float  # Σ value of the chosen contacts, prices excluded
    contacts: int
    failed: int


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


@dataclass
class CapacityResult:
    """The feasible plan's solve and its certificate."""

    solved: DataFrame
    constraints: list[Constraint]
    prices: np.ndarray  # shadow prices (best dual)
    usage: np.ndarray
    primal_value: float
    dual_bound: float
    iterations: int
    repair_rounds: int
    trimmed_contacts: int
    history: list[dict[str, object]] = field(default_factory=list)

    @property
    def gap(self) -> float:
        """Relative gap between the dual bound and the feasible plan's value."""
        if not math.isfinite(self.dual_bound):
            return math.nan
        return max(0.0, self.dual_bound - self.primal_value) / max(abs(self.dual_bound), 1e-9)

    def shortfalls(self) -> dict[str, float]:
        """Unmet minimum constraints and by how much."""
        out = {}
        for constraint, used in zip(self.constraints, self.usage, strict=True):
            if constraint.sense == "min" and used < constraint.bound - 1e-9:
                out[constraint.name] = constraint.bound - used
        return out

    def max_violations(self) -> dict[str, float]:
        out = {}
        for constraint, used in zip(self.constraints, self.usage, strict=True):
            if constraint.sense == "max" and used > constraint.bound + 1e-9:
                out[constraint.name] = used - constraint.bound
        return out


class CapacityEngine:
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

    # ------------------------------------------------------------------ solving
    def evaluate(
        self,
        prices: np.ndarray,
        frame: DataFrame | None = None,
        exact: bool = False,
        keep: bool = True,
    ) -> Evaluation:
        """Solve every customer at ``prices`` and aggregate usage per constraint.

        Unless ``exact``, contacts carry the small deterministic tie-breaking charge
        (``settings.smoothing`` × mean contact value) that spreads tied customers.
        With ``keep`` the per-customer solve is cached (a candidate plan); without it only
        the aggregates are computed (dual iterations, certificate): no copy of every
        customer's schedule is written to the cache.
        """
        global_price, attr_price = price_arrays(self.constraints, prices, self.shape)
        solve_args = dict(
            price=global_price,
            attr_price=attr_price,
            attributes=self.attributes,
            perturbation=0.0 if exact else self.perturbation,
        )
        if not keep:
            if frame is None:
                priced = self._summed(self._priced_frame, solve_args)
                return _combined(priced, self._fixed_evaluation(solve_args))
            return self._summed(frame, solve_args)
        base = frame if frame is not None else self.frame
        solved = solve_customers(base, self.policy, self.layout, self.static, **solve_args)  # type: ignore[arg-type]
        solved = solved.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(solved)
        return self._totals(self._aggregate_solved(solved), solved)

    def _summed(self, frame: DataFrame, solve_args: dict) -> Evaluation:
        """Usage totals of ``frame`` solved at the prices of ``solve_args``, no schedules kept."""
        # Each task sums its customers in the Python worker: only ≤ T × cells + 1 rows per
        # task come back to the driver, no per-customer schedule is exploded or shuffled.
        cells = solve_customers(
            frame,
            self.policy,
            self.layout,
            self.static,
            summarise=True,
            **solve_args,
        ).collect()
        return self._totals(cells, None)

    def _fixed_evaluation(self, solve_args: dict) -> Evaluation:
        """The price-independent customers' totals, solved on first use."""
        if self._fixed is None:
            zero = dict(solve_args, price=np.zeros(self.shape), attr_price={}, perturbation=0.0)
            self._fixed = self._summed(self._fixed_frame, zero)
        return self._fixed

    def _totals(self, cells: list, solved: DataFrame | None) -> Evaluation:
        """An evaluation from summary rows (``summary_schema``; rows of one cell add up)."""
        totals = {"objective": 0.0, "value": 0.0, "contacts": 0}
        failed = 0
        counts = np.zeros(self.shape)
        sums = {a: np.zeros(self.shape) for a in self.attributes}
        n_h = self.shape[2]
        for row in cells:  # rows of one (t, k) from several tasks add up
            if row["t"] == -1:
                totals["objective"] += row["obj"] or 0.0
                totals["value"] += row["val"] or 0.0
                failed += int(row["bad"] or 0)
                continue
            t, k = int(row["t"]), int(row["k"])
            counts[t, k // n_h, k % n_h] += row["n"]
            totals["contacts"] += int(row["n"])
            for a in self.attributes:
                sums[a][t, k // n_h, k % n_h] += row[f"s_{a}"] or 0.0
        usage = np.array([c.usage(counts, sums) for c in self.constraints])
        return Evaluation(
            solved=solved,
            usage=usage,
            counts=counts,
            attr_sums=sums,
            objective=float(totals["objective"] or 0.0),
            value=float(totals["value"] or 0.0),
            contacts=int(totals["contacts"] or 0),
            failed=int(failed),
        )

    def _aggregate_solved(self, solved: DataFrame) -> list:
        """Usage totals of a per-customer solve, in one Spark action (see ``summary_schema``)."""
        # One Spark action per evaluation: every customer contributes a summary entry
        # (t = k = -1: objective, value, failure) and one entry per chosen contact.
        ok = F.col("status") == 0
        attrs = [f"a_{a}" for a in self.attributes]
        summary = F.struct(
            F.lit(-1).alias("t"),
            F.lit(-1).alias("k"),
            F.when(ok, F.col("objective")).otherwise(F.lit(0.0)).alias("obj"),
            F.when(ok, F.aggregate("values", F.lit(0.0), lambda acc, v: acc + v))
            .otherwise(F.lit(0.0))
            .alias("val"),
            F.when(ok, F.lit(0)).otherwise(F.lit(1)).alias("bad"),
            *[F.lit(None).cast("double").alias(a) for a in attrs],
        )
        contacts = F.transform(
            F.arrays_zip("months", "cells", *attrs),
            lambda c: F.struct(
                c["months"].alias("t"),
                c["cells"].alias("k"),
                F.lit(0.0).alias("obj"),
                F.lit(0.0).alias("val"),
                F.lit(0).alias("bad"),
                *[c[a].alias(a) for a in attrs],
            ),
        )
        entries = F.when(ok, F.concat(F.array(summary), contacts)).otherwise(F.array(summary))
        return (
            solved.select(F.explode(entries).alias("c"))
            .groupBy(F.col("c.t").alias("t"), F.col("c.k").alias("k"))
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.sum("c.obj").alias("obj"),
                F.sum("c.val").alias("val"),
                F.sum("c.bad").alias("bad"),
                *[F.sum(F.col(f"c.{a}")).alias(f"s_{a[2:]}") for a in attrs],
            )
            .collect()  # at most T × cells + 1 rows
        )

    def _release(self, keep: DataFrame) -> None:
        for df in self._cached:
            if df is not keep:
                df.unpersist()
        self._cached = [keep]

    def dual_value(self, evaluation: Evaluation, prices: np.ndarray) -> float:
        constant = sum(c.sign * lam * c.bound for c, lam in zip(self.constraints, prices, strict=True))
        return evaluation.objective + constant

    def _scales(self, evaluation: Evaluation) -> np.ndarray:
        """Per-constraint scale turning a violation into a relative one (never 0)."""
        scales = []
        for c in self.constraints:
            months = max(1, int((c.weight != 0).any(axis=(1, 2)).sum()))
            magnitude = float((np.abs(c.weight) * evaluation.counts).sum()) / months
            if c.attr is not None:
                magnitude *= max(abs(c.offset), 1.0)
            scales.append(max(abs(c.bound), magnitude, 1.0))
        return np.array(scales)

    def _coefficient_scales(self, evaluation: Evaluation) -> np.ndarray:
        """Typical |a_k| of one contact, so that a price step moves a contact's charge by ~1 value unit."""
        out = []
        for c in self.constraints:
            contacts = float((np.abs(c.weight) * evaluation.counts).sum())
            if c.attr is None:
                out.append(
                    1.0
                    if contacts == 0
                    else max(float((np.abs(c.weight) * evaluation.counts).sum()) / contacts, 1e-9)
                )
                continue
            total = float(
                (np.abs(c.weight) * np.abs(evaluation.attr_sums[c.attr] - c.offset * evaluation.counts)).sum()
            )
            out.append(max(total / contacts, 1e-9) if contacts else 1.0)
        return np.array(out)

    def relative_violation(self, usage: np.ndarray, scales: np.ndarray) -> np.ndarray:
        signs = np.array([c.sign for c in self.constraints])
        bounds = np.array([c.bound for c in self.constraints])
        return signs * (usage - bounds) / scales

    # ----------------------------------------------------------------- recording
    def _record(
        self, phase: str, iteration: int, prices: np.ndarray, ev: Evaluation, **extra: object
    ) -> None:
        rows = []
        for j, c in enumerate(self.constraints):
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
                    float(max(0.0, c.sign * (ev.usage[j] - c.bound))),
                    _opt_float(extra.get("dual")),
                    float(ev.value),
                    _opt_float(_at(extra.get("step"), j)),
                    _opt_float(_at(extra.get("next_price"), j)),
                    _opt_float(_at(extra.get("best_price"), j)),
                    _opt_float(extra.get("best_dual")),
                    int(extra.get("stall", 0) or 0),  # type: ignore[call-overload]
                    _opt_float(extra.get("value_scale")),
                    _opt_float(_at(extra.get("violation_signed"), j)),
                    _opt_float(_at(extra.get("scale"), j)),
                )
            )
        log.info(
            "capacity %s iteration %d: dual=%s value=%.2f max_violation=%.4g",
            phase,
            iteration,
            extra.get("dual"),
            ev.value,
            max([r[11] for r in rows] or [0.0]),
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

    def subgradient(self, usage: np.ndarray) -> np.ndarray:
        """∂L/∂λ_k = s_k (b_k − usage_k)."""
        signs = np.array([c.sign for c in self.constraints])
        bounds = np.array([c.bound for c in self.constraints])
        return signs * (bounds - usage)

    def excess(self, usage: np.ndarray) -> np.ndarray:
        """Signed violation ``s_k (usage_k − b_k)``: > 0 means violated."""
        return -self.subgradient(usage)

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
        previous = (
            self.store.read(ITERATIONS_TABLE)
            .filter(
                (F.col("run_id") == self.run_id)
                & (F.col("config_hash") == self.config_hash)
                & (F.col("phase") == "dual")
            )
            .collect()  # iterations × constraints rows: the price history, never per customer
        )
        if not previous:
            return None
        names = [c.name for c in self.constraints]
        by_iteration: dict[int, dict[str, object]] = {}
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
            prices = np.array([rows[n]["price"] for n in names], dtype=np.float64)  # type: ignore[index]
            usage = np.array([rows[n]["usage"] for n in names], dtype=np.float64)  # type: ignore[index]
            if state is None:
                state = BundleState(
                    units=np.array([rows[n]["scale"] for n in names], dtype=np.float64),  # type: ignore[index]
                    value_scale=float(first["value_scale"]),  # type: ignore[index]
                    radius=self.settings.initial_step,
                )
            state.history.append((prices, usage))
            state.cuts.append((prices, float(first["dual_bound"]), self.subgradient(usage)))  # type: ignore[index]
            state.centre = np.array([rows[n]["best_price"] for n in names], dtype=np.float64)  # type: ignore[index]
            state.centre_value = float(first["best_dual"])  # type: ignore[index]
            state.prices = np.array([rows[n]["next_price"] for n in names], dtype=np.float64)  # type: ignore[index]
            state.radius = float(rows[names[0]]["step"]) / float(state.units[0])  # type: ignore[index]
            state.converged = bool(first["stall"])  # type: ignore[index]
            state.iteration = i + 1
        if state is not None:
            state.predicted = self._next_point(state)[1]
        return state

    # ---------------------------------------------------------------- dual phase
    def _price_cap(self, state: BundleState) -> np.ndarray:
        """Prices above ``PRICE_CAP`` mean contact values per unit of coefficient are pointless."""
        return PRICE_CAP * state.units

    def _next_point(self, state: BundleState) -> tuple[np.ndarray, float]:
        """Box-step bundle master: minimise the cutting-plane model of the (smoothed) dual in
        the box ``|λ − centre| ≤ radius·units``, ``0 ≤ λ ≤ cap``; returns the point and the
        decrease the model predicts from the centre's value."""
        n_k = len(self.constraints)
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
        if res.status != 0 or res.x is None:  # pragma: no cover - the box keeps it bounded
            return np.array(state.centre, copy=True), 0.0
        mu = np.clip(res.x[:n_k], lower, upper)
        predicted = max(0.0, state.centre_value - float(res.x[n_k]))
        return mu * units, predicted

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
            state.prices, state.predicted = self._next_point(state)
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

    @property
    def _bounds(self) -> np.ndarray:
        return np.array([c.bound for c in self.constraints], dtype=np.float64)

    # -------------------------------------------------------------- primal phase
    def _positive_usage(self, constraint: Constraint) -> bool:
        """Usage can never be negative (counts or sums of a non-negative built-in attribute)."""
        return (
            bool((constraint.weight >= 0).all())
            and constraint.offset == 0.0
            and constraint.attr
            in (
                None,
                "cost",
                "propensity",
            )
        )

    def _primal_phase(self, state: BundleState) -> Evaluation:
        """Tune the prices from the dual centre until every max capacity holds with little slack.

        The smoothed choices respond to a price like a logit model: a constraint's usage
        scales roughly by ``exp(−Δλ/κ)`` with ``κ`` of the order of the smoothing charge.
        Each price therefore moves by ``κ · log(usage_k / (b_k − target_k))`` (a
        Sinkhorn-like proportional update, exact for logit choices; a linear step for
        constraints whose usage can be negative).

        The constraints of one rule (e.g. a call centre's twelve months) are substitutes:
        raising one month's price moves its customers to the other months. Their step is
        split into a *level* (the rule's total usage against its total aim, one step size
        for the whole rule) and each constraint's *offset* from it (its own step size):
        the level brings the rule's total under its bounds, the offsets share it out
        between the months, and an oscillation of the one does not shrink the other's
        step. A step size halves when its direction flips and grows by half while it
        keeps it. Returns the best evaluation: the feasible one of highest value, else
        the least violated one (the repair finishes it).
        """
        n_k = len(self.constraints)
        units = state.units
        mu = np.array(state.centre / units, copy=True)
        coef = state.value_scale / units  # typical |a| of one contact
        target = PRIMAL_TARGET_CONTACTS * coef + PRIMAL_TARGET_SHARE * np.abs(self._bounds)
        kappa = np.full(n_k, max(self.settings.smoothing, 1e-3) * PRIMAL_KAPPA)
        kappa_cap = float(kappa[0]) * PRIMAL_KAPPA_GROWTH_CAP if n_k else 0.0
        positive = np.array([self._positive_usage(c) for c in self.constraints])
        is_max = np.array([c.sense == "max" for c in self.constraints])
        groups = self._substitute_groups(positive)
        level_kappa = {g: float(kappa[0]) for g in groups}
        level_previous = dict.fromkeys(groups, 0.0)
        best: Evaluation | None = None
        best_key: tuple[float, float] = (math.inf, -math.inf)
        feasible_value, feasible_prices = -math.inf, None
        repairable_excess = np.maximum(PRIMAL_REPAIRABLE_SHARE * np.abs(self._bounds), 3 * target)
        previous = np.zeros(n_k)
        # First candidate: the exact (unsmoothed) plan at the centre – optimal outright when
        # it fits, e.g. when no capacity binds.
        # Summed first: only when it fits is it solved again with its schedules.
        exact = self.evaluate(mu * units, exact=True, keep=False)
        if not (self.excess(exact.usage)[is_max] > 1e-9).any():
            exact = self.evaluate(mu * units, exact=True)
            self._release(exact.solved)
            self._record("primal", -1, mu * units, exact, dual=None, scale=units)
            self._best_prices, self._best_exact = mu * units, True
            return exact
        self._best_exact = False
        for round_ in range(PRIMAL_ROUNDS_FACTOR * self.settings.repair_rounds):
            lam = mu * units
            # Rounds are summed in the workers; only the kept round is solved again with
            # its schedules at the end (same prices, same deterministic charges: same plan).
            ev = self.evaluate(lam, keep=False)
            excess = self.excess(ev.usage)
            over_k = np.where(is_max, np.maximum(excess, 0.0), 0.0)
            over = float((over_k[is_max] / coef[is_max]).sum())
            # The repair drops about the excess, each unit worth about its price: rounds close
            # to feasible compete on their value net of that (a feasible round with much
            # slack can be worth far less); rounds far over on how little they exceed.
            if (over_k <= repairable_excess).all():
                # Priced at least at the dual centre: a round that under-prices a capacity
                # would otherwise look cheap to repair.
                loss = float((over_k * np.maximum(lam, state.centre)).sum())
                key = (0.0, -(ev.value - loss))
            else:
                key = (1.0 + over, -ev.value)
            if key < best_key:
                best, best_key = ev, key
                self._best_prices = lam
            if over == 0 and ev.value > feasible_value:
                feasible_value, feasible_prices = ev.value, lam
            self._record("primal", round_, lam, ev, dual=None, step=kappa * units, scale=units)
            slack_cost = float((np.maximum(-excess, 0.0) * lam).sum())
            if over == 0 and slack_cost <= self.settings.gap_tolerance * 0.1 * max(ev.value, 1e-9):
                break
            # Outside the band [b − 3·target, b] (or at price 0 and satisfied) a price moves.
            moving = (excess > 0) | ((excess < -3 * target) & (mu > 0))
            aim = np.where(is_max, self._bounds - target, self._bounds + target)
            step = np.zeros(n_k)
            for k in np.flatnonzero(moving):
                step[k] = self._price_step(k, ev.usage[k], aim[k], excess[k], target[k], coef[k], positive[k])
            move = kappa * step
            direction = step.copy()
            for g, members in groups.items():
                active = [k for k in members if mu[k] > 0 or excess[k] > 0]
                if len(active) < 2:
                    continue
                total = float(ev.usage[active].sum())
                total_aim = float(aim[active].sum())
                if (
                    abs(total - total_aim) <= 3 * float(target[active].sum())
                    and not (excess[active] > 0).any()
                ):
                    level = 0.0
                else:  # the rule's total against its total aim, as one constraint's step
                    level = self._price_step(active[0], total, total_aim, 0.0, 0.0, coef[active[0]], True)
                level_kappa[g] = _adapt(level_kappa[g], level, level_previous[g], kappa_cap)
                level_previous[g] = level
                for k in active:
                    direction[k] = step[k] - level
                    move[k] = level_kappa[g] * level + kappa[k] * direction[k]
            if not move.any():
                break  # every constraint within its band: nothing left to tune
            mu = np.clip(mu + move, 0.0, PRICE_CAP)
            kappa = np.array([_adapt(kappa[k], direction[k], previous[k], kappa_cap) for k in range(n_k)])
            previous = direction
        assert best is not None
        self._feasible_round = None
        if feasible_prices is not None and feasible_prices is not self._best_prices:
            self._feasible_round = (feasible_value, feasible_prices)
        kept = self.evaluate(self._best_prices)
        self._release(kept.solved)
        if not np.allclose(kept.usage, best.usage, rtol=1e-9, atol=1e-9):  # pragma: no cover - a kernel bug
            raise RuntimeError(
                "re-solving the kept primal round gave another plan: the solve is not deterministic"
            )
        return kept

    def _price_step(
        self, k: int, used: float, aim: float, excess: float, target: float, coef: float, positive: bool
    ) -> float:
        """Signed step of constraint ``k``'s price towards its aim (> 0 raises it)."""
        c = self.constraints[k]
        if positive:
            ratio = (used + coef) / max(aim + coef, 1e-12)
            return math.log(max(ratio, 1e-12)) * (1.0 if c.sense == "max" else -1.0)
        return (excess + target) / max(abs(c.bound), coef * 10, 1e-12)

    def _substitute_groups(self, positive: np.ndarray) -> dict[tuple[str, str], list[int]]:
        """Constraints of one rule and sense with non-negative usage: moved as a level plus offsets."""
        groups: dict[tuple[str, str], list[int]] = {}
        for k, c in enumerate(self.constraints):
            if positive[k]:
                groups.setdefault((c.rule, c.sense), []).append(k)
        return {g: members for g, members in groups.items() if len(members) > 1}

    # ---------------------------------------------------------------- main loop
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
        # The certificate: the exact (unsmoothed) dual, a valid upper bound on every plan
        # meeting the max capacities and the minimums the plan meets, whatever the prices.
        # Two points are tried: the dual centre and the primal phase's prices (where the
        # smoothed demand meets the capacities, often the tighter one); the lower wins.
        unmet = set(result.shortfalls())
        candidates = [centre]
        if not np.allclose(self._best_prices, centre):
            candidates.append(np.asarray(self._best_prices, dtype=np.float64))
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
        self._record("primal", -2, prices, ev, dual=None)
        return replace(
            repaired,
            solved=ev.solved,
            usage=ev.usage,
            primal_value=ev.value,
            repair_rounds=0,
            trimmed_contacts=0,
        )

    def _feasible(self, usage: np.ndarray) -> bool:
        for c, used in zip(self.constraints, usage, strict=True):
            if c.sense == "max" and used > c.bound + 1e-9:
                return False
            if c.sense == "min" and used < c.bound - 1e-9:
                return False
        return True

    # ------------------------------------------------------------------- repair
    def _max_excess(self, usage: np.ndarray) -> np.ndarray:
        return np.array(
            [
                max(0.0, u - c.bound) if c.sense == "max" else 0.0
                for c, u in zip(self.constraints, usage, strict=True)
            ]
        )

    def _repair(
        self, ev: Evaluation, prices: np.ndarray, shadow: np.ndarray, iterations: int
    ) -> CapacityResult:
        """Make every max capacity hold exactly: ban the lowest-value contributors of each
        exceeded max and re-solve their customers (first letting them move, then only drop)."""
        trimmed = 0
        frame = self.frame
        rounds = 0
        for rounds in range(1, self.settings.repair_rounds + 1):
            excess = self._max_excess(ev.usage)
            self._record("repair", rounds, prices, ev, dual=None)
            if not (excess > 1e-9).any():
                break
            # First rounds: banned contacts may move to another month or channel (filling
            # spare capacity); later rounds only drop contacts, so usage can only fall.
            moving = rounds <= self.settings.repair_rounds // 3
            bans = self._bans(ev.solved, excess, aggressive=rounds > (2 * self.settings.repair_rounds) // 3)
            trimmed += bans.count()  # the bans are checkpointed: counted once, used below
            frame = self._with_bans(frame, ev.solved, bans, moving=moving, full=self._full_slots(ev.usage))
            # Moving rounds re-solve at the prices; dropping rounds fix every customer to a
            # subset of its contacts and keep the most valuable legal subset (no prices).
            ev = self.evaluate(prices if moving else np.zeros_like(prices), frame, exact=not moving)
            self._release(ev.solved)
        excess = self._max_excess(ev.usage)
        if (excess > 1e-9).any():
            raise RuntimeError(
                "capacity repair could not meet every max capacity: "
                + ", ".join(
                    f"{c.name} over by {e:g}" for c, e in zip(self.constraints, excess, strict=True) if e > 0
                )
            )
        return CapacityResult(
            solved=ev.solved,
            constraints=self.constraints,
            prices=shadow,
            usage=ev.usage,
            primal_value=ev.value,
            dual_bound=math.inf,
            iterations=iterations,
            repair_rounds=rounds,
            trimmed_contacts=trimmed,
        )

    def _bans(self, solved: DataFrame, excess: np.ndarray, aggressive: bool) -> DataFrame:
        """Contacts to forbid: per violated max constraint, its lowest-value contributors
        until the excess is covered (all contributors when ``aggressive``).

        One pass for every violated constraint: each contact is exploded once into a row per
        violated constraint it counts towards (``group`` = the constraint's position), and the
        choice runs grouped by constraint, so the number of Spark jobs does not grow with the
        number of violated constraints (twelve months of a call centre, say).
        """
        n_h = self.shape[2]
        n_cells = self.shape[1] * n_h
        violated = [j for j in range(len(self.constraints)) if excess[j] > 1e-9]
        zipped = F.arrays_zip("months", "cells", "values", *[f"a_{a}" for a in self.attributes])
        contacts = solved.filter(F.col("status") == 0).select("customer_id", F.explode(zipped).alias("c"))
        flat = F.col("c.months") * n_cells + F.col("c.cells")
        coefficients = []
        for group, j in enumerate(violated):
            constraint = self.constraints[j]
            weight = F.element_at(
                F.array(*[F.lit(float(w)) for w in constraint.weight.reshape(-1)]), flat + 1
            )
            coef = (
                weight
                if constraint.attr is None
                else weight * (F.col(f"c.a_{constraint.attr}") - constraint.offset)
            )
            coefficients.append(F.struct(F.lit(group).alias("group"), coef.alias("coef")))
        contributors = (
            contacts.select(
                "customer_id",
                flat.alias("flat"),
                F.col("c.values").alias("value"),
                F.explode(F.array(*coefficients)).alias("k"),
            )
            .select(
                "customer_id", "flat", "value", F.col("k.group").alias("group"), F.col("k.coef").alias("coef")
            )
            .filter(F.col("coef") > 0)
        )
        if not aggressive:
            contributors = _lowest_covering_each(contributors, [float(excess[j]) for j in violated])
        return contributors.select("customer_id", "flat").distinct().localCheckpoint()

    def _full_slots(self, usage: np.ndarray) -> list[int]:
        """Flat ``t * cells + cell`` slots that count towards a max constraint already at or
        over its bound: a moved contact must not land there."""
        n_cells = self.shape[1] * self.shape[2]
        slots: set[int] = set()
        for c, used in zip(self.constraints, usage, strict=True):
            if c.sense != "max" or used < c.bound - 1e-9:
                continue
            weight = c.weight.reshape(self.shape[0], n_cells)
            if c.attr is not None and c.offset != 0.0:
                weight = np.abs(weight)  # the sign depends on the customer's attribute
            for t, k in zip(*np.nonzero(weight > 0), strict=True):
                slots.add(int(t) * n_cells + int(k))
        return sorted(slots)

    def _with_bans(
        self,
        frame: DataFrame,
        solved: DataFrame,
        bans: DataFrame,
        moving: bool,
        full: list[int] | None = None,
    ) -> DataFrame:
        """Forbid the banned contacts and re-solve their customers.

        With ``moving`` the customer may choose any other allowed contact; otherwise it is
        restricted to its current contacts minus the banned ones, so no constraint's usage
        can grow. Either way every per-customer rule still holds.
        """
        n_cells = self.shape[1] * self.shape[2]
        if moving:
            new = bans.groupBy("customer_id").agg(F.collect_set("flat").alias("_new"))
            if full:
                # A moved contact may only go where capacity is left: the customer's slots in
                # full constraints are banned too, except those it keeps.
                current = solved.select(
                    "customer_id",
                    F.transform(
                        F.arrays_zip("months", "cells"), lambda c: c["months"] * n_cells + c["cells"]
                    ).alias("_current"),
                )
                new = new.join(current, "customer_id", "left").select(
                    "customer_id",
                    F.array_union(
                        "_new",
                        F.array_except(
                            F.array(*[F.lit(x) for x in full]),
                            F.coalesce("_current", F.array().cast("array<int>")),
                        ),
                    ).alias("_new"),
                )
            if "banned" not in frame.columns:
                frame = frame.withColumn("banned", F.array().cast("array<int>"))
            merged = (
                frame.join(new, "customer_id", "left")
                .withColumn(
                    "banned",
                    F.array_sort(
                        F.array_distinct(F.concat("banned", F.coalesce("_new", F.array().cast("array<int>"))))
                    ),
                )
                .drop("_new")
            )
            return merged.localCheckpoint()
        current = solved.select(
            "customer_id",
            F.transform(F.arrays_zip("months", "cells"), lambda c: c["months"] * n_cells + c["cells"]).alias(
                "_current"
            ),
        )
        new = bans.groupBy("customer_id").agg(F.collect_set("flat").alias("_banned"))
        # Every customer is restricted to its current contacts (minus the banned ones).
        restricted = current.join(new, "customer_id", "left").select(
            "customer_id",
            F.array_sort(F.array_except("_current", F.coalesce("_banned", F.array().cast("array<int>"))))
            .cast("array<int>")
            .alias("_allowed"),
        )
        if "allowed" not in frame.columns:
            frame = frame.withColumn("allowed", F.lit(None).cast("array<int>"))
        merged = (
            frame.join(restricted, "customer_id", "left")
            .withColumn("allowed", F.coalesce("_allowed", "allowed"))
            .drop("_allowed")
        )
        return merged.localCheckpoint()


BAN_BUCKETS = 64  # value quantiles: only the bucket where the excess is covered is sorted


def _lowest_covering_each(contributors: DataFrame, excesses: list[float]) -> DataFrame:
    """Per ``group`` (an index into ``excesses``), the lowest-value contributors whose
    coefficients first cover that group's excess (ties by a hash of customer and slot).

    A global sort of every contributor would run in one partition; instead each group's
    values are cut at approximate quantiles, the buckets wholly below the crossing one are
    taken as a whole, and only the crossing bucket is ordered. Three Spark jobs whatever the
    number of groups; two small aggregates (≤ 64 rows per group) reach the driver.
    """
    quantiles = [q / BAN_BUCKETS for q in range(1, BAN_BUCKETS)]
    cuts_by_group = {
        int(r["group"]): sorted(set(float(c) for c in r["q"] or []))
        for r in contributors.groupBy("group")
        .agg(F.percentile_approx("value", quantiles, 10_000).alias("q"))
        .collect()  # one row per group
    }
    groups = range(len(excesses))
    cuts = F.element_at(
        F.array(
            *[F.array(*[F.lit(c) for c in cuts_by_group.get(g, [])]).cast("array<double>") for g in groups]
        ),
        F.col("group") + 1,
    )
    tagged = contributors.withColumn("_bucket", F.size(F.filter(cuts, lambda c: F.col("value") > c)))
    sums: dict[int, list[tuple[int, float]]] = {}
    for r in tagged.groupBy("group", "_bucket").agg(F.sum("coef").alias("s")).collect():
        sums.setdefault(int(r["group"]), []).append((int(r["_bucket"]), float(r["s"])))
    crossing, covered = [], []
    for g in groups:
        done, edge = 0.0, BAN_BUCKETS + 1  # no crossing bucket: every contributor is taken
        for bucket, total in sorted(sums.get(g, [])):
            if done + total >= excesses[g]:
                edge = bucket
                break
            done += total
        crossing.append(edge)
        covered.append(done)

    def per_group(values: list) -> F.Column:
        return F.element_at(F.array(*[F.lit(v) for v in values]), F.col("group") + 1)

    order = Window.partitionBy("group").orderBy(F.col("value").asc(), F.xxhash64("customer_id", "flat"))
    edge_rows = (
        tagged.filter(F.col("_bucket") == per_group(crossing))
        .withColumn("_before", per_group(covered) + F.sum("coef").over(order) - F.col("coef"))
        .filter(F.col("_before") < per_group([float(e) for e in excesses]))
        .drop("_before")
    )
    below = tagged.filter(F.col("_bucket") < per_group(crossing))
    return below.unionByName(edge_rows).drop("_bucket")


def _adapt(size: float, direction: float, previous: float, cap: float) -> float:
    """A step size: halved when the direction flips; grown by half while it keeps its sign
    without at least halving (a slow approach), at most to ``cap``; kept while the
    distance shrinks fast, so a converging price is not thrown past its aim."""
    if direction == 0 or previous == 0:
        return size
    if np.sign(direction) != np.sign(previous):
        return size * 0.5
    if abs(direction) > 0.5 * abs(previous):
        return min(size * 1.5, cap)
    return size


def _opt_float(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _at(values: object, index: int) -> object:
    if values is None:
        return None
    if np.isscalar(values):
        return values
    return values[index]  # type: ignore[index]


def _split_by_charged_slots(frame: DataFrame, charged: np.ndarray) -> tuple[DataFrame, DataFrame]:
    """(customers eligible for no charged cell, the others) of a customer frame.

    A cell charged in any month counts; month-dependent eligibility only narrows
    ``eligible``, so a customer on the fixed side can never reach a charged slot.
    """
    cells = charged.reshape(charged.shape[0], -1).any(axis=0)
    charged_cells = F.array(*[F.lit(bool(c)) for c in cells])
    priced = F.exists(
        F.sequence(F.lit(1), F.size("eligible")),
        lambda k: F.element_at("eligible", k) & F.element_at(charged_cells, k),
    )
    return frame.filter(~priced), frame.filter(priced)


def _combined(a: Evaluation, b: Evaluation) -> Evaluation:
    """Totals of two disjoint sets of customers solved at the same prices."""
    return Evaluation(
        solved=None,
        usage=a.usage + b.usage,
        counts=a.counts + b.counts,
        attr_sums={k: a.attr_sums[k] + b.attr_sums[k] for k in a.attr_sums},
        objective=a.objective + b.objective,
        value=a.value + b.value,
        contacts=a.contacts + b.contacts,
        failed=a.failed + b.failed,
    )
