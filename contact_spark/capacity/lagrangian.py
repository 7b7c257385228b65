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
from dataclasses import dataclass, field

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from contact_spark.capacity.constraints import Constraint, price_arrays
from contact_spark.capacity.settings import LagrangianSettings
from contact_spark.io.tables import TableStore
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import StaticInputs, solve_customers
from contact_spark.policy.compiler import CompiledPolicy

log = logging.getLogger(__name__)

ITERATIONS_TABLE = "capacity_iterations"
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

    solved: DataFrame
    usage: np.ndarray
    counts: np.ndarray
    attr_sums: dict[str, np.ndarray]
    objective: float  # Σ_i optimal value against the prices
    value: float  # Σ value of the chosen contacts, prices excluded
    contacts: int
    failed: int


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
        self.perturbation = 0.0

    # ------------------------------------------------------------------ solving
    def evaluate(self, prices: np.ndarray, frame: DataFrame | None = None, exact: bool = False) -> Evaluation:
        """Solve every customer at ``prices`` and aggregate usage per constraint.

        Unless ``exact``, contacts carry the small deterministic tie-breaking charge
        (``settings.smoothing`` × mean contact value) that spreads tied customers.
        """
        global_price, attr_price = price_arrays(self.constraints, prices, self.shape)
        solved = solve_customers(
            frame if frame is not None else self.frame,
            self.policy,
            self.layout,
            self.static,
            price=global_price,
            attr_price=attr_price,
            attributes=self.attributes,
            perturbation=0.0 if exact else self.perturbation,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(solved)
        ok = solved.filter(F.col("status") == 0)
        totals = ok.agg(
            F.sum("objective").alias("objective"),
            F.sum(F.aggregate("values", F.lit(0.0), lambda acc, v: acc + v)).alias("value"),
            F.sum(F.size("months")).alias("contacts"),
        ).first()
        failed = solved.filter(F.col("status") != 0).count()
        zipped = F.arrays_zip("months", "cells", *[f"a_{a}" for a in self.attributes])
        cells = (
            ok.select(F.explode(zipped).alias("c"))
            .groupBy(F.col("c.months").alias("t"), F.col("c.cells").alias("k"))
            .agg(
                F.count(F.lit(1)).alias("n"),
                *[F.sum(F.col(f"c.a_{a}")).alias(f"s_{a}") for a in self.attributes],
            )
            .collect()  # at most T × cells rows
        )
        counts = np.zeros(self.shape)
        sums = {a: np.zeros(self.shape) for a in self.attributes}
        n_h = self.shape[2]
        for row in cells:
            t, k = int(row["t"]), int(row["k"])
            counts[t, k // n_h, k % n_h] = row["n"]
            for a in self.attributes:
                sums[a][t, k // n_h, k % n_h] = row[f"s_{a}"] or 0.0
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
        df = self.spark.createDataFrame(rows, ITERATION_SCHEMA)
        self.store.append(
            df,
            ITERATIONS_TABLE,
            app_id=f"capacity:{self.run_id}:{self.config_hash[:12]}:{phase}",
            txn_version=iteration + 1,
        )

    def subgradient(self, usage: np.ndarray) -> np.ndarray:
        """∂L/∂λ_k = s_k (b_k − usage_k)."""
        signs = np.array([c.sign for c in self.constraints])
        bounds = np.array([c.bound for c in self.constraints])
        return signs * (bounds - usage)

    def reset_run(self) -> None:
        """Forget this run's recorded iterations (a fresh start, not a resume)."""
        if self.store is not None and self.store.exists(ITERATIONS_TABLE):
            empty = self.spark.createDataFrame([], ITERATION_SCHEMA)
            self.store.replace_run(empty, ITERATIONS_TABLE, self.run_id)

    def _recorded_state(self) -> dict[str, object] | None:
        """State after this run's last recorded dual iteration, to resume from."""
        if self.store is None or not self.store.exists(ITERATIONS_TABLE):
            return None
        previous = self.store.read(ITERATIONS_TABLE).filter(
            (F.col("run_id") == self.run_id)
            & (F.col("config_hash") == self.config_hash)
            & (F.col("phase") == "dual")
        )
        last = previous.agg(F.max("iteration")).first()[0]
        if last is None:
            return None
        rows = {r["constraint_name"]: r for r in previous.filter(F.col("iteration") == last).collect()}
        names = [c.name for c in self.constraints]
        if set(rows) != set(names):
            return None  # a different constraint set: start afresh
        first = rows[names[0]]
        return {
            "iteration": int(last) + 1,
            "prices": np.array([rows[n]["next_price"] for n in names], dtype=np.float64),
            "steps": np.array([rows[n]["step"] for n in names], dtype=np.float64),
            "previous": np.array([rows[n]["violation_signed"] for n in names], dtype=np.float64),
            "best_prices": np.array([rows[n]["best_price"] for n in names], dtype=np.float64),
            "best_dual": float(first["best_dual"]),
            "converged": bool(first["stall"]),
            "value_scale": float(first["value_scale"]),
            "scales": np.array([rows[n]["scale"] for n in names], dtype=np.float64),
        }

    # ---------------------------------------------------------------- main loop
    def run(self, resume: bool = True) -> CapacityResult:
        """Dual phase (per-price adaptive steps), then repair; returns the feasible plan.

        Each price moves against its own relative violation with its own step: the step
        grows by 1.5 while the violation keeps its sign and halves when it flips (Rprop),
        which suits a few weakly coupled capacity prices; prices stay ≥ 0.
        """
        n_k = len(self.constraints)
        if n_k == 0:
            ev = self.evaluate(np.zeros(0), exact=True)
            self._release(ev.solved)
            return CapacityResult(ev.solved, [], np.zeros(0), np.zeros(0), ev.value, ev.objective, 1, 0, 0)
        state = self._recorded_state() if resume else None
        tol = self.settings.violation_tolerance
        if state is None:
            self.reset_run()
            start, prices, steps, previous = 0, np.zeros(n_k), None, np.zeros(n_k)
            best_prices, best_dual, converged = np.zeros(n_k), math.inf, False
            value_scale, scales = None, None
        else:
            log.info("capacity: resuming run %s at iteration %s", self.run_id, state["iteration"])
            start = state["iteration"]
            prices, steps, previous = state["prices"], state["steps"], state["previous"]
            best_prices, best_dual = state["best_prices"], state["best_dual"]
            converged, value_scale, scales = state["converged"], state["value_scale"], state["scales"]
            self.perturbation = self.settings.smoothing * float(value_scale)  # type: ignore[arg-type]
        iteration = int(start) - 1  # type: ignore[call-overload]
        for iteration in range(int(start), self.settings.max_iterations):  # type: ignore[call-overload]
            if converged:
                iteration -= 1
                break
            ev = self.evaluate(prices, exact=iteration == 0)  # type: ignore[arg-type]
            self._release(ev.solved)
            if value_scale is None:
                # Prices are in value units: the mean contact value sets the scales.
                value_scale = max(ev.value / max(ev.contacts, 1), 1e-6)
                self.perturbation = self.settings.smoothing * value_scale
                scales = self._scales(ev)
                steps = self.settings.initial_step * value_scale / self._coefficient_scales(ev)
            dual = self.dual_value(ev, prices)  # type: ignore[arg-type]
            if dual < best_dual:
                best_dual, best_prices = dual, np.array(prices, copy=True)
            violation = self.relative_violation(ev.usage, scales)  # type: ignore[arg-type]
            active = (violation > tol) | ((violation < -tol) & (np.asarray(prices) > 0))
            converged = not active.any()
            same = np.sign(violation) == np.sign(previous)
            steps = np.where(active, np.where(same, steps * 1.5, steps * 0.5), steps)  # type: ignore[arg-type]
            next_prices = np.where(active, np.maximum(0.0, prices + np.sign(violation) * steps), prices)  # type: ignore[operator]
            self._record(
                "dual",
                iteration,
                prices,  # type: ignore[arg-type]
                ev,
                dual=dual,
                step=steps,
                next_price=next_prices,
                best_price=best_prices,
                best_dual=best_dual,
                stall=int(converged),
                value_scale=value_scale,
                violation_signed=violation,
                scale=scales,
            )
            previous, prices = violation, next_prices
        final_prices = np.asarray(prices if converged else best_prices, dtype=np.float64)
        # The certificate: the exact (unsmoothed) dual at the final and best prices.
        certificate = best_dual
        for candidate in {tuple(final_prices), tuple(np.asarray(best_prices))}:
            lam = np.array(candidate)
            exact = self.evaluate(lam, exact=True)
            certificate = min(certificate, self.dual_value(exact, lam))
            self._release(exact.solved)
        return self._repair(final_prices, certificate, iteration + 1)

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

    def _repair(self, prices: np.ndarray, best_dual: float, iterations: int) -> CapacityResult:
        """Make every max capacity hold exactly by dropping the lowest-value contributors."""
        ev = self.evaluate(prices)
        self._release(ev.solved)
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
            trimmed += bans.count()
            frame = self._with_bans(frame, ev.solved, bans, moving=moving)
            ev = self.evaluate(prices, frame)
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
            prices=prices,
            usage=ev.usage,
            primal_value=ev.value,
            dual_bound=best_dual,
            iterations=iterations,
            repair_rounds=rounds,
            trimmed_contacts=trimmed,
        )

    def _bans(self, solved: DataFrame, excess: np.ndarray, aggressive: bool) -> DataFrame:
        """Contacts to forbid: per violated max constraint, its lowest-value contributors
        until the excess is covered (all contributors when ``aggressive``)."""
        n_h = self.shape[2]
        n_cells = self.shape[1] * n_h
        zipped = F.arrays_zip("months", "cells", "values", *[f"a_{a}" for a in self.attributes])
        contacts = solved.filter(F.col("status") == 0).select("customer_id", F.explode(zipped).alias("c"))
        picked = []
        for j, constraint in enumerate(self.constraints):
            if excess[j] <= 1e-9:
                continue
            weight = F.element_at(
                F.array(*[F.lit(float(w)) for w in constraint.weight.reshape(-1)]),
                F.col("c.months") * n_cells + F.col("c.cells") + 1,
            )
            coef = (
                weight
                if constraint.attr is None
                else weight * (F.col(f"c.a_{constraint.attr}") - constraint.offset)
            )
            contributors = contacts.select(
                "customer_id",
                (F.col("c.months") * n_cells + F.col("c.cells")).alias("flat"),
                F.col("c.values").alias("value"),
                coef.alias("coef"),
            ).filter(F.col("coef") > 0)
            if not aggressive:
                order = Window.orderBy(F.col("value").asc(), F.xxhash64("customer_id", "flat"))
                contributors = contributors.withColumn(
                    "covered_before", F.sum("coef").over(order) - F.col("coef")
                ).filter(F.col("covered_before") < F.lit(float(excess[j])))
            picked.append(contributors.select("customer_id", "flat"))
        bans = picked[0]
        for more in picked[1:]:
            bans = bans.unionByName(more)
        return bans.distinct()

    def _with_bans(self, frame: DataFrame, solved: DataFrame, bans: DataFrame, moving: bool) -> DataFrame:
        """Forbid the banned contacts and re-solve their customers.

        With ``moving`` the customer may choose any other allowed contact; otherwise it is
        restricted to its current contacts minus the banned ones, so no constraint's usage
        can grow. Either way every per-customer rule still holds.
        """
        n_cells = self.shape[1] * self.shape[2]
        if moving:
            new = bans.groupBy("customer_id").agg(F.collect_set("flat").alias("_new"))
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
        restricted = new.join(current, "customer_id").select(
            "customer_id",
            F.array_sort(F.array_except("_current", "_banned")).cast("array<int>").alias("_allowed"),
        )
        if "allowed" not in frame.columns:
            frame = frame.withColumn("allowed", F.lit(None).cast("array<int>"))
        merged = (
            frame.join(restricted, "customer_id", "left")
            .withColumn("allowed", F.coalesce("_allowed", "allowed"))
            .drop("_allowed")
        )
        return merged.localCheckpoint()


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
