"""Offer attributes and attribute-selected campaign scopes: resolved at config load, pure Python.

A scope written ``campaigns: {where: "<predicate on offer attributes>"}`` must load to the
very config its list of names would give, so that every enforcement point reads names only
(the validator and the real-time check are shown to in their own test files).
"""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from contact_spark.config import AppConfig, config_from_dict, load_config
from contact_spark.config import capacity as config_capacity
from contact_spark.config import eligibility as config_eligibility
from contact_spark.config import policy as config_policy
from contact_spark.config import triggers as config_triggers
from contact_spark.config.fingerprint import config_hash
from contact_spark.config.policy import PolicyConfig, PolicyError
from contact_spark.config.scope import Scoped
from contact_spark.config.scopes import SCOPE_PATHS
from contact_spark.errors import ConfigError
from contact_spark.policy.compiler import compile_policy

ROOT = Path(__file__).resolve().parents[1]

# Three power offers and two gas offers; a margin on all but one, a green flag on some.
CAMPAIGNS: dict[str, Any] = {
    "POWER_FIX": {"success_value": 100, "family": "power", "attributes": {"margin": 60, "green": True}},
    "POWER_INDEX": {"success_value": 90, "family": "power", "attributes": {"margin": 40, "green": False}},
    "POWER_EV": {"success_value": 140, "family": "power"},
    "GAS_FIX": {"success_value": 80, "family": "gas", "attributes": {"margin": 70.5, "green": False}},
    "GAS_WINTER": {"success_value": 95, "family": "gas", "attributes": {"margin": 55, "tier": "b"}},
}


def raw(**sections: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "run": {"first_month": "2027-01-01"},
        "campaigns": copy.deepcopy(CAMPAIGNS),
        "channels": {
            "DEM": {"cost": 0.02, "contact_kind": "email"},
            "TLS": {"cost": 4.0, "contact_kind": "phone"},
        },
        "policy": {"rules": []},
    }
    tree.update(sections)
    return tree


def rule(campaigns: Any) -> dict[str, Any]:
    return {
        "name": "family_cap",
        "type": "max_offers",
        "window_months": 12,
        "limit": 2,
        "campaigns": campaigns,
    }


def replaced(tree: Any, old: Any, new: Any) -> Any:
    """A copy of ``tree`` with every value equal to ``old`` replaced by ``new``."""
    if tree == old:
        return copy.deepcopy(new)
    if isinstance(tree, dict):
        return {k: replaced(v, old, new) for k, v in tree.items()}
    if isinstance(tree, list):
        return [replaced(v, old, new) for v in tree]
    return tree


def selected(where: str) -> tuple[str, ...]:
    config = config_from_dict(raw(policy={"rules": [rule({"where": where})]}))
    return config.policy.rules[0].campaigns  # type: ignore[union-attr,return-value]


@pytest.mark.parametrize(
    ("where", "names"),
    [
        ("family = 'power'", ("POWER_FIX", "POWER_INDEX", "POWER_EV")),
        ("family = 'power' AND margin > 50", ("POWER_FIX",)),
        # POWER_EV has no margin: NULL > 50 is not true, and NOT of it is not true either.
        ("margin > 50", ("POWER_FIX", "GAS_FIX", "GAS_WINTER")),
        ("NOT margin > 50", ("POWER_INDEX",)),
        ("margin IS NULL", ("POWER_EV",)),
        ("green", ("POWER_FIX",)),
        ("green = false OR tier = 'b'", ("POWER_INDEX", "GAS_FIX", "GAS_WINTER")),
        ("family IN ('gas') AND margin BETWEEN 55 AND 70.5", ("GAS_FIX", "GAS_WINTER")),
        ("name LIKE 'GAS%' OR success_value >= 140", ("POWER_EV", "GAS_FIX", "GAS_WINTER")),
        ("name NOT LIKE '%FIX' AND NOT trigger_only", ("POWER_INDEX", "POWER_EV", "GAS_WINTER")),
        ("margin = 70.5 OR margin = -1", ("GAS_FIX",)),
    ],
)
def test_a_selector_resolves_to_the_names_it_selects_in_config_order(
    where: str, names: tuple[str, ...]
) -> None:
    assert selected(where) == names


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "famly = 'power'",
            "policy rule 'family_cap': campaigns.where: 'famly' is not an offer attribute (known: family, "
            "green, margin, name, success_value, tier, trigger_only)",
        ),
        (
            "margin > '50'",
            "policy rule 'family_cap': campaigns.where: 'margin' is a number attribute but is compared "
            "with '50' (a string): write 50 without quotes",
        ),
        ("family = 5", "'family' is a string attribute but is compared with 5 (a number): quote it: '5'"),
        (
            "green = 1",
            "'green' is a boolean attribute but is compared with 1 (a number): compare green with a boolean",
        ),
        (
            "family = 'pwr'",
            "policy rule 'family_cap': campaigns.where: \"family = 'pwr'\" selects no campaign: check the "
            "attribute values (family takes gas, power)",
        ),
        ("margin", "'margin' is a number, not a condition: compare it, e.g. margin = …"),
        (
            "margin + 1 > 2",
            "'margin + 1' is not an attribute test; an offer predicate may use attribute names",
        ),
        ("upper(family) = 'POWER'", "'UPPER(family)' is not an attribute test"),
        ("family = 'power' -- and gas", "comments (-- or /* */) are not allowed"),
        ("family LIKE 5", "LIKE compares text"),
    ],
)
def test_a_bad_selector_is_an_error_naming_the_rule_the_key_and_the_fix(where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw(policy={"rules": [rule({"where": where})]}), "conf.yaml")
    assert str(info.value).startswith("invalid config conf.yaml")
    assert message in str(info.value)


def test_a_selector_is_a_mapping_with_the_one_key_where() -> None:
    for campaigns, message in (
        ({"wher": "family = 'gas'"}, "campaigns.where: required key is missing"),
        ({"where": "family = 'gas'", "limit": 2}, "campaigns.limit: unknown key: a selector has the one key"),
    ):
        with pytest.raises(ConfigError, match="policy rule 'family_cap': " + message):
            config_from_dict(raw(policy={"rules": [rule(campaigns)]}))


def test_every_campaign_scope_takes_a_selector_and_its_errors_name_the_rule() -> None:
    """Policy rules and pair sides, capacities, spreads, eligibility rules and trigger effects."""
    gas = {"where": "family = 'gas'"}
    tree = raw(
        policy={
            "rules": [
                rule(gas),
                {
                    "name": "apart",
                    "type": "never_together",
                    "a": {"campaigns": gas},
                    "b": {"campaigns": ["POWER_EV"]},
                },
                {
                    "name": "after",
                    "type": "only_after",
                    "a": {"campaigns": ["POWER_EV"]},
                    "b": {"campaigns": gas},
                },
            ]
        },
        capacities={
            "rules": [{"name": "gas_cap", "campaigns": gas, "max": 10}],
            "spread": [{"name": "gas_even", "campaigns": gas}],
        },
        eligibility={"rules": [{"name": "gas_vip", "where": "segment = 'VIP'", "campaigns": gas}]},
        triggers={
            "events": {
                "COMPLAINT": {"suppress": {"campaigns": gas}, "boost": {"campaigns": gas, "factor": 1.5}}
            }
        },
    )
    config = config_from_dict(tree)
    names = ("GAS_FIX", "GAS_WINTER")
    policy = config.policy.rules
    assert policy[0].campaigns == names  # type: ignore[union-attr]
    assert policy[1].a.campaigns == names and policy[2].b.campaigns == names  # type: ignore[union-attr]
    assert config.capacities.rules[0].campaigns == list(names)
    assert config.capacities.spread[0].campaigns == list(names)
    assert config.eligibility.rules[0].campaigns == list(names)
    effect = config.triggers.events["COMPLAINT"]
    assert effect.suppress is not None and effect.suppress.campaigns == list(names)
    assert effect.boost is not None and effect.boost.campaigns == list(names)
    # The same config with the names written out is the same config.
    assert config == config_from_dict(replaced(tree, gas, list(names)))
    assert tree["capacities"]["rules"][0]["campaigns"] == gas  # the caller's tree is not changed

    none = {"where": "family = 'water'"}
    for path, owner in (
        (("policy", "rules", 1, "a"), "policy rule 'apart': a.campaigns.where"),
        (("capacities", "rules", 0), "capacity rule 'gas_cap': campaigns.where"),
        (("capacities", "spread", 0), "spread rule 'gas_even': campaigns.where"),
        (("eligibility", "rules", 0), "eligibility rule 'gas_vip': campaigns.where"),
        (("triggers", "events", "COMPLAINT", "boost"), "triggers.events.COMPLAINT: boost.campaigns.where"),
    ):
        bad = copy.deepcopy(tree)
        node: Any = bad
        for key in path:
            node = node[key]
        node["campaigns"] = none
        with pytest.raises(ConfigError) as info:
            config_from_dict(bad)
        assert f"{owner}: \"family = 'water'\" selects no campaign" in str(info.value)


def _scope_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Names of the models reachable from ``model`` with a ``campaigns`` scope field."""
    found: set[str] = set()
    if model in seen:
        return found
    seen.add(model)
    for name, field in model.model_fields.items():
        if name == "campaigns" and model is not AppConfig:
            found.add(model.__name__)
        stack = [field.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                found |= _scope_models(tp, seen)
            stack.extend(typing.get_args(tp))
            if isinstance(tp, types.UnionType):
                stack.extend(tp.__args__)
    return found


def test_every_campaign_scope_of_the_models_is_one_the_resolver_walks() -> None:
    """A new section with a ``campaigns`` scope must be added to config/scopes.py, or its
    selectors would reach the models unresolved (and be refused there)."""
    assert _scope_models(AppConfig, set()) == {
        "MaxOffers",  # policy.rules[].campaigns (every scoped rule type)
        "MinOffers",
        "MaxPackages",
        "MaxCampaigns",
        "Scope",  # policy.rules[].a / .b
        "CapacityRule",
        "ShareScope",  # capacities.rules[].of
        "SpreadRule",
        "EligibilityRule",
        "EffectScope",  # triggers suppress
        "Boost",  # triggers boost
    }
    assert len(SCOPE_PATHS) == 9


def test_every_campaign_scope_of_the_models_resolves_its_names_through_scoped() -> None:
    """A new scope model must mix in Scoped (config/scope.py), so that "any" means one thing
    in every stage."""
    modules = (config_capacity, config_eligibility, config_policy, config_triggers)
    for name in _scope_models(AppConfig, set()):
        model = next(getattr(m, name) for m in modules if hasattr(m, name))
        assert issubclass(model, Scoped), name


def test_offer_attributes_are_typed_and_checked() -> None:
    config = config_from_dict(raw())
    assert config.campaigns["POWER_FIX"].attributes == {"margin": 60, "green": True}
    assert config.campaigns["GAS_FIX"].attributes == {"margin": 70.5, "green": False}
    for attributes, message in (
        (
            {"margin": None},
            "campaigns.POWER_FIX.attributes: attribute 'margin' is null: give a string, a number or true/false",
        ),
        ({"launch": "2027-01-01"}, None),  # a quoted date is a string
        ({"Margin": 1}, "attribute name 'Margin' must be lower-case letters, digits and _"),
        (
            {"family": "gas"},
            "'family' is a built-in attribute of every campaign: set it as the campaign's own key family:",
        ),
        ({"name": "X"}, "'name' is a built-in attribute of every campaign: remove it"),
        ({"margin": float("nan")}, "attribute 'margin' is nan: give a finite number"),
        ({"margin": [1, 2]}, "attribute 'margin' is list"),
    ):
        tree = raw()
        tree["campaigns"]["POWER_FIX"]["attributes"] = attributes
        if message is None:
            assert config_from_dict(tree).campaigns["POWER_FIX"].attributes == attributes
            continue
        with pytest.raises(ConfigError) as info:
            config_from_dict(tree)
        assert message in str(info.value)


def test_an_attribute_has_one_type_over_every_campaign() -> None:
    tree = raw()
    tree["campaigns"]["GAS_WINTER"]["attributes"]["margin"] = "high"
    expected = (
        "campaigns.GAS_WINTER.attributes.margin is a string but campaigns.POWER_FIX.attributes.margin "
        "is a number: give margin the same type on every campaign"
    )
    with pytest.raises(ConfigError, match=expected):
        config_from_dict(tree)  # no selector: the model's own check
    tree["policy"] = {"rules": [rule({"where": "margin > 1"})]}
    with pytest.raises(ConfigError, match=expected):
        config_from_dict(tree)  # with a selector: checked before resolving


def test_a_selector_in_a_config_with_a_bad_campaigns_section_reports_that_section() -> None:
    tree = raw(policy={"rules": [rule({"where": "family = 'gas'"})]})
    tree["campaigns"]["GAS_FIX"]["success_value"] = -1
    with pytest.raises(ConfigError) as info:
        config_from_dict(tree)
    assert info.value.problems == ["campaigns.GAS_FIX.success_value: Input should be greater than 0"]


def test_a_policy_read_alone_refuses_a_selector_and_says_why() -> None:
    with pytest.raises(PolicyError, match=r"a \{where: ...\} selector needs the campaigns' attributes"):
        PolicyConfig.from_mapping({"rules": [rule({"where": "family = 'gas'"})]})


def test_attributes_and_channel_costs_left_out_keep_the_config_fingerprint() -> None:
    """Absent (empty) attributes and channel costs are not in the dump, so a config written
    before they existed keeps its fingerprint, and so its run ids. (The pin moved once, from
    2ef195a1…, when the dead key demo.default_region left the config: docs/config_coverage.md.)"""
    config = load_config()
    assert "attributes" not in config.model_dump()["campaigns"]["SOLUTION"]
    assert config_hash(config) == "96767a34d483b0eae55fd39fc928264c86769bcda964c5127f2f22128a013b03"


def test_catalogue_50_with_attribute_scopes_is_the_catalogue_with_anchored_lists() -> None:
    """conf/examples/catalogue_50.yaml selects its families by attribute; the same catalogue
    with the YAML-anchored name lists it replaced (tests/data/catalogue_50_anchors.yaml, the
    file as it was) must load to the same policy, capacities and triggers, and compile to the
    same policy atoms: only the added ``price`` attributes differ."""
    new = load_config(ROOT / "conf/examples/catalogue_50.yaml")
    old = load_config(ROOT / "tests/data/catalogue_50_anchors.yaml")
    new_dump, old_dump = new.model_dump(), old.model_dump()
    prices = {name: c.pop("attributes") for name, c in new_dump["campaigns"].items() if "attributes" in c}
    assert prices["GAS_WINTER_CAP"] == {"price": "capped"} and len(prices) == 7
    assert new_dump == old_dump
    compiled = compile_policy(new.policy, new.campaign_names, new.channel_names)
    assert compiled == compile_policy(old.policy, old.campaign_names, old.channel_names)
    assert len(compiled.window_atoms) > 0 and len(compiled.pair_atoms) > 0


def test_a_campaign_may_cost_more_on_a_channel_than_the_channel_does() -> None:
    tree = raw()
    tree["campaigns"]["POWER_FIX"]["channel_costs"] = {"TLS": 12.0}
    config = config_from_dict(tree)
    assert config.contact_cost("POWER_FIX", "TLS") == 12.0
    assert config.contact_cost("POWER_FIX", "DEM") == 0.02  # not overridden: the channel's cost
    assert config.contact_cost("GAS_FIX", "TLS") == 4.0
    assert config.cost_matrix()[:2] == [[0.02, 12.0], [0.02, 4.0]]
    for costs, message in (
        ({"FAX": 1.0}, "campaigns.POWER_FIX.channel_costs: unknown channel 'FAX' (known: DEM, TLS)"),
        (
            {"TLS": -1.0},
            "campaigns.POWER_FIX.channel_costs: channel_costs.TLS is -1: give a cost from 0 to 1e+12",
        ),
        ({"TLS": float("inf")}, "must be a finite number"),
    ):
        tree["campaigns"]["POWER_FIX"]["channel_costs"] = costs
        with pytest.raises(ConfigError) as info:
            config_from_dict(tree)
        assert message in str(info.value)


def capacity(column: str, campaigns: Any = "any", measure: str = "sum") -> dict[str, Any]:
    return {"name": "offer_sum", "measure": measure, "column": column, "campaigns": campaigns, "max": 100}


def test_a_capacity_sums_a_numeric_offer_attribute_over_campaigns_that_have_it() -> None:
    """``margin`` is an offer attribute: every campaign the capacity counts needs a number."""
    with_margin = {"where": "margin IS NOT NULL"}
    config = config_from_dict(raw(capacities={"rules": [capacity("margin", with_margin)]}))
    assert config.capacities.rules[0].campaigns == ["POWER_FIX", "POWER_INDEX", "GAS_FIX", "GAS_WINTER"]
    assert config.offer_values("margin") == {
        "POWER_FIX": 60,
        "POWER_INDEX": 40,
        "GAS_FIX": 70.5,
        "GAS_WINTER": 55,
    }
    assert config.offer_values("success_value") == {
        c: float(v["success_value"]) for c, v in CAMPAIGNS.items()
    }
    assert config.offer_values("tier") is None and config.offer_values("segment_value") is None
    config_from_dict(raw(capacities={"rules": [capacity("success_value", measure="average")]}))
    for rule, message in (
        (
            capacity("margin"),
            "capacity rule 'offer_sum': column 'margin': campaigns POWER_EV in its scope have no margin: "
            "give them campaigns.<NAME>.attributes.margin (0 if none) or leave them out of its campaigns",
        ),
        (capacity("tier", ["GAS_WINTER"]), "column 'tier' is a string offer attribute: sums need a number"),
        (
            capacity("green", ["GAS_FIX"], "average"),
            "column 'green' is a boolean offer attribute: averages need a number",
        ),
    ):
        with pytest.raises(ConfigError) as info:
            config_from_dict(raw(capacities={"rules": [rule]}))
        assert message in str(info.value)


def test_an_attribute_may_not_take_the_name_of_a_contact_measure() -> None:
    tree = raw()
    tree["campaigns"]["GAS_FIX"]["attributes"] = {"cost": 3.0}
    with pytest.raises(ConfigError, match=r"'cost' is a measure of every contact .* set channel_costs"):
        config_from_dict(tree)
