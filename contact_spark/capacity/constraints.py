"""Capacity rules expanded into linear constraints over chosen contacts.

Constraint ``k`` reads ``Σ_{i,t,c,h} a_k(i,t,c,h) · x(i,t,c,h)  ≤ b_k`` (``sense='max'``)
or ``≥ b_k`` (``sense='min'``) with

    a_k(i,t,c,h) = weight_k[t,c,h] · (attr_k(i,c,h) − offset_k)     (attr_k = 1 for counts)

so every constraint is known from a small ``[T, C, H]`` array, an optional attribute
name and an offset. The usage of every constraint is computed from per (month, cell)
aggregates: the number of chosen contacts and the sum of each attribute over them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contact_spark.config.capacity import CapacityRule, CapacitySettings, SpreadRule
from contact_spark.config.scope import Configured, Scoped
from contact_spark.planning.frame import Layout

Sense = Literal["max", "min"]


@dataclass(frozen=True)
class Constraint:
    """One linear capacity constraint (see module docstring)."""

    name: str
    rule: str
    sense: Sense
    bound: float
    weight: np.ndarray  # [T, C, H]
    attr: str | None = None
    offset: float = 0.0
    month: dt.date | None = None  # the first month of its period; None for the whole horizon
    label: str = "year"  # the period: 2027-08, 2027-Q3, 2027-01..2027-03 or year

    @property
    def sign(self) -> float:
        """+1 for a max (price charged), −1 for a min (price paid back)."""
        return 1.0 if self.sense == "max" else -1.0

    def usage(self, counts: np.ndarray, attr_sums: dict[str, np.ndarray]) -> float:
        """Σ a·x from ``counts[T, C, H]`` and per-attribute sums ``[T, C, H]``."""
        if self.attr is None:
            return float((self.weight * counts).sum())
        return float((self.weight * (attr_sums[self.attr] - self.offset * counts)).sum())


def _mask(layout: Layout, scope: Scoped) -> np.ndarray:
    names = scope.resolve(Configured.of(layout.campaigns, layout.channels))
    mask = np.zeros((len(layout.campaigns), len(layout.channels)))
    for ci, campaign in enumerate(layout.campaigns):
        for hi, channel in enumerate(layout.channels):
            if names.covers(campaign, channel):
                mask[ci, hi] = 1.0
    return mask


def _rule_constraints(rule: CapacityRule, layout: Layout, months: list[dt.date]) -> list[Constraint]:
    """One constraint per period of the rule (``config/periods.py``) and bound given: a month,
    a calendar quarter, a rolling window of N months or the whole horizon, each with the
    bounds of the exception lying around it, if any."""
    cell_mask = _mask(layout, rule)
    attr = rule.column if rule.measure != "contacts" else None
    out: list[Constraint] = []
    for period in rule.periods(months):
        month_mask = np.zeros(len(months))
        month_mask[period.start : period.start + period.length] = 1.0
        weight = month_mask[:, None, None] * cell_mask[None]
        # Names as before periods had kinds: ``rule[2027-08]`` for a month, ``rule`` for the horizon.
        name = rule.name if period.month is None else f"{rule.name}[{period.label}]"
        bounds: dict[Sense, float | None] = {"min": period.min, "max": period.max}
        for sense, bound in bounds.items():
            if bound is None:
                continue
            # avg(attr) ≤ b  ⇔  Σ (attr − b)·x ≤ 0
            rhs, offset = (0.0, float(bound)) if rule.measure == "average" else (float(bound), 0.0)
            out.append(
                Constraint(
                    f"{name}:{sense}", rule.name, sense, rhs, weight, attr, offset, period.month, period.label
                )
            )
    return out


def _spread_constraints(rule: SpreadRule, layout: Layout, months: list[dt.date]) -> list[Constraint]:
    cell_mask = _mask(layout, rule)
    n_t = len(months)
    out = []
    for t, month in enumerate(months):
        senses: tuple[tuple[Sense, float], ...] = (
            ("max", 1.0 + rule.tolerance),
            ("min", 1.0 - rule.tolerance),
        )
        for sense, factor in senses:
            # count_t − factor/T · Σ_s count_s  ≤ 0 (max) or ≥ 0 (min)
            month_weight = np.full(n_t, -factor / n_t)
            month_weight[t] += 1.0
            weight = month_weight[:, None, None] * cell_mask[None]
            out.append(
                Constraint(
                    f"{rule.name}[{month:%Y-%m}]:{sense}",
                    rule.name,
                    sense,
                    0.0,
                    weight,
                    None,
                    0.0,
                    month,
                    f"{month:%Y-%m}",
                )
            )
    return out


def expand_capacities(settings: CapacitySettings, layout: Layout, months: list[dt.date]) -> list[Constraint]:
    """All constraints of the capacity settings, in a stable order."""
    out: list[Constraint] = []
    for rule in settings.rules:
        out += _rule_constraints(rule, layout, months)
    for spread in settings.spread:
        out += _spread_constraints(spread, layout, months)
    return out


def attributes_needed(constraints: list[Constraint]) -> list[str]:
    """Attribute names the constraints need, sorted."""
    return sorted({c.attr for c in constraints if c.attr is not None})


def price_arrays(
    constraints: list[Constraint], prices: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Split the Lagrangian charge per contact into a global ``[T, C, H]`` part and, per
    attribute, a ``[T, C, H]`` multiplier of the attribute (the offset part is global)."""
    global_price = np.zeros(shape)
    attr_price: dict[str, np.ndarray] = {}
    for constraint, lam in zip(constraints, prices, strict=True):
        if lam == 0.0:
            continue
        signed = constraint.sign * lam * constraint.weight
        if constraint.attr is None:
            global_price += signed
        else:
            attr_price.setdefault(constraint.attr, np.zeros(shape))
            attr_price[constraint.attr] += signed
            global_price -= signed * constraint.offset
    return global_price, attr_price
