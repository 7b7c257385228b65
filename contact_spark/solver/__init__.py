"""Per-customer kernel: plan each customer's next months under the compiled policy.

``solve(compiled_policy, KernelBatch) -> KernelResult`` picks the exact DP (automaton over
months, :mod:`contact_spark.solver.dp`) when the policy's state space is small enough and
the reference MILP (:mod:`contact_spark.solver.milp`) otherwise. Plain NumPy/numba, no Spark.
"""

from contact_spark.solver.automaton import StateSpaceTooLargeError
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch, KernelResult, SolverKind

__all__ = ["ErrorCode", "KernelBatch", "KernelResult", "SolverKind", "StateSpaceTooLargeError", "solve"]
