"""Global MILP reference for small instances: the whole coupled problem in one HiGHS model.

Used by tests and the benchmark only (it collects the customers to the driver). Every
customer's rules come from the per-customer MILP builder of :mod:`contact_spark.solver.milp`
(``solve_one_milp``): its model is captured instead of solved, its variables are shifted
into a block of one big model, and the capacity constraints are added as coupling rows
``Σ_i a_k(i,t,c,h) x_i(t,c,h) ≤ b_k`` (or ``≥`` for a min). The optimum is the best plan
satisfying every per-customer rule and every capacity exactly, the yardstick of the
Lagrangian engine's plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn
from unittest import mock

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from contact_spark.capacity.constraints import Constraint
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import StaticInputs, batch_from_pandas
from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver import milp as customer_milp
from contact_spark.solver.problem import KernelBatch


@dataclass(frozen=True)
class ReferenceResult:
    """The global optimum (or HiGHS's best plan when stopped by the time limit)."""

    value: float  # plan value recomputed from the schedules (prices excluded)
    bound: float  # HiGHS's dual bound on the optimum
    x: np.ndarray  # [N, T, C, H] chosen contacts
    usage: np.ndarray  # per constraint
    customer_ids: list[str]
    status: int  # scipy.optimize.milp status (0 = optimal)
    message: str

    @property
    def optimal(self) -> bool:
        return self.status == 0


class _CapturedModelError(Exception):
    """Raised from the patched ``milp`` to carry a per-customer model out of the builder."""

    def __init__(
        self, c: np.ndarray, integrality: np.ndarray, bounds: Bounds, constraints: list[LinearConstraint]
    ) -> None:
        super().__init__("captured")
        self.c, self.integrality, self.bounds, self.constraints = c, integrality, bounds, constraints


def _capture(
    c: np.ndarray,
    *,
    integrality: np.ndarray,
    bounds: Bounds,
    constraints: list[LinearConstraint] | None = None,
    options: dict[str, object] | None = None,
) -> NoReturn:
    """Stands in for ``scipy.optimize.milp`` (called as the builder calls it) and raises the model."""
    raise _CapturedModelError(
        np.asarray(c, dtype=np.float64), np.asarray(integrality), bounds, list(constraints or [])
    )


def customer_model(
    policy: CompiledPolicy,
    batch: KernelBatch,
    feats: customer_milp.HistoryFeatures,
    i: int,
    gain: np.ndarray,
    propensity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, csr_matrix | None, np.ndarray, np.ndarray]:
    """Customer ``i``'s MILP as built by the solver: (objective to maximise, integrality,
    lb, ub, A, row lb, row ub); the first ``T·K`` variables are the contacts ``x[t, k]``."""
    with mock.patch.object(customer_milp, "milp", _capture):
        try:
            customer_milp.solve_one_milp(policy, batch, feats, i, gain, propensity)
        except _CapturedModelError as model:
            captured = model
        else:  # pragma: no cover - the builder always calls milp
            raise RuntimeError("the per-customer MILP builder did not build a model")
    flat_gain = gain.reshape(-1)
    nx = flat_gain.size
    # The builder scales the objective by 1e6 / max(1, max|c|): undo it from an x entry.
    j = int(np.argmax(np.abs(flat_gain)))
    if abs(flat_gain[j]) > 1e-12 and abs(captured.c[j]) > 0:
        scale = -captured.c[j] / flat_gain[j]
    else:
        scale = (
            1e6 if np.abs(captured.c).max() < 1e6 * (1 - 1e-9) else 1e6 / max(1.0, np.abs(captured.c).max())
        )
    objective = -captured.c / scale
    objective[:nx] = flat_gain  # exact, not re-derived
    lb = np.asarray(captured.bounds.lb, dtype=np.float64)
    ub = np.asarray(captured.bounds.ub, dtype=np.float64)
    if captured.constraints:
        cons: LinearConstraint = captured.constraints[0]
        a = csr_matrix(cons.A)
        return objective, captured.integrality, lb, ub, a, np.asarray(cons.lb), np.asarray(cons.ub)
    return objective, captured.integrality, lb, ub, None, np.zeros(0), np.zeros(0)


def capacity_coefficients(constraint: Constraint, attr: np.ndarray | None, horizon: int) -> np.ndarray:
    """``[N, T·K]`` coefficient of each customer's contact ``x[t, k]`` in the constraint."""
    weight = constraint.weight.reshape(horizon, -1)  # [T, K]
    if constraint.attr is None:
        return np.broadcast_to(weight.reshape(1, -1), (1, weight.size))
    assert attr is not None
    offsets = constraint.offsets.reshape(horizon, -1)  # [T, K]: a number, or a ratio's per slot
    return (weight[None] * (attr[:, None, :] - offsets[None])).reshape(attr.shape[0], -1)


def solve_reference(
    customers: pd.DataFrame,
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    constraints: list[Constraint],
    time_limit: float = 120.0,
    mip_rel_gap: float = 1e-6,
) -> ReferenceResult:
    """Solve the coupled problem for ``customers`` (a pandas copy of the customer frame,
    with ``attr_<name>`` columns for the constraints' attributes) as one MILP."""
    customers = customers.sort_values("customer_id").reset_index(drop=True)
    n = len(customers)
    n_t, n_c, n_h = layout.horizon, len(layout.campaigns), len(layout.channels)
    n_k = n_c * n_h
    nx = n_t * n_k
    batch = batch_from_pandas(customers, layout, static, np.zeros((n_t, n_c, n_h)))
    feats = customer_milp.HistoryFeatures(policy, batch.clean_history(), n_t)
    gains = customer_milp.cell_gains(batch)
    p = batch.propensity_by_month().reshape(n, n_t, -1)
    objective, integrality, lbs, ubs = [], [], [], []
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
    row_lb, row_ub, offsets = [], [], []
    offset = 0
    for i in range(n):
        obj, integ, lb, ub, a, rlb, rub = customer_model(policy, batch, feats, i, gains[i], p[i])
        offsets.append(offset)
        objective.append(obj)
        integrality.append(integ)
        lbs.append(lb)
        ubs.append(ub)
        if a is not None:
            coo = coo_matrix(a)
            blocks.append((coo.row, coo.col + offset, coo.data, a.shape[0]))
            row_lb.append(rlb)
            row_ub.append(rub)
        offset += obj.size
    n_vars = offset
    rows, cols, vals = [], [], []
    r0 = 0
    for row, col, data, height in blocks:
        rows.append(row + r0)
        cols.append(col)
        vals.append(data)
        r0 += height
    a_rules = coo_matrix(
        (
            np.concatenate(vals) if vals else [],
            (np.concatenate(rows) if rows else [], np.concatenate(cols) if cols else []),
        ),
        shape=(r0, n_vars),
    ).tocsr()
    # Capacity rows over the contact variables of every customer.
    cap_rows, cap_lb, cap_ub = [], [], []
    x_index = (np.asarray(offsets)[:, None] + np.arange(nx)[None]).reshape(-1)
    for constraint in constraints:
        attr = None
        if constraint.attr is not None:
            attr = (
                np.stack(customers[f"attr_{constraint.attr}"].to_numpy()).astype(np.float64).reshape(n, n_k)
            )
            attr = np.nan_to_num(attr)
        coef = np.broadcast_to(capacity_coefficients(constraint, attr, n_t), (n, nx)).reshape(-1)
        row = np.zeros(n_vars)
        row[x_index] = coef
        cap_rows.append(csr_matrix(row))
        if constraint.sense == "max":
            cap_lb.append(-np.inf)
            cap_ub.append(constraint.bound)
        else:
            cap_lb.append(constraint.bound)
            cap_ub.append(np.inf)
    matrices = [a_rules, *cap_rows]
    lower = np.concatenate([*row_lb, np.asarray(cap_lb)]) if (row_lb or cap_lb) else np.zeros(0)
    upper = np.concatenate([*row_ub, np.asarray(cap_ub)]) if (row_ub or cap_ub) else np.zeros(0)
    a_all = vstack(matrices).tocsr()
    c = -np.concatenate(objective)
    res = milp(
        c,
        integrality=np.concatenate(integrality),
        bounds=Bounds(np.concatenate(lbs), np.concatenate(ubs)),
        constraints=[LinearConstraint(a_all, lower, upper)] if a_all.shape[0] else [],
        options={"mip_rel_gap": mip_rel_gap, "time_limit": time_limit, "presolve": True},
    )
    x = np.zeros((n, n_t, n_c, n_h), dtype=bool)
    if res.x is not None:
        x = res.x[x_index].reshape(n, n_t, n_c, n_h) > 0.5
    value = float(batch.schedule_value(x).sum())
    counts = x.sum(axis=0).astype(np.float64)
    usage = []
    for constraint in constraints:
        if constraint.attr is None:
            usage.append(float((constraint.weight * counts).sum()))
        else:
            attr = np.nan_to_num(
                np.stack(customers[f"attr_{constraint.attr}"].to_numpy())
                .astype(np.float64)
                .reshape(n, n_c, n_h)
            )
            sums = (x * attr[:, None]).sum(axis=0)
            usage.append(constraint.usage(counts, {constraint.attr: sums}))
    bound = getattr(res, "mip_dual_bound", None)
    return ReferenceResult(
        value=value,
        bound=float(-bound) if bound is not None and np.isfinite(bound) else float("nan"),
        x=x,
        usage=np.asarray(usage),
        customer_ids=[str(c) for c in customers["customer_id"]],
        status=int(res.status),
        message=str(res.message),
    )
