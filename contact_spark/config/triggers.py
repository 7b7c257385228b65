"""Trigger configuration: what each event type does to a customer's plan.

An event (``events`` table: customer_id, event_type, event_time, attributes) is active
from the month of ``event_time`` for ``months`` months. While active, its effects apply:

* ``campaign`` – a triggered campaign (declared in ``campaigns`` with ``trigger_only: true``)
  may be planned, on the channels of ``propensity`` with those success probabilities
  (the channel preferences; a row of the propensities table for the customer wins);
* ``suppress`` – the campaigns × channels in scope are not eligible (e.g. a complaint);
* ``boost`` – the propensity of the campaigns × channels in scope is multiplied by
  ``factor`` (capped at 1), e.g. a contract about to end.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from contact_spark.config.base import StrictModel
from contact_spark.config.scope import ANY, Scoped

EVENT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class EffectScope(StrictModel, Scoped):
    """Campaigns × channels an effect applies to."""

    campaigns: list[str] | Literal["any"] = ANY
    channels: list[str] | Literal["any"] = ANY


class Boost(EffectScope):
    factor: float = Field(gt=0, description="Propensity multiplier while the event is active (capped at 1).")


class TriggerEffect(StrictModel):
    """What one event type does while it is active."""

    months: int = Field(1, ge=1, le=36, description="Months the effect lasts, from the event's month.")
    campaign: str | None = Field(
        None, description="Triggered campaign (campaigns.<name>.trigger_only: true)."
    )
    propensity: dict[str, float] = Field(
        default_factory=dict, description="Channel → success probability of the triggered campaign."
    )
    suppress: EffectScope | None = None
    boost: Boost | None = None
    description: str = ""

    @field_validator("propensity")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, p in value.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"propensity of channel {channel} is {p}: give a probability in [0, 1]")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> TriggerEffect:
        if self.campaign is None and self.suppress is None and self.boost is None:
            raise ValueError("an event type needs at least one effect: campaign, suppress or boost")
        if self.campaign is not None and not self.propensity:
            raise ValueError(
                f"triggered campaign {self.campaign} needs 'propensity' per channel, e.g. {{TLS: 0.1, SMS: 0.05}}"
            )
        if self.campaign is None and self.propensity:
            raise ValueError("'propensity' is for a triggered campaign: set 'campaign' too")
        return self


class TriggerSettings(StrictModel):
    """Event types and their effects (see module docstring)."""

    events: dict[str, TriggerEffect] = Field(default_factory=dict)

    @field_validator("events")
    @classmethod
    def _names(cls, value: dict[str, TriggerEffect]) -> dict[str, TriggerEffect]:
        for name in value:
            if not EVENT_TYPE.match(name):
                raise ValueError(f"event type '{name}' must be upper-case letters, digits and _ (e.g. MOVE)")
        return value
