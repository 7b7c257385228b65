"""Campaign calendars: the months an offer runs (its flight), optionally per channel.

``campaigns.<NAME>.flight: {from: 2027-03-01, to: 2027-06-30}`` (whole months; ``2027-03``
and ``2027-06`` also do) and ``channels: {TLS: {from: ..., to: ...}}`` for a channel whose
run is shorter. A campaign without ``flight`` runs every month of the horizon on every
channel; a contact outside the flight is never planned (solver, greedy), refused in real
time and a violation of the validator (reason ``OUTSIDE_FLIGHT``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from pydantic import Field, field_validator, model_validator

from contact_spark.config.base import StrictModel
from contact_spark.config.periods import _year_month

OUTSIDE_FLIGHT = "OUTSIDE_FLIGHT"


class MonthRange(StrictModel):
    """Whole months from the first day of ``from`` to the last day of ``to``."""

    start: dt.date = Field(alias="from", description="First day of the first month the offer runs.")
    to: dt.date = Field(description="Last day of the last month the offer runs.")

    @field_validator("start", mode="before")
    @classmethod
    def _first_of(cls, value: Any) -> Any:
        return _year_month(value, last_day=False)

    @field_validator("to", mode="before")
    @classmethod
    def _last_of(cls, value: Any) -> Any:
        return _year_month(value, last_day=True)

    @model_validator(mode="after")
    def _whole_months(self) -> MonthRange:
        if self.start.day != 1:
            raise ValueError(
                f"from {self.start} is not the first day of a month: the plan is monthly, so a flight "
                f"covers whole months: give from: {self.start.replace(day=1)}"
            )
        last = calendar.monthrange(self.to.year, self.to.month)[1]
        if self.to.day != last:
            raise ValueError(
                f"to {self.to} is not the last day of a month: the plan is monthly, so a flight "
                f"covers whole months: give to: {self.to.replace(day=last)}"
            )
        if self.to < self.start:
            raise ValueError(f"to {self.to} is before from {self.start}: give the range in order")
        return self

    def covers(self, month: dt.date) -> bool:
        """Whether the month starting on ``month`` lies inside the range."""
        return self.start <= month <= self.to


class Flight(MonthRange):
    """The months a campaign runs; ``channels`` narrows the run on some channels."""

    channels: dict[str, MonthRange] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Per channel: a shorter run of the offer on that channel, inside the flight.",
    )

    @model_validator(mode="after")
    def _channels_inside(self) -> Flight:
        for name, run in self.channels.items():
            if run.start < self.start or run.to > self.to:
                raise ValueError(
                    f"channels.{name} runs {run.start} to {run.to}, outside the flight {self.start} to "
                    f"{self.to}: give the channel a range inside the flight"
                )
        return self

    def runs(self, channel: str, month: dt.date) -> bool:
        """Whether the offer may be contacted on ``channel`` in the month starting ``month``."""
        run = self.channels.get(channel, self)
        return self.covers(month) and run.covers(month)
