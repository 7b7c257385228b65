"""A compact contact-policy checker for one customer at a time (numba), written for the greedy.

It shares nothing with the solver, its policy compiler or the validator: the greedy plan
it produces is re-checked by the validator, which is then a genuine cross-check. The
``contact_decisions`` explainer uses the same checker to say which rule would block one
more contact given the customer's other contacts.

A customer's contacts are a dense ``counts[L, K]`` array: row ``m + offset`` holds month
``m`` (history ``m < 0``, plan ``0 … H−1``), row 0 every older past contact (only an
``only_after`` rule without lookback reaches that far); column ``k = campaign_index × n_channels +
channel_index`` in configuration order (the solver's cell order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from contact_spark.config.models import AppConfig
from contact_spark.config.scope import Scoped
from contact_spark.errors import ContactSparkError

MAX_OFFERS, MAX_PACKAGES, NEVER_TOGETHER, NEVER_FOLLOWED_BY, ONLY_AFTER, MIN_OFFERS, MAX_CAMPAIGNS = range(7)
# Every rule type the kernels handle; rule_arrays refuses any other (a rule silently
# skipped here would let the greedy plan break it).
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


class TooManyRulesError(ContactSparkError):
    """The policy has more rules than the greedy's bit mask holds."""


class UnknownRuleTypeError(ContactSparkError):
    """The policy has a rule type the greedy's kernels do not implement."""


@dataclass(frozen=True)
class RuleArrays:
    """The policy as plain arrays (picklable into Spark UDF closures)."""

    names: tuple[str, ...]
    kind: np.ndarray  # [R] type code
    window: np.ndarray  # [R] months (-1: only_after without lookback)
    limit: np.ndarray  # [R]
    per_campaign: np.ndarray  # [R] bool
    per_channel: np.ndarray  # [R] bool
    cells: np.ndarray  # [R, K] bool (window rules' scope)
    a: np.ndarray  # [R, K] bool (pair rules)
    b: np.ndarray  # [R, K] bool
    horizon: int
    n_channels: int
    offset: int  # row of month 0

    @property
    def rows(self) -> int:
        return self.offset + self.horizon

    def row(self, month: int) -> int:
        """Row of a month index (older history folds into row 0)."""
        return max(0, month + self.offset)


def _mask(scope: Scoped, config: AppConfig) -> np.ndarray:
    names = scope.resolve(config)
    return np.array([names.covers(c, h) for c in config.campaign_names for h in config.channel_names])


def rule_arrays(config: AppConfig) -> RuleArrays:
    """Encode ``config.policy`` for :func:`blocking`."""
    rules = list(config.policy.rules)
    if len(rules) > MAX_RULES:
        raise TooManyRulesError(
            f"the greedy baseline handles at most {MAX_RULES} policy rules, not {len(rules)}"
        )
    n_k = len(config.campaign_names) * len(config.channel_names)
    empty = np.zeros(n_k, dtype=bool)
    depth = 0
    kind, window, limit, pc, ph, cells, a, b = [], [], [], [], [], [], [], []
    unknown = sorted({r.type for r in rules} - set(TYPE_CODES))
    if unknown:
        raise UnknownRuleTypeError(f"the greedy baseline has no check for policy rule type(s) {unknown}")
    for r in rules:
        scoped = r.type in SCOPED_TYPES
        w = r.window_months
        kind.append(TYPE_CODES[r.type])
        window.append(-1 if w is None else w)
        limit.append(getattr(r, "limit", 0))
        pc.append(r.per_campaign)
        ph.append(r.per_channel)
        scopes = r.scopes()  # {"scope": ...} for a window rule, {"a": ..., "b": ...} for a pair rule
        cells.append(_mask(scopes["scope"], config) if scoped else empty)
        a.append(empty if scoped else _mask(scopes["a"], config))
        b.append(empty if scoped else _mask(scopes["b"], config))
        if w is not None:
            depth = max(depth, w - 1 if scoped else w)
    shape = (len(rules), n_k)
    return RuleArrays(
        names=tuple(r.name for r in rules),
        kind=np.array(kind, dtype=np.int64),
        window=np.array(window, dtype=np.int64),
        limit=np.array(limit, dtype=np.int64),
        per_campaign=np.array(pc, dtype=np.bool_),
        per_channel=np.array(ph, dtype=np.bool_),
        cells=np.array(cells, dtype=np.bool_).reshape(shape),
        a=np.array(a, dtype=np.bool_).reshape(shape),
        b=np.array(b, dtype=np.bool_).reshape(shape),
        horizon=config.run.horizon_months,
        n_channels=len(config.channel_names),
        offset=depth + 1,
    )


@nb.njit(cache=True)
def _same(k1: int, k2: int, pc: bool, ph: bool, n_h: int) -> bool:
    return (not pc or k1 // n_h == k2 // n_h) and (not ph or k1 % n_h == k2 % n_h)


@nb.njit(cache=True)
def _window_total(counts, r, k, lo, hi, packages, cells, pc, ph, n_h):  # type: ignore[no-untyped-def]
    """Contacts (or packages) of rule ``r``'s copy of cell ``k`` in rows ``lo … hi``."""
    n_k = counts.shape[1]
    total = 0
    for row in range(lo, hi + 1):
        if packages:
            for h in range(n_h):
                for k2 in range(h, n_k, n_h):
                    if counts[row, k2] > 0 and cells[r, k2] and _same(k, k2, pc[r], ph[r], n_h):
                        total += 1
                        break
        else:
            for k2 in range(n_k):
                if counts[row, k2] > 0 and cells[r, k2] and _same(k, k2, pc[r], ph[r], n_h):
                    total += counts[row, k2]
    return total


@nb.njit(cache=True)
def _campaigns_with(counts, r, k, lo, hi, cells, ph, n_h):  # type: ignore[no-untyped-def]
    """Distinct campaigns of rule ``r``'s copy of cell ``k`` in rows ``lo … hi`` once one
    more contact of ``k`` is added.

    A campaign counts once however many months and channels of the window it has; the
    new contact adds its campaign unless the window already has it. Only per_channel
    splits a max_campaigns rule (the config refuses per_campaign).
    """
    n_k = counts.shape[1]
    n_c = n_k // n_h
    seen = 0
    for c in range(n_c):
        if c == k // n_h:
            seen += 1  # the new contact's own campaign
            continue
        for h in range(n_h):
            k2 = c * n_h + h
            if not cells[r, k2] or (ph[r] and h != k % n_h):
                continue
            found = False
            for row in range(lo, hi + 1):
                if counts[row, k2] > 0:
                    found = True
                    break
            if found:
                seen += 1
                break
    return seen


@nb.njit(cache=True)
def blocking(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset):  # type: ignore[no-untyped-def]
    """Bit mask of the max/pair rules that one more contact ``(t, k)`` would break.

    Semantics are the validator's: windows ending at ``t … t+w−1`` (inside the horizon,
    history included) for max_offers/max_packages/max_campaigns (distinct campaigns: the
    new contact's campaign counts once, even if the window already has it); a different contact less than ``w``
    months apart for never_together; a ``b`` 1…w months after an ``a`` (either side
    being the new one) for never_followed_by; an earlier ``a`` within the lookback for a
    ``b`` of only_after. min_offers never blocks.
    """
    n_k = counts.shape[1]
    x = t + offset
    out = 0
    for r in range(kind.shape[0]):
        ty = kind[r]
        w = window[r]
        hit = False
        if ty == 0 or ty == 1:
            if not cells[r, k]:
                continue
            own = 1
            if ty == 1:  # the new contact adds a package unless its month × channel has one
                for k2 in range(k % n_h, n_k, n_h):
                    if counts[x, k2] > 0 and cells[r, k2] and _same(k, k2, pc[r], ph[r], n_h):
                        own = 0
            for e in range(t, min(t + w - 1, horizon - 1) + 1):
                lo = e - w + 1 + offset
                if _window_total(counts, r, k, lo, e + offset, ty == 1, cells, pc, ph, n_h) + own > limit[r]:
                    hit = True
                    break
        elif ty == 6:
            if not cells[r, k]:
                continue
            # Every window holding t: ends t … t+w−1 inside the horizon, history included.
            for e in range(t, min(t + w - 1, horizon - 1) + 1):
                lo = e - w + 1 + offset
                if _campaigns_with(counts, r, k, lo, e + offset, cells, ph, n_h) > limit[r]:
                    hit = True
                    break
        elif ty == 2:
            if not (a[r, k] or b[r, k]):
                continue
            for row in range(max(1, x - w + 1), min(x + w - 1, horizon - 1 + offset) + 1):
                for k2 in range(n_k):
                    if counts[row, k2] == 0 or (row == x and k2 == k):
                        continue
                    if ((a[r, k] and b[r, k2]) or (b[r, k] and a[r, k2])) and _same(k, k2, pc[r], ph[r], n_h):
                        hit = True
                        break
                if hit:
                    break
        elif ty == 3:
            for k2 in range(n_k):
                if not _same(k, k2, pc[r], ph[r], n_h):
                    continue
                if b[r, k] and a[r, k2]:
                    for row in range(max(1, x - w), x):
                        if counts[row, k2] > 0:
                            hit = True
                if a[r, k] and b[r, k2]:
                    for row in range(x + 1, min(x + w, horizon - 1 + offset) + 1):
                        if counts[row, k2] > 0:
                            hit = True
                if hit:
                    break
        elif ty == 4:
            if not b[r, k]:
                continue
            lo = 0 if w < 0 else max(1, x - w)
            hit = True
            for row in range(lo, x):
                for k2 in range(n_k):
                    if counts[row, k2] > 0 and a[r, k2] and _same(k, k2, pc[r], ph[r], n_h):
                        hit = False
                        break
                if not hit:
                    break
        if hit:
            out |= np.int64(1) << np.int64(r)
    return out


@nb.njit(cache=True)
def _fill_min(counts, order, fill_ok, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset):  # type: ignore[no-untyped-def]
    """min_offers: add allowed contacts (``order`` = cells best first) to every short window."""
    n_k = counts.shape[1]
    for r in range(kind.shape[0]):
        if kind[r] != 5:
            continue
        w = window[r]
        for k0 in range(n_k):
            if not cells[r, k0]:
                continue
            first = True  # handle each rule copy once, at its first cell
            for k1 in range(k0):
                if cells[r, k1] and _same(k0, k1, pc[r], ph[r], n_h):
                    first = False
            if not first:
                continue
            for e in range(horizon):
                lo = max(1, e - w + 1 + offset)
                total = _window_total(counts, r, k0, lo, e + offset, False, cells, pc, ph, n_h)
                while total < limit[r]:
                    added = False
                    # The best cell first, in the latest month of the window (it covers the most windows).
                    for i in range(order.shape[0]):
                        k = order[i]
                        if not (fill_ok[k] and cells[r, k] and _same(k0, k, pc[r], ph[r], n_h)):
                            continue
                        for t in range(e, max(0, e - w + 1) - 1, -1):
                            if counts[t + offset, k] == 0 and (
                                blocking(
                                    counts,
                                    t,
                                    k,
                                    kind,
                                    window,
                                    limit,
                                    pc,
                                    ph,
                                    cells,
                                    a,
                                    b,
                                    horizon,
                                    n_h,
                                    offset,
                                )
                                == 0
                            ):
                                counts[t + offset, k] = 1
                                added = True
                                break
                        if added:
                            break
                    if not added:
                        break
                    total += 1


@nb.njit(cache=True)
def greedy_schedule(  # type: ignore[no-untyped-def]
    counts, order, value_ok, fill_ok, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset
):
    """Month by month, cells in ``order`` (best propensity first) with ``value_ok`` while every
    max/pair rule allows; then every short min_offers window filled from ``fill_ok`` cells.
    ``counts`` holds the history on entry and the plan added in place."""
    for t in range(horizon):
        for i in range(order.shape[0]):
            k = order[i]
            if value_ok[k] and counts[t + offset, k] == 0:
                if (
                    blocking(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset)
                    == 0
                ):
                    counts[t + offset, k] = 1
    _fill_min(counts, order, fill_ok, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset)


@nb.njit(cache=True)
def keep_legal(counts, months, ks, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset):  # type: ignore[no-untyped-def]
    """Add the given contacts in order, skipping any a rule blocks; returns the kept flags."""
    kept = np.zeros(months.shape[0], dtype=np.bool_)
    for i in range(months.shape[0]):
        t, k = months[i], ks[i]
        if counts[t + offset, k] == 0 and (
            blocking(counts, t, k, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset) == 0
        ):
            counts[t + offset, k] = 1
            kept[i] = True
    return kept


@nb.njit(cache=True)
def blocking_grid(counts, ks, kind, window, limit, pc, ph, cells, a, b, horizon, n_h, offset):  # type: ignore[no-untyped-def]
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


def args(rules: RuleArrays) -> tuple[object, ...]:
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
