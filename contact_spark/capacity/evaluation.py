"""One solve of every customer at given prices, reduced to per-constraint aggregates.

``Evaluator`` is the part of the capacity engine that turns a price vector into an
``Evaluation``: every customer's schedule solved exactly by the kernel against
``value − prices · a``, with only per (month, cell) counts and attribute sums and three
totals reaching the driver. It also holds the small linear-algebra helpers of the dual
(``dual_value``, ``subgradient``, ``excess``) that every phase uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict, overload

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from contact_spark.capacity.constraints import Constraint, price_arrays
from contact_spark.config.capacity import LagrangianSettings
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import StaticInputs, solve_customers
from contact_spark.policy.compiler import CompiledPolicy


class SolveArgs(TypedDict):
    """The price-dependent keyword arguments of :func:`solve_customers`."""

    price: np.ndarray
    attr_price: dict[str, np.ndarray]
    attributes: list[str]
    perturbation: float | np.ndarray


@dataclass
class Evaluation:
    """Aggregates of one solve of every customer at given prices."""

    solved: DataFrame | None  # None when only the aggregates were computed (``keep=False``)
    usage: np.ndarray
    counts: np.ndarray
    attr_sums: dict[str, np.ndarray]
    objective: float  # Σ_i value against the prices of the plan kept (optimal where proved)
    upper: float  # Σ_i proved upper bound of that optimum (= objective when all are proved)
    value: float  # Σ value of the chosen contacts, prices excluded
    contacts: int
    failed: int


@dataclass
class KeptEvaluation(Evaluation):
    """An evaluation whose per-customer solve is cached (``keep=True``): a candidate plan."""

    solved: DataFrame

    @classmethod
    def of(cls, totals: Evaluation, solved: DataFrame) -> KeptEvaluation:
        return cls(
            solved=solved,
            usage=totals.usage,
            counts=totals.counts,
            attr_sums=totals.attr_sums,
            objective=totals.objective,
            upper=totals.upper,
            value=totals.value,
            contacts=totals.contacts,
            failed=totals.failed,
        )


class Evaluator:
    """Solving and aggregation; the state is set by ``CapacityEngine.__init__``."""

    frame: DataFrame
    policy: CompiledPolicy
    layout: Layout
    static: StaticInputs
    constraints: list[Constraint]
    settings: LagrangianSettings
    attributes: list[str]
    shape: tuple[int, int, int]
    perturbation: float | np.ndarray
    _cached: list[DataFrame]
    _fixed: Evaluation | None
    _fixed_frame: DataFrame
    _priced_frame: DataFrame

    # keep=True (the default) always caches the solve: the overloads let callers use
    # ``.solved`` as a DataFrame without checking it for None.
    @overload
    def evaluate(
        self,
        prices: np.ndarray,
        frame: DataFrame | None = None,
        exact: bool = False,
        keep: Literal[True] = True,
    ) -> KeptEvaluation: ...

    @overload
    def evaluate(
        self,
        prices: np.ndarray,
        frame: DataFrame | None = None,
        exact: bool = False,
        *,
        keep: bool,
    ) -> Evaluation: ...

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
        solve_args = SolveArgs(
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
        solved = solve_customers(base, self.policy, self.layout, self.static, **solve_args)
        solved = solved.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(solved)
        return KeptEvaluation.of(self._totals(self._aggregate_solved(solved)), solved)

    def _summed(self, frame: DataFrame, solve_args: SolveArgs) -> Evaluation:
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
        return self._totals(cells)

    def _fixed_evaluation(self, solve_args: SolveArgs) -> Evaluation:
        """The price-independent customers' totals, solved on first use."""
        if self._fixed is None:
            zero = SolveArgs(
                price=np.zeros(self.shape), attr_price={}, attributes=solve_args["attributes"], perturbation=0.0
            )
            self._fixed = self._summed(self._fixed_frame, zero)
        return self._fixed

    def _totals(self, cells: list[Row]) -> Evaluation:
        """An evaluation from summary rows (``summary_schema``; rows of one cell add up)."""
        totals = {"objective": 0.0, "upper": 0.0, "value": 0.0, "contacts": 0}
        failed = 0
        counts = np.zeros(self.shape)
        sums = {a: np.zeros(self.shape) for a in self.attributes}
        n_h = self.shape[2]
        for row in cells:  # rows of one (t, k) from several tasks add up
            if row["t"] == -1:
                totals["objective"] += row["obj"] or 0.0
                totals["upper"] += row["ub"] or 0.0
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
            solved=None,
            usage=usage,
            counts=counts,
            attr_sums=sums,
            objective=float(totals["objective"] or 0.0),
            upper=float(totals["upper"] or 0.0),
            value=float(totals["value"] or 0.0),
            contacts=int(totals["contacts"] or 0),
            failed=int(failed),
        )

    def _aggregate_solved(self, solved: DataFrame) -> list[Row]:
        """Usage totals of a per-customer solve, in one Spark action (see ``summary_schema``)."""
        # One Spark action per evaluation: every customer contributes a summary entry
        # (t = k = -1: objective, value, failure) and one entry per chosen contact.
        ok = F.col("status") == 0
        attrs = [f"a_{a}" for a in self.attributes]
        summary = F.struct(
            F.lit(-1).alias("t"),
            F.lit(-1).alias("k"),
            F.when(ok, F.col("objective")).otherwise(F.lit(0.0)).alias("obj"),
            F.when(ok, F.col("upper_bound")).otherwise(F.lit(0.0)).alias("ub"),
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
                F.lit(0.0).alias("ub"),
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
                F.sum("c.ub").alias("ub"),
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
        # Each customer's proved upper bound, never its kept plan's value: a customer whose
        # MILP stopped at a time limit would otherwise make the bound (and the gap) a guess.
        return evaluation.upper + constant

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

    def subgradient(self, usage: np.ndarray) -> np.ndarray:
        """∂L/∂λ_k = s_k (b_k − usage_k)."""
        signs = np.array([c.sign for c in self.constraints])
        bounds = np.array([c.bound for c in self.constraints])
        return signs * (bounds - usage)

    def excess(self, usage: np.ndarray) -> np.ndarray:
        """Signed violation ``s_k (usage_k − b_k)``: > 0 means violated."""
        return -self.subgradient(usage)

    @property
    def _bounds(self) -> np.ndarray:
        return np.array([c.bound for c in self.constraints], dtype=np.float64)

    def _feasible(self, usage: np.ndarray, skip: frozenset[str] = frozenset()) -> bool:
        """Every constraint holds, except those named in ``skip`` (e.g. unmeetable minimums)."""
        for c, used in zip(self.constraints, usage, strict=True):
            if c.name in skip:
                continue
            if c.sense == "max" and used > c.bound + 1e-9:
                return False
            if c.sense == "min" and used < c.bound - 1e-9:
                return False
        return True

    def _max_excess(self, usage: np.ndarray) -> np.ndarray:
        return np.array(
            [
                max(0.0, u - c.bound) if c.sense == "max" else 0.0
                for c, u in zip(self.constraints, usage, strict=True)
            ]
        )


def _split_by_charged_slots(frame: DataFrame, charged: np.ndarray) -> tuple[DataFrame, DataFrame]:
    """(customers eligible for no charged cell, the others) of a customer frame.

    A cell charged in any month counts; month-dependent eligibility only narrows
    ``eligible``, so a customer on the fixed side can never reach a charged slot.
    """
    # asarray: numpy types any(axis=...) as "a bool or an array"; with a 2-D input it is an array
    cells = np.asarray(charged.reshape(charged.shape[0], -1).any(axis=0))
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
        upper=a.upper + b.upper,
        value=a.value + b.value,
        contacts=a.contacts + b.contacts,
        failed=a.failed + b.failed,
    )
