"""The base of every configuration model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base for all config sections: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
