"""Capacity rules (global limits across customers), in the spirit of Unica's Capacity rules.

* ``measure: contacts`` – min/max number of contacts per channel (optionally per
  campaign), per month, calendar quarter, rolling window of N months or over the whole
  horizon (``period``), with exceptions for date ranges of whole months, optionally
  recurring every year (``config/periods.py``).
* ``measure: sum`` / ``average`` – custom capacity on a numeric attribute of the chosen
  contacts (``cost``, ``expected_value``, ``propensity``, a numeric offer attribute such as
  ``margin`` or ``success_value``, or a numeric customers column).
  An average bound is linear: ``Σ (attr − bound)·x ≤ 0``.
* ``measure: share`` – the share of the contacts in the ``of`` scope among the rule's own
  contacts (or of a ``column``'s sum), a fraction in [0, 1]: ``Σ_of x ≤ s · Σ_scope x`` is
  the linear row ``Σ_of x − s Σ_scope x ≤ 0``.
* ``measure: ratio`` – ``Σ column · x`` against ``k · Σ per · x`` (``k`` ≥ 0): the row
  ``Σ (column − k · per) · x ≥ 0`` (min) or ``≤ 0`` (max), e.g. expected value ≥ 0.2 × cost.
* ``spread`` – each month's volume within ``±tolerance`` of the yearly average.

Every bound is finite and at most ``MAX_MAGNITUDE`` (1e12) in size, and signed as its
measure allows: a number of contacts, and a sum or average of ``cost`` or ``propensity``,
cannot be negative; an average propensity is at most 1; and a sum's max cannot be negative
(even a plan with no contact sums to 0).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from contact_spark.config.base import MAX_MAGNITUDE, StrictModel
from contact_spark.config.periods import (
    CapacityException,
    MonthException,
    Period,
    PeriodKind,
    capacity_periods,
)
from contact_spark.config.scope import ANY, Catalogue, Resolved, Scoped

__all__ = [
    "CapacityException",
    "CapacityRule",
    "CapacitySettings",
    "MonthException",
    "Period",
    "ShareScope",
    "SpreadRule",
]

CONSTRAINT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BUILTIN_ATTRIBUTES = ("cost", "expected_value", "propensity")
NON_NEGATIVE_ATTRIBUTES = ("cost", "propensity")


class ShareScope(StrictModel, Scoped):
    """The part of a share rule's scope whose share is bounded: its contacts in these
    campaigns × channels (``of: {campaigns: {where: "family = 'mortgage'"}}``)."""

    campaigns: list[str] | Literal["any"] = ANY
    channels: list[str] | Literal["any"] = ANY


class CapacityRule(StrictModel, Scoped):
    """A min and/or max on the contacts (or an attribute of them) in a scope and period."""

    name: str
    measure: Literal["contacts", "sum", "average", "share", "ratio"] = "contacts"
    column: str | None = Field(
        None,
        description="Attribute for sum/average measures; a ratio's numerator; a share of its sum "
        "instead of the contacts.",
    )
    of: ShareScope | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="measure: share: the contacts (of the rule's scope) whose share is bounded.",
    )
    per: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="measure: ratio: the attribute of the denominator (Σ column·x vs k·Σ per·x).",
    )
    campaigns: list[str] | Literal["any"] = ANY
    channels: list[str] | Literal["any"] = ANY
    period: PeriodKind = Field(
        "month",
        description="month, quarter (calendar), rolling (every window of `months` consecutive months) "
        "or year (the whole horizon).",
    )
    months: int | None = Field(
        None, ge=1, le=36, exclude_if=lambda v: v is None, description="Window length of period: rolling."
    )
    min: float | None = None
    max: float | None = None
    exceptions: list[CapacityException] = Field(default_factory=list)
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
            raise ValueError(
                f"capacity rule '{self.name}': 'column' is only for sum, average, share and ratio measures"
            )
        self._check_share_ratio()
        if self.measure in ("sum", "average", "ratio") and not self.column:
            raise ValueError(
                f"capacity rule '{self.name}': a {self.measure} needs 'column' "
                f"({', '.join(BUILTIN_ATTRIBUTES)}, a numeric offer attribute or a numeric customers column)"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"capacity rule '{self.name}': min {self.min} is above max {self.max}")
        self._check_period()
        bounds = [("min", self.min), ("max", self.max)]
        for e in self.exceptions:
            bounds += [(f"exceptions {e.label} min", e.min), (f"exceptions {e.label} max", e.max)]
            low = e.min if e.min is not None else self.min
            high = e.max if e.max is not None else self.max
            if low is not None and high is not None and low > high:
                raise ValueError(f"capacity rule '{self.name}': in {e.label} min {low:g} is above max {high:g}")
        for key, bound in bounds:
            if bound is not None:
                self._check_bound(key, bound)
        return self

    def _check_share_ratio(self) -> None:
        """Raise ValueError, saying how to fix it, for ``of``/``per`` on the wrong measure or missing."""
        where = f"capacity rule '{self.name}'"
        if self.measure != "share" and self.of is not None:
            raise ValueError(
                f"{where}: 'of' is only for measure: share (this rule's measure is {self.measure})"
            )
        if self.measure != "ratio" and self.per is not None:
            raise ValueError(
                f"{where}: 'per' is only for measure: ratio (this rule's measure is {self.measure})"
            )
        if self.measure == "share":
            if self.of is None:
                raise ValueError(
                    f"{where}: measure: share needs 'of', the contacts whose share is bounded "
                    "(e.g. of: {campaigns: {where: \"family = 'mortgage'\"}})"
                )
            if self.of.campaigns == ANY and self.of.channels == ANY:
                raise ValueError(
                    f"{where}: of: names neither campaigns nor channels, so it is the rule's whole scope "
                    "(a share of 1): give of.campaigns or of.channels"
                )
        if self.measure == "ratio":
            if not self.per:
                raise ValueError(
                    f"{where}: measure: ratio needs 'per', the denominator's attribute (e.g. column: "
                    "expected_value, per: cost)"
                )
            if self.per == self.column:
                raise ValueError(
                    f"{where}: column and per are both '{self.per}': a ratio of 1; name two attributes"
                )

    def numerator(self, config: Catalogue) -> Resolved:
        """A share's numerator: the rule's own campaigns × channels that ``of`` holds too."""
        whole = self.resolve(config)
        if self.of is None:
            return whole
        part = self.of.resolve(config)
        return Resolved(
            tuple(c for c in whole.campaigns if c in part.campaigns),
            tuple(h for h in whole.channels if h in part.channels),
        )

    def _check_period(self) -> None:
        """Raise ValueError, saying how to fix it, for a period or exception that cannot hold."""
        where = f"capacity rule '{self.name}'"
        if self.period == "rolling" and self.months is None:
            raise ValueError(
                f"{where}: period: rolling needs months: N, the length of the window in months (e.g. months: 3)"
            )
        if self.period != "rolling" and self.months is not None:
            raise ValueError(
                f"{where}: months is only for period: rolling (this rule's period is {self.period}): "
                "remove it or set period: rolling"
            )
        if self.exceptions and self.period == "year":
            raise ValueError(
                f"{where}: period: year is the whole horizon, so an exception would replace its bounds "
                "everywhere: change min/max, or use period: month, quarter or rolling"
            )
        for i, e in enumerate(self.exceptions):
            problem = e.problem()
            if problem is not None:
                raise ValueError(f"{where}: exceptions[{i}]: {problem}")
        for i, e in enumerate(self.exceptions):
            for j in range(i):
                if self.exceptions[j].overlaps(e):
                    raise ValueError(
                        f"{where}: exceptions[{j}] ({self.exceptions[j].label}) and exceptions[{i}] ({e.label}) "
                        "share a month: a period takes the bounds of one exception; make the ranges disjoint"
                    )

    def periods(self, months: list[dt.date]) -> list[Period]:
        """Every period of the horizon ``months`` with its bounds (``config/periods.py``)."""
        return capacity_periods(self.period, self.months, self.min, self.max, list(self.exceptions), months)

    def _check_bound(self, key: str, bound: float) -> None:
        """Raise ValueError, saying how to fix it, for a bound the measure cannot take."""
        where = f"capacity rule '{self.name}': {key} {bound:g}"
        if abs(bound) > MAX_MAGNITUDE:
            raise ValueError(
                f"{where} is beyond ±{MAX_MAGNITUDE:g}: give a realistic bound "
                f"(leave '{key.split()[-1]}' out for no limit)"
            )
        if self.measure == "contacts" and bound < 0:
            raise ValueError(f"{where}: a number of contacts cannot be negative: give a bound >= 0")
        if self.measure == "share":
            if not 0 <= bound <= 1:
                raise ValueError(f"{where}: a share is a fraction in [0, 1]: give e.g. 0.5 for 50 %")
            return
        if self.measure == "ratio":
            if bound < 0:
                raise ValueError(
                    f"{where}: a ratio bound k (Σ {self.column} ≥ k · Σ {self.per}) cannot be negative: give k >= 0"
                )
            return
        if self.column in NON_NEGATIVE_ATTRIBUTES and bound < 0:
            raise ValueError(
                f"{where}: a {self.measure} of {self.column} cannot be negative: give a bound >= 0"
            )
        if self.measure == "sum" and key.endswith("max") and bound < 0:
            raise ValueError(
                f"{where}: a negative max on a sum can never hold (a plan with no contact sums to 0): "
                "give a max >= 0"
            )
        if self.measure == "average" and self.column == "propensity" and bound > 1:
            raise ValueError(f"{where}: an average propensity is at most 1: give e.g. 0.05 for 5 %")


class SpreadRule(StrictModel, Scoped):
    """Each month's contacts in scope within ``tolerance`` of the yearly monthly average."""

    name: str
    campaigns: list[str] | Literal["any"] = ANY
    channels: list[str] | Literal["any"] = ANY
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
    gap_tolerance: float = Field(
        1e-3, gt=0, le=1, description="Stop when the relative dual/primal gap is below."
    )
    initial_step: float = Field(
        0.5,
        gt=0,
        le=50,
        description="Initial box radius of the bundle method, in mean contact values "
        "(at most 50: no price goes higher).",
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
    batches: int = Field(
        0, ge=0, le=10_000, description="Customer batches (Spark partitions); 0 = automatic."
    )
    master_node_limit: int = Field(
        2000,
        ge=0,
        le=1_000_000,
        description="Branch-and-bound nodes of the restricted master (the best mix of the schedules the "
        "price iterations found, docs/capacity.md); 0 turns the master step off.",
    )
    master_time_limit: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="Safety limit of the master MILP, in seconds (the node limit bounds it first).",
    )
    master_max_customers: int = Field(
        20_000,
        ge=1,
        le=1_000_000,
        description="At most this many split customers (schedules differing between price vectors) go to the "
        "master; the rest keep the kept prices' schedule.",
    )
    master_rounds: int = Field(
        4,
        ge=0,
        le=50,
        description="Column-generation rounds of the master (split customers solved at its LP prices).",
    )
    master_price_sets: int = Field(
        8,
        ge=1,
        le=64,
        description="Price vectors every customer is solved at to find the split ones and their columns.",
    )


class CapacitySettings(StrictModel):
    """All global capacity rules and the method enforcing them."""

    rules: list[CapacityRule] = Field(default_factory=list)
    spread: list[SpreadRule] = Field(default_factory=list)
    lagrangian: LagrangianSettings = LagrangianSettings()

    def period_labels(self, months: list[dt.date]) -> dict[tuple[str, dt.date | None], str]:
        """(rule, first month of a period, None for the whole horizon) → the period's label:
        2027-08, 2027-Q3, 2027-01..2027-03 for a rolling window, or year."""
        return {(r.name, p.month): p.label for r in self.rules for p in r.periods(months)}

    @model_validator(mode="after")
    def _unique(self) -> CapacitySettings:
        names = [r.name for r in self.rules] + [s.name for s in self.spread]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"capacity rule names must be unique: {sorted(dup)} used twice")
        return self
