"""The contact-policy rules evaluated for one new contact of one customer, with explanations.

The checking is the shared per-customer checker's (:mod:`contact_spark.baseline.rules`, the
one the greedy baseline plans with and ``contact_decisions`` explains with); this module
lays the customer's contacts out for it around the checked month and words what it finds.
The semantics are those of ``contact_spark/policy/README.md`` as the independent validator
(:mod:`contact_spark.validation`, which shares no code with the checker) implements them;
the real-time agreement tests hold the two together. ``events`` is the customer's world
*after* the checked contact is added: ``{(month, campaign, channel): count}`` over absolute
month numbers (``year * 12 + month - 1``), history, confirmed real-time contacts and the
plan together. A rule is broken by the new contact at month ``t`` in cell ``c`` when

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

No window stops at the plan's last month here: a contact is checked in every window
holding it, whatever the month. A max rule's explanation names its fullest window (the
earliest of equals); a pair rule's names the clashing contact first in (month, campaign,
channel) order. ``min_offers`` rules never forbid a contact. Any rule type the checker
does not implement is refused by :class:`PolicyIndex` (a rule skipped in silence would let
the real-time check allow contacts the plan's validator refuses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from contact_spark.baseline import rules as R
from contact_spark.baseline.rules import UnknownRuleTypeError as UnknownRuleTypeError
from contact_spark.config.policy import PolicyConfig
from contact_spark.config.scope import Configured

Cell = tuple[str, str]
EventKey = tuple[int, str, str]


def month_label(month: int) -> str:
    """Absolute month number -> ``YYYY-MM``."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


@dataclass(frozen=True)
class Violation:
    """A rule the new contact would break, with a one-line explanation."""

    rule: str
    type: str
    detail: str


class PolicyIndex:
    """The policy's rules encoded for the shared checker, around a checked month 0."""

    def __init__(self, policy: PolicyConfig, campaigns: Sequence[str], channels: Sequence[str]) -> None:
        # Cells numbered in name order: the checker reports the first clashing contact of a
        # month in cell order, and the explanation names it in (campaign, channel) order.
        self.campaigns = tuple(sorted(campaigns))
        self.channels = tuple(sorted(channels))
        self.rules = R.encode(policy.rules, Configured.of(self.campaigns, self.channels), horizon=None)
        self._args = R.args(self.rules)
        n_h = len(self.channels)
        self._k = {
            (c, h): i * n_h + j for i, c in enumerate(self.campaigns) for j, h in enumerate(self.channels)
        }
        if self._k and self.rules.names:
            # Compile the kernels now (or load them from numba's cache: 0.4 s; 3.4 s cold),
            # while the snapshot loads, not during the first request's check.
            empty = np.zeros((self.rules.rows, len(self._k)), dtype=np.int64)
            R.broken_rules(empty, 0, 0, *self._args)
            R.window_campaigns(empty, 0, 0, 0, 0, self.rules.cells, self.rules.per_channel, n_h)

    def violations(self, events: Mapping[EventKey, int], month: int, cell: Cell) -> list[Violation]:
        """Every rule the contact ``(month, cell)`` breaks in the world ``events`` (which holds it)."""
        k = self._k.get(cell)
        if k is None:
            return []  # an unconfigured cell is in no rule's scope
        rules = self.rules
        # Months counted from the checked one; older ones fold into row 0, later ones past
        # every rule's reach are dropped; contacts of unconfigured cells are in no scope.
        counts = np.zeros((rules.rows, len(self._k)), dtype=np.int64)
        for (m, campaign, channel), n in events.items():
            k2 = self._k.get((campaign, channel))
            row = rules.row(m - month)
            if k2 is not None and n > 0 and row < rules.rows:
                counts[row, k2] += n
        if counts[rules.offset, k] < 1:
            raise ValueError(f"events must hold the checked contact {month_label(month)} {cell}")
        counts[rules.offset, k] -= 1  # the checker adds the contact itself
        found = R.broken_rules(counts, 0, k, *self._args)
        return [
            Violation(rules.names[r], rules.types[r], self._detail(r, found[r], counts, month, k))
            for r in np.flatnonzero(found[:, 0]).tolist()
        ]

    def _detail(self, r: int, found: np.ndarray, counts: np.ndarray, t: int, k: int) -> str:
        """One line on why rule ``r`` is broken, from what the checker found (``value, row, k2``)."""
        rules = self.rules
        kind, w, limit = rules.types[r], int(rules.window[r]), int(rules.limit[r])
        value, row, k2 = (int(v) for v in found[1:])
        at = row - rules.offset + t  # the absolute month of ``row``
        cell = self._cell(k)
        copy = self._copy_label(r, cell)
        if kind in ("max_offers", "max_packages", "max_campaigns"):
            span = month_label(at) if w == 1 else f"{month_label(at - w + 1)}..{month_label(at)}"
            if kind == "max_campaigns":
                seen = R.window_campaigns(
                    counts, k, r, row - w + 1, row, rules.cells, rules.per_channel, rules.n_channels
                )
                names = ", ".join(c for c, s in zip(self.campaigns, seen.tolist(), strict=True) if s)
                what = f"{value} campaigns ({names})"
            else:
                what = f"{value} {'packages' if kind == 'max_packages' else 'contacts'}"
            return f"{kind}: {what} in the {w}-month window {span} with this one (limit {limit}){copy}"
        if kind == "never_together":
            return f"never_together: {_describe(t, cell)} with {_describe(at, self._cell(k2))}"
        if kind == "never_followed_by":
            if at < t:
                return f"never_followed_by: {_describe(t, cell)} follows {_describe(at, self._cell(k2))}"
            return f"never_followed_by: {_describe(at, self._cell(k2))} would follow {_describe(t, cell)}"
        when = "in any earlier month" if w < 0 else f"in the {w} months before"  # only_after
        return f"only_after: {_describe(t, cell)} without a contact in scope a {when}{copy}"

    def _cell(self, k: int) -> Cell:
        c, h = divmod(k, len(self.channels))
        return self.campaigns[c], self.channels[h]

    def _copy_label(self, r: int, cell: Cell) -> str:
        """`` for <campaign>/<channel>``: the copy of a per_campaign / per_channel rule."""
        parts = ([cell[0]] if self.rules.per_campaign[r] else []) + (
            [cell[1]] if self.rules.per_channel[r] else []
        )
        return f" for {'/'.join(parts)}" if parts else ""


def _describe(m: int, cell: Cell) -> str:
    return f"{cell[0]}/{cell[1]} in {month_label(m)}"
