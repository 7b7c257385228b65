"""Campaign scopes given as attribute selectors, resolved to names before the models see them.

Every scope that selects campaigns may be written ``campaigns: {where: "<predicate>"}``
(:mod:`contact_spark.config.offers`). :func:`resolve_scopes` walks the raw configuration
tree (the parsed YAML, ``--set`` overrides applied) and replaces each selector by the list
of campaign names it selects, so the typed models, and everything downstream, only ever
hold names. The scopes it knows are listed in :data:`SCOPE_PATHS`; a new section with a
``campaigns`` scope is added there (``tests/test_offer_attributes.py`` checks that every
model field named ``campaigns`` is covered).

This is the first half of a scope's resolution; the second, what the names (or ``"any"``)
of a validated scope stand for, is :meth:`contact_spark.config.scope.Scoped.resolve`, which
every stage calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from contact_spark.config.offers import AttributeValue, Kind, SelectorError, is_selector, resolve_raw
from contact_spark.config.policy import PolicyError
from contact_spark.config.scope import ANY

#: The sections holding campaign scopes: (section, list key, what a user calls one entry,
#: the keys of an entry holding a scope of their own: a share rule's ``of``).
RULE_LISTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("capacities", "rules", "capacity rule", ("of",)),
    ("capacities", "spread", "spread rule", ()),
    ("eligibility", "rules", "eligibility rule", ()),
)
SCOPE_PATHS = (
    "policy.rules[].campaigns",
    "policy.rules[].a.campaigns",
    "policy.rules[].b.campaigns",
    "capacities.rules[].campaigns",
    "capacities.rules[].of.campaigns",
    "capacities.spread[].campaigns",
    "eligibility.rules[].campaigns",
    "triggers.events.<EVENT>.suppress.campaigns",
    "triggers.events.<EVENT>.boost.campaigns",
)


def _name(entry: Mapping[str, Any], index: int, key: str) -> str:
    name = entry.get("name")
    return str(name) if name else f"{key}[{index}]"


def _rules(section: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    entries = section.get(key) if isinstance(section, Mapping) else None
    if not isinstance(entries, list):
        return []
    return [(i, e) for i, e in enumerate(entries) if isinstance(e, dict)]


def _map_scopes(data: dict[str, Any], resolve: Callable[[Any, str, str], Any]) -> dict[str, Any]:
    """A copy of ``data`` with every campaign scope replaced by ``resolve(value, owner, key)``:
    ``owner`` names the rule the way its errors do, ``key`` is the dotted key in it."""
    out = dict(data)

    def entry(rule: dict[str, Any], owner: str, sides: tuple[str, ...]) -> dict[str, Any]:
        rule = dict(rule)
        if is_selector(rule.get("campaigns")):
            rule["campaigns"] = resolve(rule["campaigns"], owner, "campaigns")
        for side in sides:
            scope = rule.get(side)
            if isinstance(scope, dict) and is_selector(scope.get("campaigns")):
                rule[side] = {**scope, "campaigns": resolve(scope["campaigns"], owner, f"{side}.campaigns")}
        return rule

    policy = out.get("policy")
    if isinstance(policy, dict) and _rules(policy, "rules"):
        rules = list(policy["rules"])
        for i, rule in _rules(policy, "rules"):
            rules[i] = entry(rule, f"policy rule '{_name(rule, i, 'rules')}'", ("a", "b"))
        out["policy"] = {**policy, "rules": rules}
    for section, key, what, sides in RULE_LISTS:
        if not _rules(out.get(section), key):
            continue
        entries = list(out[section][key])
        for i, rule in _rules(out[section], key):
            entries[i] = entry(rule, f"{what} '{_name(rule, i, key)}'", sides)
        out[section] = {**out[section], key: entries}
    triggers = out.get("triggers")
    events = triggers.get("events") if isinstance(triggers, dict) else None
    if isinstance(triggers, dict) and isinstance(events, dict):
        new_events: dict[str, Any] = {}
        for event, effect in events.items():
            if isinstance(effect, dict):
                effect = entry(effect, f"triggers.events.{event}", ("suppress", "boost"))
            new_events[event] = effect
        out["triggers"] = {**triggers, "events": new_events}
    return out


def resolve_scopes(
    data: dict[str, Any],
    table: Mapping[str, Mapping[str, AttributeValue | None]],
    kinds: Mapping[str, Kind],
) -> dict[str, Any]:
    """``data`` with every ``{where: ...}`` campaign scope resolved to the names it selects.

    A policy rule's error is a :class:`PolicyError` naming the rule, as the policy's other
    errors are; the others are ValueErrors naming the rule (or trigger event) and the key."""

    def resolve(value: Any, owner: str, key: str) -> Any:
        try:
            return resolve_raw(value, table, kinds)
        except SelectorError as exc:
            if owner.startswith("policy rule '"):
                raise PolicyError(owner.removeprefix("policy rule '")[:-1], f"{key}.{exc}") from None
            raise ValueError(f"{owner}: {key}.{exc}") from None

    return _map_scopes(data, resolve)


def blank_scopes(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every selector replaced by ``"any"``: for a configuration whose
    ``campaigns`` section is itself invalid, so that only the errors of that section are
    reported (a config with one never loads, so the placeholder is never planned with)."""
    return _map_scopes(data, lambda value, owner, key: ANY)


def has_selectors(data: dict[str, Any]) -> bool:
    """Whether any campaign scope of ``data`` is a selector."""
    found: list[bool] = []

    def note(value: Any, owner: str, key: str) -> Any:
        found.append(True)
        return value

    _map_scopes(data, note)
    return bool(found)
