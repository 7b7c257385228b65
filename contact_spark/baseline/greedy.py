"""The greedy baseline: the hand-made planning script a CRM team runs today.

1. **Per customer** (``mapInPandas`` over batches of customers, the numba checker of
   :mod:`contact_spark.baseline.rules`): month by month, the eligible candidates with a
   positive expected value in descending propensity are added while every max and pair
   rule of the policy holds (windows reach back over the contact history). Then every
   ``min_offers`` window still short gets the best allowed eligible contact (any value).
2. **Max capacities**, in configuration order, in one global order (propensity
   descending, then customer, month, campaign, channel): a contact is kept while the
   running count or sum of its period (month, quarter or year; exceptions included) stays
   within the max; a rolling window's max is taken month by month, each month keeping what
   every window holding it has left. Running sums are exact decimals computed without a single-partition window:
   the order is cut into contiguous buckets, each bucket's total goes to the driver
   (buckets × months numbers), and a window per (month, bucket) adds its offset. An
   ``average`` max keeps the contacts whose attribute is within the bound, a ``ratio`` (max
   or min) the contacts that each meet it; last, each ``share`` max keeps its ``of``
   contacts in that order within the room the rest of its scope leaves.
3. **Spread max**: each month is cut to ``(1 + tolerance) ×`` the monthly average, repeated
   (the average falls as months are cut) for at most ``SPREAD_ROUNDS`` rounds.
4. **Second pass** per customer: a contact whose ``only_after`` predecessor was cut is dropped.
5. **Min capacities and spread minimums**: in up to ``FILL_ROUNDS`` rounds, each period
   short of a min gets the best allowed additions (one per customer per round, so
   every per-customer rule still holds), in propensity order until the min is met; the
   max capacities are then applied again with the existing contacts first.

The plan rows are produced by the planner's own :func:`~contact_spark.planning.solve.plan_rows`
(expected value = the candidate's expected value × the month's seasonality × the campaign's
``monthly_value``); no step plans a contact outside its campaign's flight. Nobody executes
the baseline, so its rows name the contact by its key (``contact_id``), never by the raw
phone or address; the validator checks it against ``best_contacts`` by that key.

Steps 1 and 4 (and the "allowed" pass behind step 5) are the per-customer passes of
:mod:`contact_spark.baseline.customers`; steps 2, 3 and 5 the global passes of
:mod:`contact_spark.baseline.capacity`; this module chains them.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.baseline.capacity import Materialized, attributes, cut, fill, shortfalls
from contact_spark.baseline.customers import customer_frame, layout, per_customer, with_plan
from contact_spark.config.models import AppConfig
from contact_spark.io.run_inputs import read_history, read_pinned
from contact_spark.io.runs import refuse_raw_contact_column
from contact_spark.planning.solve import plan_rows

BASELINE_TABLE = "baseline_plan"
FILL_ROUNDS = 3


def greedy_plan(
    spark: SparkSession,
    config: AppConfig,
    eligibility: DataFrame,
    contact_history: DataFrame,
    customers: DataFrame,
    run_id: str,
) -> DataFrame:
    """The greedy plan, in the ``plan`` table's columns but ``contact_id`` for ``contact``."""
    keep = Materialized()
    frame = keep(customer_frame(eligibility, contact_history, config))
    eligibility = keep(
        eligibility.select("customer_id", "campaign", "channel", "propensity", "expected_value", "contact_id")
    )

    def attributed(rows: DataFrame, new: int) -> DataFrame:
        out = attributes(rows, eligibility, customers, config).withColumn("_new", F.lit(new))
        # Existing contacts first, then by propensity: a later cut never removes an earlier contact.
        return out.withColumn("_key", F.col("_new") * 2.0 + 1.0 - F.coalesce("propensity", F.lit(0.0)))

    plan = keep(attributed(per_customer(frame, config, "greedy"), 0))
    plan = cut(plan, config, keep)
    plan = keep(
        plan.join(
            per_customer(with_plan(frame, plan), config, "recheck"), ["customer_id", "m", "k"], "left_semi"
        )
    )
    for fill_round in range(1, FILL_ROUNDS + 1):
        targets = shortfalls(plan, config)
        if not targets:
            break
        allowed = keep(
            attributed(
                per_customer(with_plan(frame, plan), config, "allowed"),
                fill_round,
            )
        )
        chosen = keep(fill(spark, allowed, targets))
        if chosen.limit(1).count() == 0:
            break
        plan = cut(keep(plan.unionByName(chosen)), config, keep)
    # The month's weight of each cell: seasonality × the campaign's monthly_value, [T × K] flat.
    n_h = len(config.channel_names)
    n_k = len(config.campaign_names) * n_h
    seasonality = F.array(
        *[F.lit(float(w)) for month in config.value_factors() for w in month for _ in range(n_h)]
    )
    solved = plan.groupBy("customer_id").agg(
        F.array_sort(
            F.collect_list(
                F.struct(
                    "m",
                    "k",
                    (
                        F.coalesce("expected_value", F.lit(0.0))
                        * F.element_at(seasonality, F.col("m") * n_k + F.col("k") + 1)
                    ).alias("v"),
                )
            )
        ).alias("_s")
    )
    solved = solved.select(
        "customer_id",
        F.lit(0).alias("status"),
        F.col("_s.m").alias("months"),
        F.col("_s.k").alias("cells"),
        F.col("_s.v").alias("values"),
    )
    out = plan_rows(solved, eligibility, layout(config), config.run.months(), run_id)
    out = keep(out)
    keep.frames.remove(out)
    keep.release()
    return out


def run_baseline_stage(spark: SparkSession, store: Any, config: AppConfig, run_id: str) -> dict[str, str]:
    """Write the greedy plan to ``baseline_plan`` (replacing the run's rows)."""
    refuse_raw_contact_column(store, BASELINE_TABLE)
    plan = greedy_plan(
        spark,
        config,
        store.read_run("eligibility", run_id),
        read_history(store, run_id, config.campaign_names, config.channel_names),
        read_pinned(store, "customers", run_id),
        run_id,
    )
    store.replace_run(plan, BASELINE_TABLE, run_id)
    plan.unpersist()
    return {BASELINE_TABLE: store.location(BASELINE_TABLE)}
