"""Independent re-check of a finished plan (policy, capacities, consent, eligibility, contacts).

Nothing here imports the solver, the policy compiler or the capacity constraint expansion:
the rule *models* are read from the configuration and every check is written again in
Spark, so a bug in the optimizer cannot hide behind the same bug in its checker. Nor does
it use the per-customer rule checker (:mod:`contact_spark.baseline.rules`) that the greedy
baseline, ``contact_decisions`` and the real-time check share, on purpose: the validator
re-checks the greedy plan and is the reference the real-time agreement tests compare the
real-time check with.
"""

from contact_spark.validation.capacity import capacity_usage
from contact_spark.validation.frames import VIOLATION_SCHEMA
from contact_spark.validation.run import PlanValidationError, ValidationInputs, validate_plan

__all__ = [
    "VIOLATION_SCHEMA",
    "PlanValidationError",
    "ValidationInputs",
    "capacity_usage",
    "validate_plan",
]
