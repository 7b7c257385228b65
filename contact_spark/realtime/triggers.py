"""Trigger effects in the real-time check, as the validator applies them to a plan.

A triggered campaign (``campaigns.X.trigger_only``) may be contacted only on a channel an
applied event of the customer opens, in a month that event is active; nothing in a
suppressing event's scope may be contacted while it is active. An event is active from its
month for ``months`` months (``triggers.events``). The events are the run's applied
``trigger_events`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from contact_spark.config.models import AppConfig
from contact_spark.realtime.models import TRIGGER_NOT_ACTIVE, TRIGGER_SUPPRESSED, Reason
from contact_spark.realtime.policy import month_label

# Written by a trigger run (``contact_spark.adaptive.triggers``, which needs Spark to import).
TRIGGER_EVENTS_TABLE = "trigger_events"
AppliedEvent = tuple[str, int]  # (event type, absolute month number of the event)


@dataclass(frozen=True)
class _Opener:
    event_type: str
    channels: frozenset[str]
    months: int


@dataclass(frozen=True)
class _Suppression:
    event_type: str
    campaigns: frozenset[str]
    channels: frozenset[str]
    months: int


class TriggerIndex:
    """The configured trigger effects, ready to check one contact against a customer's events."""

    def __init__(self, config: AppConfig) -> None:
        self.triggered = frozenset(config.trigger_campaigns)
        self.openers: dict[str, list[_Opener]] = {}
        self.suppressions: list[_Suppression] = []
        for event_type, effect in config.triggers.events.items():
            if effect.campaign is not None:
                self.openers.setdefault(effect.campaign, []).append(
                    _Opener(event_type, frozenset(effect.propensity), effect.months)
                )
            if effect.suppress is not None:
                scope = effect.suppress.resolve(config)
                self.suppressions.append(
                    _Suppression(
                        event_type, frozenset(scope.campaigns), frozenset(scope.channels), effect.months
                    )
                )

    def reasons(self, events: list[AppliedEvent], month: int, campaign: str, channel: str) -> list[Reason]:
        """Why the trigger effects forbid ``campaign``/``channel`` in ``month`` (empty: they do not)."""
        out: list[Reason] = []
        if campaign in self.triggered:
            opened = any(
                event_type == o.event_type and channel in o.channels and start <= month < start + o.months
                for o in self.openers.get(campaign, [])
                for event_type, start in events
            )
            if not opened:
                out.append(
                    Reason(
                        code=TRIGGER_NOT_ACTIVE,
                        rule=f"trigger_window:{campaign}",
                        detail=f"{campaign}/{channel} in {month_label(month)}: no applied event opens it then",
                    )
                )
        for s in self.suppressions:
            if campaign not in s.campaigns or channel not in s.channels:
                continue
            for event_type, start in events:
                if event_type == s.event_type and start <= month < start + s.months:
                    out.append(
                        Reason(
                            code=TRIGGER_SUPPRESSED,
                            rule=f"trigger_suppress:{event_type}",
                            detail=f"{campaign}/{channel} in {month_label(month)}: a {event_type} "
                            f"from {month_label(start)} suppresses it",
                        )
                    )
                    break
        return out
