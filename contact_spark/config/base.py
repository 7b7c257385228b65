"""The base of every configuration model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# No count, budget or value of a plan comes near this; beyond it the price arithmetic of the
# capacity stage (price × bound, summed over constraints) loses every digit or overflows.
MAX_MAGNITUDE = 1e12


class StrictModel(BaseModel):
    """Base for all config sections: unknown keys are rejected, values are immutable, and
    every number is finite (``.nan``, ``.inf`` and the strings ``nan``/``inf`` are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
