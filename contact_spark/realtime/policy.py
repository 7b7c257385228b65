"""The contact-policy rules evaluated for one new contact of one customer, in plain Python.

The semantics are those of ``contact_spark/policy/README.md`` as the independent validator
(:mod:`contact_spark.validation`) implements them. ``events`` is the customer's
world *after* the checked contact is added: ``{(month, campaign, channel): count}`` over
absolute month numbers (``year * 12 + month - 1``), history, confirmed real-time contacts
and the plan together. A rule is broken by the new contact at month ``t`` in cell ``c`` when

* ``max_offers`` / ``max_packages``: a window of ``w`` months containing ``t`` holds more than
  ``limit`` contacts (packages) of ``c``'s rule copy. A window already over its limit because
  of the history is broken too: history is never repaired, the plan adds nothing to it;
* ``max_campaigns``: a window of ``w`` months containing ``t`` holds more than ``limit``
  distinct campaigns in the scope of ``c``'s rule copy (``per_channel`` only); a campaign
  in several months or channels of the window counts once, history included;
* ``never_together``: another contact (a different (month, campaign, channel)) on the other
  side of the pair, in the same copy, is less than ``w`` months away;
* ``never_followed_by``: ``c`` is in ``b`` and an ``a`` contact is 1..``w`` months earlier, or
  ``c`` is in ``a`` and a ``b`` contact is 1..``w`` months later;
* ``only_after``: ``c`` is in ``b`` and no ``a`` contact of the same copy is in an earlier month
  (at most ``w`` months before when ``w`` is set).

``min_offers`` rules never forbid a contact and are not compiled here. Any rule type
not listed here is refused by :class:`PolicyIndex` (a rule skipped in silence would let
the real-time check allow contacts the plan's validator refuses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contact_spark.config.policy import (
    MaxCampaigns,
    MaxOffers,
    MaxPackages,
    NeverFollowedBy,
    NeverTogether,
    OnlyAfter,
    PolicyConfig,
)
from contact_spark.config.scope import Configured, Scoped
from contact_spark.errors import ContactSparkError

Cell = tuple[str, str]
EventKey = tuple[int, str, str]
# Rule types with one campaigns x channels scope, and with a pair of scopes (a, b).
WINDOW_RULES = (MaxOffers, MaxPackages, MaxCampaigns)
PAIR_RULES = (NeverTogether, NeverFollowedBy, OnlyAfter)


class UnknownRuleTypeError(ContactSparkError):
    """The policy has a rule type the real-time check does not implement."""


def month_label(month: int) -> str:
    """Absolute month number -> ``YYYY-MM``."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def _cells(scope: Scoped, campaigns: Sequence[str], channels: Sequence[str]) -> frozenset[Cell]:
    return frozenset(scope.resolve(Configured.of(campaigns, channels)).cells())


@dataclass(frozen=True)
class RuleSpec:
    """One For-Each-Customer rule bound to the configured campaigns and channels."""

    name: str
    type: str
    window: int | None
    limit: int | None
    per_campaign: bool
    per_channel: bool
    cells: frozenset[Cell] = frozenset()  # max_offers / max_packages / max_campaigns scope
    a: frozenset[Cell] = frozenset()  # pair rules
    b: frozenset[Cell] = frozenset()

    def same_copy(self, x: Cell, y: Cell) -> bool:
        """Whether two cells fall in the same copy of a per_campaign / per_channel rule."""
        return (not self.per_campaign or x[0] == y[0]) and (not self.per_channel or x[1] == y[1])

    def copy_label(self, cell: Cell) -> str:
        parts = ([cell[0]] if self.per_campaign else []) + ([cell[1]] if self.per_channel else [])
        return f" for {'/'.join(parts)}" if parts else ""

    def touches(self, cell: Cell) -> bool:
        return cell in self.cells or cell in self.a or cell in self.b


@dataclass(frozen=True)
class Violation:
    """A rule the new contact would break, with a one-line explanation."""

    rule: str
    type: str
    detail: str


class PolicyIndex:
    """The policy's max and pair rules, indexed by the cells they concern."""

    def __init__(self, policy: PolicyConfig, campaigns: Sequence[str], channels: Sequence[str]) -> None:
        specs: list[RuleSpec] = []
        for rule in policy.rules:
            if rule.type == "min_offers":
                continue  # a minimum never forbids a contact
            if isinstance(rule, WINDOW_RULES):
                specs.append(
                    RuleSpec(
                        rule.name,
                        rule.type,
                        rule.window_months,
                        rule.limit,
                        rule.per_campaign,
                        rule.per_channel,
                        cells=_cells(rule.scope, campaigns, channels),
                    )
                )
            elif isinstance(rule, PAIR_RULES):
                specs.append(
                    RuleSpec(
                        rule.name,
                        rule.type,
                        rule.window_months,
                        None,
                        rule.per_campaign,
                        rule.per_channel,
                        a=_cells(rule.a, campaigns, channels),
                        b=_cells(rule.b, campaigns, channels),
                    )
                )
            else:
                raise UnknownRuleTypeError(
                    f"policy rule '{rule.name}': the real-time check has no evaluation for type '{rule.type}'"
                )
        self.rules = tuple(specs)
        self.by_cell: dict[Cell, tuple[RuleSpec, ...]] = {
            (c, h): tuple(r for r in specs if r.touches((c, h))) for c in campaigns for h in channels
        }

    def violations(self, events: Mapping[EventKey, int], month: int, cell: Cell) -> list[Violation]:
        """Every rule the contact ``(month, cell)`` breaks in the world ``events`` (which holds it)."""
        out = []
        for rule in self.by_cell.get(cell, ()):
            detail = _evaluate(rule, events, month, cell)
            if detail is not None:
                out.append(Violation(rule.name, rule.type, detail))
        return out


def _evaluate(rule: RuleSpec, events: Mapping[EventKey, int], t: int, cell: Cell) -> str | None:
    if rule.type in ("max_offers", "max_packages"):
        return _window(rule, events, t, cell)
    if rule.type == "max_campaigns":
        return _campaigns(rule, events, t, cell)
    if rule.type == "never_together":
        return _together(rule, events, t, cell)
    if rule.type == "never_followed_by":
        return _followed(rule, events, t, cell)
    return _only_after(rule, events, t, cell)  # PolicyIndex admits no other type


def _window(rule: RuleSpec, events: Mapping[EventKey, int], t: int, cell: Cell) -> str | None:
    w = int(rule.window or 1)
    limit = int(rule.limit or 0)
    packages = rule.type == "max_packages"
    counts: dict[int, int] = defaultdict(int)
    channels: dict[int, set[str]] = defaultdict(set)
    for (m, campaign, channel), n in events.items():
        if n <= 0 or abs(m - t) >= w:
            continue
        other = (campaign, channel)
        if other not in rule.cells or not rule.same_copy(cell, other):
            continue
        if packages:
            channels[m].add(channel)
        else:
            counts[m] += n
    weight = {m: len(s) for m, s in channels.items()} if packages else counts
    worst: tuple[int, int] | None = None
    # Every window containing t: ends t .. t+w-1 (windows past the last contact hold
    # fewer contacts than the one ending there, so nothing is missed or added).
    for end in range(t, t + w):
        total = sum(weight.get(s, 0) for s in range(end - w + 1, end + 1))
        if total > limit and (worst is None or total > worst[0]):
            worst = (total, end)
    if worst is None:
        return None
    total, end = worst
    unit = "packages" if packages else "contacts"
    span = month_label(end) if w == 1 else f"{month_label(end - w + 1)}..{month_label(end)}"
    return (
        f"{rule.type}: {total} {unit} in the {w}-month window {span} with this one "
        f"(limit {limit}){rule.copy_label(cell)}"
    )


def _campaigns(rule: RuleSpec, events: Mapping[EventKey, int], t: int, cell: Cell) -> str | None:
    w = int(rule.window or 1)
    limit = int(rule.limit or 0)
    seen: dict[int, set[str]] = defaultdict(set)  # month -> campaigns of the rule copy
    for (m, campaign, channel), n in events.items():
        other = (campaign, channel)
        if n > 0 and abs(m - t) < w and other in rule.cells and rule.same_copy(cell, other):
            seen[m].add(campaign)
    worst: tuple[int, int, list[str]] | None = None
    # Every window containing t, as for max_offers; the window's campaigns are a set union,
    # so a campaign in several of its months counts once.
    for end in range(t, t + w):
        campaigns = sorted(set().union(*(seen.get(s, set()) for s in range(end - w + 1, end + 1))))
        if len(campaigns) > limit and (worst is None or len(campaigns) > worst[0]):
            worst = (len(campaigns), end, campaigns)
    if worst is None:
        return None
    total, end, campaigns = worst
    span = month_label(end) if w == 1 else f"{month_label(end - w + 1)}..{month_label(end)}"
    return (
        f"max_campaigns: {total} campaigns ({', '.join(campaigns)}) in the {w}-month window {span} "
        f"with this one (limit {limit}){rule.copy_label(cell)}"
    )


def _others(
    rule: RuleSpec, events: Mapping[EventKey, int], side: frozenset[Cell], t: int, cell: Cell
) -> list[tuple[int, Cell]]:
    """Contacts of ``side`` in the same rule copy as ``cell``, other than the checked one."""
    found = []
    for (m, campaign, channel), n in events.items():
        other = (campaign, channel)
        if n > 0 and other in side and rule.same_copy(cell, other) and (m, other) != (t, cell):
            found.append((m, other))
    return sorted(found)


def _describe(m: int, cell: Cell) -> str:
    return f"{cell[0]}/{cell[1]} in {month_label(m)}"


def _together(rule: RuleSpec, events: Mapping[EventKey, int], t: int, cell: Cell) -> str | None:
    w = int(rule.window or 1)
    for mine, theirs in ((rule.a, rule.b), (rule.b, rule.a)):
        if cell not in mine:
            continue
        for m, other in _others(rule, events, theirs, t, cell):
            if abs(m - t) < w:
                return f"never_together: {_describe(t, cell)} with {_describe(m, other)}"
    return None


def _followed(rule: RuleSpec, events: Mapping[EventKey, int], t: int, cell: Cell) -> str | None:
    w = int(rule.window or 1)
    if cell in rule.b:
        for m, other in _others(rule, events, rule.a, t, cell):
            if 1 <= t - m <= w:
                return f"never_followed_by: {_describe(t, cell)} follows {_describe(m, other)}"
    if cell in rule.a:
        for m, other in _others(rule, events, rule.b, t, cell):
            if 1 <= m - t <= w:
                return f"never_followed_by: {_describe(m, other)} would follow {_describe(t, cell)}"
    return None


def _only_after(rule: RuleSpec, events: Mapping[EventKey, int], t: int, cell: Cell) -> str | None:
    if cell not in rule.b:
        return None
    w = rule.window
    for m, _ in _others(rule, events, rule.a, t, cell):
        if m < t and (w is None or t - m <= w):
            return None
    when = "in any earlier month" if w is None else f"in the {w} months before"
    return f"only_after: {_describe(t, cell)} without a contact in scope a {when}{rule.copy_label(cell)}"
