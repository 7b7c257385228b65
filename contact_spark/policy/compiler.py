"""Compile a :class:`PolicyConfig` into index-based *atoms* the solvers consume.

Cells are numbered ``k = campaign_index * n_channels + channel_index``. ``per_campaign``
and ``per_channel`` are expanded here, so every atom is one independent constraint:

* :class:`WindowAtom` - a rolling-window sum of a per-month weight (number of contacts,
  or number of packages) bounded above (``max``) or below (``min``);
* :class:`PairAtom` - a relation between two cell sets over time
  (``never_together``, ``never_followed_by``, ``only_after``);
* :class:`CampaignAtom` - at most ``limit`` distinct campaigns with a contact in
  ``cells`` in every window (``max_campaigns``). Not a sum of per-month weights: a
  campaign seen in several months of a window counts once.

History arrays are ``[N, M_hist, C, H]`` counts with index 0 = month -1 (the month just
before the plan), index 1 = month -2, and so on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contact_spark.config.policy import (
    MaxCampaigns,
    MaxOffers,
    MaxPackages,
    MinOffers,
    NeverFollowedBy,
    NeverTogether,
    OnlyAfter,
    PolicyConfig,
    PolicyError,
)
from contact_spark.config.scope import Configured, Scoped

PairKind = Literal["never_together", "never_followed_by", "only_after"]


@dataclass(frozen=True)
class WindowAtom:
    """Every window of ``window`` months: ``weight sum <= limit`` (max) or ``>= limit`` (min).

    ``packages`` switches the per-month weight from "number of contacts in ``cells``"
    to "number of channels with at least one contact in ``cells``".
    """

    rule: str
    label: str
    kind: Literal["max", "min"]
    cells: tuple[int, ...]
    packages: bool
    window: int
    limit: int


@dataclass(frozen=True)
class PairAtom:
    """A sequencing/conflict relation between cell sets ``a`` and ``b``."""

    rule: str
    label: str
    kind: PairKind
    a: tuple[int, ...]
    b: tuple[int, ...]
    window: int | None


@dataclass(frozen=True)
class CampaignAtom:
    """Every window of ``window`` months: distinct campaigns contacted in ``cells`` <= limit."""

    rule: str
    label: str
    cells: tuple[int, ...]
    window: int
    limit: int


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy bound to concrete campaign/channel orders (the kernel's array axes)."""

    campaigns: tuple[str, ...]
    channels: tuple[str, ...]
    window_atoms: tuple[WindowAtom, ...]
    pair_atoms: tuple[PairAtom, ...]
    campaign_atoms: tuple[CampaignAtom, ...] = ()

    @property
    def n_cells(self) -> int:
        return len(self.campaigns) * len(self.channels)

    def cell(self, campaign: str, channel: str) -> int:
        return self.campaigns.index(campaign) * len(self.channels) + self.channels.index(channel)

    def cell_name(self, k: int) -> str:
        h = len(self.channels)
        return f"{self.campaigns[k // h]}/{self.channels[k % h]}"

    def channel_groups(self, cells: Sequence[int]) -> list[np.ndarray]:
        """Cells of ``cells`` grouped by channel (one package per non-empty group)."""
        h = len(self.channels)
        groups: dict[int, list[int]] = {}
        for k in cells:
            groups.setdefault(k % h, []).append(k)
        return [np.asarray(v, dtype=np.int64) for _, v in sorted(groups.items())]

    def campaigns_of(self, cells: Sequence[int]) -> list[np.ndarray]:
        """Cells of ``cells`` grouped by campaign (one distinct campaign per non-empty group)."""
        h = len(self.channels)
        groups: dict[int, list[int]] = {}
        for k in cells:
            groups.setdefault(k // h, []).append(k)
        return [np.asarray(v, dtype=np.int64) for _, v in sorted(groups.items())]

    def history_campaigns(self, atom: CampaignAtom, history: np.ndarray, horizon: int) -> np.ndarray:
        """``[N, T, C]`` bool: campaign c contacted in ``atom``'s cells in the history months
        inside the window ending at plan month t."""
        n, m_hist = history.shape[0], history.shape[1]
        n_c = len(self.campaigns)
        flat = history.reshape(n, m_hist, self.n_cells)
        seen = np.zeros((n, m_hist, n_c), dtype=bool)
        h = len(self.channels)
        for k in atom.cells:
            seen[:, :, k // h] |= flat[:, :, k] > 0
        out = np.zeros((n, horizon, n_c), dtype=bool)
        for t in range(horizon):
            depth = min(atom.window - 1 - t, m_hist)
            if depth > 0:
                out[:, t] = seen[:, :depth].any(axis=1)
        return out

    # ----------------------------------------------------------- per-month weights
    def month_weight(self, atom: WindowAtom, counts: np.ndarray) -> np.ndarray:
        """Weight of ``atom`` for contact counts ``[..., K]`` (plan or history months)."""
        cells = np.asarray(atom.cells, dtype=np.int64)
        if not atom.packages:
            return counts[..., cells].sum(axis=-1).astype(np.int64)
        out = np.zeros(counts.shape[:-1], dtype=np.int64)
        for group in self.channel_groups(atom.cells):
            out += (counts[..., group] > 0).any(axis=-1)
        return out

    def history_in_windows(self, atom: WindowAtom, history: np.ndarray, horizon: int) -> np.ndarray:
        """``[N, T]``: weight of the history months inside the window ending at plan month t."""
        n, m_hist = history.shape[0], history.shape[1]
        flat = history.reshape(n, m_hist, self.n_cells)
        w = self.month_weight(atom, flat)  # [N, M]
        out = np.zeros((n, horizon), dtype=np.int64)
        csum = np.concatenate([np.zeros((n, 1), dtype=np.int64), np.cumsum(w, axis=1)], axis=1)
        for t in range(horizon):
            depth = min(atom.window - 1 - t, m_hist)  # history months -1..-depth are inside
            if depth > 0:
                out[:, t] = csum[:, depth]
        return out

    def last_contact_age(self, cells: Sequence[int], history: np.ndarray) -> np.ndarray:
        """``[N]``: months since the latest history contact in ``cells`` (1 = month -1), 0 = none."""
        n, m_hist = history.shape[0], history.shape[1]
        if not cells or m_hist == 0:
            return np.zeros(n, dtype=np.int64)
        flat = history.reshape(n, m_hist, self.n_cells)
        hit = flat[:, :, np.asarray(cells, dtype=np.int64)].sum(axis=-1) > 0  # [N, M]
        first = np.argmax(hit, axis=1)
        return np.where(hit.any(axis=1), first + 1, 0).astype(np.int64)


def _cells(scope: Scoped, campaigns: Sequence[str], channels: Sequence[str]) -> list[int]:
    h = len(channels)
    cells = scope.resolve(Configured.of(campaigns, channels)).cells()
    return sorted(campaigns.index(c) * h + channels.index(x) for c, x in cells)


def _split(
    cells_by_scope: list[list[int]],
    per_campaign: bool,
    per_channel: bool,
    n_channels: int,
    campaigns: Sequence[str],
    channels: Sequence[str],
) -> list[tuple[str, list[list[int]]]]:
    """Split scopes into independent copies keyed by campaign and/or channel."""
    if not per_campaign and not per_channel:
        return [("", cells_by_scope)]
    keys: dict[tuple[int, int], None] = {}
    for cells in cells_by_scope:
        for k in cells:
            keys[(k // n_channels if per_campaign else -1, k % n_channels if per_channel else -1)] = None
    out = []
    for key in sorted(keys):
        c, h = key
        part = [
            [k for k in cells if (c < 0 or k // n_channels == c) and (h < 0 or k % n_channels == h)]
            for cells in cells_by_scope
        ]
        tag = "/".join(([campaigns[c]] if c >= 0 else []) + ([channels[h]] if h >= 0 else []))
        out.append((f"[{tag}]", part))
    return out


def compile_policy(policy: PolicyConfig, campaigns: Sequence[str], channels: Sequence[str]) -> CompiledPolicy:
    """Bind ``policy`` to campaign/channel orders and expand it into atoms."""
    campaigns, channels = list(campaigns), list(channels)
    policy.check_names(campaigns, channels)
    n_h = len(channels)
    windows: list[WindowAtom] = []
    pairs: list[PairAtom] = []
    distinct: list[CampaignAtom] = []
    for rule in policy.rules:
        if isinstance(rule, MaxCampaigns):
            base = _cells(rule.scope, campaigns, channels)
            for tag, (cells,) in _split([base], False, rule.per_channel, n_h, campaigns, channels):
                if cells:
                    distinct.append(
                        CampaignAtom(rule.name, rule.name + tag, tuple(cells), rule.window_months, rule.limit)
                    )
        elif isinstance(rule, (MaxOffers, MinOffers, MaxPackages)):
            base = _cells(rule.scope, campaigns, channels)
            for tag, (cells,) in _split(
                [base], rule.per_campaign, rule.per_channel, n_h, campaigns, channels
            ):
                if not cells:
                    continue
                windows.append(
                    WindowAtom(
                        rule=rule.name,
                        label=rule.name + tag,
                        kind="min" if isinstance(rule, MinOffers) else "max",
                        cells=tuple(cells),
                        packages=isinstance(rule, MaxPackages),
                        window=rule.window_months,
                        limit=rule.limit,
                    )
                )
        elif isinstance(rule, (NeverTogether, NeverFollowedBy, OnlyAfter)):
            a = _cells(rule.a, campaigns, channels)
            b = _cells(rule.b, campaigns, channels)
            for tag, (pa, pb) in _split(
                [a, b], rule.per_campaign, rule.per_channel, n_h, campaigns, channels
            ):
                if not pb:
                    continue
                # only_after with an empty 'a' forbids 'b' outright; the others need both sides.
                if not pa and rule.type != "only_after":
                    continue
                pairs.append(
                    PairAtom(
                        rule=rule.name,
                        label=rule.name + tag,
                        kind=rule.type,
                        a=tuple(pa),
                        b=tuple(pb),
                        window=rule.window_months,
                    )
                )
        else:  # pragma: no cover - the discriminated union makes this unreachable
            raise PolicyError(getattr(rule, "name", "?"), f"unsupported rule type {type(rule).__name__}")
    return CompiledPolicy(tuple(campaigns), tuple(channels), tuple(windows), tuple(pairs), tuple(distinct))
