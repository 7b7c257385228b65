"""Independent rule checker for tests: reads the pydantic rules, not the compiled atoms.

Written straight from the semantics in ``contact_spark/config/policy.py`` with plain
loops over months and contacts, so that a bug in the compiler or the automaton cannot
hide itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from contact_spark.config.policy import ANY, PolicyConfig, Rule, Scope


def _cells(scope: Scope, campaigns: Sequence[str], channels: Sequence[str]) -> set[tuple[int, int]]:
    cs = range(len(campaigns)) if scope.campaigns == ANY else [campaigns.index(c) for c in scope.campaigns]
    hs = range(len(channels)) if scope.channels == ANY else [channels.index(h) for h in scope.channels]
    return {(c, h) for c in cs for h in hs}


def _parts(rule: Rule, sets: list[set[tuple[int, int]]]) -> list[list[set[tuple[int, int]]]]:
    """Split scope cell sets per campaign / per channel as the rule asks."""
    keys = {
        (c if rule.per_campaign else None, h if rule.per_channel else None)
        for cells in sets
        for c, h in cells
    }
    return [
        [{(c, h) for c, h in cells if kc in (None, c) and kh in (None, h)} for cells in sets]
        for kc, kh in sorted(keys, key=str)
    ]


def violations(
    policy: PolicyConfig,
    campaigns: Sequence[str],
    channels: Sequence[str],
    history: np.ndarray,  # [M, C, H] counts, index 0 = month -1
    x: np.ndarray,  # [T, C, H] bool
) -> list[str]:
    """Names of the rules the plan ``x`` breaks, given ``history``."""
    n_t = x.shape[0]
    m_hist = history.shape[0]

    def count(month: int, c: int, h: int) -> int:
        if month >= 0:
            return int(x[month, c, h]) if month < n_t else 0
        return int(history[-month - 1, c, h]) if -month - 1 < m_hist else 0

    # every contact as (month, cell); history cells with count n give n contacts
    contacts = [
        (mo, (c, h), j)
        for mo in range(-m_hist, n_t)
        for c in range(len(campaigns))
        for h in range(len(channels))
        for j in range(count(mo, c, h))
    ]
    broken: list[str] = []
    for rule in policy.rules:
        bad = False
        if rule.type in ("max_offers", "min_offers", "max_packages"):
            for (cells,) in _parts(rule, [_cells(rule.scope, campaigns, channels)]):
                if not cells:
                    continue
                for t in range(n_t):
                    months = range(t - rule.window_months + 1, t + 1)
                    if rule.type == "max_packages":
                        per = [len({h for c, h in cells if count(mo, c, h) > 0}) for mo in months]
                    else:
                        per = [sum(count(mo, c, h) for c, h in cells) for mo in months]
                    past = sum(p for mo, p in zip(months, per, strict=True) if mo < 0)
                    planned = sum(p for mo, p in zip(months, per, strict=True) if mo >= 0)
                    if rule.type == "min_offers":
                        bad |= past + planned < rule.limit
                    else:
                        bad |= planned > max(0, rule.limit - past)
        elif rule.type == "max_campaigns":
            # distinct campaigns of history and plan inside the window <= limit, for every
            # window holding a planned contact (a history over the limit is not repaired)
            for (cells,) in _parts(rule, [_cells(rule.scope, campaigns, channels)]):
                for t in range(n_t):
                    months = range(t - rule.window_months + 1, t + 1)
                    seen = {c for mo in months if mo < 0 for c, h in cells if count(mo, c, h) > 0}
                    planned = {c for mo in months if mo >= 0 for c, h in cells if count(mo, c, h) > 0}
                    bad |= bool(planned) and len(planned | seen) > rule.limit
        else:
            sets = [_cells(rule.a, campaigns, channels), _cells(rule.b, campaigns, channels)]
            for a_cells, b_cells in _parts(rule, sets):
                if not b_cells:
                    continue
                a_list = [ct for ct in contacts if ct[1] in a_cells]
                b_list = [ct for ct in contacts if ct[1] in b_cells and ct[0] >= 0]
                w = rule.window_months
                if rule.type == "never_together":
                    b_all = [ct for ct in contacts if ct[1] in b_cells]
                    for ca in a_list:
                        for cb in b_all:
                            if ca == cb or (ca[0] < 0 and cb[0] < 0):
                                continue
                            bad |= abs(ca[0] - cb[0]) < w
                elif rule.type == "never_followed_by":
                    for ca in a_list:
                        for cb in b_list:
                            bad |= 1 <= cb[0] - ca[0] <= w
                else:  # only_after
                    for cb in b_list:
                        ok = any(ca[0] < cb[0] and (w is None or cb[0] - ca[0] <= w) for ca in a_list)
                        bad |= not ok
        if bad:
            broken.append(rule.name)
    return broken
