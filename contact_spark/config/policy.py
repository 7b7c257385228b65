"""The contact-policy rule language: pydantic models read from YAML, never eval()'d.

Every rule is a *For Each Customer* rule (seed 003): it constrains the schedule of one
customer, i.e. the set of contacts ``(month, campaign, channel)`` planned for the next
``horizon`` months plus the contacts already made (the history).

Semantics shared by all rules
-----------------------------
* A *contact* is one (month, campaign, channel) cell chosen in the plan; the history
  gives counts per (past month, campaign, channel).
* A *window* of ``window_months = w`` ending at month ``t`` covers months
  ``t-w+1 .. t``. Rolling-window rules are checked for every window that ends inside the
  plan (``t = 0 .. horizon-1``); windows therefore reach back into the history.
* History is never "repaired": when the history alone already exceeds a maximum in a
  window, the plan may add nothing to that window (``planned <= max(0, limit - past)``).
* ``per_campaign`` / ``per_channel`` split a rule into one independent copy per campaign
  (per channel) of its scope. ``max_offers`` with ``per_campaign: true`` is Unica's
  *Max # duplicate offers* (the same campaign repeated); add ``per_channel: true`` to
  count the same campaign on the same channel only.

Rule types
----------
``max_offers`` / ``min_offers``
    Number of contacts in scope in every window is ``<= limit`` / ``>= limit``.
``max_packages``
    A *package* (an interruption) is a distinct (month, channel) with at least one
    contact in scope: two campaigns in the same e-mail are one package, an e-mail and an
    SMS in the same month are two. Packages in every window ``<= limit``.
``never_together``
    No contact in scope ``a`` and a *different* contact in scope ``b`` less than
    ``window_months`` months apart (``window_months: 1`` = not in the same month).
``never_followed_by``
    No contact in ``b`` 1..``window_months`` months after a contact in ``a`` (same-month
    pairs are ``never_together``'s job).
``only_after``
    A contact in ``b`` at month ``t`` needs a contact in ``a`` in an earlier month, at
    most ``window_months`` months before (``null`` = any time before, history included).
``max_campaigns``
    Distinct campaigns with at least one contact in scope in every window ``<= limit``
    (``window_months: 1, limit: 1`` = "one commercial campaign per month"). Unlike the
    other window rules this counts a *set*: the same campaign in several months of one
    window counts once. With history: a window whose history alone already holds more
    than ``limit`` campaigns gets no planned contact (history is never repaired, as for
    the other maxima); otherwise history and plan together hold at most ``limit``
    campaigns, so repeating a campaign the window already holds is allowed.

This module is pure data: it imports no solver. Whether a rule set can be satisfied at
all is checked by :func:`contact_spark.solver.satisfiability.check_satisfiable`, which
the jobs call explicitly after loading a config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from contact_spark.config.scope import ANY, Scoped
from contact_spark.config.yaml_loader import safe_load
from contact_spark.errors import ContactSparkError

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")
WINDOW_RULE_TYPES = ("max_offers", "min_offers", "max_packages", "max_campaigns")


class PolicyError(ContactSparkError, ValueError):
    """A policy rule is invalid for the configured campaigns/channels or unsatisfiable."""

    def __init__(self, rule_name: str, message: str, rule_names: Sequence[str] | None = None) -> None:
        self.rule_name = rule_name
        self.rule_names = list(rule_names) if rule_names is not None else [rule_name]
        self.message = message
        super().__init__(f"policy rule '{rule_name}': {message}")


class RuleError(ValueError):
    """Validation error of one rule, carrying its name (wrapped by pydantic)."""

    def __init__(self, rule_name: str, detail: str) -> None:
        self.rule_name = rule_name
        self.detail = detail
        super().__init__(f"rule '{rule_name}': {detail}")


def _names_before(value: Any) -> Any:
    if isinstance(value, dict):
        # Selectors are resolved by the whole config, which knows the campaigns' attributes
        # (contact_spark/config/scopes.py); a policy read on its own cannot resolve them.
        raise ValueError(
            "a {where: ...} selector needs the campaigns' attributes: load this policy as the "
            "policy section of a config, or list the campaign names"
        )
    if isinstance(value, str) and value != ANY:
        raise ValueError(f"got '{value}'; write a list of names such as [{value}] or '{ANY}'")
    return value


Names = Annotated[tuple[str, ...] | Literal["any"], BeforeValidator(_names_before)]


def _check_names(value: Names, what: str) -> Names:
    if value == ANY:
        return value
    if len(value) == 0:
        raise ValueError(f"{what} is an empty list; list at least one name or write '{ANY}'")
    dupes = sorted({v for v in value if list(value).count(v) > 1})
    if dupes:
        raise ValueError(f"{what} lists {dupes} more than once; list each name once")
    return value


class Scope(BaseModel, Scoped):
    """A set of contacts: campaigns x channels (``"any"`` = all configured ones; names through
    :meth:`~contact_spark.config.scope.Scoped.resolve`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaigns: Names = ANY
    channels: Names = ANY

    @field_validator("campaigns")
    @classmethod
    def _campaigns(cls, v: Names) -> Names:
        return _check_names(v, "campaigns")

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: Names) -> Names:
        return _check_names(v, "channels")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    # Declared here, before per_campaign, so that every rule lists (and validates, so reports
    # first) its fields in the same order; only_after alone may leave it out (None). The rules
    # that need it narrow it to int below.
    window_months: int | None = Field(ge=1)
    per_campaign: bool = False
    per_channel: bool = False

    def scopes(self) -> dict[str, Scope]:
        """Named scopes of the rule (``scope`` or ``a``/``b``)."""
        raise NotImplementedError


class _ScopedRule(_Rule, Scoped):
    window_months: int = Field(ge=1)
    campaigns: Names = ANY
    channels: Names = ANY
    limit: int = Field(ge=0)

    @field_validator("campaigns")
    @classmethod
    def _campaigns(cls, v: Names) -> Names:
        return _check_names(v, "campaigns")

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: Names) -> Names:
        return _check_names(v, "channels")

    @property
    def scope(self) -> Scope:
        return Scope(campaigns=self.campaigns, channels=self.channels)

    def scopes(self) -> dict[str, Scope]:
        return {"scope": self.scope}


class MaxOffers(_ScopedRule):
    """At most ``limit`` contacts in scope in every rolling window."""

    type: Literal["max_offers"]


class MinOffers(_ScopedRule):
    """At least ``limit`` contacts in scope in every rolling window."""

    type: Literal["min_offers"]

    @model_validator(mode="after")
    def _positive(self) -> MinOffers:
        if self.limit < 1:
            raise ValueError("a min_offers limit of 0 constrains nothing; set limit >= 1 or remove the rule")
        return self


class MaxPackages(_ScopedRule):
    """At most ``limit`` packages (distinct month x channel with a scoped contact) per window."""

    type: Literal["max_packages"]


class MaxCampaigns(_ScopedRule):
    """At most ``limit`` distinct campaigns contacted in scope in every rolling window."""

    type: Literal["max_campaigns"]

    @model_validator(mode="after")
    def _not_split_by_campaign(self) -> MaxCampaigns:
        if self.per_campaign:
            raise ValueError(
                "per_campaign splits the rule into one copy per campaign, where at most one "
                "campaign can ever count; remove per_campaign (or use max_offers)"
            )
        return self


class _PairRule(_Rule):
    a: Scope
    b: Scope

    def scopes(self) -> dict[str, Scope]:
        return {"a": self.a, "b": self.b}


class NeverTogether(_PairRule):
    """Never a contact in ``a`` and a different one in ``b`` within ``window_months``."""

    type: Literal["never_together"]
    window_months: int = Field(default=1, ge=1)


class NeverFollowedBy(_PairRule):
    """Never a contact in ``b`` 1..``window_months`` months after one in ``a``."""

    type: Literal["never_followed_by"]
    window_months: int = Field(ge=1)


class OnlyAfter(_PairRule):
    """A contact in ``b`` only if ``a`` was contacted in an earlier month (within lookback)."""

    type: Literal["only_after"]
    window_months: int | None = Field(default=None, ge=1)


Rule = Annotated[
    MaxOffers | MinOffers | MaxPackages | MaxCampaigns | NeverTogether | NeverFollowedBy | OnlyAfter,
    Field(discriminator="type"),
]

RULE_TYPES: dict[str, type[_Rule]] = {
    "max_offers": MaxOffers,
    "min_offers": MinOffers,
    "max_packages": MaxPackages,
    "max_campaigns": MaxCampaigns,
    "never_together": NeverTogether,
    "never_followed_by": NeverFollowedBy,
    "only_after": OnlyAfter,
}


_HINTS = {
    "extra_forbidden": " (remove this key; see contact_spark/config/policy.py for the keys of each type)",
    "greater_than_equal": " (use a whole number at or above the minimum)",
    "int_parsing": " (write a whole number)",
    "missing": " (add this key)",
    "literal_error": f" (write a list of names or '{ANY}')",
}


class PolicyConfig(BaseModel):
    """A contact policy: a list of For-Each-Customer rules (YAML key ``policy.rules``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules", mode="wrap")
    @classmethod
    def _name_the_rule(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> list[Any]:
        """Put the rule's name and a fix hint into the error, for every caller."""
        try:
            return handler(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = list(err.get("loc", ()))
            index = loc[0] if loc and isinstance(loc[0], int) else None
            name = f"rules[{index}]" if index is not None else "<policy>"
            if index is not None and isinstance(value, list) and index < len(value):
                raw = value[index]
                if isinstance(raw, dict) and raw.get("name"):
                    name = str(raw["name"])
                if isinstance(raw, dict) and len(loc) > 1 and loc[1] == raw.get("type"):
                    del loc[1]  # the union tag adds nothing for the reader
            where = ".".join(str(p) for p in loc[1:])
            msg = str(err["msg"]).removeprefix("Value error, ")
            hint = _HINTS.get(str(err.get("type")), "")
            raise RuleError(name, f"{where + ': ' if where else ''}{msg}{hint}") from None

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for r in rules:
            if r.name in seen:
                raise ValueError(f"rule name '{r.name}' is used twice; give every rule a unique name")
            seen.add(r.name)
        return rules

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_mapping(cls, data: Any, source: str = "<policy>") -> PolicyConfig:
        """Validate a parsed mapping ``{rules: [...]}``; raise PolicyError naming the rule."""
        if not isinstance(data, dict):
            raise PolicyError("<policy>", f"{source}: expected a mapping with key 'rules'")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, RuleError):
                raise PolicyError(cause.rule_name, f"{source}: {cause.detail}") from exc
            where = ".".join(str(p) for p in err.get("loc", ()))
            hint = _HINTS.get(str(err.get("type")), "")
            raise PolicyError("<policy>", f"{source}: {where}: {err['msg']}{hint}") from exc

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<yaml text>") -> PolicyConfig:
        """Parse YAML text (safe loader) with top-level ``rules`` or ``policy: {rules}``."""
        try:
            data = safe_load(text)  # safe loader: no tags, nothing is ever executed
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or exc
            raise PolicyError("<policy>", f"{source}: {where}not valid YAML: {problem}") from exc
        if isinstance(data, dict) and "policy" in data and "rules" not in data:
            data = data["policy"]
        return cls.from_mapping(data, source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PolicyConfig:
        """Load a YAML file with top-level ``rules`` (or ``policy: {rules: ...}``)."""
        path = Path(path)
        return cls.from_yaml_text(path.read_text(), str(path))

    @classmethod
    def default(cls) -> PolicyConfig:
        """The energy retailer's policy of seed 000 (``default_policy.yaml``)."""
        return cls.from_yaml(DEFAULT_POLICY_PATH)

    # --------------------------------------------------------------- validation
    def check_names(self, campaigns: Sequence[str], channels: Sequence[str]) -> None:
        """Raise PolicyError naming the rule that mentions an unconfigured campaign/channel."""
        known = {"campaigns": set(campaigns), "channels": set(channels)}
        if not campaigns or not channels:
            raise PolicyError("<policy>", "configure at least one campaign and one channel")
        for rule in self.rules:
            for scope_name, scope in rule.scopes().items():
                what: Literal["campaigns", "channels"]
                for what in ("campaigns", "channels"):
                    unknown = [n for n in scope.restriction(what) or [] if n not in known[what]]
                    if unknown:
                        raise PolicyError(
                            rule.name,
                            f"{scope_name}.{what} names unknown {what[:-1]} {unknown}; "
                            f"configured {what}: {sorted(known[what])}",
                        )
