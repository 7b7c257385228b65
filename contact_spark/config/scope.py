"""What a campaign × channel scope stands for: the one place ``"any"`` becomes names.

Every configuration model that names the contacts it applies to (a policy rule or one side of
a pair rule, a capacity, a spread, an eligibility rule, a trigger's suppress/boost) has the
two fields ``campaigns`` and ``channels``, each a list of names or ``"any"``. Those models
mix in :class:`Scoped`, and every stage asks them for names through it:
``rule.resolve(config)`` gives the campaigns and channels a scope covers, with ``"any"``
standing for every configured one, in config order.

A scope written as an offer-attribute selector (``campaigns: {where: "..."}``) never reaches
these models: :mod:`contact_spark.config.scopes` resolves it to the names it selects while the
configuration loads, so a validated scope always holds names (or ``"any"``).

The independent checkers (the validator and the test oracle) read the same configuration; what
``"any"`` means is configuration, not enforcement, so they may resolve scopes here too. The test
oracle (tests/solver/rule_checker.py) keeps its own reading on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

# Final: the type checker reads it as Literal["any"], the default of every scope field.
ANY: Final = "any"

#: A scope field's value: the names it lists (in the order written) or ``"any"``.
ScopeNames = Sequence[str] | Literal["any"]


class Catalogue(Protocol):
    """What a scope is resolved against: the configured campaigns and channels, in order
    (:class:`~contact_spark.config.models.AppConfig` is one)."""

    @property
    def campaign_names(self) -> Sequence[str]: ...

    @property
    def channel_names(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Configured:
    """A :class:`Catalogue` from plain name lists (for callers that hold no config)."""

    campaign_names: tuple[str, ...]
    channel_names: tuple[str, ...]

    @classmethod
    def of(cls, campaigns: Iterable[str], channels: Iterable[str]) -> Configured:
        return cls(tuple(campaigns), tuple(channels))


def names_in(value: ScopeNames, configured: Iterable[str]) -> list[str]:
    """The names a scope field stands for: ``"any"`` is every configured name (in their
    order), a list is itself (in the order written)."""
    return list(configured) if value == ANY else list(value)


@dataclass(frozen=True)
class Resolved:
    """A scope's names: the campaigns and channels it covers."""

    campaigns: tuple[str, ...]
    channels: tuple[str, ...]

    def cells(self) -> list[tuple[str, str]]:
        """Its (campaign, channel) cells, campaign by campaign."""
        return [(c, h) for c in self.campaigns for h in self.channels]

    def covers(self, campaign: str, channel: str) -> bool:
        return campaign in self.campaigns and channel in self.channels


class Scoped:
    """Mixin of every model with ``campaigns`` and ``channels`` scope fields (declared by each
    model, whose validation differs: a policy rule refuses an empty list, for one)."""

    if TYPE_CHECKING:

        @property
        def campaigns(self) -> ScopeNames: ...

        @property
        def channels(self) -> ScopeNames: ...

    def resolve(self, config: Catalogue) -> Resolved:
        """The campaigns and channels of ``config`` this scope covers."""
        return Resolved(
            tuple(names_in(self.campaigns, config.campaign_names)),
            tuple(names_in(self.channels, config.channel_names)),
        )

    def restriction(self, what: Literal["campaigns", "channels"]) -> list[str] | None:
        """The names ``what`` is restricted to, as listed; None when it is ``"any"`` (no filter
        needed, nothing to check against the configured names)."""
        value = self.campaigns if what == "campaigns" else self.channels
        return None if value == ANY else list(value)
