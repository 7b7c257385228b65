"""Entry point of the per-customer kernel: validate, pick a solver, solve, report."""

from __future__ import annotations

from typing import Literal

import numpy as np

from contact_spark.policy.compiler import CompiledPolicy
from contact_spark.solver import label_dp
from contact_spark.solver.automaton import StateSpaceTooLargeError
from contact_spark.solver.catalogue import MAX_LABELS, get_catalogue_model, solve_catalogue
from contact_spark.solver.dp import OVERFLOW, disable_model, get_model, solve_dp
from contact_spark.solver.milp import solve_milp_with_bounds
from contact_spark.solver.problem import ErrorCode, KernelBatch, KernelResult, SolverKind

Method = Literal["auto", "dp", "label", "milp"]

# Labels a round before "auto" hands a catalogue customer to the MILP. Measured in
# session 8 (docs/benchmarks.md), seconds of kernel.solve("auto") at 20,000 / 50,000 labels:
# the 75 planned customers of `make run CONFIG=conf/examples/catalogue_50.yaml
# CUSTOMERS=100` 163 / 146 (the MILP needs ~2 s on each hard one); 200 of bench_milp's
# 50-offer customers 15.6 / 4.0 (the MILP needs 3-5 s on the hard ones there).
HANDOFF_LABELS = 50_000


def solve(
    policy: CompiledPolicy, batch: KernelBatch, method: Method = "auto", time_limit: float | None = None
) -> KernelResult:
    """Plan every customer of ``batch`` under ``policy``; never raises on bad customer data.

    ``auto`` uses the automaton DP when the policy's automaton is small enough, else the
    catalogue kernel (:mod:`contact_spark.solver.catalogue`: label DP with state-space
    refinement) when the policy's month actions can be enumerated, and the MILP for the
    rest: customers the DP overflowed, catalogue customers the kernel did not prove within
    ``HANDOFF_LABELS`` labels a round, or a min rule left without a legal plan. ``dp``
    raises StateSpaceTooLargeError instead of falling back; ``label`` forces the catalogue
    kernel (``MAX_LABELS`` a round; a customer past it keeps its legal plan with a proved
    upper bound, like a time-limited MILP; the MILP only where it finds no legal plan). ``time_limit`` bounds
    each MILP (seconds): a customer it cuts short keeps the best legal plan HiGHS found,
    with HiGHS's proved upper bound (``KernelResult.upper_bound``), or gets
    SOLVER_FAILURE when HiGHS found none.
    """
    n, n_t, n_c, n_h = batch.shape
    if (len(policy.campaigns), len(policy.channels)) != (n_c, n_h):
        raise ValueError(
            f"batch has {n_c} campaigns x {n_h} channels, policy is compiled for "
            f"{len(policy.campaigns)} x {len(policy.channels)}"
        )
    status = batch.validate()
    solver = np.zeros(n, dtype=np.int8)
    x = np.zeros((n, n_t, n_c, n_h), dtype=bool)
    objective = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    valid = np.flatnonzero(status == ErrorCode.OK)
    for_milp = valid
    if method in ("auto", "dp"):
        model = get_model(policy, n_t)
        if model is None and method == "dp":
            raise StateSpaceTooLargeError("the policy has too many month actions for the DP")
        if model is not None:
            try:
                acts, st, value = solve_dp(model, batch, valid)
            except StateSpaceTooLargeError:
                disable_model(policy, n_t)  # histories grew it too far: not from now on
                if method == "dp":
                    raise
            else:
                done = valid[st[valid] != OVERFLOW]
                x[done] = model.action_cells[acts[done]].reshape(-1, n_t, n_c, n_h)
                status[done] = st[done]
                objective[done] = value[done]
                upper[done] = value[done]
                solver[done] = SolverKind.DP
                for_milp = valid[st[valid] == OVERFLOW]
                if method == "dp" and for_milp.size:
                    raise StateSpaceTooLargeError(f"{for_milp.size} customers overflowed the DP")
    if method in ("auto", "label") and for_milp.size:
        catalogue = get_catalogue_model(policy, n_t)
        if catalogue is None and method == "label":
            raise StateSpaceTooLargeError("the policy's month actions cannot be enumerated")
        if catalogue is not None:
            # "auto": a smaller label budget, and the MILP for the few customers past it
            # (it is faster than a long label search there: measured on catalogue_50)
            budget = HANDOFF_LABELS if method == "auto" else MAX_LABELS
            sol = solve_catalogue(catalogue, batch, for_milp, budget)
            found = sol.status == label_dp.DONE if method == "auto" else sol.status != label_dp.NO_PLAN
            done = for_milp[found]
            x[done] = catalogue.action_cells[sol.actions[found]].reshape(-1, n_t, n_c, n_h)
            status[done] = ErrorCode.OK
            objective[done] = sol.value[found]
            upper[done] = sol.upper[found]
            solver[done] = SolverKind.LABEL
            for_milp = for_milp[~found]
    if for_milp.size:
        xm, sm, um = solve_milp_with_bounds(policy, batch, for_milp, time_limit=time_limit)
        # A time limit with a legal plan in hand and a finite bound: keep the plan, bounded.
        has_min = any(a.kind == "min" for a in policy.window_atoms)
        kept = (sm == ErrorCode.SOLVER_FAILURE) & np.isfinite(um)
        kept &= xm.reshape(n, -1).any(axis=1) | (not has_min)
        sm = np.where(kept, ErrorCode.OK, sm).astype(np.int8)
        x[for_milp] = xm[for_milp]
        status[for_milp] = sm[for_milp]
        solver[for_milp] = SolverKind.MILP
        objective[for_milp] = batch.subset(for_milp).schedule_value(x[for_milp])
        # HiGHS proves optimality to a 1e-6 relative gap: never report a bound below the plan.
        upper[for_milp] = np.maximum(um[for_milp], objective[for_milp])
    x[status != ErrorCode.OK] = False
    objective[status != ErrorCode.OK] = np.nan
    upper[status != ErrorCode.OK] = np.nan
    return KernelResult(x=x, objective=objective, status=status, solver=solver, upper_bound=upper)
