"""Row builders of the per-customer MILP (:mod:`contact_spark.solver.milp`).

One :class:`CustomerModel` holds the variables and sparse rows of one customer. Contacts
``x[t, k]`` (binary) are the first ``T*K`` variables; every other variable is continuous
and exact once ``x`` is integral:

* *channel patterns* ``z[t, c, S]`` in [0, 1], one per set S of channels of campaign c
  that one month may hold on its own (:class:`PolicyFacts`), when c has >= 2 live cells
  at t: ``x[t, c, h] = sum_{S ∋ h} z[t, c, S]`` and ``sum_S z[t, c, S] <= 1`` (left out
  where a max_campaigns row already says it). With x integral exactly one z (the chosen
  channels) is 1, so the union probability ``1 - prod(1 - p_h)`` is linear in z, and
  "campaign c is contacted in month t" is ``sum_S z`` (exact, no extra row). Each
  month-campaign's LP is its convex hull.
* *any-of expressions*: "some contact of cell set S at month t" as a sum of variables
  that is exactly that 0/1 value when x is integral (a single contact, one campaign's
  patterns, the contacts of a set holding at most one contact a month, the campaigns of a
  set holding at most one campaign a month), or else an indicator ``y >=`` each
  campaign's part. Indicators only appear on the small side of ``<=`` rows, so "pushed
  up to the max" is all they need to mean.
* *window indicators* ``Y >=`` the any-of expressions of several months, for rules that
  count a set once per window (``max_campaigns``, ``never_together`` over several months).
* *month sums* ``m = sum`` of one month's terms of a window rule (upper bound: their
  number), shared by every window and rule that sums the same terms.

Every rule is one aggregated row per window (a clique row for ``never_together`` with
``a = b``), not one row per pair of contacts. With ``prune`` (the standalone solve)
contacts and patterns that lose value and only tighten rules are left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
from scipy.optimize import LinearConstraint
from scipy.sparse import csr_matrix

from contact_spark.policy.compiler import CampaignAtom, CompiledPolicy, PairAtom, WindowAtom

INF = np.inf
Expr = list[int]  # a sum of variables, every coefficient 1


@dataclass(frozen=True)
class PolicyFacts:
    """What the rows need from the policy alone.

    patterns[c]   channel sets (sorted tuples, size >= 1) campaign c may hold in one month
                  without breaking a rule by themselves (a max rule's limit, a same-month
                  never_together; history only adds to windows, never removes)
    exclusive     cell sets holding at most one contact a month (a max_offers limit <= 1,
                  a never_together with a = b)
    one_campaign  cell sets holding at most one campaign a month (max_campaigns over one
                  month with limit <= 1)
    covered       campaigns whose cells all lie in one ``one_campaign`` set: its row
                  already says "at most one pattern" of each of them
    implied       indices of same-month never_together atoms every conflict of which is
                  already excluded by the patterns (one campaign) or a ``one_campaign`` set
    helpful       cells whose contacts can make other contacts legal (min_offers scopes,
                  only_after prerequisites); every other contact only ever tightens rules
    """

    patterns: tuple[tuple[tuple[int, ...], ...], ...]
    exclusive: tuple[frozenset[int], ...]
    one_campaign: tuple[frozenset[int], ...]
    covered: frozenset[int]
    implied: frozenset[int]
    helpful: frozenset[int]


def _month_ok(policy: CompiledPolicy, cells: frozenset[int]) -> bool:
    """False when contacts ``cells`` (one campaign, one month) break a rule on their own."""
    n_h = len(policy.channels)
    for atom in policy.window_atoms:
        if atom.kind == "max":
            inside = [k for k in atom.cells if k in cells]
            weight = len({k % n_h for k in inside}) if atom.packages else len(inside)
            if weight > atom.limit:
                return False
    for catom in policy.campaign_atoms:
        # a limit of 0 forbids its scope in every window, whatever the history
        if catom.limit == 0 and any(k in cells for k in catom.cells):
            return False
    for pair in policy.pair_atoms:
        if pair.kind == "never_together":
            a = [k for k in pair.a if k in cells]
            if any(i != j for i in a for j in pair.b if j in cells):
                return False
    return True


@lru_cache(maxsize=16)
def policy_facts(policy: CompiledPolicy) -> PolicyFacts:
    """:class:`PolicyFacts` of ``policy`` (cached: compiled policies are hashable)."""
    n_h = len(policy.channels)
    patterns = []
    for c in range(len(policy.campaigns)):
        ok = [
            s
            for size in range(1, n_h + 1)
            for s in combinations(range(n_h), size)
            if _month_ok(policy, frozenset(c * n_h + h for h in s))
        ]
        patterns.append(tuple(ok))
    exclusive = [
        frozenset(a.cells) for a in policy.window_atoms if a.kind == "max" and not a.packages and a.limit <= 1
    ]
    exclusive += [
        frozenset(p.a) for p in policy.pair_atoms if p.kind == "never_together" and set(p.a) == set(p.b)
    ]
    one_campaign = [frozenset(a.cells) for a in policy.campaign_atoms if a.window == 1 and a.limit <= 1]
    covered = {
        c
        for c in range(len(policy.campaigns))
        if any(f.issuperset(range(c * n_h, (c + 1) * n_h)) for f in one_campaign)
    }

    def excluded(i: int, j: int) -> bool:
        if i // n_h == j // n_h:
            return not any({i % n_h, j % n_h} <= set(s) for s in patterns[i // n_h])
        return any(i in f and j in f for f in one_campaign)

    implied = {
        j
        for j, p in enumerate(policy.pair_atoms)
        if p.kind == "never_together"
        and (p.window or 1) == 1
        and all(excluded(i, k) for i in p.a for k in p.b if i != k)
    }
    helpful = {k for a in policy.window_atoms if a.kind == "min" for k in a.cells}
    helpful |= {k for p in policy.pair_atoms if p.kind == "only_after" for k in p.a}
    return PolicyFacts(
        tuple(patterns),
        tuple(exclusive),
        tuple(one_campaign),
        frozenset(covered),
        frozenset(implied),
        frozenset(helpful),
    )


class CustomerModel:
    """Variables (objective, integrality, bounds) and rows ``lb <= A v <= ub`` of one customer.

    ``gain[t, k]`` is the objective of ``x[t, k]`` (the contact's own value);
    ``eligible[t, k]`` its upper bound (eligibility and history blocks); ``value[t, c]``
    the seasonal success value and ``propensity[t, k]`` the success probability, for the
    union-probability correction carried by the channel patterns. ``prune`` leaves out
    contacts and patterns no optimal plan of *this* model holds (see ``_pattern_rows``);
    turn it off when the model is embedded in a larger one (capacity rows may reward them).
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        gain: np.ndarray,
        eligible: np.ndarray,
        value: np.ndarray,
        propensity: np.ndarray,
        prune: bool = True,
    ) -> None:
        self.policy = policy
        self.facts = policy_facts(policy)
        self.n_h = len(policy.channels)
        self.n_t, self.n_k = eligible.shape
        self.obj = [float(v) for v in gain.reshape(-1)]
        self.integrality = [1] * len(self.obj)
        self.lbs = [0.0] * len(self.obj)
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._vals: list[float] = []
        self.row_lb: list[float] = []
        self.row_ub: list[float] = []
        self._any: dict[tuple[int, tuple[int, ...]], Expr] = {}
        self._sums: dict[tuple[int, ...], int] = {}
        # a cell no pattern holds can never be contacted
        held = np.zeros(self.n_k, dtype=bool)
        for c, pats in enumerate(self.facts.patterns):
            for s in pats:
                held[[c * self.n_h + h for h in s]] = True
        # a contact that only tightens rules and loses value is in no optimal plan
        self.gain = gain.reshape(self.n_t, self.n_k)
        self.prunable = np.full(self.n_k, prune, dtype=bool)
        self.prunable[list(self.facts.helpful)] = False
        self.eligible = eligible & held[None, :] & ~((self.gain < 0) & self.prunable[None, :])
        self.ubs = [float(u) for u in self.eligible.reshape(-1)]
        self._z: dict[tuple[int, int], list[tuple[tuple[int, ...], int]]] = {}
        self._pattern_rows(value, propensity)

    # ------------------------------------------------------------------ basics
    def x(self, t: int, k: int) -> int:
        return t * self.n_k + k

    def new_var(self, c: float = 0.0) -> int:
        """A continuous variable in [0, 1] with objective coefficient ``c``."""
        self.obj.append(c)
        self.integrality.append(0)
        self.lbs.append(0.0)
        self.ubs.append(1.0)
        return len(self.obj) - 1

    def add(self, cols: Sequence[int], vals: Sequence[float], lb: float, ub: float) -> None:
        r = len(self.row_lb)
        self._rows += [r] * len(cols)
        self._cols += list(cols)
        self._vals += list(vals)
        self.row_lb.append(lb)
        self.row_ub.append(ub)

    def at_most(self, cols: Sequence[int], cap: float) -> None:
        """``sum cols <= cap``, skipped when it cannot bind (every column is at most 1)."""
        if len(cols) > cap:
            self.add(cols, [1.0] * len(cols), -INF, cap)

    def at_least(self, y: int, expr: Expr) -> None:
        """``y >= sum expr``."""
        self.add([y, *expr], [1.0] + [-1.0] * len(expr), 0.0, INF)

    def constraint(self) -> LinearConstraint | None:
        if not self.row_lb:
            return None
        a = csr_matrix((self._vals, (self._rows, self._cols)), shape=(len(self.row_lb), len(self.obj)))
        return LinearConstraint(a, np.asarray(self.row_lb), np.asarray(self.row_ub))

    def live(self, t: int, cells: Sequence[int]) -> list[int]:
        """Contacts of ``cells`` at month ``t`` that may be 1."""
        return [self.x(t, k) for k in cells if self.eligible[t, k]]

    # ---------------------------------------------------------------- patterns
    def _pattern_rows(self, value: np.ndarray, propensity: np.ndarray) -> None:
        """Channel patterns of every month-campaign with >= 2 live cells.

        ``x`` carries each contact's own value ``s v p_h``, so a pattern S carries the
        union correction ``s v (1 - prod(1 - p_h) - sum p_h)`` (0 for one channel). A
        pattern where some channel h adds a negative value to ``S - {h}`` (also a
        pattern) is left out when h's contact only tightens rules: ``S - {h}`` is legal
        whenever S is and worth more, so no optimal plan holds S.
        """
        n_h = self.n_h
        for t in range(self.n_t):
            for c, pats in enumerate(self.facts.patterns):
                base = c * n_h
                live = {h for h in range(n_h) if self.eligible[t, base + h]}
                if len(live) < 2:
                    continue
                p = [float(propensity[t, base + h]) for h in range(n_h)]
                corr = {
                    s: value[t, c] * (1.0 - math.prod(1.0 - p[h] for h in s) - sum(p[h] for h in s))
                    if len(s) > 1
                    else 0.0
                    for s in pats
                    if live.issuperset(s)
                }
                zs = [
                    (s, self.new_var(cs))
                    for s, cs in corr.items()
                    if len(s) == 1 or all(self._adds_value(t, base, h, s, corr) for h in s)
                ]
                for h in live:
                    cover = [z for s, z in zs if h in s]
                    self.add([self.x(t, base + h), *cover], [1.0] + [-1.0] * len(cover), 0.0, 0.0)
                if c not in self.facts.covered:
                    self.at_most([z for _, z in zs], 1.0)
                self._z[(t, c)] = zs

    def _adds_value(
        self, t: int, base: int, h: int, s: tuple[int, ...], corr: dict[tuple[int, ...], float]
    ) -> bool:
        """False when channel h of pattern s loses value and only tightens rules."""
        if not self.prunable[base + h]:
            return True
        rest = tuple(g for g in s if g != h)
        return self.gain[t, base + h] + corr[s] - corr[rest] >= 0.0

    def part(self, t: int, c: int, cells: Sequence[int]) -> Expr:
        """Exactly "some contact of campaign c's ``cells`` at month t"."""
        zs = self._z.get((t, c))
        if zs is None or len(cells) == 1:  # at most one live cell, or one cell asked
            return self.live(t, cells)
        chans = {k % self.n_h for k in cells}
        return [z for s, z in zs if chans.intersection(s)]

    # ----------------------------------------------------------------- any-of
    def any_of(self, t: int, cells: Sequence[int]) -> Expr:
        """ "Some contact of ``cells`` at month t": exact as a sum, or an indicator above it."""
        live = tuple(k for k in cells if self.eligible[t, k])
        key = (t, live)
        if key in self._any:
            return self._any[key]
        by_campaign: dict[int, list[int]] = {}
        for k in live:
            by_campaign.setdefault(k // self.n_h, []).append(k)
        parts = [self.part(t, c, ks) for c, ks in sorted(by_campaign.items())]
        cellset = frozenset(live)
        if len(parts) <= 1:
            expr = parts[0] if parts else []
        elif any(cellset <= f for f in self.facts.exclusive):
            expr = [self.x(t, k) for k in live]
        elif any(cellset <= f for f in self.facts.one_campaign):
            expr = [v for p in parts for v in p]
        else:
            y = self.new_var()
            for p in parts:
                self.at_least(y, p)
            expr = [y]
        self._any[key] = expr
        return expr

    def any_over(self, exprs: Sequence[Expr]) -> Expr:
        """Expression >= each of ``exprs`` (the months of one window)."""
        live = [e for e in exprs if e]
        if len(live) <= 1:
            return live[0] if live else []
        y = self.new_var()
        for e in live:
            self.at_least(y, e)
        return [y]

    # ------------------------------------------------------------------- rules
    def month_sum(self, cols: Expr) -> tuple[list[int], float]:
        """``cols`` (one month's terms of a window rule) as (columns, largest sum): a
        single aggregate variable ``m = sum cols`` when it has more than two terms, so that
        a window of w months costs w entries instead of w * |cols| (shared between rules)."""
        if len(cols) <= 2:
            return cols, float(len(cols))
        key = tuple(sorted(cols))
        if key not in self._sums:
            m = self.new_var()
            self.ubs[m] = float(len(cols))
            self.add([m, *cols], [1.0] + [-1.0] * len(cols), 0.0, 0.0)
            self._sums[key] = m
        return [self._sums[key]], float(len(cols))

    def window_rows(self, atom: WindowAtom, hist: np.ndarray) -> None:
        """One row per window ending at t: contacts (or packages) <= / >= limit - history."""
        groups = (
            [[int(k) for k in g] for g in self.policy.channel_groups(atom.cells)] if atom.packages else []
        )
        per_month: list[tuple[list[int], float]] = []
        for s in range(self.n_t):
            if atom.packages:
                cols = [v for g in groups for v in self.any_of(s, g)]
            else:
                cols = self.live(s, atom.cells)
            per_month.append(self.month_sum(cols) if atom.window > 1 else (cols, float(len(cols))))
        for t in range(self.n_t):
            months = range(max(0, t - atom.window + 1), t + 1)
            cols = [v for s in months for v in per_month[s][0]]
            most = sum(per_month[s][1] for s in months)
            if atom.kind == "max":
                cap = float(max(0, atom.limit - hist[t]))
                if most > cap:
                    self.add(cols, [1.0] * len(cols), -INF, cap)
            elif atom.limit - hist[t] > 0:
                self.add(cols, [1.0] * len(cols), float(atom.limit - hist[t]), INF)

    def campaign_rows(self, atom: CampaignAtom, seen: np.ndarray) -> None:
        """Per window ending at t: campaigns new to the window (not in ``seen[t]``, the
        history's campaigns inside it) <= limit - seen campaigns. A window whose history
        alone is over the limit gets no planned contact at all (history is never
        repaired: the plan adds nothing to it, as for max_offers)."""
        groups = self.policy.campaigns_of(atom.cells)
        for t in range(self.n_t):
            months = range(max(0, t - atom.window + 1), t + 1)
            if int(seen[t].sum()) > atom.limit:
                self.at_most([col for s in months for col in self.live(s, list(atom.cells))], 0.0)
                continue
            room = float(atom.limit - int(seen[t].sum()))
            cols = []
            for g in groups:
                c = int(g[0]) // self.n_h
                if not seen[t, c]:
                    cols += self.any_over([self.part(s, c, [int(k) for k in g]) for s in months])
            self.at_most(cols, room)

    def pair_rows(self, atom: PairAtom, age_a: int) -> None:
        """``never_together``, ``never_followed_by`` and ``only_after`` as aggregated rows
        (their history effects on ``never_*`` are bounds, set by :func:`blocked_by_history`)."""
        if atom.kind == "only_after":
            w = atom.window
            for t in range(self.n_t):
                if age_a and (w is None or t + age_a <= w):
                    continue  # the prerequisite is already in the history
                yb = self.any_of(t, atom.b)
                if yb:
                    start = 0 if w is None else max(0, t - w)
                    prior = [col for s in range(start, t) for col in self.live(s, atom.a)]
                    self.add([*yb, *prior], [1.0] * len(yb) + [-1.0] * len(prior), -INF, 0.0)
        elif atom.kind == "never_followed_by":
            for s in range(self.n_t):
                ya = self.any_of(s, atom.a)
                if not ya:
                    continue
                for t in range(s + 1, min(self.n_t, s + (atom.window or 0) + 1)):
                    yb = self.any_of(t, atom.b)
                    if yb:
                        self.at_most([*ya, *yb], 1.0)
        else:
            self._never_together_rows(atom)

    def _never_together_rows(self, atom: PairAtom) -> None:
        """Within every window of ``w`` months: contacts only in ``a - b``, or only in
        ``b - a``, or a single contact of ``a & b``. One row per window:
        ``Y(a - b) + Y(b - a) + sum x(a & b) <= 1`` (a clique row when a = b)."""
        a, b = set(atom.a), set(atom.b)
        only_a, only_b, both = sorted(a - b), sorted(b - a), sorted(a & b)
        w = min(atom.window or 1, self.n_t)
        for m in range(self.n_t - w + 1):
            months = range(m, m + w)
            cols = [col for s in months for col in self.live(s, both)]
            for side in (only_a, only_b):
                if side:
                    cols += self.any_over([self.any_of(s, side) for s in months])
            self.at_most(cols, 1.0)


def blocked_by_history(policy: CompiledPolicy, age_a: list[int], age_b: list[int], t_max: int) -> np.ndarray:
    """``[T, K]`` cells forbidden by pair atoms because of the history (``age_*[j]``: months
    since the last history contact of atom j's side, 0 = none)."""
    blocked = np.zeros((t_max, policy.n_cells), dtype=bool)
    for j, atom in enumerate(policy.pair_atoms):
        b = list(atom.b)
        if atom.kind == "never_together":
            w = atom.window or 1
            if age_a[j]:
                blocked[: max(0, w - age_a[j]), b] = True
            if age_b[j]:
                blocked[: max(0, w - age_b[j]), list(atom.a)] = True
        elif atom.kind == "never_followed_by":
            if age_a[j]:
                blocked[: max(0, (atom.window or 0) - age_a[j] + 1), b] = True
    return blocked
