"""Fill: the last primal step, so that no single customer's plan can take one more
contact that fits every rule and every capacity and adds value (issue 21).

The price iterations decide each customer at prices; the repair and the master choose
among the schedules those prices produce. A contact that is never optimal at any price
can still fit: two customers and a margin budget of 90, offers of margin 60 (worth 59 and
49) and 30 (worth 29 and 24). At every price one customer's best choice is the 60 offer
or nothing; the plan "A takes the 60 offer" leaves 30 of budget unused, and B's 30 offer
(worth 24) fits it, though no price makes it B's choice.

Each round, every customer is solved once more, exactly, with its planned contacts kept
(a bonus far above any contact's value) and, on top, only contacts that each fit the
room left in every capacity (bans): the kernel returns the most valuable schedule that
keeps the plan and adds contacts within the customer's rules. Customers whose addition
gains value send one row (gain, usage of every constraint) to the driver, at most
``master_max_customers`` of them, the best first; the driver accepts them in that order
while the room allows, and the accepted customers' new schedules replace their rows of
the plan. Rounds repeat while some customer was accepted (at most ``FILL_ROUNDS``), over
the customers that gained but did not fit: the room only shrinks, so no other customer
can gain later. A customer whose additions fit one by one but not together is left as
it is.

Everything is exact and checked: the new plan's usage is recounted and must meet every
capacity the plan met, or the plan stays. The pure NumPy parts (:func:`fitting_cells`,
:func:`kept_batch`) are tested without Spark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F

from contact_spark.capacity.columns import schedule_usage, usage_matrix
from contact_spark.capacity.constraints import Constraint
from contact_spark.capacity.evaluation import KeptEvaluation
from contact_spark.capacity.master import Master
from contact_spark.capacity.result import CapacityResult
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import (
    StaticInputs,
    _sparse_lists,
    contact_values,
    frame_batch,
    solved_record,
    solved_schema,
)
from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver.problem import KernelBatch, KernelResult

log = logging.getLogger(__name__)

FILL_ROUNDS = 3
KEEP_BONUS = 1e7  # per planned contact: far above any contact's value, so the plan is kept
TOLERANCE = 1e-9


def room(constraints: list[Constraint], usage: np.ndarray, skip: frozenset[str]) -> np.ndarray:
    """``sign·(bound − usage)`` per constraint: how much more a max may take, how much a
    min may lose; +inf for a constraint in ``skip`` (a min the plan does not meet)."""
    out = np.array([c.sign * (c.bound - u) for c, u in zip(constraints, usage, strict=True)])
    out[[k for k, c in enumerate(constraints) if c.name in skip]] = np.inf
    return out


def fitting_cells(
    constraints: list[Constraint],
    weights: np.ndarray,
    attr_values: dict[str, np.ndarray],
    slack: np.ndarray,
    n: int,
) -> np.ndarray:
    """``[N, T·C·H]``: whether one more contact of the slot, alone, stays within ``slack``
    (:func:`room`) of every constraint, for each of the ``n`` customers (an attribute
    constraint weighs the customer's attribute ``[N, C, H]`` less its offset)."""
    fits = np.ones((n, weights.shape[1]), dtype=bool)
    for k, c in enumerate(constraints):
        if c.attr is None:
            cell = weights[k][None, :]
        else:
            attr = np.nan_to_num(attr_values[c.attr])
            per_slot = np.broadcast_to(attr[:, None], (n, *c.weight.shape)).reshape(n, -1)
            cell = weights[k][None, :] * (per_slot - c.offsets.reshape(1, -1))
        fits &= c.sign * cell <= slack[k] + TOLERANCE
    return fits


def kept_batch(batch: KernelBatch, current: np.ndarray, fits: np.ndarray) -> KernelBatch:
    """``batch`` at zero prices where the planned contacts ``current[N, T, C, H]`` carry a
    bonus that keeps them, and only they and contacts that fit (``fits[N, T·C·H]``) are
    allowed."""
    n = current.shape[0]
    allowed = batch.eligible if batch.eligible.ndim == 4 else batch.eligible[:, None]
    eligible = np.broadcast_to(allowed, current.shape) & (fits.reshape(current.shape) | current)
    return replace(
        batch,
        eligible=eligible,
        price=np.zeros(current.shape[1:]),
        unit_cost=np.where(current, -KEEP_BONUS, 0.0).reshape(n, *current.shape[1:]),
    )


def make_fill_solver(
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    constraints: list[Constraint],
    attributes: list[str],
    slack: np.ndarray,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function over the frame joined with the plan (``cur_months``,
    ``cur_cells``, ``cur_status``): the customers whose plan can take more contacts within
    ``slack``, with their new schedule (:func:`solved_schema`), ``gain`` and ``delta``
    (usage of every constraint added)."""
    n_t, n_cells = layout.horizon, len(layout.campaigns) * len(layout.channels)
    weights = usage_matrix(constraints, (n_t, len(layout.campaigns), len(layout.channels)))

    def fill(records: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from contact_spark.solver.kernel import solve

        for record in records:
            n = record.num_rows
            if n == 0:
                continue
            base, attr_values = frame_batch(record, layout, static, attributes, apply_bans=False)
            # The plan's (month, cell) lists, flattened as whole arrays: no loop over customers.
            rows, months = _sparse_lists(record.column("cur_months"), np.int64)
            _, cells = _sparse_lists(record.column("cur_cells"), np.int64)
            current = np.zeros((n, n_t * n_cells), dtype=bool)
            current[rows, months * n_cells + cells] = True
            current = current.reshape(n, n_t, *base.channel_cost.shape)
            fits = fitting_cells(constraints, weights, attr_values, slack, n)
            result = solve(policy, kept_batch(base, current, fits))
            x = np.asarray(result.x, dtype=bool)
            propensity = base.clean_propensity()
            before = contact_values(current, propensity, static).sum(axis=(1, 2, 3))
            after = contact_values(x, propensity, static).sum(axis=(1, 2, 3))
            delta = schedule_usage(constraints, weights, x, attr_values) - schedule_usage(
                constraints, weights, current, attr_values
            )
            signs = np.array([c.sign for c in constraints])
            planned_ok = record.column("cur_status").fill_null(1).to_numpy(zero_copy_only=False) == 0
            keep = (
                planned_ok
                & (np.asarray(result.status) == 0)
                & (x | ~current).all(axis=(1, 2, 3))  # the plan is kept whole
                & (after - before > TOLERANCE * np.maximum(1.0, np.abs(before)))
                & (signs * delta <= slack + TOLERANCE).all(axis=1)
            )
            if not keep.any():
                continue
            idx = np.flatnonzero(keep)
            part = record.take(pa.array(idx))
            # The plan's value is what the solved rows carry: objective = upper bound = value.
            shown = KernelResult(
                x=x[idx],
                status=np.zeros(idx.size, dtype=np.int32),
                solver=np.asarray(result.solver)[idx],
                objective=after[idx],
                upper_bound=after[idx],
            )
            out = solved_record(
                part,
                shown,
                x[idx],
                base.subset(idx),
                {name: values[idx] for name, values in attr_values.items()},
                static,
                attributes,
            )
            yield out.append_column("gain", pa.array(after[idx] - before[idx], pa.float64())).append_column(
                "delta", pa.array(delta[idx].tolist(), pa.list_(pa.float64()))
            )

    return fill


@dataclass(frozen=True)
class FillOutcome:
    """What the fill step added, for the log."""

    rounds: int
    customers: int
    gain: float


class Fill(Master):
    """The fill step of ``CapacityEngine`` (after the master; see module doc)."""

    fill_outcome: FillOutcome | None = None

    def _fill_step(self, result: CapacityResult) -> CapacityResult:
        """Add to the plan what fits and pays (see module doc); the plan stays if anything
        does not check out."""
        if not self.constraints or self._proved_optimal(result):
            return result
        skip = frozenset(result.shortfalls())
        solved_columns = [f.name for f in result.solved.schema.fields]
        signs = np.array([c.sign for c in self.constraints])
        schema = solved_schema(self.attributes) + ", gain double, delta array<double>"
        spark = self.frame.sparkSession
        frame = self.frame.drop("banned", "allowed")  # the fill checks capacity room itself
        pool = frame
        total, accepted_customers, rounds = 0.0, 0, 0
        for _ in range(FILL_ROUNDS):
            slack = room(self.constraints, result.usage, skip)
            solver = make_fill_solver(
                self.policy, self.layout, self.static, self.constraints, self.attributes, slack
            )
            plan = result.solved.select(
                "customer_id",
                F.col("months").alias("cur_months"),
                F.col("cells").alias("cur_cells"),
                F.col("status").alias("cur_status"),
            )
            found = pool.join(plan, "customer_id", "left").mapInArrow(solver, schema).persist()
            best = (
                found.select("customer_id", "gain", "delta")
                .orderBy(F.desc("gain"), "customer_id")
                .limit(self.settings.master_max_customers)
                .collect()  # ≤ master_max_customers rows: the customers that gain most
            )
            rounds += 1
            accepted, added = [], np.zeros(len(self.constraints))
            for row in best:
                delta = np.asarray(row["delta"], dtype=np.float64)
                if (signs * (added + delta) <= slack + TOLERANCE).all():
                    accepted.append(row["customer_id"])
                    added += delta
            if not accepted:
                found.unpersist()
                break
            ids = spark.createDataFrame([(c,) for c in accepted], "customer_id string")
            new = (
                result.solved.join(F.broadcast(ids), "customer_id", "left_anti")
                .unionByName(found.join(F.broadcast(ids), "customer_id", "left_semi").select(*solved_columns))
                .persist()
            )
            ev = KeptEvaluation.of(self._totals(self._aggregate_solved(new)), new)
            found.unpersist()
            self._cached.append(new)
            if not self._feasible(ev.usage, skip) or ev.value < result.primal_value - TOLERANCE:
                log.warning("capacity fill: the filled plan broke a capacity or lost value; the plan stays")
                break
            total += ev.value - result.primal_value
            accepted_customers += len(accepted)
            self._release(new)
            result = replace(result, solved=new, usage=ev.usage, primal_value=ev.value)
            # The room only shrinks: a customer that gained nothing cannot gain later, and an
            # accepted one took its best addition. Only the customers that gained but did not
            # fit are tried again.
            waiting = sorted({row["customer_id"] for row in best} - set(accepted))
            if not waiting:
                break
            pending = spark.createDataFrame([(c,) for c in waiting], "customer_id string")
            pool = frame.join(F.broadcast(pending), "customer_id", "left_semi")
        self.fill_outcome = FillOutcome(rounds, accepted_customers, total)
        log.info(
            "capacity fill: %d customer(s) took more contacts in %d round(s), +%.4f of value",
            accepted_customers,
            rounds,
            total,
        )
        return result


__all__ = ["Fill", "FillOutcome", "fitting_cells", "kept_batch", "room"]
