"""Capacity periods and exceptions: which months a capacity's bound covers, and where it changes.

A capacity rule (``config/capacity.py``) bounds the contacts of every *period* of the plan
horizon:

* ``month`` – each month;
* ``quarter`` – each calendar quarter (Jan–Mar, Apr–Jun, …); a horizon that starts or ends
  inside a quarter gives a shorter first or last period, its months of that quarter;
* ``rolling`` (with ``months: N``) – every window of N consecutive months of the horizon
  (N − 1 windows overlap each month); the contact history before the horizon does not
  count, and a horizon shorter than N is one window;
* ``year`` – the whole horizon, once.

An *exception* gives other bounds to the periods that lie wholly inside its dates. Its dates
are whole months: ``month: 2027-08-01`` (the old form), or ``from``/``to`` (``from`` the first
day of a month, ``to`` the last day of one, or ``2027-07``/``2027-08``), optionally
``every_year: true`` to recur on the same months each year (Unica's recurring exceptions).

This module is configuration only: the capacity engine, the greedy baseline, the
real-time check and the report expand periods with :func:`capacity_periods`; the plan
validator derives them again on its own (``validation/capacity.py``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from contact_spark.config.base import StrictModel

PeriodKind = Literal["month", "quarter", "rolling", "year"]
YEAR_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


def _month_number(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _month_of(number: int) -> dt.date:
    return dt.date(number // 12, number % 12 + 1, 1)


def _year_month(value: Any, last_day: bool) -> Any:
    """``"2027-08"`` → 2027-08-01 (or 2027-08-31 for a ``to``); anything else unchanged."""
    if isinstance(value, str) and (match := YEAR_MONTH.match(value)):
        year, month = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12:
            day = calendar.monthrange(year, month)[1] if last_day else 1
            return dt.date(year, month, day)
    return value


class CapacityException(StrictModel):
    """Other bounds for the periods lying wholly inside a range of whole months.

    Either ``month`` (one month, the first day of it) or ``from`` and ``to``; with
    ``every_year`` the same months recur each year. The checks that need the rule's name
    (whole months, order, overlaps) are made by the rule (``CapacityRule``)."""

    month: dt.date | None = Field(None, exclude_if=lambda v: v is None)
    start: dt.date | None = Field(
        None, alias="from", exclude_if=lambda v: v is None, description="First day of the first month."
    )
    to: dt.date | None = Field(
        None, exclude_if=lambda v: v is None, description="Last day of the last month."
    )
    every_year: bool = Field(
        False, exclude_if=lambda v: not v, description="Recur on the same months every year."
    )
    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, ge=0)

    @field_validator("month", "start", mode="before")
    @classmethod
    def _first_of(cls, value: Any) -> Any:
        return _year_month(value, last_day=False)

    @field_validator("to", mode="before")
    @classmethod
    def _last_of(cls, value: Any) -> Any:
        return _year_month(value, last_day=True)

    def problem(self) -> str | None:
        """What is wrong with the dates, saying how to fix it (None when they are right)."""
        if self.month is not None:
            if self.start is not None or self.to is not None:
                return "give either month: or from:/to:, not both"
            if self.month.day != 1:
                return (
                    f"month {self.month} must be the first day of a month, e.g. {self.month.replace(day=1)}"
                )
            return None
        if self.start is None or self.to is None:
            return "give month: 2027-08-01, or from: and to: (e.g. from: 2027-07-01, to: 2027-08-31)"
        if self.start.day != 1:
            return (
                f"from {self.start} is not the first day of a month: the plan is monthly, so an exception "
                f"covers whole months: give from: {self.start.replace(day=1)}"
            )
        last = calendar.monthrange(self.to.year, self.to.month)[1]
        if self.to.day != last:
            return (
                f"to {self.to} is not the last day of a month: the plan is monthly, so an exception covers "
                f"whole months: give to: {self.to.replace(day=last)}"
            )
        if self.to < self.start:
            return f"to {self.to} is before from {self.start}: give the range in order"
        if self.every_year and self.last - self.first >= 12:
            return (
                f"from {self.start} to {self.to} is longer than a year: a recurring exception covers at most "
                "12 months of each year"
            )
        return None

    @property
    def first(self) -> int:
        """Absolute month number of the first month covered."""
        day = self.month if self.month is not None else self.start
        assert day is not None  # problem() is None for a validated exception
        return _month_number(day)

    @property
    def last(self) -> int:
        """Absolute month number of the last month covered."""
        day = self.month if self.month is not None else self.to
        assert day is not None
        return _month_number(day)

    def covers(self, month: dt.date) -> bool:
        """Whether the exception's dates include ``month`` (any day of it)."""
        number = _month_number(month)
        if not self.every_year:
            return self.first <= number <= self.last
        # Months of the year from the first to the last, wrapping over December.
        return (number - self.first) % 12 <= self.last - self.first

    def months_of_year(self) -> set[int]:
        """Calendar months (0 = January) a recurring exception covers."""
        return {(self.first + i) % 12 for i in range(self.last - self.first + 1)}

    def overlaps(self, other: CapacityException) -> bool:
        """Whether some month is covered by both exceptions."""
        if self.every_year or other.every_year:
            mine = self.months_of_year() if self.every_year else None
            theirs = other.months_of_year() if other.every_year else None
            if mine is not None and theirs is not None:
                return bool(mine & theirs)
            fixed, recurring = (self, theirs) if mine is None else (other, mine)
            assert recurring is not None
            return any(n % 12 in recurring for n in range(fixed.first, fixed.last + 1))
        return self.first <= other.last and other.first <= self.last

    @property
    def label(self) -> str:
        """``2027-08``, ``2027-07..2027-08`` or ``07..08 every year``."""
        first, last = _month_of(self.first), _month_of(self.last)
        if self.every_year:
            span = f"{first:%m}" if self.first == self.last else f"{first:%m}..{last:%m}"
            return f"{span} every year"
        return f"{first:%Y-%m}" if self.first == self.last else f"{first:%Y-%m}..{last:%Y-%m}"


# The old name of the exception model, when it could only be one month.
MonthException = CapacityException


@dataclass(frozen=True)
class Period:
    """One period of a capacity rule over the horizon: months ``start .. start+length-1``
    (plan month indices), its label and its bounds (an exception's, where one applies)."""

    start: int
    length: int
    month: dt.date | None  # names the period in tables: its first month; None for ``year``
    label: str  # 2027-08, 2027-Q3, 2027-01..2027-03 or year
    min: float | None
    max: float | None
    exception: CapacityException | None

    @property
    def months(self) -> range:
        return range(self.start, self.start + self.length)


def period_spans(kind: PeriodKind, window: int | None, months: list[dt.date]) -> list[tuple[int, int, str]]:
    """``(start, length, label)`` of every period of the horizon ``months``, in order."""
    if kind == "year":
        return [(0, len(months), "year")]
    if kind == "month":
        return [(t, 1, f"{m:%Y-%m}") for t, m in enumerate(months)]
    if kind == "quarter":
        spans: list[tuple[int, int, str]] = []
        for t, m in enumerate(months):
            label = f"{m.year}-Q{(m.month - 1) // 3 + 1}"
            if spans and spans[-1][2] == label:
                start, length, _ = spans[-1]
                spans[-1] = (start, length + 1, label)
            else:
                spans.append((t, 1, label))
        return spans
    length = min(window or 1, len(months))
    out = []
    for start in range(len(months) - length + 1):
        first, last = months[start], months[start + length - 1]
        out.append((start, length, f"{first:%Y-%m}" if length == 1 else f"{first:%Y-%m}..{last:%Y-%m}"))
    return out


def capacity_periods(
    kind: PeriodKind,
    window: int | None,
    low: float | None,
    high: float | None,
    exceptions: list[CapacityException],
    months: list[dt.date],
) -> list[Period]:
    """Every period of the horizon ``months`` with its bounds: an exception's ``min``/``max``
    (where given) replace the rule's for the periods lying wholly inside its dates."""
    out = []
    for start, length, label in period_spans(kind, window, months):
        inside = months[start : start + length]
        applies = [e for e in exceptions if all(e.covers(m) for m in inside)]
        exception = applies[0] if applies else None  # exceptions never overlap (CapacityRule)
        period_min = exception.min if exception is not None and exception.min is not None else low
        period_max = exception.max if exception is not None and exception.max is not None else high
        month = None if kind == "year" else months[start]
        out.append(Period(start, length, month, label, period_min, period_max, exception))
    return out
