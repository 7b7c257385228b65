"""Capacity rules (global limits across customers), in the spirit of Unica's Capacity rules.

* ``measure: contacts`` – min/max number of contacts per channel (optionally per
  campaign), per month or over the year, with exceptions for given months.
* ``measure: sum`` / ``average`` – custom capacity on a numeric attribute of the chosen
  contacts (``cost``, ``expected_value``, ``propensity`` or a numeric customers column).
  An average bound is linear: ``Σ (attr − bound)·x ≤ 0``.
* ``spread`` – each month's volume within ``±tolerance`` of the yearly average.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from contact_spark.config.base import StrictModel

CONSTRAINT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BUILTIN_ATTRIBUTES = ("cost", "expected_value", "propensity")


class MonthException(StrictModel):
    """Different bounds for one month (e.g. August capacity halved)."""

    month: dt.date
    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, ge=0)

    @field_validator("month")
    @classmethod
    def _first_day(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError(f"must be the first day of a month, e.g. {value.replace(day=1).isoformat()}")
        return value


class CapacityRule(StrictModel):
    """A min and/or max on the contacts (or an attribute of them) in a scope and period."""

    name: str
    measure: Literal["contacts", "sum", "average"] = "contacts"
    column: str | None = Field(None, description="Attribute for sum/average measures.")
    campaigns: list[str] | Literal["any"] = "any"
    channels: list[str] | Literal["any"] = "any"
    period: Literal["month", "year"] = "month"
    min: float | None = None
    max: float | None = None
    exceptions: list[MonthException] = Field(default_factory=list)
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not CONSTRAINT_NAME.match(value):
            raise ValueError(f"capacity rule name '{value}' must be lower-case letters, digits and _")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CapacityRule:
        if self.min is None and self.max is None and not self.exceptions:
            raise ValueError(f"capacity rule '{self.name}' has neither 'min' nor 'max'")
        if self.measure == "contacts" and self.column is not None:
            raise ValueError(f"capacity rule '{self.name}': 'column' is only for sum/average measures")
        if self.measure != "contacts" and not self.column:
            raise ValueError(
                f"capacity rule '{self.name}': a {self.measure} needs 'column' "
                f"({', '.join(BUILTIN_ATTRIBUTES)} or a numeric customers column)"
            )
        if self.measure == "contacts":
            for bound in (self.min, self.max):
                if bound is not None and bound < 0:
                    raise ValueError(f"capacity rule '{self.name}': a number of contacts cannot be negative")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"capacity rule '{self.name}': min {self.min} is above max {self.max}")
        if self.exceptions and self.period != "month":
            raise ValueError(f"capacity rule '{self.name}': month exceptions need period: month")
        return self


class SpreadRule(StrictModel):
    """Each month's contacts in scope within ``tolerance`` of the yearly monthly average."""

    name: str
    campaigns: list[str] | Literal["any"] = "any"
    channels: list[str] | Literal["any"] = "any"
    tolerance: float = Field(0.25, gt=0, le=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not CONSTRAINT_NAME.match(value):
            raise ValueError(f"spread rule name '{value}' must be lower-case letters, digits and _")
        return value


class LagrangianSettings(StrictModel):
    """Price iterations: bundle method on the smoothed dual, then a primal price phase (docs/capacity.md)."""

    max_iterations: int = Field(30, ge=0, le=500)
    gap_tolerance: float = Field(1e-3, gt=0, description="Stop when the relative dual/primal gap is below.")
    initial_step: float = Field(
        0.5, gt=0, description="Initial box radius of the bundle method, in mean contact values."
    )
    smoothing: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="Smoothing charge per contact (random, deterministic per customer and slot), "
        "at most this share of the mean contact value.",
    )
    repair_rounds: int = Field(
        12, ge=1, le=100, description="Trim rounds; the primal price phase gets twice as many."
    )
    batches: int = Field(0, ge=0, description="Customer batches (Spark partitions); 0 = automatic.")


class CapacitySettings(StrictModel):
    """All global capacity rules and the method enforcing them."""

    rules: list[CapacityRule] = Field(default_factory=list)
    spread: list[SpreadRule] = Field(default_factory=list)
    lagrangian: LagrangianSettings = LagrangianSettings()

    @model_validator(mode="after")
    def _unique(self) -> CapacitySettings:
        names = [r.name for r in self.rules] + [s.name for s in self.spread]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"capacity rule names must be unique: {sorted(dup)} used twice")
        return self
