"""Primal phase: tune the prices from the dual centre until the max capacities hold.

See ``PrimalPhase._primal_phase`` for the update rule (a Sinkhorn-like proportional
step per constraint, split into a level and offsets for the months of one rule).
"""

from __future__ import annotations

import math

import numpy as np

from contact_spark.capacity.bundle import PRICE_CAP, BundleState
from contact_spark.capacity.constraints import Constraint
from contact_spark.capacity.dual import DualPhase
from contact_spark.capacity.evaluation import Evaluation, KeptEvaluation

PRIMAL_TARGET_CONTACTS = 0.5  # primal phase aims this many contacts under each binding max …
PRIMAL_TARGET_SHARE = 2e-4  # … plus this share of the bound
PRIMAL_KAPPA = 0.5  # initial price step per unit of log-usage ratio, in smoothing charges
PRIMAL_ROUNDS_FACTOR = 2  # primal rounds = this × repair_rounds
PRIMAL_KAPPA_GROWTH_CAP = 16.0  # a primal step size grows to at most this × its initial size
PRIMAL_REPAIRABLE_SHARE = 0.05  # rounds over each max by ≤ this share (or 3 targets) can be repaired


class PrimalPhase(DualPhase):
    """The primal phase of ``CapacityEngine``; leaves the kept round's prices in
    ``_best_prices`` and a better feasible round, if any, in ``_feasible_round``."""

    _best_prices: np.ndarray
    _best_exact: bool
    _feasible_round: tuple[float, np.ndarray] | None
    _price_trail: list[np.ndarray]

    def _positive_usage(self, constraint: Constraint) -> bool:
        """Usage can never be negative (counts or sums of a non-negative built-in attribute)."""
        return (
            bool((constraint.weight >= 0).all())
            and not constraint.has_offset
            and constraint.attr
            in (
                None,
                "cost",
                "propensity",
            )
        )

    def _primal_phase(self, state: BundleState) -> KeptEvaluation:
        """Tune the prices from the dual centre until every max capacity holds with little slack.

        The smoothed choices respond to a price like a logit model: a constraint's usage
        scales roughly by ``exp(−Δλ/κ)`` with ``κ`` of the order of the smoothing charge.
        Each price therefore moves by ``κ · log(usage_k / (b_k − target_k))`` (a
        Sinkhorn-like proportional update, exact for logit choices; a linear step for
        constraints whose usage can be negative).

        The constraints of one rule (e.g. a call centre's twelve months) are substitutes:
        raising one month's price moves its customers to the other months. Their step is
        split into a *level* (the rule's total usage against its total aim, one step size
        for the whole rule) and each constraint's *offset* from it (its own step size):
        the level brings the rule's total under its bounds, the offsets share it out
        between the months, and an oscillation of the one does not shrink the other's
        step. A step size halves when its direction flips and grows by half while it
        keeps it. Returns the best evaluation: the feasible one of highest value, else
        the least violated one (the repair finishes it).
        """
        n_k = len(self.constraints)
        units = state.units
        mu = np.array(state.centre / units, copy=True)
        coef = state.value_scale / units  # typical |a| of one contact
        target = PRIMAL_TARGET_CONTACTS * coef + PRIMAL_TARGET_SHARE * np.abs(self._bounds)
        kappa = np.full(n_k, max(self.settings.smoothing, 1e-3) * PRIMAL_KAPPA)
        kappa_cap = float(kappa[0]) * PRIMAL_KAPPA_GROWTH_CAP if n_k else 0.0
        positive = np.array([self._positive_usage(c) for c in self.constraints])
        is_max = np.array([c.sense == "max" for c in self.constraints])
        groups = self._substitute_groups(positive)
        level_kappa = {g: float(kappa[0]) for g in groups}
        level_previous = dict.fromkeys(groups, 0.0)
        best: Evaluation | None = None
        best_key: tuple[float, float] = (math.inf, -math.inf)
        feasible_value, feasible_prices = -math.inf, None
        repairable_excess = np.maximum(PRIMAL_REPAIRABLE_SHARE * np.abs(self._bounds), 3 * target)
        previous = np.zeros(n_k)
        # First candidate: the exact (unsmoothed) plan at the centre – optimal outright when
        # it fits, e.g. when no capacity binds.
        # Summed first: only when it fits is it solved again with its schedules.
        exact = self.evaluate(mu * units, exact=True, keep=False)
        if not (self.excess(exact.usage)[is_max] > 1e-9).any():
            exact = self.evaluate(mu * units, exact=True)
            self._release(exact.solved)
            self._record("primal", -1, mu * units, exact, dual=None, scale=units)
            self._best_prices, self._best_exact = mu * units, True
            return exact
        self._best_exact = False
        self._price_trail = []  # every round's prices: the master step's price sets
        for round_ in range(PRIMAL_ROUNDS_FACTOR * self.settings.repair_rounds):
            lam = mu * units
            self._price_trail.append(lam)
            # Rounds are summed in the workers; only the kept round is solved again with
            # its schedules at the end (same prices, same deterministic charges: same plan).
            ev = self.evaluate(lam, keep=False)
            excess = self.excess(ev.usage)
            over_k = np.where(is_max, np.maximum(excess, 0.0), 0.0)
            over = float((over_k[is_max] / coef[is_max]).sum())
            # The repair drops about the excess, each unit worth about its price: rounds close
            # to feasible compete on their value net of that (a feasible round with much
            # slack can be worth far less); rounds far over on how little they exceed.
            if (over_k <= repairable_excess).all():
                # Priced at least at the dual centre: a round that under-prices a capacity
                # would otherwise look cheap to repair.
                loss = float((over_k * np.maximum(lam, state.centre)).sum())
                key = (0.0, -(ev.value - loss))
            else:
                key = (1.0 + over, -ev.value)
            if key < best_key:
                best, best_key = ev, key
                self._best_prices = lam
            # Feasible as the engine's plan must be: every max and every minimum. A round that
            # only meets the maxima is not (it once replaced the repaired plan, and its re-solve
            # then failed the check of every constraint: a crash of the plan stage).
            if over == 0 and self._feasible(ev.usage) and ev.value > feasible_value:
                feasible_value, feasible_prices = ev.value, lam
            self._record("primal", round_, lam, ev, dual=None, step=kappa * units, scale=units)
            slack_cost = float((np.maximum(-excess, 0.0) * lam).sum())
            if over == 0 and slack_cost <= self.settings.gap_tolerance * 0.1 * max(ev.value, 1e-9):
                break
            # Outside the band [b − 3·target, b] (or at price 0 and satisfied) a price moves.
            moving = (excess > 0) | ((excess < -3 * target) & (mu > 0))
            aim = np.where(is_max, self._bounds - target, self._bounds + target)
            step = np.zeros(n_k)
            for k in np.flatnonzero(moving).tolist():
                step[k] = self._price_step(k, ev.usage[k], aim[k], excess[k], target[k], coef[k], positive[k])
            move = kappa * step
            direction = step.copy()
            for g, members in groups.items():
                active = [k for k in members if mu[k] > 0 or excess[k] > 0]
                if len(active) < 2:
                    continue
                total = float(ev.usage[active].sum())
                total_aim = float(aim[active].sum())
                if (
                    abs(total - total_aim) <= 3 * float(target[active].sum())
                    and not (excess[active] > 0).any()
                ):
                    level = 0.0
                else:  # the rule's total against its total aim, as one constraint's step
                    level = self._price_step(active[0], total, total_aim, 0.0, 0.0, coef[active[0]], True)
                level_kappa[g] = _adapt(level_kappa[g], level, level_previous[g], kappa_cap)
                level_previous[g] = level
                for k in active:
                    direction[k] = step[k] - level
                    move[k] = level_kappa[g] * level + kappa[k] * direction[k]
            if not move.any():
                break  # every constraint within its band: nothing left to tune
            mu = np.clip(mu + move, 0.0, PRICE_CAP)
            kappa = np.array([_adapt(kappa[k], direction[k], previous[k], kappa_cap) for k in range(n_k)])
            previous = direction
        assert best is not None
        self._feasible_round = None
        if feasible_prices is not None and feasible_prices is not self._best_prices:
            self._feasible_round = (feasible_value, feasible_prices)
        kept = self.evaluate(self._best_prices)
        self._release(kept.solved)
        if not np.allclose(kept.usage, best.usage, rtol=1e-9, atol=1e-9):  # pragma: no cover - a kernel bug
            raise RuntimeError(
                "re-solving the kept primal round gave another plan: the solve is not deterministic"
            )
        return kept

    def _price_step(
        self, k: int, used: float, aim: float, excess: float, target: float, coef: float, positive: bool
    ) -> float:
        """Signed step of constraint ``k``'s price towards its aim (> 0 raises it)."""
        c = self.constraints[k]
        if positive:
            ratio = (used + coef) / max(aim + coef, 1e-12)
            return math.log(max(ratio, 1e-12)) * (1.0 if c.sense == "max" else -1.0)
        return (excess + target) / max(abs(c.bound), coef * 10, 1e-12)

    def _substitute_groups(self, positive: np.ndarray) -> dict[tuple[str, str], list[int]]:
        """Constraints of one rule and sense with non-negative usage: moved as a level plus offsets."""
        groups: dict[tuple[str, str], list[int]] = {}
        for k, c in enumerate(self.constraints):
            if positive[k]:
                groups.setdefault((c.rule, c.sense), []).append(k)
        return {g: members for g, members in groups.items() if len(members) > 1}


def _adapt(size: float, direction: float, previous: float, cap: float) -> float:
    """A step size: halved when the direction flips; grown by half while it keeps its sign
    without at least halving (a slow approach), at most to ``cap``; kept while the
    distance shrinks fast, so a converging price is not thrown past its aim."""
    if direction == 0 or previous == 0:
        return size
    if np.sign(direction) != np.sign(previous):
        return size * 0.5
    if abs(direction) > 0.5 * abs(previous):
        return min(size * 1.5, cap)
    return size
