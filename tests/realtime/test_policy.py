"""The real-time policy evaluation (``realtime.policy.PolicyIndex``) on hand-built events."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from contact_spark.config.policy import PolicyConfig
from contact_spark.realtime.policy import EventKey, PolicyIndex, UnknownRuleTypeError

CAMPAIGNS = ("CROSS_SELLING", "SOLUTION")
CHANNELS = ("DEM", "SMS", "TLS")
JAN = 2027 * 12  # absolute month number of 2027-01
DEC = JAN - 1


def index(*rules: dict[str, Any]) -> PolicyIndex:
    return PolicyIndex(PolicyConfig.from_mapping({"rules": list(rules)}), CAMPAIGNS, CHANNELS)


def broken(
    policy: PolicyIndex, events: dict[EventKey, int], month: int, campaign: str, channel: str
) -> list[str]:
    """Details of the rules the contact breaks; ``events`` get the contact added, as the check does."""
    world = dict(events)
    world[(month, campaign, channel)] = world.get((month, campaign, channel), 0) + 1
    return [v.detail for v in policy.violations(world, month, (campaign, channel))]


TWO_MONTHS = {
    "name": "one_campaign_2m",
    "type": "max_campaigns",
    "channels": ["DEM", "SMS"],
    "window_months": 2,
    "limit": 1,
}


def test_max_campaigns_counts_last_months_history_and_a_campaign_once() -> None:
    """Two-month window, one campaign on DEM/SMS (TLS out of scope), history in 2026-12:

    * CROSS_SELLING e-mailed in 2026-12: a SOLUTION e-mail in 2027-01 makes two campaigns
      in 2026-12..2027-01; in 2027-02 the window 2027-01..2027-02 has one;
    * CROSS_SELLING again (another month and channel) counts once: allowed;
    * a SOLUTION call is out of scope: allowed, and it does not count for an e-mail;
    * a contact is checked in every window holding it, the later one too (2027-01..2027-02).
    """
    policy = index(TWO_MONTHS)
    history = {(DEC, "CROSS_SELLING", "DEM"): 1}
    assert broken(policy, history, JAN, "SOLUTION", "DEM") == [
        "max_campaigns: 2 campaigns (CROSS_SELLING, SOLUTION) in the 2-month window 2026-12..2027-01 "
        "with this one (limit 1)"
    ]
    assert broken(policy, history, JAN + 1, "SOLUTION", "DEM") == []
    assert (
        broken(policy, {**history, (JAN, "CROSS_SELLING", "DEM"): 1}, JAN + 1, "CROSS_SELLING", "SMS") == []
    )
    assert broken(policy, history, JAN, "SOLUTION", "TLS") == []
    assert broken(policy, {(JAN, "SOLUTION", "TLS"): 1}, JAN, "CROSS_SELLING", "DEM") == []
    later = broken(policy, {(JAN + 1, "CROSS_SELLING", "SMS"): 1}, JAN, "SOLUTION", "DEM")
    assert later == [
        "max_campaigns: 2 campaigns (CROSS_SELLING, SOLUTION) in the 2-month window 2027-01..2027-02 "
        "with this one (limit 1)"
    ]


def test_max_campaigns_per_channel_and_history_already_over() -> None:
    """per_channel splits by channel: two campaigns on two channels are allowed, two on
    one are not. A window the history alone puts over the limit is never repaired: the
    same campaign again is refused there too (the validator flags that window)."""
    per_channel = index(
        {
            "name": "one_per_channel",
            "type": "max_campaigns",
            "per_channel": True,
            "window_months": 1,
            "limit": 1,
        }
    )
    assert broken(per_channel, {(JAN, "CROSS_SELLING", "SMS"): 1}, JAN, "SOLUTION", "TLS") == []
    assert broken(per_channel, {(JAN, "CROSS_SELLING", "TLS"): 1}, JAN, "SOLUTION", "TLS") == [
        "max_campaigns: 2 campaigns (CROSS_SELLING, SOLUTION) in the 1-month window 2027-01 "
        "with this one (limit 1) for TLS"
    ]
    over = {(DEC, "CROSS_SELLING", "DEM"): 1, (DEC, "SOLUTION", "SMS"): 1}
    assert len(broken(index(TWO_MONTHS), over, JAN, "CROSS_SELLING", "DEM")) == 1


def test_a_rule_type_without_an_evaluation_is_refused() -> None:
    """An unknown rule type stops the index instead of being read as a pair rule or skipped."""
    bogus = SimpleNamespace(
        name="mystery", type="max_mystery", window_months=1, per_campaign=False, per_channel=False
    )
    with pytest.raises(UnknownRuleTypeError, match="max_mystery"):
        PolicyIndex(SimpleNamespace(rules=[bogus]), CAMPAIGNS, CHANNELS)  # type: ignore[arg-type]
