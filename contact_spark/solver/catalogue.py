"""The catalogue kernel: exact schedules for dozens of offers (label DP, state refinement).

:class:`CatalogueModel` compiles a policy once (cached per policy and horizon):

* **month actions**: the cell sets one month may hold, built from each campaign's channel
  patterns (:func:`contact_spark.solver.milp_rows.policy_facts`) and combined across
  campaigns only as far as the single-month rules allow. With "one campaign a month" a
  50-offer x 4-channel catalogue has a few hundred actions; without a monthly limit the
  combinations explode and the model refuses (``StateSpaceTooLargeError``: the caller
  falls back to the MILP).
* **atoms** as flat arrays (type, window, limit, min/max) and each action's footprint on
  each atom (:mod:`contact_spark.solver.label_atoms`).

Per batch it computes each customer's action values, initial atom states from the history
and the per-month caps of long windows, then runs :func:`label_dp.solve_customer` per
customer. ``max_campaigns`` over more than one month is not modelled here (MILP).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contact_spark.policy.compiler import CompiledPolicy, PairAtom, WindowAtom
from contact_spark.solver import label_atoms as A
from contact_spark.solver import label_dp
from contact_spark.solver.automaton import StateSpaceTooLargeError, clip_age, recent_units
from contact_spark.solver.dp import action_rewards
from contact_spark.solver.milp_rows import _month_ok, policy_facts
from contact_spark.solver.problem import KernelBatch

MAX_ACTIONS = 20_000
MAX_LABELS = 200_000  # per round and customer: beyond it the customer keeps a bounded plan
# a customer whose round needs more labels gets prices on every window row (label_lagrange)
ROW_PRICES_AFTER = 1_000


def enumerate_catalogue_actions(policy: CompiledPolicy) -> list[frozenset[int]]:
    """Month actions: the empty set first, then unions of campaign patterns that no rule
    forbids on its own, campaign by campaign (sizes grow only while rules allow)."""
    n_h = len(policy.channels)
    facts = policy_facts(policy)
    per_campaign = [
        [frozenset(c * n_h + h for h in pattern) for pattern in facts.patterns[c]]
        for c in range(len(policy.campaigns))
    ]
    actions: list[frozenset[int]] = [frozenset()]
    # frontier: (action, index of its last campaign) - extend with later campaigns only
    frontier: list[tuple[frozenset[int], int]] = [(frozenset(), -1)]
    monthly = [a for a in policy.campaign_atoms if a.window == 1]
    while frontier:
        grown: list[tuple[frozenset[int], int]] = []
        for base, last in frontier:
            for c in range(last + 1, len(per_campaign)):
                for part in per_campaign[c]:
                    cand = base | part
                    if base and not _combined_ok(policy, monthly, cand):
                        continue
                    grown.append((cand, c))
                    if len(actions) + len(grown) > MAX_ACTIONS:
                        raise StateSpaceTooLargeError(f"more than {MAX_ACTIONS} month actions")
        actions += [a for a, _ in grown]
        frontier = grown
    return actions


def _combined_ok(policy: CompiledPolicy, monthly: list, cells: frozenset[int]) -> bool:
    """Single-month rules on a multi-campaign action (one campaign's patterns are checked
    by policy_facts already)."""
    n_h = len(policy.channels)
    for atom in monthly:
        if len({k // n_h for k in atom.cells if k in cells}) > atom.limit:
            return False
    return _month_ok(policy, cells)


@dataclass
class CatalogueModel:
    """Actions and atoms of one policy, as the arrays :mod:`label_atoms` describes."""

    policy: CompiledPolicy
    horizon: int
    actions: list[frozenset[int]]
    action_cells: np.ndarray  # [A, K] bool
    windows: list[WindowAtom]
    pairs: list[PairAtom]
    typ: np.ndarray  # [J]
    win: np.ndarray
    lim: np.ndarray
    ismin: np.ndarray
    fp: np.ndarray  # [A, J] footprints
    off: np.ndarray  # [J + 1] state layout
    nz_ptr: np.ndarray  # [A + 1] CSR of the atoms each action touches (fp != 0)
    nz_idx: np.ndarray

    @classmethod
    def build(cls, policy: CompiledPolicy, horizon: int) -> CatalogueModel:
        if any(a.window > 1 for a in policy.campaign_atoms):
            raise StateSpaceTooLargeError("max_campaigns over more than one month")
        actions = enumerate_catalogue_actions(policy)
        n_a = len(actions)
        cells = np.zeros((n_a, policy.n_cells), dtype=bool)
        for i, act in enumerate(actions):
            cells[i, sorted(act)] = True
        windows = list(policy.window_atoms)
        pairs = list(policy.pair_atoms)
        typ, win, lim, ismin, cols = [], [], [], [], []
        for atom in windows:
            typ.append(A.LONG if atom.window >= horizon else A.SHORT)
            win.append(atom.window)
            lim.append(atom.limit)
            ismin.append(atom.kind == "min")
            cols.append(policy.month_weight(atom, cells.astype(np.int64)).tolist())
        pair_type = {"never_together": A.TOGETHER, "never_followed_by": A.FOLLOWED, "only_after": A.AFTER}
        for pair in pairs:
            typ.append(pair_type[pair.kind])
            if pair.kind == "only_after":
                win.append(-1 if pair.window is None else pair.window)
            elif pair.kind == "never_together":
                win.append(pair.window or 1)
            else:
                win.append(pair.window or 0)
            lim.append(0)
            ismin.append(False)
            a, b = set(pair.a), set(pair.b)
            cols.append([(1 if act & a else 0) | (2 if act & b else 0) for act in actions])
        typ_a = np.array(typ, dtype=np.int64)
        win_a = np.array(win, dtype=np.int64)
        slots = [A.slots(int(t), int(w)) for t, w in zip(typ_a, win_a, strict=True)]
        off = np.concatenate([[0], np.cumsum(slots)]).astype(np.int64)
        fp = np.array(cols, dtype=np.int64).T.reshape(n_a, len(typ))
        touched = [np.flatnonzero(fp[a]) for a in range(n_a)]
        nz_ptr = np.concatenate([[0], np.cumsum([len(x) for x in touched])]).astype(np.int64)
        nz_idx = np.concatenate([*touched, np.zeros(0, dtype=np.int64)]).astype(np.int64)
        return cls(
            policy,
            horizon,
            actions,
            cells,
            windows,
            pairs,
            typ_a,
            win_a,
            np.array(lim, dtype=np.int64),
            np.array(ismin, dtype=np.bool_),
            np.ascontiguousarray(fp),
            off,
            nz_ptr,
            nz_idx,
        )

    # ---------------------------------------------------------------- per batch
    def initial_states(self, history: np.ndarray) -> np.ndarray:
        """``[N, D]`` every atom's state before plan month 0 (full layout; long windows start
        at 0, their history is in :meth:`caps`)."""
        pol = self.policy
        out = np.zeros((history.shape[0], max(int(self.off[-1]), 1)), dtype=np.int64)
        for j, atom in enumerate(self.windows):
            if self.typ[j] == A.SHORT:
                out[:, self.off[j] : self.off[j + 1]] = recent_units(pol, atom, history)
        for i, pair in enumerate(self.pairs):
            o = int(self.off[len(self.windows) + i])
            for s, side in enumerate(("a", "b") if pair.kind == "never_together" else ("a",)):
                out[:, o + s] = clip_age(pair, pol.last_contact_age(getattr(pair, side), history))
        return out

    def caps(self, history: np.ndarray) -> np.ndarray:
        """``[N, J, T]`` per-month bound of each long window (``limit - history`` inside the
        window, at least 0, for max; the missing count for min)."""
        n = history.shape[0]
        out = np.zeros((n, len(self.typ), self.horizon), dtype=np.int64)
        for j, atom in enumerate(self.windows):
            if self.typ[j] == A.LONG:
                hist = self.policy.history_in_windows(atom, history, self.horizon)
                if atom.kind == "max":
                    out[:, j] = np.maximum(0, atom.limit - hist)
                else:
                    out[:, j] = atom.limit - hist
        return out


_MODELS: dict[tuple[CompiledPolicy, int], CatalogueModel | None] = {}


def get_catalogue_model(policy: CompiledPolicy, horizon: int) -> CatalogueModel | None:
    """Cached model, or None when the policy does not fit the catalogue kernel."""
    key = (policy, horizon)
    if key not in _MODELS:
        try:
            _MODELS[key] = CatalogueModel.build(policy, horizon)
        except StateSpaceTooLargeError:
            _MODELS[key] = None
    return _MODELS[key]


@dataclass(frozen=True)
class CatalogueSolution:
    """Per customer of the batch: month actions, value, upper bound, status (label_dp
    codes), refinement rounds and labels created."""

    actions: np.ndarray  # [N, T]
    value: np.ndarray
    upper: np.ndarray
    status: np.ndarray
    rounds: np.ndarray
    labels: np.ndarray


def solve_catalogue(
    model: CatalogueModel,
    batch: KernelBatch,
    customers: np.ndarray,
    max_labels: int = MAX_LABELS,
) -> CatalogueSolution:
    """Solve ``customers`` of ``batch``; the arrays are indexed like ``customers``."""
    m, n_t = customers.size, batch.horizon
    sub = batch.subset(customers)
    hist = sub.clean_history()
    reward = action_rewards(model, sub)  # [m, T, A], -inf when ineligible
    reward = np.where(np.isfinite(reward), reward, A.NEG)
    init = model.initial_states(hist)
    caps = model.caps(hist)
    tracked0 = np.zeros(len(model.typ), dtype=np.bool_)  # refinement adds what binds
    out = CatalogueSolution(
        np.zeros((m, n_t), dtype=np.int64),
        np.full(m, np.nan),
        np.full(m, np.nan),
        np.zeros(m, dtype=np.int8),
        np.zeros(m, dtype=np.int32),
        np.zeros(m, dtype=np.int64),
    )
    for i in range(m):
        rules = (
            model.typ,
            model.win,
            model.lim,
            model.ismin,
            model.fp,
            model.off,
            np.ascontiguousarray(caps[i]),
        )
        plan, value, upper, status, rounds, labels = label_dp.solve_customer(
            np.ascontiguousarray(reward[i]),
            rules,
            init[i],
            tracked0,
            max_labels,
            model.nz_ptr,
            model.nz_idx,
            ROW_PRICES_AFTER,
        )
        out.actions[i] = plan
        out.value[i] = value if status != label_dp.NO_PLAN else np.nan
        out.upper[i] = upper
        out.status[i] = status
        out.rounds[i] = rounds
        out.labels[i] = labels
    return out
