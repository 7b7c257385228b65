"""The per-customer contact-policy checker: would one more contact break a rule? (numba)

One checker, three users: the greedy baseline plans with it
(:mod:`contact_spark.baseline.schedule`), ``contact_decisions`` says which rules block an unplanned cell
(:func:`blocking_grid`), and the real-time check (:mod:`contact_spark.realtime.policy`)
explains a refusal from what :func:`broken_rules` found. All three therefore read the
policy the same way, over the plan's months or around any month in real time.

It shares nothing with the solver, its policy compiler or the independent validator
(:mod:`contact_spark.validation`), on purpose: the validator re-checks the greedy plan and
the real-time agreement tests compare the real-time check with it, which is a genuine
cross-check only while the two are written apart.

A customer's contacts are a dense ``counts[L, K]`` array: row ``m + offset`` holds month
``m`` (history ``m < 0``, plan ``0 … H−1``), row 0 every older past contact (only an
``only_after`` rule without lookback reaches that far); column ``k = campaign_index × n_channels +
channel_index`` in the catalogue's order (configuration order: the solver's cell order). The
real-time check numbers months from the checked one (``t = 0``) and gives the arrays a
``horizon`` just long enough for every rule's reach (:func:`encode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from contact_spark.config.models import AppConfig
from contact_spark.config.scope import Catalogue, Scoped
from contact_spark.errors import ContactSparkError

MAX_OFFERS, MAX_PACKAGES, NEVER_TOGETHER, NEVER_FOLLOWED_BY, ONLY_AFTER, MIN_OFFERS, MAX_CAMPAIGNS = range(7)
# Every rule type the kernels handle; encode refuses any other (a rule silently skipped
# here would let the greedy plan, or a real-time check, break it).
TYPE_CODES = {
    "max_offers": MAX_OFFERS,
    "max_packages": MAX_PACKAGES,
    "never_together": NEVER_TOGETHER,
    "never_followed_by": NEVER_FOLLOWED_BY,
    "only_after": ONLY_AFTER,
    "min_offers": MIN_OFFERS,
    "max_campaigns": MAX_CAMPAIGNS,
}
# Types with one campaigns x channels scope (``cells``); the others are pair rules (a, b).
SCOPED_TYPES = ("max_offers", "min_offers", "max_packages", "max_campaigns")
MAX_RULES = 62  # one bit per rule in an int64 mask
# The rule arrays as the kernels take them (:func:`args`): kind, window, limit, per_campaign,
# per_channel, cells, a, b, horizon, n_channels, offset.
RuleArgs = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    int,
    int,
    int,
]


class TooManyRulesError(ContactSparkError):
    """The policy has more rules than the greedy's bit mask holds."""


class UnknownRuleTypeError(ContactSparkError):
    """The policy has a rule type the checker's kernels do not implement."""


@dataclass(frozen=True)
class RuleArrays:
    """The policy as plain arrays (picklable into Spark UDF closures)."""

    names: tuple[str, ...]
    types: tuple[str, ...]  # the rules' type names (``kind`` as written in the config)
    kind: np.ndarray  # [R] type code
    window: np.ndarray  # [R] months (-1: only_after without lookback)
    limit: np.ndarray  # [R]
    per_campaign: np.ndarray  # [R] bool
    per_channel: np.ndarray  # [R] bool
    cells: np.ndarray  # [R, K] bool (window rules' scope)
    a: np.ndarray  # [R, K] bool (pair rules)
    b: np.ndarray  # [R, K] bool
    horizon: int  # months 0 … horizon−1: no window ends, and no contact is looked for, later
    n_channels: int
    offset: int  # row of month 0

    @property
    def rows(self) -> int:
        return self.offset + self.horizon

    def row(self, month: int) -> int:
        """Row of a month index (older history folds into row 0)."""
        return max(0, month + self.offset)


def _mask(scope: Scoped, catalogue: Catalogue) -> np.ndarray:
    names = scope.resolve(catalogue)
    return np.array([names.covers(c, h) for c in catalogue.campaign_names for h in catalogue.channel_names])


def rule_arrays(config: AppConfig) -> RuleArrays:
    """Encode ``config.policy`` over the plan's months, for :func:`blocking` (a bit mask:
    at most :data:`MAX_RULES` rules)."""
    rules = list(config.policy.rules)
    if len(rules) > MAX_RULES:
        raise TooManyRulesError(
            f"the greedy baseline handles at most {MAX_RULES} policy rules, not {len(rules)}"
        )
    return encode(rules, config, config.run.horizon_months)


def encode(rules: Sequence[Any], catalogue: Catalogue, horizon: int | None) -> RuleArrays:
    """Encode policy rules over ``catalogue``'s cells (in its order).

    ``horizon``: the months a window may end in and a later contact may sit in (the plan's
    months); None for a check around one month 0 with nothing past it cut off, as in real
    time: the rules' own reach then (a window of ``w`` ends by month ``w − 1``, a pair
    rule looks ``w`` months ahead at most).
    """
    n_k = len(catalogue.campaign_names) * len(catalogue.channel_names)
    empty = np.zeros(n_k, dtype=bool)
    depth = 0
    kind, window, limit, pc, ph, cells, a, b = [], [], [], [], [], [], [], []
    unknown = sorted({r.type for r in rules} - set(TYPE_CODES))
    if unknown:
        raise UnknownRuleTypeError(
            f"the per-customer rule checker (greedy baseline, contact decisions, real-time check) "
            f"has no check for policy rule type(s) {unknown}"
        )
    for r in rules:
        scoped = r.type in SCOPED_TYPES
        w = r.window_months
        kind.append(TYPE_CODES[r.type])
        window.append(-1 if w is None else w)
        limit.append(getattr(r, "limit", 0))
        pc.append(r.per_campaign)
        ph.append(r.per_channel)
        scopes = r.scopes()  # {"scope": ...} for a window rule, {"a": ..., "b": ...} for a pair rule
        cells.append(_mask(scopes["scope"], catalogue) if scoped else empty)
        a.append(empty if scoped else _mask(scopes["a"], catalogue))
        b.append(empty if scoped else _mask(scopes["b"], catalogue))
        if w is not None:
            depth = max(depth, w - 1 if scoped else w)
    shape = (len(rules), n_k)
    return RuleArrays(
        names=tuple(r.name for r in rules),
        types=tuple(r.type for r in rules),
        kind=np.array(kind, dtype=np.int64),
        window=np.array(window, dtype=np.int64),
        limit=np.array(limit, dtype=np.int64),
        per_campaign=np.array(pc, dtype=np.bool_),
        per_channel=np.array(ph, dtype=np.bool_),
        cells=np.array(cells, dtype=np.bool_).reshape(shape),
        a=np.array(a, dtype=np.bool_).reshape(shape),
        b=np.array(b, dtype=np.bool_).reshape(shape),
        # depth + 1 covers the reach: window ends up to w − 1 ≤ depth, pair contacts up to w ≤ depth.
        horizon=depth + 1 if horizon is None else horizon,
        n_channels=len(catalogue.channel_names),
        offset=depth + 1,
    )


@nb.njit(cache=True)
def same_copy(k1: int, k2: int, pc: bool, ph: bool, n_h: int) -> bool:
    """Whether cells ``k1`` and ``k2`` fall in the same copy of a per_campaign / per_channel rule."""
    return (not pc or k1 // n_h == k2 // n_h) and (not ph or k1 % n_h == k2 % n_h)


@nb.njit(cache=True)
def window_total(
    counts: np.ndarray,
    r: int,
    k: int,
    lo: int,
    hi: int,
    packages: bool,
    cells: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    n_h: int,
) -> int:
    """Contacts (or packages) of rule ``r``'s copy of cell ``k`` in rows ``lo … hi``."""
    n_k = counts.shape[1]
    total = 0
    for row in range(lo, hi + 1):
        if packages:
            for h in range(n_h):
                for k2 in range(h, n_k, n_h):
                    if counts[row, k2] > 0 and cells[r, k2] and same_copy(k, k2, pc[r], ph[r], n_h):
                        total += 1
                        break
        else:
            for k2 in range(n_k):
                if counts[row, k2] > 0 and cells[r, k2] and same_copy(k, k2, pc[r], ph[r], n_h):
                    total += counts[row, k2]
    return total


@nb.njit(cache=True)
def _has_campaign(
    counts: np.ndarray, r: int, k: int, c: int, lo: int, hi: int, cells: np.ndarray, ph: np.ndarray, n_h: int
) -> bool:
    """Whether campaign ``c`` has a contact of rule ``r``'s copy of cell ``k`` in rows ``lo … hi``."""
    for h in range(n_h):
        k2 = c * n_h + h
        if not cells[r, k2] or (ph[r] and h != k % n_h):
            continue
        for row in range(lo, hi + 1):
            if counts[row, k2] > 0:
                return True
    return False


@nb.njit(cache=True)
def _campaigns_with(
    counts: np.ndarray, r: int, k: int, lo: int, hi: int, cells: np.ndarray, ph: np.ndarray, n_h: int
) -> int:
    """Distinct campaigns of rule ``r``'s copy of cell ``k`` in rows ``lo … hi`` once one
    more contact of ``k`` is added.

    A campaign counts once however many months and channels of the window it has; the
    new contact adds its campaign unless the window already has it. Only per_channel
    splits a max_campaigns rule (the config refuses per_campaign).
    """
    seen = 0
    for c in range(counts.shape[1] // n_h):
        if c == k // n_h or _has_campaign(counts, r, k, c, lo, hi, cells, ph, n_h):
            seen += 1
    return seen


# inline: see the docstring.
@nb.njit(cache=True, inline="always")
def _scan(
    counts: np.ndarray,
    t: int,
    k: int,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
    explain: bool,
    out: np.ndarray,
) -> int:
    """Which max/pair rules one more contact ``(t, k)`` would break: the bit mask of the first
    62 (for :func:`blocking`) and, with ``explain``, what shows each in ``out`` (for
    :func:`broken_rules`; ``out`` is not touched otherwise).

    One loop over the rules for both, inlined into each caller: the greedy calls this
    millions of times; measured, a function call per rule made it about 1.5× slower on the
    default policy, and one more call per contact about 1.25× slower on a one-rule policy.

    Semantics are the validator's: windows ending at ``t … t+w−1`` (before ``horizon``,
    history included) for max_offers/max_packages/max_campaigns (distinct campaigns: the
    new contact's campaign counts once, even if the window already has it); a different
    contact less than ``w`` months apart for never_together; a ``b`` 1…w months after an
    ``a`` (either side being the new one) for never_followed_by; an earlier ``a`` within
    the lookback for a ``b`` of only_after. min_offers never blocks.

    ``out[r]`` = ``broken (1/0), value, row, k2``: for a max rule the fullest window's total
    with the new contact (contacts, packages or campaigns; the earliest of equals) and the
    row of its last month; for never_together / never_followed_by the clashing contact's
    row and cell, the first in (row, cell) order, the new contact's ``a`` side looked at
    before its ``b`` side; -1 where there is nothing to show (only_after).
    """
    n_k = counts.shape[1]
    x = t + offset
    last = horizon - 1 + offset  # the last row a window may end in or a contact is looked for in
    mask = 0
    for r in range(kind.shape[0]):
        ty = kind[r]
        w = window[r]
        hit = False
        value = 0
        at = -1
        other = -1
        if ty == MAX_OFFERS or ty == MAX_PACKAGES or ty == MAX_CAMPAIGNS:
            if not cells[r, k]:
                continue
            own = 1
            if ty == MAX_PACKAGES:  # the new contact adds a package unless its month × channel has one
                for k2 in range(k % n_h, n_k, n_h):
                    if counts[x, k2] > 0 and cells[r, k2] and same_copy(k, k2, pc[r], ph[r], n_h):
                        own = 0
            # Every window holding t: ends t … t+w−1 before the horizon, history included.
            for e in range(x, min(x + w - 1, last) + 1):
                if ty == MAX_CAMPAIGNS:
                    total = _campaigns_with(counts, r, k, e - w + 1, e, cells, ph, n_h)
                else:
                    total = window_total(counts, r, k, e - w + 1, e, ty == MAX_PACKAGES, cells, pc, ph, n_h)
                    total += own
                if total > limit[r] and total > value:
                    hit = True
                    value = total
                    at = e
                    if not explain:
                        break
        elif ty == NEVER_TOGETHER:
            # The new contact's a side (clashing with a b) first, then its b side.
            for side in range(2):
                if hit or not (a[r, k] if side == 0 else b[r, k]):
                    continue
                for row in range(max(1, x - w + 1), min(x + w - 1, last) + 1):
                    for k2 in range(n_k):
                        if counts[row, k2] == 0 or (row == x and k2 == k):
                            continue
                        if (b[r, k2] if side == 0 else a[r, k2]) and same_copy(k, k2, pc[r], ph[r], n_h):
                            hit = True
                            at = row
                            other = k2
                            break
                    if hit:
                        break
        elif ty == NEVER_FOLLOWED_BY:
            if b[r, k]:  # follows an a of the last w months
                for row in range(max(1, x - w), x):
                    for k2 in range(n_k):
                        if counts[row, k2] > 0 and a[r, k2] and same_copy(k, k2, pc[r], ph[r], n_h):
                            hit = True
                            at = row
                            other = k2
                            break
                    if hit:
                        break
            if a[r, k] and not hit:  # a b of the next w months would follow it
                for row in range(x + 1, min(x + w, last) + 1):
                    for k2 in range(n_k):
                        if counts[row, k2] > 0 and b[r, k2] and same_copy(k, k2, pc[r], ph[r], n_h):
                            hit = True
                            at = row
                            other = k2
                            break
                    if hit:
                        break
        elif ty == ONLY_AFTER:
            if not b[r, k]:
                continue
            hit = True
            for row in range(0 if w < 0 else max(1, x - w), x):
                for k2 in range(n_k):
                    if counts[row, k2] > 0 and a[r, k2] and same_copy(k, k2, pc[r], ph[r], n_h):
                        hit = False
                        break
                if not hit:
                    break
        if hit:
            if r < MAX_RULES:  # broken_rules takes more rules, and reads only ``out``
                mask |= np.int64(1) << np.int64(r)
            if explain:
                out[r, 0] = 1
                out[r, 1] = value
                out[r, 2] = at
                out[r, 3] = other
    return mask


@nb.njit(cache=True)
def blocking(
    counts: np.ndarray,
    t: int,
    k: int,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
) -> int:
    """Bit mask of the max/pair rules that one more contact ``(t, k)`` would break (see :func:`_scan`)."""
    return _scan(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset, False, counts)


@nb.njit(cache=True)
def broken_rules(
    counts: np.ndarray,
    t: int,
    k: int,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
) -> np.ndarray:
    """``[R, 4]``: per rule, whether one more contact ``(t, k)`` breaks it (1/0) and what shows
    it (``value, row, k2``, see :func:`_scan`). Any number of rules (no bit mask is read)."""
    out = np.zeros((kind.shape[0], 4), dtype=np.int64)
    out[:, 2:] = -1
    _scan(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset, True, out)
    return out


@nb.njit(cache=True)
def window_campaigns(
    counts: np.ndarray, k: int, r: int, lo: int, hi: int, cells: np.ndarray, ph: np.ndarray, n_h: int
) -> np.ndarray:
    """``[n_campaigns]`` bool: the campaigns :func:`_campaigns_with` counts in rows ``lo … hi``
    (the new contact's own among them)."""
    out = np.zeros(counts.shape[1] // n_h, dtype=np.bool_)
    for c in range(out.shape[0]):
        out[c] = c == k // n_h or _has_campaign(counts, r, k, c, lo, hi, cells, ph, n_h)
    return out


@nb.njit(cache=True)
def blocking_grid(
    counts: np.ndarray,
    ks: np.ndarray,
    kind: np.ndarray,
    window: np.ndarray,
    limit: np.ndarray,
    pc: np.ndarray,
    ph: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    horizon: int,
    n_h: int,
    offset: int,
) -> np.ndarray:
    """``[len(ks), horizon]`` masks of the rules blocking one more contact of cell ``ks[i]`` in
    each month (-1 where the customer already has that contact)."""
    out = np.zeros((ks.shape[0], horizon), dtype=np.int64)
    for i in range(ks.shape[0]):
        for t in range(horizon):
            if counts[t + offset, ks[i]] > 0:
                out[i, t] = -1
            else:
                out[i, t] = blocking(
                    counts, t, ks[i], kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset
                )
    return out


def args(rules: RuleArrays) -> RuleArgs:
    """The rule arrays in the order the kernels take them."""
    return (
        rules.kind,
        rules.window,
        rules.limit,
        rules.per_campaign,
        rules.per_channel,
        rules.cells,
        rules.a,
        rules.b,
        rules.horizon,
        rules.n_channels,
        rules.offset,
    )


def rule_names(mask: int, rules: RuleArrays) -> list[str]:
    """Names of the rules set in a :func:`blocking` mask."""
    return [name for i, name in enumerate(rules.names) if mask >> i & 1]
