"""Compile policy atoms into a finite automaton over months for the exact DP.

* An *action* is the set of cells contacted in one month. Only sets that no rule forbids
  on its own (within-month conflicts, per-month maxima) are enumerated, with the empty
  set first.
* The *short state* remembers what the short rules need about the past:
  - a rolling window of ``w < horizon`` months: the weights of the last ``w-1`` months,
    keeping only the most recent ``limit`` units (older units can never matter again,
    which merges equivalent states);
  - pair rules: months since the last contact in ``a`` (and ``b``), 0 = none or too old.
  Short transitions do not depend on the month, so one table ``delta[state, action]``
  serves every customer; it is grown lazily from the initial states that histories
  produce and cached on the model.
* Windows of ``w >= horizon`` months include plan month 0 in every window, so the plan
  part is a cumulative count with a per-customer, per-month cap ``limit - history in the
  window``; these *counters* are added to the DP state only for customers whose plan
  violates them (see :mod:`contact_spark.solver.dp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np

from contact_spark.policy.compiler import CompiledPolicy, PairAtom, WindowAtom

MAX_ACTIONS = 512
MAX_CELLS = 20
MAX_SHORT_STATES = 50_000
MAX_STATE_BOUND = 5_000_000  # product bound checked before enumerating anything
MAX_TRANSITIONS = 100_000_000  # product bound x actions


class StateSpaceTooLargeError(Exception):
    """The DP would be too big for this policy; callers fall back to the MILP."""


def _month_weight(policy: CompiledPolicy, atom: WindowAtom, cells: frozenset[int]) -> int:
    inside = [k for k in atom.cells if k in cells]
    if not atom.packages:
        return len(inside)
    return len({k % len(policy.channels) for k in inside})


def _campaigns_in_month(policy: CompiledPolicy, cells: tuple[int, ...], action: frozenset[int]) -> int:
    return len({k // len(policy.channels) for k in cells if k in action})


def _conflicts_in_month(atom: PairAtom, cells: frozenset[int]) -> bool:
    if atom.kind != "never_together":
        return False
    a = [k for k in atom.a if k in cells]
    b = [k for k in atom.b if k in cells]
    return any(i != j for i in a for j in b)


def enumerate_actions(policy: CompiledPolicy) -> list[frozenset[int]]:
    """Month actions allowed by the rules on their own, empty set first, by size then cells."""
    n_k = policy.n_cells
    if n_k > MAX_CELLS:
        raise StateSpaceTooLargeError(f"{n_k} cells per month")
    maxima = [a for a in policy.window_atoms if a.kind == "max"]
    if any(a.window > 1 for a in policy.campaign_atoms):
        # distinct campaigns over several months is a set, not a per-month sum: the
        # automaton has no state for it (the catalogue kernel and the MILP do)
        raise StateSpaceTooLargeError("max_campaigns over more than one month")
    monthly_campaigns = list(policy.campaign_atoms)
    actions: list[frozenset[int]] = [frozenset()]
    frontier: list[frozenset[int]] = [frozenset()]
    for _size in range(1, n_k + 1):
        grown: set[frozenset[int]] = set()
        for base in frontier:
            for k in range(max(base, default=-1) + 1, n_k):
                cand = base | {k}
                if any(_month_weight(policy, a, cand) > a.limit for a in maxima):
                    continue
                if any(_conflicts_in_month(p, cand) for p in policy.pair_atoms):
                    continue
                if any(_campaigns_in_month(policy, a.cells, cand) > a.limit for a in monthly_campaigns):
                    continue
                grown.add(cand)
        frontier = sorted(grown, key=sorted)
        actions += frontier
        if len(actions) > MAX_ACTIONS:
            raise StateSpaceTooLargeError(f"more than {MAX_ACTIONS} month actions")
        if not frontier:
            break
    return actions


def short_state_bound(policy: CompiledPolicy, short_windows: list[int]) -> int:
    """Upper bound on the number of short states (product of per-rule state counts)."""
    bound = 1
    for j in short_windows:
        atom = policy.window_atoms[j]
        # tuples of w-1 monthly weights holding at most `limit` units in total
        bound *= comb(atom.window - 1 + atom.limit, atom.limit)
    for pair in policy.pair_atoms:
        w = pair.window
        if pair.kind == "never_together":
            # one age per side, a single one when both sides are the same scope
            bound *= (w or 1) if set(pair.a) == set(pair.b) else (w or 1) ** 2
        elif pair.kind == "never_followed_by" or w is not None:
            bound *= (w or 0) + 1
        else:
            bound *= 2
    return bound


def recent_units(policy: CompiledPolicy, atom: WindowAtom, history: np.ndarray) -> np.ndarray:
    """``[N, w - 1]``: the history's weights of ``atom`` in months -1 .. -(w-1), keeping only
    the ``limit`` most recent units (older units can never matter again), as
    :func:`_truncate` does for one state."""
    n, m_hist = history.shape[0], history.shape[1]
    depth = atom.window - 1
    w = np.zeros((n, depth), dtype=np.int64)
    use = min(depth, m_hist)
    if use:
        w[:, :use] = policy.month_weight(atom, history[:, :use].reshape(n, use, policy.n_cells))
    left = np.full(n, atom.limit, dtype=np.int64)
    for d in range(depth):
        take = np.minimum(w[:, d], left)
        w[:, d] = take
        left -= take
    return w


def clip_age(atom: PairAtom, age: np.ndarray | int) -> np.ndarray:
    """Ages that can no longer matter collapse to 0 so equivalent states merge."""
    w = atom.window
    if atom.kind == "never_together":
        return np.where(np.asarray(age) < (w or 1), age, 0)
    if atom.kind == "never_followed_by":
        return np.where(np.asarray(age) <= (w or 0), age, 0)
    if w is None:  # only_after without lookback: "a seen at all"
        return np.where(np.asarray(age) > 0, 1, 0)
    return np.where(np.asarray(age) <= w, age, 0)


def _truncate(weights: tuple[int, ...], units: int) -> tuple[int, ...]:
    """Keep only the ``units`` most recent units of a most-recent-first weight tuple."""
    out = []
    left = units
    for w in weights:
        take = min(w, left)
        out.append(take)
        left -= take
    return tuple(out)


@dataclass
class DPModel:
    """Actions, short-state automaton and counter definitions for one policy and horizon."""

    policy: CompiledPolicy
    horizon: int
    actions: list[frozenset[int]]
    action_cells: np.ndarray  # [A, K] bool
    short_windows: list[int]  # indices into policy.window_atoms kept in the short state
    long_windows: list[int]  # indices of cumulative counters (window >= horizon)
    window_weight: np.ndarray  # [A, n_window_atoms] month weight of each action
    has_a: np.ndarray  # [A, n_pair_atoms] bool
    has_b: np.ndarray  # [A, n_pair_atoms] bool
    states: list[tuple] = field(default_factory=list)
    index: dict[tuple, int] = field(default_factory=dict)
    _rows: list[np.ndarray] = field(default_factory=list)
    expanded: int = 0  # states [0, expanded) have a delta row
    _delta: np.ndarray | None = None
    dag_cache: dict = field(default_factory=dict)  # DAGs per counter set, see dp._dag
    _canon: dict = field(default_factory=dict)  # canonical_table per counter set
    _plan_cols: dict = field(default_factory=dict)  # forget plan -> state id column

    @classmethod
    def build(cls, policy: CompiledPolicy, horizon: int) -> DPModel:
        """Enumerate actions and classify the rolling windows; raises StateSpaceTooLargeError."""
        actions = enumerate_actions(policy)
        n_a = len(actions)
        cells = np.zeros((n_a, policy.n_cells), dtype=bool)
        for i, act in enumerate(actions):
            cells[i, list(act)] = True
        ww = np.array(
            [[_month_weight(policy, atom, act) for atom in policy.window_atoms] for act in actions],
            dtype=np.int64,
        ).reshape(n_a, len(policy.window_atoms))
        has_a = np.array(
            [[bool(act & set(p.a)) for p in policy.pair_atoms] for act in actions], dtype=bool
        ).reshape(n_a, len(policy.pair_atoms))
        has_b = np.array(
            [[bool(act & set(p.b)) for p in policy.pair_atoms] for act in actions], dtype=bool
        ).reshape(n_a, len(policy.pair_atoms))
        short = [j for j, a in enumerate(policy.window_atoms) if a.window < horizon]
        long = [j for j, a in enumerate(policy.window_atoms) if a.window >= horizon]
        bound = short_state_bound(policy, short)
        if bound > MAX_STATE_BOUND or bound * n_a > MAX_TRANSITIONS:
            # refuse before enumerating: growing the table is pure Python
            raise StateSpaceTooLargeError(f"up to {bound} automaton states x {n_a} actions")
        return cls(policy, horizon, actions, cells, short, long, ww, has_a, has_b)

    # ------------------------------------------------------------ short states
    def initial_codes(self, history: np.ndarray) -> np.ndarray:
        """``[N, D]`` integer description of each customer's initial short state."""
        pol = self.policy
        cols: list[np.ndarray] = [recent_units(pol, pol.window_atoms[j], history) for j in self.short_windows]
        for pair in pol.pair_atoms:
            for side in ("a", "b") if pair.kind == "never_together" else ("a",):
                cols.append(clip_age(pair, pol.last_contact_age(getattr(pair, side), history))[:, None])
        if sum(c.shape[1] for c in cols) == 0:
            return np.zeros((history.shape[0], 1), dtype=np.int64)
        return np.concatenate(cols, axis=1)

    @staticmethod
    def _clip_one(atom: PairAtom, age: int) -> int:
        """Scalar :func:`clip_age` for the automaton steps."""
        w = atom.window
        if atom.kind == "never_together":
            return age if age < (w or 1) else 0
        if atom.kind == "never_followed_by":
            return age if age <= (w or 0) else 0
        if w is None:
            return 1 if age > 0 else 0
        return age if age <= w else 0

    def _code_to_state(self, code: np.ndarray) -> tuple:
        pos = 0
        parts: list[tuple[int, ...]] = []
        for j in self.short_windows:
            depth = self.policy.window_atoms[j].window - 1
            parts.append(tuple(int(v) for v in code[pos : pos + depth]))
            pos += depth
        for atom in self.policy.pair_atoms:
            width = 2 if atom.kind == "never_together" else 1
            parts.append(tuple(int(v) for v in code[pos : pos + width]))
            pos += width
        return tuple(parts)

    def intern(self, state: tuple) -> int:
        sid = self.index.get(state)
        if sid is None:
            sid = len(self.states)
            if sid >= MAX_SHORT_STATES:
                raise StateSpaceTooLargeError(f"more than {MAX_SHORT_STATES} automaton states")
            self.states.append(state)
            self.index[state] = sid
        return sid

    def initial_states(self, history: np.ndarray) -> np.ndarray:
        """``[N]`` short-state ids of the customers' histories (grows the automaton)."""
        codes = self.initial_codes(history)
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.int32)
        span = codes.max(axis=0) + 1
        if float(np.prod(span.astype(np.float64))) < 2.0**62:
            # one integer per row: 1-D unique is much faster than unique over rows
            mult = np.concatenate([[1], np.cumprod(span[:-1])]).astype(np.int64)
            _, first, inverse = np.unique(codes @ mult, return_index=True, return_inverse=True)
            uniq = codes[first]
        else:
            uniq, inverse = np.unique(codes, axis=0, return_inverse=True)
        ids = np.array([self.intern(self._code_to_state(u)) for u in uniq], dtype=np.int32)
        self._close()
        return ids[inverse.reshape(-1)]

    def step(self, state: tuple, a: int) -> tuple | None:
        """Successor of ``state`` under action ``a``, or None when a rule forbids it."""
        pol = self.policy
        parts = list(state)
        out: list[tuple[int, ...]] = []
        for pos, j in enumerate(self.short_windows):
            atom = pol.window_atoms[j]
            g = int(self.window_weight[a, j])
            past = parts[pos]
            if atom.kind == "max":
                if g > 0 and sum(past) + g > atom.limit:
                    return None
            elif sum(past) + g < atom.limit:
                return None
            out.append(_truncate((g, *past)[: atom.window - 1], atom.limit))
        base = len(self.short_windows)
        for j, pair in enumerate(pol.pair_atoms):
            comp = parts[base + j]
            ha, hb = bool(self.has_a[a, j]), bool(self.has_b[a, j])
            w = pair.window
            if pair.kind == "never_together":
                age_a, age_b = comp
                if (hb and age_a) or (ha and age_b):
                    return None
                out.append(
                    (
                        int(self._clip_one(pair, 1 if ha else (age_a + 1 if age_a else 0))),
                        int(self._clip_one(pair, 1 if hb else (age_b + 1 if age_b else 0))),
                    )
                )
            elif pair.kind == "never_followed_by":
                (age,) = comp
                if hb and age:
                    return None
                out.append((int(self._clip_one(pair, 1 if ha else (age + 1 if age else 0))),))
            else:
                (age,) = comp
                if hb and not age:
                    return None
                nxt = 1 if ha else (age + 1 if (age and w is not None) else age)
                out.append((int(self._clip_one(pair, nxt)),))
        return tuple(out)

    def _close(self) -> None:
        """Expand every known state (and the ones it reaches) so delta is complete."""
        n_a = len(self.actions)
        while self.expanded < len(self.states):
            state = self.states[self.expanded]
            row = np.full(n_a, -1, dtype=np.int32)
            for a in range(n_a):
                nxt = self.step(state, a)
                if nxt is not None:
                    row[a] = self.intern(nxt)
            self._rows.append(row)
            self.expanded += 1
            self._delta = None

    @property
    def delta(self) -> np.ndarray:
        """``[S, A]`` int32 successor table, -1 = forbidden."""
        if self._delta is None:
            self._delta = np.stack(self._rows) if self._rows else np.zeros((0, len(self.actions)), np.int32)
        return self._delta

    def _forget_plan(self, dead: frozenset[int]) -> list[tuple[int, int]]:
        """Components to reset when ``dead`` cells can never be contacted again.

        (position, which) pairs: which = -1 resets the whole component, 0/1 one age of a
        never_together pair. Only state that constrains nothing but dead cells goes.
        """
        pol = self.policy
        plan: list[tuple[int, int]] = []
        for pos, j in enumerate(self.short_windows):
            atom = pol.window_atoms[j]
            if atom.kind == "max" and dead.issuperset(atom.cells):
                plan.append((pos, -1))
        base = len(self.short_windows)
        for j, pair in enumerate(pol.pair_atoms):
            if pair.kind == "never_together":
                if dead.issuperset(pair.b):
                    plan.append((base + j, 0))  # age of 'a' only restricts 'b'
                if dead.issuperset(pair.a):
                    plan.append((base + j, 1))
            elif dead.issuperset(pair.b):
                plan.append((base + j, -1))
        return plan

    @staticmethod
    def _forget(state: tuple, plan: list[tuple[int, int]]) -> tuple:
        parts = list(state)
        for pos, which in plan:
            comp = parts[pos]
            if which < 0:
                parts[pos] = (0,) * len(comp)
            else:
                parts[pos] = tuple(0 if i == which else v for i, v in enumerate(comp))
        return tuple(parts)

    def canonical_table(self, counters: list[int]) -> np.ndarray:
        """``[S, 2**R]``: state id after forgetting what only exhausted counters' cells need.

        ``counters`` index ``long_windows``; bit j of the column = counter j is at its
        limit (a max rule), so its cells are dead for the rest of the plan. Merging such
        states is exact and shrinks the DP graph.
        """
        key = tuple(counters)
        n_sub = 1 << len(counters)
        plans = []
        for d in range(n_sub):
            cells: set[int] = set()
            for bit, r in enumerate(counters):
                atom = self.policy.window_atoms[self.long_windows[r]]
                if (d >> bit) & 1 and atom.kind == "max":
                    cells.update(atom.cells)
            plan = self._forget_plan(frozenset(cells))
            plans.append((tuple(plan), plan))
        table = self._canon.get(key)
        if table is not None and table.shape[0] == len(self.states):
            return table
        # One column per distinct forget plan, shared by every counter set.
        while True:
            n_s = len(self.states)
            cols = [self._plan_column(plan_key, plan) for plan_key, plan in plans]
            if len(self.states) == n_s:
                break
        table = np.stack([np.asarray(c[:n_s], dtype=np.int32) for c in cols], axis=1)
        self._canon[key] = table
        return table

    def _plan_column(self, plan_key: tuple, plan: list[tuple[int, int]]) -> list[int]:
        """State id after applying ``plan`` to every state; grows states until closed."""
        col = self._plan_cols.setdefault(plan_key, [])
        while len(col) < len(self.states):
            sid = len(col)
            col.append(self.intern(self._forget(self.states[sid], plan)) if plan else sid)
            self._close()
        # other plans' columns may have added states meanwhile: callers re-check
        return col

    # -------------------------------------------------------------- counters
    def counter_bounds(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lo, hi [N, T, R]``: bounds on the plan's cumulative count of each counter."""
        pol = self.policy
        n, t = history.shape[0], self.horizon
        r = len(self.long_windows)
        lo = np.full((n, t, r), -1, dtype=np.int64)
        hi = np.full((n, t, r), np.iinfo(np.int32).max, dtype=np.int64)
        for i, j in enumerate(self.long_windows):
            atom = pol.window_atoms[j]
            past = pol.history_in_windows(atom, history, t)
            if atom.kind == "max":
                hi[:, :, i] = np.maximum(0, atom.limit - past)
            else:
                lo[:, :, i] = atom.limit - past
        return lo, hi
