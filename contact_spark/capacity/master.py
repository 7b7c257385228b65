"""Restricted master: the best mix of the schedules the price iterations found (price-and-branch).

The Lagrangian prices decide every customer alone; where capacities bind, the customers
near a tie at the final prices are what the repair trims by a rule of thumb, and most
of the gap between the plan and the dual bound is lost there. This step recovers it:

1. **Columns.** Every customer is solved once more at a few price vectors the phases
   visited (the dual centre, the primal phase's kept prices and a spread of its rounds),
   in one Spark pass. A customer whose schedule is the same at all of them is *fixed*:
   only its usage and value are summed in the task. The others are *split*: each
   distinct schedule becomes a column (its value and its usage of every constraint).
2. **Column generation.** The master's LP relaxation prices every constraint; the split
   customers (the whole base when it has at most ``master_max_customers``) are solved
   again at those prices, and their new schedules join the columns (``master_rounds``
   times, or until no new column appears): the prices of the LP are the ones at which a
   better mix can be found.
3. **Master.** A MILP (HiGHS through ``scipy.optimize.milp``) picks one column per split
   customer to maximise the value, with every max capacity (and every minimum the plan
   already meets) holding on the fixed usage plus the chosen columns. It is exact on
   what it covers and bounded in work (``master_node_limit``: a node limit, not a time
   limit, so that a busy machine gives the same plan) and size (``master_max_customers``:
   beyond it, the customers whose columns differ least in value stay at the kept prices'
   schedule).
4. **Plan.** When the master's plan beats the repaired one, each split customer is
   solved again at the price vector of its chosen column (the same deterministic solve,
   the same schedule), the fixed ones at the first; the usage is recounted from that
   solve and must meet every capacity, or the repaired plan stays.

Only the split customers' columns reach the driver (bounded), and per task one row of
totals for the fixed ones; the whole base is never collected.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contact_spark.capacity.columns import (
    CHOICE_COLUMN,
    COLUMN_SCHEMA,
    Columns,
    make_choice_solver,
    make_column_solver,
    master_duals,
    solve_master,
)
from contact_spark.capacity.constraints import price_arrays
from contact_spark.capacity.evaluation import KeptEvaluation, SolveArgs
from contact_spark.capacity.repair import Repair
from contact_spark.capacity.result import CapacityResult
from contact_spark.io.columns import one_row
from contact_spark.planning.solve import solved_schema

log = logging.getLogger(__name__)

NEAR_PRICES = (0.9, 1.1)  # each generation round also solves at these multiples of the LP's prices


@dataclass(frozen=True)
class MasterOutcome:
    """What the master step did, for the log and ``plan_summary``."""

    split_customers: int
    columns: int
    rounds: int  # column-generation rounds run
    master_value: float  # value of the master's plan (fixed + chosen columns)
    master_bound: float  # HiGHS's proved bound on the restricted master
    seconds: float
    improved: bool


class Master(Repair):
    """The restricted-master step of ``CapacityEngine`` (after the repair)."""

    _price_trail: list[np.ndarray]
    master_outcome: MasterOutcome | None = None
    # The last master LP's prices: near the Lagrangian dual's optimum once the columns stop
    # changing (the LP of all columns is the dual's LP), so a candidate for the certificate.
    master_prices: np.ndarray | None = None

    def _price_sets(self, centre: np.ndarray) -> list[np.ndarray]:
        """The kept primal prices, the dual centre and an even spread of the primal rounds
        (the later first), at most ``master_price_sets`` distinct vectors."""
        limit = max(1, self.settings.master_price_sets)
        trail = list(getattr(self, "_price_trail", []))
        picks = [np.asarray(self._best_prices, dtype=np.float64), np.asarray(centre, dtype=np.float64)]
        if trail and limit > 2:
            idx = np.unique(
                np.linspace(0, len(trail) - 1, num=min(len(trail), limit - 2)).round().astype(int)
            )
            picks += [trail[i] for i in idx[::-1]]
        out: list[np.ndarray] = []
        for p in picks:
            if not any(np.allclose(p, q, rtol=0, atol=1e-12) for q in out):
                out.append(p)
        return out[:limit]

    def _master_step(self, result: CapacityResult, centre: np.ndarray) -> CapacityResult:
        """Replace the repaired plan by the master's when it is worth more (see module doc)."""
        if self.settings.master_node_limit <= 0 or not self.constraints or self._proved_optimal(result):
            return result
        start = time.perf_counter()
        # Price set 0 is the plan kept so far (with the repair's bans): every customer keeps
        # it unless the master finds a better mix, which makes the master feasible and never
        # worse than that plan.
        source, source_prices, source_exact = self._plan_source
        args = [self._solve_args(source_prices, source_exact)]
        args += [self._solve_args(p) for p in self._price_sets(centre)]
        solver = make_column_solver(
            self.policy, self.layout, self.static, self.constraints, self.attributes, args, banned_first=True
        )
        cols = source.mapInArrow(solver, COLUMN_SCHEMA).persist()
        try:
            found = self._columns(cols)
        finally:
            cols.unpersist()
        if found is None:
            return result
        skip = set(result.shortfalls())
        columns, fixed_value, fixed_usage, args, rounds = self._generate(source, found, skip, args)
        generated = time.perf_counter()
        solved = solve_master(
            columns,
            self.constraints,
            fixed_usage,
            skip,
            self.settings.master_node_limit,
            self.settings.master_time_limit,
        )
        n_customers = len(set(columns.customers.tolist()))
        if solved is None:
            log.warning("capacity master: HiGHS found no plan over %d split customers", n_customers)
            return result
        chosen, chosen_value, bound, timed_out = solved
        if timed_out:
            log.warning(
                "capacity master: stopped by its %.0f s time limit, not its node limit: the plan may "
                "differ on a faster machine (raise capacity.lagrangian.master_time_limit)",
                self.settings.master_time_limit,
            )
        master_value = fixed_value + chosen_value
        improved = master_value > result.primal_value + 1e-9 * max(1.0, abs(result.primal_value))
        self.master_outcome = MasterOutcome(
            n_customers,
            len(columns.values),
            rounds,
            master_value,
            fixed_value + bound,
            time.perf_counter() - start,
            improved,
        )
        log.info(
            "capacity master: %d split customers, %d columns after %d generation rounds (%.1f s), "
            "value %.2f (bound %.2f, MILP %.1f s) vs repaired %.2f",
            n_customers,
            len(columns.values),
            rounds,
            generated - start,
            master_value,
            fixed_value + bound,
            time.perf_counter() - generated,
            result.primal_value,
        )
        if not improved:
            return result
        choice = [
            (str(c), int(columns.source[j])) for j, c in enumerate(columns.customers.tolist()) if chosen[j]
        ]
        return self._materialise(result, source, choice, args, master_value)

    def _proved_optimal(self, result: CapacityResult) -> bool:
        """The kept plan is the exact (unsmoothed) solve at prices ``λ`` that it meets with
        complementary slackness (``λ_k`` > 0 only where constraint ``k`` is tight), and
        nothing was trimmed: by weak duality no plan is worth more, so no master can help
        (e.g. no capacity binds at all)."""
        _, prices, exact = self._plan_source
        if not exact or result.repair_rounds > 1 or result.trimmed_contacts:
            return False
        slack = np.array(
            [c.sign * (c.bound - u) for c, u in zip(self.constraints, result.usage, strict=True)]
        )
        scale = max(1.0, abs(result.primal_value))
        return bool(float(np.abs(prices * slack).sum()) <= 1e-9 * scale)

    def _columns(self, cols: DataFrame) -> tuple[Columns, float, np.ndarray, int] | None:
        """(the split customers' columns, the fixed customers' value and usage, the number of
        customers in the base) of a column pass; at most ``master_max_customers`` split
        customers, the others counted as fixed at the first price set."""
        n_k = len(self.constraints)
        fixed_rows = cols.filter(F.col("customer_id").isNull())
        totals = fixed_rows.select("value", "usage", "n").collect()  # one row per task
        base_customers = int(sum(r["n"] for r in totals))
        fixed_value = float(sum(r["value"] for r in totals))
        fixed_usage = np.zeros(n_k)
        for r in totals:
            fixed_usage += np.asarray(r["usage"], dtype=np.float64)
        split = cols.filter(F.col("customer_id").isNotNull())
        ranked = split.select("customer_id", "spread").distinct()
        cap = self.settings.master_max_customers
        n_split = ranked.count()
        base_customers += n_split
        if n_split > cap:
            # Too many to choose among: the customers whose columns differ least in value keep
            # the plan kept so far (price set 0), summed in Spark like the fixed ones.
            top = ranked.orderBy(F.desc("spread"), "customer_id").limit(cap).select("customer_id")
            rest = split.join(top, "customer_id", "left_anti").filter(F.array_contains("js", 0))
            summed = (
                rest.select(F.posexplode("usage").alias("k", "u")).groupBy("k").agg(F.sum("u").alias("u"))
            )
            for r in summed.collect():  # one row per constraint
                fixed_usage[int(r["k"])] += float(r["u"])
            fixed_value += float(one_row(rest.agg(F.sum("value")))[0] or 0.0)
            split = split.join(top, "customer_id", "left_semi")
        rows = split.orderBy("customer_id", F.element_at("js", 1)).collect()  # ≤ cap customers' columns
        if not rows:
            return None
        return Columns.of_rows(rows, n_k), fixed_value, fixed_usage, base_customers

    def _generate(
        self,
        source: DataFrame,
        found: tuple[Columns, float, np.ndarray, int],
        skip: set[str],
        args: list[SolveArgs],
    ) -> tuple[Columns, float, np.ndarray, list[SolveArgs], int]:
        """Column generation: customers solved at the master LP's prices; one whose schedule
        there differs from the kept plan's joins the master (a fixed one leaves the fixed
        totals), until no new column appears or ``master_rounds`` rounds.

        A base of at most ``master_max_customers`` customers is solved whole every round,
        so any customer may join. A larger one solves only the split customers: one that kept
        its schedule at every price set of the column pass is left fixed, and a round costs
        a few thousand solves, not a pass over the base (the master stays a small share of
        the plan stage at scale). Either way at most ``master_max_customers`` customers'
        rows reach the driver."""
        columns, fixed_value, fixed_usage, base_customers = found
        n_k = len(self.constraints)
        whole = base_customers <= self.settings.master_max_customers
        pool = source
        if not whole:
            ids = source.sparkSession.createDataFrame(
                [(c,) for c in sorted(set(columns.customers.tolist()))], "customer_id string"
            )
            pool = source.join(F.broadcast(ids), "customer_id", "left_semi").persist()
        rounds = 0
        try:
            while rounds < self.settings.master_rounds:
                prices = master_duals(columns, self.constraints, fixed_usage, skip)
                if prices is None:
                    break
                rounds += 1
                self.master_prices = prices
                # The LP's prices, exactly and with the tie-breaking charges, and a little below
                # and above: the schedules an integer mix needs are near-optimal there, not
                # always the one optimum each customer picks at the prices themselves.
                first = len(args)
                args = [
                    *args,
                    self._solve_args(prices),
                    self._solve_args(prices, exact=True),
                    *[self._solve_args(prices * f) for f in NEAR_PRICES],
                ]
                solver = make_column_solver(
                    self.policy,
                    self.layout,
                    self.static,
                    self.constraints,
                    self.attributes,
                    [args[0], *args[first:]],
                    numbers=[0, *range(first, len(args))],
                    banned_first=True,
                )
                rows = (
                    pool.mapInArrow(solver, COLUMN_SCHEMA)
                    .filter(F.col("customer_id").isNotNull())
                    .orderBy("customer_id", F.element_at("js", 1))
                    .collect()  # the pool's customers whose schedule moves: ≤ master_max_customers
                )
                known = set(columns.customers.tolist())
                room = self.settings.master_max_customers - len(known)
                joining = sorted({r["customer_id"] for r in rows} - known)[: max(room, 0)]
                for r in rows:
                    if r["customer_id"] in joining and 0 in r["js"]:
                        fixed_value -= float(r["value"])
                        fixed_usage = fixed_usage - np.asarray(r["usage"], dtype=np.float64)
                allowed = known | set(joining)
                offered = Columns.of_rows([r for r in rows if r["customer_id"] in allowed], n_k)
                columns, new = columns.added(offered)
                if new == 0:
                    break
        finally:
            if pool is not source:
                pool.unpersist()
        return columns, fixed_value, fixed_usage, args, rounds

    def _materialise(
        self,
        result: CapacityResult,
        source: DataFrame,
        choice: list[tuple[str, int]],
        args: list[SolveArgs],
        master_value: float,
    ) -> CapacityResult:
        """Solve each customer choosing a new column at its price set (no bans), the others
        as the kept plan was solved (``source``, with its bans, at price set 0)."""
        spark = self.frame.sparkSession
        moved = spark.createDataFrame(
            [(c, j) for c, j in choice if j != 0], f"customer_id string, {CHOICE_COLUMN} int"
        )
        solver = make_choice_solver(self.policy, self.layout, self.static, self.attributes, args)
        framed = source.join(F.broadcast(moved), "customer_id", "left")
        solved = framed.mapInArrow(solver, solved_schema(self.attributes))
        ev = KeptEvaluation.of(self._totals(self._aggregate_solved(solved.persist())), solved)
        self._cached.append(ev.solved)
        if not self._feasible(ev.usage, frozenset(result.shortfalls())) or abs(
            ev.value - master_value
        ) > 1e-6 * max(1.0, abs(master_value)):
            log.warning(
                "capacity master: its plan re-solved to value %.4f (expected %.4f) or broke a capacity; "
                "the repaired plan stays",
                ev.value,
                master_value,
            )
            return result
        self._record("master", 0, self._best_prices, ev, dual=None)
        self._release(ev.solved)
        return replace(result, solved=ev.solved, usage=ev.usage, primal_value=ev.value)

    def _solve_args(self, prices: np.ndarray, exact: bool = False) -> SolveArgs:
        global_price, attr_price = price_arrays(self.constraints, prices, self.shape)
        return SolveArgs(
            price=global_price,
            attr_price=attr_price,
            attributes=self.attributes,
            perturbation=0.0 if exact else self.perturbation,
        )
