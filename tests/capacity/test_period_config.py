"""Capacity periods and exceptions in the config: what loads, what an old config keeps, and
the errors, each naming the rule and the key and saying how to fix it (horizon 2027)."""

from __future__ import annotations

import pytest
from yaml import safe_load

from contact_spark.config import load_config
from contact_spark.config.fingerprint import config_hash
from contact_spark.errors import ConfigError


def rule(text: str) -> dict[str, object]:
    loaded: dict[str, object] = safe_load(text)
    return loaded


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "{name: calls, channels: [TLS], period: rolling, max: 9}",
            "capacities.rules.0: capacity rule 'calls': period: rolling needs months: N, the length of the "
            "window in months (e.g. months: 3)",
        ),
        (
            "{name: calls, channels: [TLS], period: quarter, months: 3, max: 9}",
            "capacities.rules.0: capacity rule 'calls': months is only for period: rolling (this rule's "
            "period is quarter): remove it or set period: rolling",
        ),
        (
            "{name: calls, channels: [TLS], period: week, max: 9}",
            "capacities.rules.0.period: Input should be 'month', 'quarter', 'rolling' or 'year'",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{from: 2027-08-01, to: 2027-08-15, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0]: to 2027-08-15 is not the last day of a "
            "month: the plan is monthly, so an exception covers whole months: give to: 2027-08-31",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{from: 2027-08-10, to: 2027-08-31, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0]: from 2027-08-10 is not the first day of "
            "a month: the plan is monthly, so an exception covers whole months: give from: 2027-08-01",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{from: 2027-09-01, to: 2027-08-31, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0]: to 2027-08-31 is before from "
            "2027-09-01: give the range in order",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{from: 2027-08-01, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0]: give month: 2027-08-01, or from: and "
            "to: (e.g. from: 2027-07-01, to: 2027-08-31)",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{month: 2027-08-01, from: 2027-08-01, "
            "to: 2027-08-31, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0]: give either month: or from:/to:, not both",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{from: 2027-01, to: 2028-02, every_year: true, "
            "max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0]: from 2027-01-01 to 2028-02-29 is longer "
            "than a year: a recurring exception covers at most 12 months of each year",
        ),
        (
            "{name: calls, channels: [TLS], max: 9, exceptions: [{from: 2027-07, to: 2027-08, max: 4}, "
            "{from: 2025-08, to: 2025-09, every_year: true, max: 3}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0] (2027-07..2027-08) and exceptions[1] "
            "(08..09 every year) share a month: a period takes the bounds of one exception; make the ranges "
            "disjoint",
        ),
        (
            "{name: calls, channels: [TLS], period: year, max: 9, exceptions: [{month: 2027-08-01, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': period: year is the whole horizon, so an exception "
            "would replace its bounds everywhere: change min/max, or use period: month, quarter or rolling",
        ),
        (
            "{name: calls, channels: [TLS], period: quarter, max: 9, exceptions: [{month: 2027-08-01, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0] (2027-08) covers no whole quarter of the "
            "horizon: an exception replaces the bounds of the periods lying wholly inside its dates; widen it, "
            "e.g. from: 2027-07-01, to: 2027-09-30 (2027-Q3)",
        ),
        (
            "{name: calls, channels: [TLS], period: rolling, months: 3, max: 9, "
            "exceptions: [{from: 2027-08, to: 2027-09, max: 4}]}",
            "capacities.rules.0: capacity rule 'calls': exceptions[0] (2027-08..2027-09) covers no whole "
            "rolling 3-month window of the horizon: an exception replaces the bounds of the periods lying "
            "wholly inside its dates; widen it, e.g. from: 2027-06-01, to: 2027-08-31 (2027-06..2027-08)",
        ),
    ],
)
def test_a_period_or_exception_that_cannot_hold_names_the_rule_and_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"capacities.rules": [rule(text)]})
    assert err.value.problems == [problem]


def test_an_old_config_loads_unchanged_and_keeps_its_fingerprint() -> None:
    """A month exception written as before dumps as before (the new keys are left out when
    unset), so the config hash, and with it the run id and the resume of recorded
    iterations, stays what it was; an exception outside the horizon is kept for later years."""
    old = load_config(
        overrides={
            "capacities.rules": [
                rule("{name: calls, channels: [TLS], max: 250, exceptions: [{month: 2027-08-01, max: 125}]}"),
                rule(
                    "{name: later, channels: [DEM], period: quarter, max: 9, exceptions: [{month: 2031-08-01, "
                    "max: 4}]}"
                ),
            ]
        }
    )
    dumped = old.model_dump(mode="json")["capacities"]["rules"][0]
    assert dumped["exceptions"] == [{"month": "2027-08-01", "min": None, "max": 125.0}]
    assert "months" not in dumped and dumped["period"] == "month"
    same = load_config(
        overrides={
            "capacities.rules": [
                rule("{name: calls, channels: [TLS], max: 250, exceptions: [{month: 2027-08, max: 125}]}"),
                rule(
                    "{name: later, channels: [DEM], period: quarter, max: 9, exceptions: [{month: 2031-08-01, "
                    "max: 4}]}"
                ),
            ]
        }
    )
    assert config_hash(same) == config_hash(old)
    ranged = load_config(
        overrides={
            "capacities.rules": [
                rule(
                    "{name: calls, channels: [TLS], max: 250, exceptions: [{from: 2027-08-01, to: 2027-08-31, "
                    "max: 125}]}"
                )
            ]
        }
    )
    # The same months written as a range: the same bounds, but another config (another hash).
    months = ranged.run.months()
    assert [p.max for p in ranged.capacities.rules[0].periods(months)] == [
        p.max for p in old.capacities.rules[0].periods(months)
    ]
    assert config_hash(ranged) != config_hash(old)
