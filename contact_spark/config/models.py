"""Typed configuration models.

Every model forbids unknown keys, so a typo in YAML is an error naming the key
rather than a silently ignored setting. Validators say how to fix the problem.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from contact_spark.config.base import MAX_MAGNITUDE, StrictModel
from contact_spark.config.capacity import BUILTIN_ATTRIBUTES as CAPACITY_ATTRIBUTES
from contact_spark.config.capacity import CapacityRule, CapacitySettings, SpreadRule
from contact_spark.config.contacts import ContactSettings
from contact_spark.config.eligibility import EligibilityRule, EligibilitySettings
from contact_spark.config.export import ExportSettings
from contact_spark.config.flights import Flight
from contact_spark.config.offers import (
    ATTRIBUTE_NAME,
    BUILTIN_ATTRIBUTES,
    AttributeValue,
    SelectorError,
    attribute_kinds,
    attribute_table,
)
from contact_spark.config.policy import PolicyConfig
from contact_spark.config.propensity import PropensitySettings, SegmentSettings
from contact_spark.config.scope import Scoped
from contact_spark.config.scopes import blank_scopes, has_selectors, resolve_scopes
from contact_spark.config.stages import StageSettings
from contact_spark.config.triggers import TriggerSettings

IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9_]*$")


class RunSettings(StrictModel):
    """When the plan starts, how long it lasts and the seed of everything random."""

    first_month: dt.date = Field(description="First month of the plan (first day of a month).")
    horizon_months: int = Field(12, ge=1, le=36)
    seed: int = Field(42, ge=0)

    @field_validator("first_month")
    @classmethod
    def _first_day(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError(f"must be the first day of a month, e.g. {value.replace(day=1).isoformat()}")
        return value

    def months(self) -> list[dt.date]:
        """The first day of every month of the horizon, in order."""
        out = []
        year, month = self.first_month.year, self.first_month.month
        for _ in range(self.horizon_months):
            out.append(dt.date(year, month, 1))
            month += 1
            if month == 13:
                year, month = year + 1, 1
        return out


class StorageSettings(StrictModel):
    """Where Delta tables live: a base path, or Unity Catalog ``catalog.schema`` names."""

    base_path: str = "./lakehouse"
    catalog: str | None = None
    database: str | None = Field(
        None, description="Schema (database) name; with `catalog` gives catalog.database.table."
    )
    backend: Literal["auto", "spark", "deltalake"] = Field(
        "auto",
        description="auto: native Delta when the Delta Spark extension is loaded, delta-rs otherwise.",
    )

    @model_validator(mode="after")
    def _catalog_needs_database(self) -> StorageSettings:
        if self.catalog and not self.database:
            raise ValueError("`catalog` is set but `database` is not: set both, e.g. main.crm")
        if self.database and self.backend == "deltalake":
            raise ValueError("catalog tables need the Delta Spark extension: use backend 'spark' or 'auto'")
        return self


class CampaignSettings(StrictModel):
    """A campaign (offer type) and what one success is worth."""

    success_value: float = Field(
        gt=0, le=MAX_MAGNITUDE, description="Value of one converted customer, in currency."
    )
    trigger_only: bool = Field(
        False, description="Planned only while a trigger event of a customer activates it (triggers.events)."
    )
    family: str | None = Field(
        None,
        description="Product family of the offer (e.g. boilers); the demo generator gives offers of "
        "one family a shared customer affinity. A scope selects a family with "
        "campaigns: {where: \"family = 'boilers'\"}.",
    )
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict,
        # Left out of dumps when empty, so a config without attributes keeps its fingerprint.
        exclude_if=lambda v: not v,
        description="Offer attributes (string, number or boolean) that scopes select by "
        "(campaigns: {where: ...}) and custom capacities sum (docs/offer_attributes.md).",
    )
    channel_costs: dict[str, float] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Cost of one contact of this offer on a channel, instead of channels.<CH>.cost.",
    )
    flight: Flight | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="The whole months the offer runs ({from, to}, optionally channels: {<CH>: {from, to}}); "
        "unset: every month on every channel.",
    )
    monthly_value: dict[dt.date, float] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Per month (first day, e.g. 2027-03-01): a factor (>= 0) on the value of a contact of "
        "this offer in that month, like seasonality per campaign; unset months count 1.",
    )
    description: str = ""

    @field_validator("monthly_value", mode="before")
    @classmethod
    def _month_keys(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {(k.isoformat() if isinstance(k, dt.date) else str(k)): v for k, v in value.items()}

    @field_validator("monthly_value")
    @classmethod
    def _monthly_value(cls, value: dict[dt.date, float]) -> dict[dt.date, float]:
        for month, factor in value.items():
            if month.day != 1:
                raise ValueError(
                    f"monthly_value key {month} is not the first day of a month: give {month.replace(day=1)}"
                )
            if not 0 <= factor <= MAX_MAGNITUDE:
                raise ValueError(
                    f"monthly_value.{month} is {factor:g}: give a factor from 0 to {MAX_MAGNITUDE:g}"
                )
        return value

    def runs(self, channel: str, month: dt.date) -> bool:
        """Whether the offer may be contacted on ``channel`` in the month starting ``month``."""
        return self.flight is None or self.flight.runs(channel, month)

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic's own message: a mapping is expected
        for key, item in value.items():
            if not isinstance(key, str) or not ATTRIBUTE_NAME.match(key):
                raise ValueError(
                    f"attribute name '{key}' must be lower-case letters, digits and _ (e.g. margin)"
                )
            if key in BUILTIN_ATTRIBUTES:
                raise ValueError(
                    f"'{key}' is a built-in attribute of every campaign"
                    + (f": set it as the campaign's own key {key}:" if key != "name" else ": remove it")
                )
            if key in CAPACITY_ATTRIBUTES:
                # A capacity's column names these for every contact; an offer attribute of the
                # same name would make `column: cost` ambiguous.
                hint = ": set channel_costs" if key == "cost" else ""
                raise ValueError(
                    f"'{key}' is a measure of every contact (capacities.rules[].column): "
                    f"give the attribute another name{hint}"
                )
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"attribute '{key}' is {item}: give a finite number")
            if not isinstance(item, (bool, int, float, str)):
                shown = "null" if item is None else type(item).__name__
                raise ValueError(
                    f"attribute '{key}' is {shown}: give a string, a number or true/false "
                    "(quote a date: '2027-01-01')"
                )
        return value

    @field_validator("channel_costs")
    @classmethod
    def _costs(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, cost in value.items():
            if not 0 <= cost <= MAX_MAGNITUDE:
                raise ValueError(
                    f"channel_costs.{channel} is {cost:g}: give a cost from 0 to {MAX_MAGNITUDE:g}"
                )
        return value


class ChannelSettings(StrictModel):
    """A channel, what one contact costs and which kind of contact it needs."""

    cost: float = Field(ge=0, le=MAX_MAGNITUDE, description="Cost of one contact, in currency.")
    contact_kind: Literal["email", "mobile", "phone"] = Field(
        description="email for DEM, mobile for SMS, phone (mobile or landline) for TLS."
    )
    description: str = ""


class DemoSettings(StrictModel):
    """Size and shape of the generated demo customer base (see docs/demo_data.md)."""

    customers: int = Field(5000, ge=1, le=100_000_000)
    partitions: int = Field(0, ge=0, le=10_000, description="0 = chosen from the number of customers.")
    history_months: int = Field(12, ge=0, le=36)


class ValidationSettings(StrictModel):
    """How the plan validator treats what the plan stage already reported (docs/validation.md)."""

    strict_min_capacity: bool = Field(
        False,
        description="true: a min capacity the plan stage reported as unmeetable fails the run; "
        "false: it is a WARNING row in violations and in the report.",
    )


_CAMPAIGNS = TypeAdapter(dict[str, CampaignSettings])


def _last_day(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


class AppConfig(StrictModel):
    """The whole configuration of a contact_spark run."""

    run: RunSettings
    storage: StorageSettings = StorageSettings()
    campaigns: dict[str, CampaignSettings]
    channels: dict[str, ChannelSettings]
    seasonality: list[float] | None = Field(
        None, description="Optional weight per month of the horizon multiplying expected value."
    )
    objective: Literal["value_minus_cost", "value"] = Field(
        "value_minus_cost",
        # Left out of dumps at its default, so a config without it keeps its fingerprint.
        exclude_if=lambda v: v == "value_minus_cost",
        description="What a contact is worth to the plan: value_minus_cost (propensity × success value − "
        "the contact's cost) or value (propensity × success value alone: cost counts only in the "
        "capacities on cost, for teams that budget spend separately).",
    )
    demo: DemoSettings = DemoSettings()
    validation: ValidationSettings = ValidationSettings()
    contacts: ContactSettings = ContactSettings()
    eligibility: EligibilitySettings = EligibilitySettings()
    capacities: CapacitySettings = CapacitySettings()
    triggers: TriggerSettings = TriggerSettings()
    propensity: PropensitySettings = PropensitySettings()
    segments: SegmentSettings = SegmentSettings()
    export: ExportSettings = ExportSettings()
    stages: StageSettings = StageSettings()
    policy: PolicyConfig = Field(
        description="For-Each-Customer contact-policy rules (see contact_spark/config/policy.py)."
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_offer_scopes(cls, data: Any) -> Any:
        """Campaign scopes written as ``{where: ...}`` become the names they select, before any
        model sees them (contact_spark/config/scopes.py): the validated config holds names only."""
        if not isinstance(data, dict) or not has_selectors(data):
            return data
        try:
            campaigns = _CAMPAIGNS.validate_python(data.get("campaigns"))
        except ValidationError:
            return blank_scopes(data)  # the campaigns section's own errors are reported
        table = attribute_table(campaigns)
        try:
            kinds = attribute_kinds(table)
        except SelectorError as exc:
            raise ValueError(str(exc)) from None
        return resolve_scopes(data, table, kinds)

    @field_validator("campaigns", "channels")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("at least one entry is required")
        for name in value:
            if not IDENTIFIER.match(name):
                raise ValueError(
                    f"name '{name}' must be upper-case letters, digits and _ (e.g. CROSS_SELLING)"
                )
        return value

    @model_validator(mode="after")
    def _seasonality_length(self) -> AppConfig:
        if self.seasonality is not None:
            if len(self.seasonality) != self.run.horizon_months:
                raise ValueError(
                    f"seasonality has {len(self.seasonality)} weights but the horizon is "
                    f"{self.run.horizon_months} months: give one weight per month"
                )
            if any(w < 0 for w in self.seasonality):
                raise ValueError("seasonality weights must be >= 0")
        return self

    @model_validator(mode="after")
    def _offer_attributes(self) -> AppConfig:
        try:
            attribute_kinds(attribute_table(self.campaigns))
        except SelectorError as exc:
            raise ValueError(str(exc)) from None
        for name, campaign in self.campaigns.items():
            for key, channels in (
                ("channel_costs", list(campaign.channel_costs)),
                ("flight.channels", list(campaign.flight.channels) if campaign.flight else []),
            ):
                for channel in channels:
                    if channel not in self.channels:
                        raise ValueError(
                            f"campaigns.{name}.{key}: unknown channel '{channel}' "
                            f"(known: {', '.join(self.channels)})"
                        )
        return self

    def flight_mask(self) -> list[list[list[bool]]] | None:
        """``[T][C][H]``: whether each campaign runs on each channel in each month of the
        horizon (campaigns.<NAME>.flight); None when no campaign has a flight (always on)."""
        if all(c.flight is None for c in self.campaigns.values()):
            return None
        return [
            [[c.runs(h, month) for h in self.channels] for c in self.campaigns.values()]
            for month in self.run.months()
        ]

    def value_factors(self) -> list[list[float]]:
        """``[T][C]``: the global seasonality weight of the month times the campaign's
        ``monthly_value`` for it (1 when unset): what a contact's value is multiplied by."""
        season = self.seasonality or [1.0] * self.run.horizon_months
        return [
            [w * c.monthly_value.get(month, 1.0) for c in self.campaigns.values()]
            for w, month in zip(season, self.run.months(), strict=True)
        ]

    @model_validator(mode="after")
    def _offer_attribute_capacities(self) -> AppConfig:
        """A capacity summing (or averaging) an offer attribute: a number on every campaign it
        counts. Other columns are customers columns, checked against the table by the stage."""
        kinds = attribute_kinds(attribute_table(self.campaigns))
        for rule in self.capacities.rules:
            for key, column in (("column", rule.column), ("per", rule.per)):
                if column is None or column in CAPACITY_ATTRIBUTES or column not in kinds:
                    continue
                where = f"capacity rule '{rule.name}': {key} '{column}'"
                if kinds[column] != "number":
                    raise ValueError(
                        f"{where} is a {kinds[column]} offer attribute: {rule.measure}s need a number"
                    )
                values = self.offer_values(column) or {}
                missing = [c for c in rule.resolve(self).campaigns if c not in values]
                if missing:
                    raise ValueError(
                        f"{where}: campaigns {', '.join(missing)} in its scope have no {column}: give them "
                        f"campaigns.<NAME>.attributes.{column} (0 if none) or leave them out of its campaigns"
                    )
        return self

    def per_contact_cell(self, name: str) -> bool:
        """Whether the capacity attribute ``name`` is fixed by the contact's offer and channel
        (``cost`` or a numeric offer attribute), not a value of the customer (``expected_value``,
        ``propensity`` or a customers column)."""
        return name == "cost" or self.offer_values(name) is not None

    @model_validator(mode="after")
    def _capacity_exceptions_apply(self) -> AppConfig:
        """An exception whose months meet the horizon must replace the bounds of some period
        there: one that only cuts through periods (August on a quarterly rule) would do nothing."""
        months = self.run.months()
        for n, rule in enumerate(self.capacities.rules):
            periods = rule.periods(months)
            used = {id(p.exception) for p in periods if p.exception is not None}
            for i, e in enumerate(rule.exceptions):
                touched = [p for p in periods if any(e.covers(months[t]) for t in p.months)]
                if id(e) in used or not touched:
                    continue  # applies, or lies outside this horizon (a config kept for later years)
                period = touched[0]
                first, last = months[period.start], months[period.start + period.length - 1]
                kind = f"rolling {rule.months}-month window" if rule.period == "rolling" else rule.period
                raise ValueError(
                    f"capacities.rules.{n}: capacity rule '{rule.name}': exceptions[{i}] ({e.label}) covers no "
                    f"whole {kind} of the horizon: an exception replaces the bounds of the periods lying wholly inside its dates; "
                    f"widen it, e.g. from: {first.isoformat()}, to: {_last_day(last).isoformat()} "
                    f"({period.label})"
                )
        return self

    @model_validator(mode="after")
    def _policy_compiles(self) -> AppConfig:
        # Raises PolicyError naming the rule of an unknown campaign or channel. Whether the
        # rules can be satisfied at all is a solver question, asked explicitly by the jobs
        # (contact_spark.solver.satisfiability.check_satisfiable): loading stays pure.
        self.policy.check_names(list(self.campaigns), list(self.channels))
        return self

    @model_validator(mode="after")
    def _eligibility_scopes(self) -> AppConfig:
        scoped: list[tuple[str, EligibilityRule | CapacityRule | SpreadRule]]
        scoped = [("eligibility", r) for r in self.eligibility.rules]
        scoped += [("capacity", r) for r in self.capacities.rules]
        scoped += [("spread", r) for r in self.capacities.spread]
        for section, rule in scoped:
            scopes: list[tuple[str, Scoped]] = [("", rule)]
            if isinstance(rule, CapacityRule) and rule.of is not None:
                scopes.append(("of: ", rule.of))
            field: Literal["campaigns", "channels"]
            for prefix, scope in scopes:
                for field, known in (("campaigns", self.campaigns), ("channels", self.channels)):
                    kind = field[:-1]
                    for name in scope.restriction(field) or []:
                        if name not in known:
                            raise ValueError(
                                f"{section} rule '{rule.name}' {prefix}names unknown {kind} '{name}' "
                                f"(known: {', '.join(known)})"
                            )
        return self

    @model_validator(mode="after")
    def _shares_and_ratios(self) -> AppConfig:
        """A share's ``of`` selects part of its scope; a ratio has at most one side that
        varies by customer (its row is then linear in one customer attribute)."""
        for n, rule in enumerate(self.capacities.rules):
            where = f"capacities.rules.{n}: capacity rule '{rule.name}'"
            if rule.measure == "share":
                whole, part = rule.resolve(self), rule.numerator(self)
                if not part.cells():
                    raise ValueError(
                        f"{where}: of: selects none of the rule's own contacts ({', '.join(whole.campaigns)} × "
                        f"{', '.join(whole.channels)}): a share of nothing; widen of or the rule's campaigns/channels"
                    )
                if len(part.cells()) == len(whole.cells()):
                    raise ValueError(
                        f"{where}: of: holds every contact of the rule's scope, so the share is always 1: "
                        "narrow of, or widen the rule's campaigns/channels (the whole)"
                    )
            if rule.measure == "ratio" and rule.column and rule.per:
                if not (self.per_contact_cell(rule.column) or self.per_contact_cell(rule.per)):
                    raise ValueError(
                        f"{where}: column '{rule.column}' and per '{rule.per}' both vary by customer: one side "
                        "of a ratio must be cost or a numeric offer attribute (e.g. column: expected_value, per: cost)"
                    )
        return self

    @model_validator(mode="after")
    def _export_channels(self) -> AppConfig:
        for channel in self.export.windows:
            if channel not in self.channels:
                raise ValueError(
                    f"export.windows.{channel}: unknown channel (known: {', '.join(self.channels)})"
                )
        return self

    @model_validator(mode="after")
    def _trigger_effects(self) -> AppConfig:
        triggered = set()
        for event, effect in self.triggers.events.items():
            where = f"triggers.events.{event}"
            if effect.campaign is not None:
                campaign = self.campaigns.get(effect.campaign)
                if campaign is None:
                    raise ValueError(
                        f"{where}.campaign: unknown campaign '{effect.campaign}' (known: {', '.join(self.campaigns)})"
                    )
                if not campaign.trigger_only:
                    raise ValueError(f"{where}.campaign: set campaigns.{effect.campaign}.trigger_only: true")
                triggered.add(effect.campaign)
                for channel in effect.propensity:
                    if channel not in self.channels:
                        raise ValueError(
                            f"{where}.propensity: unknown channel '{channel}' (known: {', '.join(self.channels)})"
                        )
            for kind, scope in (("suppress", effect.suppress), ("boost", effect.boost)):
                if scope is None:
                    continue
                field: Literal["campaigns", "channels"]
                for field, known in (("campaigns", self.campaigns), ("channels", self.channels)):
                    what = field[:-1]
                    for name in scope.restriction(field) or []:
                        if name not in known:
                            raise ValueError(
                                f"{where}.{kind}: unknown {what} '{name}' (known: {', '.join(known)})"
                            )
        for name, campaign in self.campaigns.items():
            if campaign.trigger_only and name not in triggered:
                raise ValueError(
                    f"campaigns.{name} is trigger_only but no triggers.events entry names it: add one or drop trigger_only"
                )
        return self

    @property
    def trigger_campaigns(self) -> list[str]:
        """Campaigns planned only while a trigger event activates them."""
        return [name for name, c in self.campaigns.items() if c.trigger_only]

    @property
    def campaign_names(self) -> list[str]:
        return list(self.campaigns)

    def contact_cost(self, campaign: str, channel: str) -> float:
        """Cost of one contact of ``campaign`` on ``channel``: the campaign's
        ``channel_costs`` entry, else the channel's ``cost``."""
        return self.campaigns[campaign].channel_costs.get(channel, self.channels[channel].cost)

    def cost_matrix(self) -> list[list[float]]:
        """``[campaign][channel]`` cost of one contact, in config order."""
        return [[self.contact_cost(c, h) for h in self.channels] for c in self.campaigns]

    def objective_cost(self, campaign: str, channel: str) -> float:
        """What one contact's cost takes off its value in the objective: its cost under
        ``objective: value_minus_cost``, nothing under ``objective: value`` (the cost then
        counts only in capacities on ``cost``, through :meth:`contact_cost`)."""
        return self.contact_cost(campaign, channel) if self.objective == "value_minus_cost" else 0.0

    def objective_cost_matrix(self) -> list[list[float]]:
        """``[campaign][channel]`` :meth:`objective_cost`, in config order."""
        return [[self.objective_cost(c, h) for h in self.channels] for c in self.campaigns]

    def offer_values(self, name: str) -> dict[str, float] | None:
        """Campaign → value of the numeric offer attribute ``name`` (``success_value`` or one
        of ``attributes``), for the campaigns that have it; None when no campaign has ``name``
        as a numeric offer attribute."""
        if name == "success_value":
            return {c: cfg.success_value for c, cfg in self.campaigns.items()}
        values = {
            c: float(v)
            for c, cfg in self.campaigns.items()
            if (v := cfg.attributes.get(name)) is not None and not isinstance(v, (bool, str))
        }
        return values or None

    @property
    def channel_names(self) -> list[str]:
        return list(self.channels)
