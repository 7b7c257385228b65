"""The capacity engine's result: the feasible plan's solve and its certificate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import DataFrame

from contact_spark.capacity.constraints import Constraint


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
