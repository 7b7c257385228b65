"""The greedy's policy kernel (``baseline.rules.blocking``) on hand-built count arrays."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from contact_spark.baseline import rules as R
from contact_spark.config import AppConfig, load_config

# Cells k = campaign_index * 3 + channel_index: CROSS_SELLING 0..2, SOLUTION 3..5 (DEM, SMS, TLS).
CS_DEM, CS_SMS, CS_TLS, SOL_DEM, SOL_SMS, SOL_TLS = range(6)


def config_with(policy: list[dict[str, Any]]) -> AppConfig:
    return load_config(overrides={"policy.rules": policy, "capacities.rules": [], "capacities.spread": []})


def blocked(rules: R.RuleArrays, contacts: dict[tuple[int, int], int], t: int, k: int) -> list[str]:
    """Names of the rules one more contact ``(t, k)`` breaks, given ``{(month, cell): count}``."""
    counts = np.zeros((rules.rows, 6), dtype=np.int64)
    for (m, cell), n in contacts.items():
        counts[rules.row(m), cell] += n
    return R.rule_names(int(R.blocking(counts, t, k, *R.args(rules))), rules)


def test_max_campaigns_blocks_a_new_campaign_not_the_same_one_again() -> None:
    """Two-month window, at most one campaign on DEM/SMS (TLS out of scope):

    * a CROSS_SELLING contact in the history month -1 counts in the window ending at 0, so
      a SOLUTION contact at 0 is a second campaign: blocked; at 1 the window is 0..1,
      without month -1: allowed;
    * the same campaign again (another month, another channel) counts once: allowed;
    * a window the history alone puts over the limit is never repaired: even the same
      campaign again is blocked there (the validator reports that window too);
    * a new contact is checked in every window holding it: CROSS_SELLING planned at 3
      blocks SOLUTION at 2 (window 2..3), 3 and 4 (window 3..4), not at 5;
    * a contact out of scope (TLS) is never blocked and never counts.
    """
    rules = R.rule_arrays(
        config_with(
            [
                {
                    "name": "one_campaign_2m",
                    "type": "max_campaigns",
                    "channels": ["DEM", "SMS"],
                    "window_months": 2,
                    "limit": 1,
                }
            ]
        )
    )
    history = {(-1, CS_DEM): 2}
    assert blocked(rules, history, 0, SOL_DEM) == ["one_campaign_2m"]
    assert blocked(rules, history, 1, SOL_DEM) == []
    assert blocked(rules, history, 0, CS_SMS) == []
    assert blocked(rules, {**history, (0, CS_DEM): 1}, 1, CS_SMS) == []
    assert blocked(rules, history, 0, SOL_TLS) == []
    assert blocked(rules, {(0, SOL_TLS): 1}, 0, CS_DEM) == []
    assert blocked(rules, {(-1, CS_DEM): 1, (-1, SOL_SMS): 1}, 0, CS_DEM) == ["one_campaign_2m"]
    planned = {(3, CS_DEM): 1}
    assert [t for t in range(12) if blocked(rules, planned, t, SOL_SMS)] == [2, 3, 4]


def test_max_campaigns_per_channel_counts_each_channel_apart() -> None:
    """per_channel, one month, at most one campaign: two campaigns on two channels are
    two copies of one campaign each; two on one channel break that channel's copy."""
    one = R.rule_arrays(
        config_with(
            [
                {
                    "name": "one_per_channel",
                    "type": "max_campaigns",
                    "per_channel": True,
                    "window_months": 1,
                    "limit": 1,
                }
            ]
        )
    )
    assert blocked(one, {(0, CS_SMS): 1}, 0, SOL_TLS) == []
    assert blocked(one, {(0, CS_TLS): 1}, 0, SOL_TLS) == ["one_per_channel"]


def test_a_rule_type_without_a_kernel_is_refused() -> None:
    """A rule type the greedy does not implement must stop it, not be skipped (its plan would break it)."""
    base = config_with([])
    bogus = SimpleNamespace(name="mystery", type="max_mystery", window_months=1)
    config = base.model_copy(update={"policy": base.policy.model_copy(update={"rules": [bogus]})})
    with pytest.raises(R.UnknownRuleTypeError, match="max_mystery"):
        R.rule_arrays(config)
