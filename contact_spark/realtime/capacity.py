"""Capacity information for a real-time check: how full the channel's capacity is.

Capacities are global (all customers together) and real-time contacts are made during an
interaction the customer started, outside the planned outbound volume, so a capacity never
forbids a real-time contact: the check reports it as a note (``CAPACITY``, or
``CAPACITY_EXCEEDED`` when this contact would take the usage past the maximum) for the
capacity rules whose scope holds the contact, in the rule's period holding the contact's month
(its month, quarter or the plan year; of the rolling windows holding it, the fullest).
Usage = the run's plan + the contacts
confirmed in real time, counted as contacts, or summed for ``measure: sum`` of the
contact's cost (the campaign's ``channel_costs``, else the channel's) or of a numeric offer
attribute (``margin``: known per campaign); sums of other columns, averages, shares and
ratios are not reported (a share or a ratio is a proportion of the whole plan: one contact
more says little, and the plan stage holds them).
"""

from __future__ import annotations

from collections.abc import Mapping

from contact_spark.config.capacity import CapacityRule
from contact_spark.config.models import AppConfig
from contact_spark.io.months import month_number
from contact_spark.realtime.models import CAPACITY, CAPACITY_EXCEEDED, Reason
from contact_spark.realtime.policy import Cell, EventKey


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
        months = config.run.months()
        self.periods = {rule.name: rule.periods(months) for rule in config.capacities.rules}
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
            unit = "contacts" if rule.measure == "contacts" else str(rule.column)
            notes = []
            # Every period of the rule holding the month (one, or each rolling window holding it).
            for period in self.periods[rule.name]:
                if offset not in period.months:
                    continue
                months = [self.first_month + t for t in period.months]
                used = sum(
                    usage.get((m, c, h), 0) * self._unit(rule, (c, h)) for m in months for c, h in scope
                )
                after = used + self._unit(rule, cell)
                bound = period.max
                room = float("inf") if bound is None else bound - after
                notes.append((room, period.label, used, after, bound))
            # The fullest period speaks for the rule: the one this contact exceeds, if any.
            room, label, used, after, bound = min(notes, key=lambda n: (n[0], n[1]))
            label = "the plan year" if label == "year" else label
            exceeded = bound is not None and room < -1e-9
            limit = f", max {bound:g}" if bound is not None else ""
            out.append(
                Reason(
                    code=CAPACITY_EXCEEDED if exceeded else CAPACITY,
                    rule=rule.name,
                    detail=f"{unit} in {label}: {used:g} planned or confirmed, {after:g} with this one{limit}",
                )
            )
        return out
