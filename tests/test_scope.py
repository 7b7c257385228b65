"""Scopes: what a campaigns × channels scope of any configuration model stands for."""

from __future__ import annotations

from contact_spark.config.capacity import CapacityRule
from contact_spark.config.policy import Scope
from contact_spark.config.scope import Configured, Resolved
from contact_spark.config.triggers import Boost

CONFIGURED = Configured.of(["CROSS_SELLING", "SOLUTION"], ["DEM", "SMS", "TLS"])


def test_any_is_every_configured_name_in_config_order_and_a_list_is_itself_as_written() -> None:
    rule = CapacityRule(name="calls", channels=["TLS", "DEM"], max=10)
    resolved = rule.resolve(CONFIGURED)
    assert resolved == Resolved(("CROSS_SELLING", "SOLUTION"), ("TLS", "DEM"))
    assert resolved.cells() == [
        ("CROSS_SELLING", "TLS"),
        ("CROSS_SELLING", "DEM"),
        ("SOLUTION", "TLS"),
        ("SOLUTION", "DEM"),
    ]
    assert resolved.covers("SOLUTION", "DEM")
    assert not resolved.covers("SOLUTION", "SMS")
    assert rule.restriction("campaigns") is None
    assert rule.restriction("channels") == ["TLS", "DEM"]


def test_a_policy_scope_and_a_trigger_scope_resolve_the_same_way() -> None:
    assert Scope(campaigns=("SOLUTION",)).resolve(CONFIGURED) == Resolved(
        ("SOLUTION",), ("DEM", "SMS", "TLS")
    )
    assert Boost(campaigns=["SOLUTION"], factor=2.0).resolve(CONFIGURED) == Resolved(
        ("SOLUTION",), ("DEM", "SMS", "TLS")
    )
