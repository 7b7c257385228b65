"""Exact repair: make every max capacity hold by banning the lowest-value contributors.

The first rounds let a banned contact move to a slot with capacity left; the later ones
only drop contacts (each customer restricted to a subset of its current schedule), so
usage can only fall and the loop ends feasible or raises.
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from contact_spark.capacity.evaluation import KeptEvaluation
from contact_spark.capacity.primal import PrimalPhase
from contact_spark.capacity.result import CapacityResult


class Repair(PrimalPhase):
    """The repair of ``CapacityEngine``."""

    # (frame with the repair's bans, prices, exact) that solve to the plan kept so far
    _plan_source: tuple[DataFrame, np.ndarray, bool]

    def _repair(
        self, ev: KeptEvaluation, prices: np.ndarray, shadow: np.ndarray, iterations: int
    ) -> CapacityResult:
        """Make every max capacity hold exactly: ban the lowest-value contributors of each
        exceeded max and re-solve their customers (first letting them move, then only drop)."""
        trimmed = 0
        frame = self.frame
        rounds = 0
        # How the plan kept so far was solved (the master step solves it again as a column).
        self._plan_source = (frame, np.asarray(prices, dtype=np.float64), self._best_exact)
        for rounds in range(1, self.settings.repair_rounds + 1):
            excess = self._max_excess(ev.usage)
            self._record("repair", rounds, prices, ev, dual=None)
            if not (excess > 1e-9).any():
                break
            # First rounds: banned contacts may move to another month or channel (filling
            # spare capacity); later rounds only drop contacts, so usage can only fall.
            moving = rounds <= self.settings.repair_rounds // 3
            bans = self._bans(ev.solved, excess, aggressive=rounds > (2 * self.settings.repair_rounds) // 3)
            trimmed += bans.count()  # the bans are checkpointed: counted once, used below
            frame = self._with_bans(frame, ev.solved, bans, moving=moving, full=self._full_slots(ev.usage))
            # Moving rounds re-solve at the prices; dropping rounds fix every customer to a
            # subset of its contacts and keep the most valuable legal subset, priced only by
            # the share and ratio maxima (a contact their price pays for, e.g. one outside a
            # share's ``of``, is kept as long as it pays there: dropping it would raise the row).
            solve_prices = prices if moving else self._dropping_prices(prices)
            ev = self.evaluate(solve_prices, frame, exact=not moving)
            self._release(ev.solved)
            self._plan_source = (frame, solve_prices, not moving)
        excess = self._max_excess(ev.usage)
        if (excess > 1e-9).any():
            raise RuntimeError(
                "capacity repair could not meet every max capacity: "
                + ", ".join(
                    f"{c.name} over by {e:g}" for c, e in zip(self.constraints, excess, strict=True) if e > 0
                )
            )
        return CapacityResult(
            solved=ev.solved,
            constraints=self.constraints,
            prices=shadow,
            usage=ev.usage,
            primal_value=ev.value,
            dual_bound=math.inf,
            iterations=iterations,
            repair_rounds=rounds,
            trimmed_contacts=trimmed,
        )

    def _dropping_prices(self, prices: np.ndarray) -> np.ndarray:
        """The prices of the dropping rounds: a two-sided max's (share, ratio), 0 elsewhere
        (a config without one solves at zero prices, as before)."""
        keep = np.array([c.two_sided and c.sense == "max" for c in self.constraints], dtype=bool)
        return np.where(keep, np.asarray(prices, dtype=np.float64), 0.0)

    def _bans(self, solved: DataFrame, excess: np.ndarray, aggressive: bool) -> DataFrame:
        """Contacts to forbid: per violated max constraint, its lowest-value contributors
        until the excess is covered (all contributors when ``aggressive``).

        One pass for every violated constraint: each contact is exploded once into a row per
        violated constraint it counts towards (``group`` = the constraint's position), and the
        choice runs grouped by constraint, so the number of Spark jobs does not grow with the
        number of violated constraints (twelve months of a call centre, say).
        """
        n_h = self.shape[2]
        n_cells = self.shape[1] * n_h
        violated = [j for j in range(len(self.constraints)) if excess[j] > 1e-9]
        zipped = F.arrays_zip("months", "cells", "values", *[f"a_{a}" for a in self.attributes])
        contacts = solved.filter(F.col("status") == 0).select("customer_id", F.explode(zipped).alias("c"))
        flat = F.col("c.months") * n_cells + F.col("c.cells")
        coefficients = []
        for group, j in enumerate(violated):
            constraint = self.constraints[j]
            weight = F.element_at(
                F.array(*[F.lit(float(w)) for w in constraint.weight.reshape(-1)]), flat + 1
            )
            offset = (
                F.lit(float(constraint.offset))
                if np.ndim(constraint.offset) == 0
                else F.element_at(
                    F.array(*[F.lit(float(o)) for o in constraint.offsets.reshape(-1)]), flat + 1
                )
            )
            # Only contacts of positive weight are banned: dropping one lowers the row. A share's
            # other contacts (weight −s) would raise it, so they are never dropped for it.
            coef = weight if constraint.attr is None else weight * (F.col(f"c.a_{constraint.attr}") - offset)
            coefficients.append(F.struct(F.lit(group).alias("group"), coef.alias("coef")))
        contributors = (
            contacts.select(
                "customer_id",
                flat.alias("flat"),
                F.col("c.values").alias("value"),
                F.explode(F.array(*coefficients)).alias("k"),
            )
            .select(
                "customer_id", "flat", "value", F.col("k.group").alias("group"), F.col("k.coef").alias("coef")
            )
            .filter(F.col("coef") > 0)
        )
        if not aggressive:
            contributors = _lowest_covering_each(contributors, [float(excess[j]) for j in violated])
        return contributors.select("customer_id", "flat").distinct().localCheckpoint()

    def _full_slots(self, usage: np.ndarray) -> list[int]:
        """Flat ``t * cells + cell`` slots that count towards a max constraint already at or
        over its bound: a moved contact must not land there."""
        n_cells = self.shape[1] * self.shape[2]
        slots: set[int] = set()
        for c, used in zip(self.constraints, usage, strict=True):
            if c.sense != "max" or used < c.bound - 1e-9:
                continue
            weight = c.weight.reshape(self.shape[0], n_cells)
            if c.attr is not None and c.has_offset:
                weight = np.abs(weight)  # the sign depends on the customer's attribute
            for t, k in zip(*np.nonzero(weight > 0), strict=True):
                slots.add(int(t) * n_cells + int(k))
        return sorted(slots)

    def _with_bans(
        self,
        frame: DataFrame,
        solved: DataFrame,
        bans: DataFrame,
        moving: bool,
        full: list[int] | None = None,
    ) -> DataFrame:
        """Forbid the banned contacts and re-solve their customers.

        With ``moving`` the customer may choose any other allowed contact; otherwise it is
        restricted to its current contacts minus the banned ones, so no constraint's usage
        can grow. Either way every per-customer rule still holds.
        """
        n_cells = self.shape[1] * self.shape[2]
        if moving:
            new = bans.groupBy("customer_id").agg(F.collect_set("flat").alias("_new"))
            if full:
                # A moved contact may only go where capacity is left: the customer's slots in
                # full constraints are banned too, except those it keeps.
                current = solved.select(
                    "customer_id",
                    F.transform(
                        F.arrays_zip("months", "cells"), lambda c: c["months"] * n_cells + c["cells"]
                    ).alias("_current"),
                )
                new = new.join(current, "customer_id", "left").select(
                    "customer_id",
                    F.array_union(
                        "_new",
                        F.array_except(
                            F.array(*[F.lit(x) for x in full]),
                            F.coalesce("_current", F.array().cast("array<int>")),
                        ),
                    ).alias("_new"),
                )
            if "banned" not in frame.columns:
                frame = frame.withColumn("banned", F.array().cast("array<int>"))
            merged = (
                frame.join(new, "customer_id", "left")
                .withColumn(
                    "banned",
                    F.array_sort(
                        F.array_distinct(F.concat("banned", F.coalesce("_new", F.array().cast("array<int>"))))
                    ),
                )
                .drop("_new")
            )
            return merged.localCheckpoint()
        current = solved.select(
            "customer_id",
            F.transform(F.arrays_zip("months", "cells"), lambda c: c["months"] * n_cells + c["cells"]).alias(
                "_current"
            ),
        )
        new = bans.groupBy("customer_id").agg(F.collect_set("flat").alias("_banned"))
        # Every customer is restricted to its current contacts (minus the banned ones).
        restricted = current.join(new, "customer_id", "left").select(
            "customer_id",
            F.array_sort(F.array_except("_current", F.coalesce("_banned", F.array().cast("array<int>"))))
            .cast("array<int>")
            .alias("_allowed"),
        )
        if "allowed" not in frame.columns:
            frame = frame.withColumn("allowed", F.lit(None).cast("array<int>"))
        merged = (
            frame.join(restricted, "customer_id", "left")
            .withColumn("allowed", F.coalesce("_allowed", "allowed"))
            .drop("_allowed")
        )
        return merged.localCheckpoint()


BAN_BUCKETS = 64  # value quantiles: only the bucket where the excess is covered is sorted


def _lowest_covering_each(contributors: DataFrame, excesses: list[float]) -> DataFrame:
    """Per ``group`` (an index into ``excesses``), the lowest-value contributors whose
    coefficients first cover that group's excess (ties by a hash of customer and slot).

    A global sort of every contributor would run in one partition; instead each group's
    values are cut at approximate quantiles, the buckets wholly below the crossing one are
    taken as a whole, and only the crossing bucket is ordered. Three Spark jobs whatever the
    number of groups; two small aggregates (≤ 64 rows per group) reach the driver.
    """
    quantiles = [q / BAN_BUCKETS for q in range(1, BAN_BUCKETS)]
    cuts_by_group = {
        int(r["group"]): sorted(set(float(c) for c in r["q"] or []))
        for r in contributors.groupBy("group")
        .agg(F.percentile_approx("value", quantiles, 10_000).alias("q"))
        .collect()  # one row per group
    }
    groups = range(len(excesses))
    cuts = F.element_at(
        F.array(
            *[F.array(*[F.lit(c) for c in cuts_by_group.get(g, [])]).cast("array<double>") for g in groups]
        ),
        F.col("group") + 1,
    )
    tagged = contributors.withColumn("_bucket", F.size(F.filter(cuts, lambda c: F.col("value") > c)))
    sums: dict[int, list[tuple[int, float]]] = {}
    for r in tagged.groupBy("group", "_bucket").agg(F.sum("coef").alias("s")).collect():
        sums.setdefault(int(r["group"]), []).append((int(r["_bucket"]), float(r["s"])))
    crossing, covered = [], []
    for g in groups:
        done, edge = 0.0, BAN_BUCKETS + 1  # no crossing bucket: every contributor is taken
        for bucket, total in sorted(sums.get(g, [])):
            if done + total >= excesses[g]:
                edge = bucket
                break
            done += total
        crossing.append(edge)
        covered.append(done)

    def per_group(values: list) -> F.Column:
        return F.element_at(F.array(*[F.lit(v) for v in values]), F.col("group") + 1)

    order = Window.partitionBy("group").orderBy(F.col("value").asc(), F.xxhash64("customer_id", "flat"))
    edge_rows = (
        tagged.filter(F.col("_bucket") == per_group(crossing))
        .withColumn("_before", per_group(covered) + F.sum("coef").over(order) - F.col("coef"))
        .filter(F.col("_before") < per_group([float(e) for e in excesses]))
        .drop("_before")
    )
    below = tagged.filter(F.col("_bucket") < per_group(crossing))
    return below.unionByName(edge_rows).drop("_bucket")
