"""Capacity rules expanded into linear constraints over chosen contacts.

Constraint ``k`` reads ``Σ_{i,t,c,h} a_k(i,t,c,h) · x(i,t,c,h)  ≤ b_k`` (``sense='max'``)
or ``≥ b_k`` (``sense='min'``) with

    a_k(i,t,c,h) = weight_k[t,c,h] · (attr_k(i,c,h) − offset_k)     (attr_k = 1 for counts)

so every constraint is known from a small ``[T, C, H]`` array, an optional attribute
name and an offset: a number (an average's bound), or per slot ``[T, C, H]`` (a ratio's
``k · per`` of the slot's offer and channel). The usage of every constraint is computed
from per (month, cell) aggregates: the number of chosen contacts and the sum of each
attribute over them.

A share or a ratio is a row with a zero bound and weights of both signs, like a spread:
``Σ_of x − s Σ_scope x`` weighs a contact of ``of`` ``1 − s`` and any other contact of the
scope ``−s``; a ratio weighs a contact by ``column − k · per``. Its min is built as the max
of the opposite row (``Σ (k · per − column)·x ≤ 0``, named ``rule:min``), so that the
repair makes it hold exactly like every max. The dual certificate holds for any sign (it
is weak duality on the rows as written); the repair bans only contacts of positive weight
in an exceeded max (a share max's ``of`` contacts, a ratio min's contacts below the
ratio), whose removal lowers the row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contact_spark.config.capacity import CapacityRule, CapacitySettings, SpreadRule
from contact_spark.config.models import AppConfig
from contact_spark.config.scope import Configured, Resolved, Scoped
from contact_spark.planning.frame import Layout

Sense = Literal["max", "min"]
#: Per-cell values (campaign by campaign, channel by channel) of a capacity attribute fixed
#: by the offer and the channel; None for an attribute of the customer.
CellValues = Callable[[str], "list[float] | None"]


def cell_attribute(config: AppConfig, layout: Layout, name: str) -> list[float] | None:
    """The value per cell of a capacity attribute fixed by the offer and the channel: the
    contact's cost, or a numeric offer attribute (0 on a campaign without it, which the
    config lets no capacity count); None for an attribute of the customer."""
    if name == "cost":
        return [config.contact_cost(c, h) for c in layout.campaigns for h in layout.channels]
    offer = config.offer_values(name)
    if offer is None:
        return None
    return [offer.get(c, 0.0) for c in layout.campaigns for _ in layout.channels]


def config_cells(config: AppConfig, layout: Layout) -> CellValues:
    """:func:`cell_attribute` of ``config`` on ``layout``: what a ratio's expansion reads."""
    return lambda name: cell_attribute(config, layout, name)


@dataclass(frozen=True)
class Constraint:
    """One linear capacity constraint (see module docstring)."""

    name: str
    rule: str
    sense: Sense
    bound: float
    weight: np.ndarray  # [T, C, H]
    attr: str | None = None
    offset: float | np.ndarray = 0.0  # a number, or per slot [T, C, H] (a ratio's k · per)
    month: dt.date | None = None  # the first month of its period; None for the whole horizon
    label: str = "year"  # the period: 2027-08, 2027-Q3, 2027-01..2027-03 or year
    # A share's or a ratio's row: contacts of negative weight, paid by a max's price to hold
    # it, which the repair's dropping rounds keep at that price (dropping one raises the row).
    two_sided: bool = False

    @property
    def sign(self) -> float:
        """+1 for a max (price charged), −1 for a min (price paid back)."""
        return 1.0 if self.sense == "max" else -1.0

    @property
    def offsets(self) -> np.ndarray:
        """The offset of every slot, ``[T, C, H]``."""
        return np.broadcast_to(np.asarray(self.offset, dtype=np.float64), self.weight.shape)

    @property
    def has_offset(self) -> bool:
        return bool(np.any(np.asarray(self.offset) != 0.0))

    def usage(self, counts: np.ndarray, attr_sums: dict[str, np.ndarray]) -> float:
        """Σ a·x from ``counts[T, C, H]`` and per-attribute sums ``[T, C, H]``."""
        if self.attr is None:
            return float((self.weight * counts).sum())
        return float((self.weight * (attr_sums[self.attr] - self.offset * counts)).sum())


def _mask(layout: Layout, scope: Scoped | Resolved) -> np.ndarray:
    names = (
        scope
        if isinstance(scope, Resolved)
        else scope.resolve(Configured.of(layout.campaigns, layout.channels))
    )
    mask = np.zeros((len(layout.campaigns), len(layout.channels)))
    for ci, campaign in enumerate(layout.campaigns):
        for hi, channel in enumerate(layout.channels):
            if names.covers(campaign, channel):
                mask[ci, hi] = 1.0
    return mask


def _share_or_ratio(
    rule: CapacityRule, layout: Layout, weight: np.ndarray, k: float, cells: CellValues | None
) -> tuple[np.ndarray, str | None, float | np.ndarray]:
    """(weight, attribute, offset) of a share's or a ratio's row for the bound ``k``, the
    row's bound being 0. ``weight`` is the period's months × the rule's scope."""
    if rule.measure == "share":
        # Σ_of a·x − s Σ_scope a·x: the of-contacts weigh 1 − s, the others of the scope −s.
        numerator = _mask(layout, rule.numerator(Configured.of(layout.campaigns, layout.channels)))
        return weight * (numerator[None] - k), rule.column, 0.0
    assert rule.column is not None and rule.per is not None  # checked at config load
    if cells is None:
        raise ValueError(
            f"capacity rule '{rule.name}': a ratio's expansion needs the per-cell attribute values"
        )
    shape = (len(layout.campaigns), len(layout.channels))
    per, column = cells(rule.per), cells(rule.column)
    if per is not None:  # Σ (column − k·per)·x: per is the slot's, an offset of column
        return (
            weight,
            rule.column,
            np.broadcast_to(k * np.asarray(per).reshape(shape)[None], weight.shape).copy(),
        )
    assert column is not None  # config load: one side is fixed by the offer and channel
    if k == 0.0:  # Σ column·x alone: the slot's own value
        return weight * np.asarray(column).reshape(shape)[None], None, 0.0
    # column − k·per = −k·(per − column/k): per is the customer's attribute
    offset = np.broadcast_to(np.asarray(column).reshape(shape)[None] / k, weight.shape).copy()
    return -k * weight, rule.per, offset


def _rule_constraints(
    rule: CapacityRule, layout: Layout, months: list[dt.date], cells: CellValues | None = None
) -> list[Constraint]:
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
            row_weight, row_attr, row_sense = weight, attr, sense
            offset: float | np.ndarray
            if rule.measure in ("share", "ratio"):
                row_weight, row_attr, offset = _share_or_ratio(rule, layout, weight, float(bound), cells)
                rhs = 0.0
                if sense == "min":
                    # Σ a·x ≥ 0 is the max Σ (−a)·x ≤ 0: the repair then makes it hold exactly,
                    # as it does every max (a min is otherwise only pursued by its price).
                    row_weight, row_sense = -row_weight, "max"
            elif rule.measure == "average":  # avg(attr) ≤ b  ⇔  Σ (attr − b)·x ≤ 0
                rhs, offset = 0.0, float(bound)
            else:
                rhs, offset = float(bound), 0.0
            out.append(
                Constraint(
                    f"{name}:{sense}",
                    rule.name,
                    row_sense,
                    rhs,
                    row_weight,
                    row_attr,
                    offset,
                    period.month,
                    period.label,
                    rule.measure in ("share", "ratio"),
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


def expand_capacities(
    settings: CapacitySettings, layout: Layout, months: list[dt.date], cells: CellValues | None = None
) -> list[Constraint]:
    """All constraints of the capacity settings, in a stable order. A ratio rule needs
    ``cells`` (:func:`config_cells`): the per-cell values of its offer-fixed side."""
    out: list[Constraint] = []
    for rule in settings.rules:
        out += _rule_constraints(rule, layout, months, cells)
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
