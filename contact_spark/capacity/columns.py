"""Columns of the restricted master: customers solved at several price vectors, and the
master LP and MILP over them (see :mod:`contact_spark.capacity.master`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix

from contact_spark.capacity.constraints import Constraint
from contact_spark.capacity.evaluation import SolveArgs
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import (
    StaticInputs,
    contact_values,
    frame_batch,
    priced_batch,
    solved_record,
)
from contact_spark.policy.compiler import CompiledPolicy

COLUMN_SCHEMA = "customer_id string, js array<int>, value double, usage array<double>, spread double, n long"


def usage_matrix(constraints: list[Constraint], shape: tuple[int, int, int]) -> np.ndarray:
    """``[K, T·C·H]`` weight of each slot in each constraint (count constraints; attribute
    constraints multiply it by the contact's attribute less the offset)."""
    return (
        np.stack([c.weight.reshape(-1) for c in constraints])
        if constraints
        else np.zeros((0, int(np.prod(shape))))
    )


def schedule_usage(
    constraints: list[Constraint], weights: np.ndarray, x: np.ndarray, attr_values: dict[str, np.ndarray]
) -> np.ndarray:
    """``[N, K]`` usage of every constraint by each customer's schedule ``x[N, T, C, H]``."""
    n = x.shape[0]
    flat = x.reshape(n, -1).astype(np.float64)
    out = flat @ weights.T  # count constraints; attribute ones are replaced below
    for k, c in enumerate(constraints):
        if c.attr is None:
            continue
        attr = np.broadcast_to(np.nan_to_num(attr_values[c.attr])[:, None], x.shape).reshape(n, -1)
        out[:, k] = (flat * (attr - c.offsets.reshape(1, -1))) @ weights[k]
    return out


def make_column_solver(
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    constraints: list[Constraint],
    attributes: list[str],
    price_sets: list[SolveArgs],
    numbers: list[int] | None = None,
    banned_first: bool = False,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function: each customer solved at every price set; split customers
    yield one row per distinct schedule (``js``: the price sets giving it, by their
    ``numbers``, default their positions), fixed ones are summed into one row per task
    (``customer_id`` null, ``n`` customers). With ``banned_first`` the first price set is solved with the frame's repair bans (the
    repaired plan), the others without."""
    shape = (layout.horizon, len(layout.campaigns), len(layout.channels))
    weights = usage_matrix(constraints, shape)
    n_k = len(constraints)
    numbers = list(range(len(price_sets))) if numbers is None else numbers

    def columns(records: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from contact_spark.solver.kernel import solve

        fixed_value, fixed_usage, fixed_n = 0.0, np.zeros(n_k), 0
        for record in records:
            n = record.num_rows
            if n == 0:
                continue
            base, attr_values = frame_batch(record, layout, static, attributes, apply_bans=False)
            banned = frame_batch(record, layout, static, [])[0] if banned_first else base
            xs, ok = [], []
            for j, args in enumerate(price_sets):
                batch = priced_batch(
                    banned if j == 0 else base,
                    record,
                    attr_values,
                    args["price"],
                    args["attr_price"],
                    args["perturbation"],
                )
                result = solve(policy, batch)
                ok.append(np.asarray(result.status) == 0)
                xs.append(np.asarray(result.x, dtype=bool))
            x = np.stack(xs, axis=1)  # [N, J, T, C, H]
            flat = x.reshape(n, len(price_sets), -1)
            # Only customers the kernel solves at every price set can be split; the others
            # stay with the first set's solve, as the materialised plan will have them.
            split = np.logical_and.reduce(ok) & (flat != flat[:, :1]).any(axis=(1, 2))
            propensity = base.clean_propensity()
            value = np.stack(
                [
                    contact_values(x[:, j], propensity, static).sum(axis=(1, 2, 3))
                    for j in range(len(price_sets))
                ],
                axis=1,
            )  # [N, J]
            usage = np.stack(
                [schedule_usage(constraints, weights, x[:, j], attr_values) for j in range(len(price_sets))],
                axis=1,
            )  # [N, J, K]
            # Fixed customers (and those the kernel could not solve, as an evaluation counts
            # them: no contact) are summed; their schedule is the same at every price set.
            fixed = ~split
            kept = fixed & ok[0]
            fixed_value += float(value[kept, 0].sum())
            fixed_usage += usage[kept, 0].sum(axis=0)
            fixed_n += int(fixed.sum())
            ids = record.column("customer_id").to_pylist()
            out_ids, out_js, out_value, out_usage, out_spread = [], [], [], [], []
            for i in np.flatnonzero(split).tolist():
                spread = float(value[i].max() - value[i].min())
                seen: dict[bytes, list[int]] = {}
                for j in range(len(price_sets)):
                    seen.setdefault(np.packbits(flat[i, j]).tobytes(), []).append(j)
                for js in seen.values():
                    out_ids.append(ids[i])
                    out_js.append([numbers[j] for j in js])
                    out_value.append(float(value[i, js[0]]))
                    out_usage.append(usage[i, js[0]].tolist())
                    out_spread.append(spread)
            if out_ids:
                yield pa.RecordBatch.from_pydict(
                    {
                        "customer_id": pa.array(out_ids, pa.string()),
                        "js": pa.array(out_js, pa.list_(pa.int32())),
                        "value": pa.array(out_value, pa.float64()),
                        "usage": pa.array(out_usage, pa.list_(pa.float64())),
                        "spread": pa.array(out_spread, pa.float64()),
                        "n": pa.array([1] * len(out_ids), pa.int64()),
                    }
                )
        yield pa.RecordBatch.from_pydict(
            {
                "customer_id": pa.array([None], pa.string()),
                "js": pa.array([[]], pa.list_(pa.int32())),
                "value": pa.array([fixed_value], pa.float64()),
                "usage": pa.array([fixed_usage.tolist()], pa.list_(pa.float64())),
                "spread": pa.array([0.0], pa.float64()),
                "n": pa.array([fixed_n], pa.int64()),
            }
        )

    return columns


@dataclass
class Columns:
    """The master's columns: column ``j`` is a schedule of customer ``customers[j]``, worth
    ``values[j]``, using ``usage[j, k]`` of constraint ``k``, found at price set ``source[j]``."""

    customers: np.ndarray  # object (customer ids)
    values: np.ndarray
    usage: np.ndarray  # [J, K]
    source: np.ndarray  # int

    @classmethod
    def of_rows(cls, rows: list, n_k: int) -> Columns:
        return cls(
            np.array([r["customer_id"] for r in rows], dtype=object),
            np.array([r["value"] for r in rows], dtype=np.float64),
            np.array([r["usage"] for r in rows], dtype=np.float64).reshape(len(rows), n_k),
            np.array([int(r["js"][0]) for r in rows], dtype=np.int64),
        )

    def added(self, other: Columns) -> tuple[Columns, int]:
        """These columns and those of ``other`` that are new (same customer, value and usage:
        the same column for the master), ordered by customer; and how many were new."""
        seen = {
            (c, round(v, 9), tuple(np.round(u, 9)))
            for c, v, u in zip(self.customers, self.values, self.usage, strict=True)
        }
        new = [
            j
            for j, (c, v, u) in enumerate(zip(other.customers, other.values, other.usage, strict=True))
            if (c, round(v, 9), tuple(np.round(u, 9))) not in seen
        ]
        merged = Columns(
            np.concatenate([self.customers, other.customers[new]]),
            np.concatenate([self.values, other.values[new]]),
            np.concatenate([self.usage, other.usage[new]]),
            np.concatenate([self.source, other.source[new]]),
        )
        order = np.argsort(merged.customers.astype(str), kind="stable")
        return Columns(
            merged.customers[order], merged.values[order], merged.usage[order], merged.source[order]
        ), len(new)


def _rows(
    columns: Columns, constraints: list[Constraint], fixed_usage: np.ndarray, skip: set[str]
) -> tuple[csr_matrix, np.ndarray, np.ndarray, list[int]]:
    """(``A`` convexity, ``b`` of ``sign·usage ≤ sign·room`` per constraint kept, the kept
    constraints' matrix rows ``G``, and which constraints they are)."""
    n_cols = columns.values.shape[0]
    _, owner = np.unique(columns.customers.astype(str), return_inverse=True)
    convexity = coo_matrix(
        (np.ones(n_cols), (owner, np.arange(n_cols))), shape=(int(owner.max()) + 1, n_cols)
    )
    kept = [k for k, c in enumerate(constraints) if c.name not in skip and np.any(columns.usage[:, k])]
    sign = np.array([constraints[k].sign for k in kept])
    g = (columns.usage[:, kept] * sign).T if kept else np.zeros((0, n_cols))
    h = np.array([constraints[k].sign * (constraints[k].bound - fixed_usage[k]) for k in kept])
    return convexity.tocsr(), g, h, kept


def master_duals(
    columns: Columns, constraints: list[Constraint], fixed_usage: np.ndarray, skip: set[str]
) -> np.ndarray | None:
    """Prices of every constraint from the master's LP relaxation (0 where a constraint is
    not in it), or None when the LP has no solution."""
    convexity, g, h, kept = _rows(columns, constraints, fixed_usage, skip)
    lp = linprog(
        -columns.values,
        A_ub=g if kept else None,
        b_ub=h if kept else None,
        A_eq=convexity,
        b_eq=np.ones(convexity.shape[0]),
        bounds=(0, 1),
        method="highs",
    )
    if lp.status != 0:
        return None
    prices = np.zeros(len(constraints))
    if kept:
        prices[kept] = np.maximum(-np.asarray(lp.ineqlin.marginals), 0.0)
    return prices


def solve_master(
    columns: Columns,
    constraints: list[Constraint],
    fixed_usage: np.ndarray,
    skip: set[str],
    node_limit: int,
    time_limit: float,
) -> tuple[np.ndarray, float, float, bool] | None:
    """Choose one column per customer maximising the value with every constraint not in
    ``skip`` holding on ``fixed_usage`` plus the chosen columns. Returns (chosen mask, value,
    HiGHS's proved bound, whether the time limit stopped it) or None when HiGHS finds no plan.

    The node limit is what bounds the work: unlike a time limit it gives the same plan on
    a slower or busier machine (the time limit is only a safety net, logged when hit)."""
    convexity, g, h, kept = _rows(columns, constraints, fixed_usage, skip)
    rows = [LinearConstraint(convexity, 1, 1)]
    if kept:
        rows.append(LinearConstraint(g, -np.inf, h))
    result = milp(
        -columns.values,
        constraints=rows,
        integrality=np.ones(columns.values.shape[0]),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit, "node_limit": node_limit, "mip_rel_gap": 1e-6, "disp": False},
    )
    if result.x is None:
        return None
    chosen = result.x > 0.5
    bound = -float(result.mip_dual_bound) if getattr(result, "mip_dual_bound", None) is not None else math.inf
    timed_out = "time limit" in str(result.message).lower()
    return chosen, float(columns.values[chosen].sum()), bound, timed_out


CHOICE_COLUMN = "_master_set"  # the price set a customer's chosen column was found at


def make_choice_solver(
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    attributes: list[str],
    price_sets: list[SolveArgs],
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function writing the master's plan (:func:`solved_schema` rows): each
    customer solved at the price set of its column ``_master_set`` (0, or null: as the kept
    plan was solved, with the frame's repair bans; others without them), in one pass."""

    def solve_choices(records: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from contact_spark.solver.kernel import solve

        for record in records:
            if record.num_rows == 0:
                continue
            chosen = record.column(CHOICE_COLUMN).fill_null(0).to_numpy(zero_copy_only=False)
            for j in np.unique(chosen).tolist():
                part = record.filter(pa.array(chosen == j))
                base, attr_values = frame_batch(part, layout, static, attributes, apply_bans=j == 0)
                args = price_sets[j]
                batch = priced_batch(
                    base, part, attr_values, args["price"], args["attr_price"], args["perturbation"]
                )
                result = solve(policy, batch)
                x = np.asarray(result.x, dtype=bool)
                yield solved_record(part, result, x, batch, attr_values, static, attributes)

    return solve_choices
