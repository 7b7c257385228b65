"""Capacity information for a real-time check: how full the channel's capacity is.

Capacities are global (all customers together) and real-time contacts are made during an
interaction the customer started, outside the planned outbound volume, so a capacity never
forbids a real-time contact: the check reports it as a note (``CAPACITY``, or
``CAPACITY_EXCEEDED`` when this contact would take the usage past the maximum) for the
capacity rules whose scope holds the contact. Usage = the run's plan + the contacts
confirmed in real time, counted as contacts, or summed for ``measure: sum`` of the
contact's cost (the campaign's ``channel_costs``, else the channel's) or of a numeric offer
attribute (``margin``: known per campaign); sums of other columns and averages are not
reported.
"""

from __future__ import annotations

from collections.abc import Mapping

from contact_spark.config.capacity import CapacityRule
from contact_spark.config.models import AppConfig
from contact_spark.io.months import month_number
from contact_spark.realtime.models import CAPACITY, CAPACITY_EXCEEDED, Reason
from contact_spark.realtime.policy import Cell, EventKey, month_label


class CapacityIndex:
    """The reportable capacity rules per cell, and their bounds."""

    def __init__(self, config: AppConfig) -> None:
        self.costs = {
            (c, h): config.contact_cost(c, h) for c in config.campaign_names for h in config.channel_names
        }
        # Offer attributes a sum may read per contact, like the cost (campaign → value).
        self.offers = {
            rule.column: values
            for rule in config.capacities.rules
            if rule.column
            and rule.column != "cost"
            and (values := config.offer_values(rule.column)) is not None
        }
        self.first_month = month_number(config.run.first_month)
        self.horizon = config.run.horizon_months
        rules: list[tuple[CapacityRule, frozenset[Cell]]] = []
        for rule in config.capacities.rules:
            summable = rule.column == "cost" or rule.column in self.offers
            if rule.measure == "contacts" or (rule.measure == "sum" and summable):
                rules.append((rule, frozenset(rule.resolve(config).cells())))
        self.by_cell: dict[Cell, list[tuple[CapacityRule, frozenset[Cell]]]] = {}
        for rule, scope in rules:
            for cell in scope:
                self.by_cell.setdefault(cell, []).append((rule, scope))

    def _unit(self, rule: CapacityRule, cell: Cell) -> float:
        if rule.measure == "contacts":
            return 1.0
        if rule.column == "cost":
            return self.costs[cell]
        return self.offers[str(rule.column)].get(cell[0], 0.0)

    def notes(self, usage: Mapping[EventKey, int], month: int, cell: Cell) -> list[Reason]:
        """One note per capacity rule covering the contact (nothing outside the plan horizon)."""
        offset = month - self.first_month
        if not 0 <= offset < self.horizon:
            return []
        out = []
        for rule, scope in self.by_cell.get(cell, ()):
            if rule.period == "month":
                months = [month]
                label = month_label(month)
                bound = rule.max
                for exc in rule.exceptions:
                    if month_number(exc.month) == month and exc.max is not None:
                        bound = exc.max
            else:
                months = list(range(self.first_month, self.first_month + self.horizon))
                label = "the plan year"
                bound = rule.max
            used = sum(usage.get((m, c, h), 0) * self._unit(rule, (c, h)) for m in months for c, h in scope)
            after = used + self._unit(rule, cell)
            unit = "contacts" if rule.measure == "contacts" else str(rule.column)
            exceeded = bound is not None and after > bound + 1e-9
            limit = f", max {bound:g}" if bound is not None else ""
            out.append(
                Reason(
                    code=CAPACITY_EXCEEDED if exceeded else CAPACITY,
                    rule=rule.name,
                    detail=f"{unit} in {label}: {used:g} planned or confirmed, {after:g} with this one{limit}",
                )
            )
        return out
