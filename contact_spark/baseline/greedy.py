"""The greedy baseline: the hand-made planning script a CRM team runs today.

1. **Per customer** (``mapInPandas`` over batches of customers, the numba checker of
   :mod:`contact_spark.baseline.rules`): month by month, the eligible candidates with a
   positive expected value in descending propensity are added while every max and pair
   rule of the policy holds (windows reach back over the contact history). Then every
   ``min_offers`` window still short gets the best allowed eligible contact (any value).
2. **Max capacities**, in configuration order, in one global order (propensity
   descending, then customer, month, campaign, channel): a contact is kept while the
   running count or sum of its month (or year) stays within the max (month exceptions
   included). Running sums are exact decimals computed without a single-partition window:
   the order is cut into contiguous buckets, each bucket's total goes to the driver
   (buckets × months numbers), and a window per (month, bucket) adds its offset. An
   ``average`` max keeps the contacts whose attribute is within the bound.
3. **Spread max**: each month is cut to ``(1 + tolerance) ×`` the monthly average, repeated
   (the average falls as months are cut) for at most ``SPREAD_ROUNDS`` rounds.
4. **Second pass** per customer: a contact whose ``only_after`` predecessor was cut is dropped.
5. **Min capacities and spread minimums**: in up to ``FILL_ROUNDS`` rounds, each month (or
   year) short of a min gets the best allowed additions (one per customer per round, so
   every per-customer rule still holds), in propensity order until the min is met; the
   max capacities are then applied again with the existing contacts first.

The plan rows are produced by the planner's own :func:`~contact_spark.planning.solve.plan_rows`
(expected value = the candidate's expected value × the month's seasonality).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.baseline import rules as R
from contact_spark.config.models import AppConfig
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import plan_rows

log = logging.getLogger(__name__)

BASELINE_TABLE = "baseline_plan"
CONTACT_SCHEMA = "customer_id string, m int, k int"
DECIMAL = "decimal(38,12)"
SPREAD_ROUNDS = 3
FILL_ROUNDS = 3
KEY_GRID = 32  # order-key buckets per unit of propensity
BUILTIN = ("cost", "expected_value", "propensity")


# ------------------------------------------------------------------ per customer
def _layout(config: AppConfig) -> Layout:
    return Layout(tuple(config.campaign_names), tuple(config.channel_names), config.run.horizon_months, 0)


def _cell(config: AppConfig) -> Column:
    n_h = len(config.channel_names)
    campaign = F.array_position(F.array(*[F.lit(c) for c in config.campaign_names]), F.col("campaign")) - 1
    channel = F.array_position(F.array(*[F.lit(h) for h in config.channel_names]), F.col("channel")) - 1
    return (campaign * n_h + channel).cast("int")


def _month_index(col: Column, config: AppConfig) -> Column:
    first = F.lit(config.run.first_month).cast("date")
    return F.months_between(F.trunc(col.cast("date"), "month"), first).cast("int")


def customer_frame(eligibility: DataFrame, history: DataFrame, config: AppConfig) -> DataFrame:
    """One row per customer with an eligible candidate: eligible cells (``k``, ``p``, ``ev``)
    and past contacts (``hm``, ``hk``, ``hn``)."""
    cands = (
        eligibility.filter(F.col("eligible") & F.col("campaign").isin(config.campaign_names))
        .filter(F.col("channel").isin(config.channel_names))
        .select("customer_id", _cell(config).alias("k"), "propensity", "expected_value")
        .groupBy("customer_id")
        .agg(
            F.array_sort(
                F.collect_list(
                    F.struct(
                        "k",
                        F.coalesce(F.col("propensity").cast("double"), F.lit(0.0)).alias("p"),
                        F.coalesce(F.col("expected_value").cast("double"), F.lit(0.0)).alias("ev"),
                    )
                )
            ).alias("_c")
        )
        .select("customer_id", F.col("_c.k").alias("k"), F.col("_c.p").alias("p"), F.col("_c.ev").alias("ev"))
    )
    past = (
        history.filter(
            F.col("campaign").isin(config.campaign_names) & F.col("channel").isin(config.channel_names)
        )
        .select(
            "customer_id", _month_index(F.col("contact_date"), config).alias("m"), _cell(config).alias("k")
        )
        .filter(F.col("m") < 0)
        .join(cands.select("customer_id"), "customer_id", "left_semi")
        .groupBy("customer_id", "m", "k")
        .agg(F.count(F.lit(1)).cast("int").alias("n"))
        .groupBy("customer_id")
        .agg(F.collect_list(F.struct("m", "k", "n")).alias("_h"))
        .select(
            "customer_id", F.col("_h.m").alias("hm"), F.col("_h.k").alias("hk"), F.col("_h.n").alias("hn")
        )
    )
    return cands.join(past, "customer_id", "left")


def with_plan(frame: DataFrame, plan: DataFrame) -> DataFrame:
    """The customer frame plus each customer's planned contacts (``pm``, ``pk``), in month
    order and, within a month, by descending ``propensity``."""
    planned = (
        plan.groupBy("customer_id")
        .agg(
            F.array_sort(
                F.collect_list(F.struct("m", (F.lit(0) - F.col("propensity")).alias("q"), "k"))
            ).alias("_p")
        )
        .select("customer_id", F.col("_p.m").alias("pm"), F.col("_p.k").alias("pk"))
    )
    return frame.join(planned, "customer_id", "left")


def _counts(row: Any, rules: R.RuleArrays, n_k: int) -> np.ndarray:
    counts = np.zeros((rules.rows, n_k), dtype=np.int64)
    if row.hm is not None:
        for m, k, n in zip(row.hm, row.hk, row.hn, strict=True):
            counts[rules.row(int(m)), int(k)] += int(n)
    return counts


def _per_customer(frame: DataFrame, config: AppConfig, mode: str) -> DataFrame:
    """``greedy``: the first-pass schedule; ``recheck``: the planned contacts that still
    hold in month order; ``allowed``: every eligible contact one more could be."""
    rules = R.rule_arrays(config)
    n_k = len(config.campaign_names) * len(config.channel_names)
    rule_args = R.args(rules)

    def run(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in chunks:
            ids: list[str] = []
            months: list[int] = []
            cells: list[int] = []
            for row in pdf.itertuples(index=False):
                counts = _counts(row, rules, n_k)
                ks = np.asarray(row.k, dtype=np.int64)
                p = np.asarray(row.p, dtype=np.float64)
                order = ks[np.lexsort((ks, -p))]
                if mode == "greedy":
                    value_ok = np.zeros(n_k, dtype=np.bool_)
                    value_ok[ks[np.asarray(row.ev, dtype=np.float64) > 0]] = True
                    fill_ok = np.zeros(n_k, dtype=np.bool_)
                    fill_ok[ks] = True
                    before = counts[rules.offset :].copy()
                    R.greedy_schedule(counts, order, value_ok, fill_ok, *rule_args)
                    t_idx, k_idx = np.nonzero(counts[rules.offset :] - before)
                elif mode == "recheck":
                    pm = np.asarray(row.pm if row.pm is not None else [], dtype=np.int64)
                    pk = np.asarray(row.pk if row.pk is not None else [], dtype=np.int64)
                    kept = R.keep_legal(counts, pm, pk, *rule_args)
                    t_idx, k_idx = pm[kept], pk[kept]
                else:
                    if row.pm is not None:
                        for m, k in zip(row.pm, row.pk, strict=True):
                            counts[rules.row(int(m)), int(k)] = 1
                    grid = R.blocking_grid(counts, ks, *rule_args)
                    i_idx, t_idx = np.nonzero(grid == 0)
                    k_idx = ks[i_idx]
                ids += [row.customer_id] * len(t_idx)
                months += [int(t) for t in t_idx]
                cells += [int(k) for k in k_idx]
            yield pd.DataFrame(
                {
                    "customer_id": pd.Series(ids, dtype=object),
                    "m": pd.Series(months, dtype="int32"),
                    "k": pd.Series(cells, dtype="int32"),
                }
            )

    return frame.mapInPandas(run, CONTACT_SCHEMA)


# ------------------------------------------------------------------- capacities
class _Materialized:
    """Checkpointed intermediate plans (each step reads the previous one several times)."""

    def __init__(self) -> None:
        self.frames: list[DataFrame] = []

    def __call__(self, df: DataFrame) -> DataFrame:
        start = time.perf_counter()
        # A local checkpoint, not a cache: it also cuts the lineage, whose plan would
        # otherwise grow with every step.
        df = df.localCheckpoint(eager=True)
        rows = df.count()
        self.frames.append(df)
        log.debug("greedy step %d: %d rows in %.1fs", len(self.frames), rows, time.perf_counter() - start)
        return df

    def release(self) -> None:
        for df in self.frames:
            df.unpersist()
        self.frames.clear()


def running_sum(df: DataFrame, groups: list[str], value: Column) -> DataFrame:
    """``_run``: exact running sum of ``value`` per ``groups`` in the order
    (``_key``, hash of the customer id, customer_id, m, k), with ``_v`` the row's own value.

    No single-partition window: each row gets a bucket that is a monotone function of the
    order's first two keys (a grid of ``_key`` by 1/32, then 16 slices of the id hash), so
    a bucket is a contiguous stretch of the order; the bucket totals (at most groups ×
    buckets numbers, no customer row) go to the driver for each bucket's offset, and a
    window per (group, bucket) adds the rows before it in its bucket.
    """
    spark = df.sparkSession
    slice_ = F.floor(F.xxhash64("customer_id") / F.lit(2.0**60)) + 8  # 0 … 15, monotone in the hash
    bucket = F.floor(F.col("_key") * KEY_GRID) * 16 + slice_
    keyed = df.withColumn("_b", bucket.cast("long")).withColumn("_v", value.cast(DECIMAL))
    totals = keyed.groupBy(*groups, "_b").agg(F.sum("_v").alias("_t")).collect()
    offsets: list[tuple[Any, ...]] = []
    running: dict[tuple[Any, ...], Decimal] = {}
    for r in sorted(totals, key=lambda r: (tuple(str(r[g]) for g in groups), r["_b"])):
        group = tuple(r[g] for g in groups)
        before = running.get(group, Decimal(0))
        offsets.append((*group, r["_b"], before))
        running[group] = before + (r["_t"] or Decimal(0))
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    schema = ", ".join([*(f"{g} {types[g]}" for g in groups), "_b long", f"_off {DECIMAL}"])
    window = (
        Window.partitionBy(*groups, "_b")
        .orderBy("_key", F.xxhash64("customer_id"), "customer_id", "m", "k")
        .rowsBetween(Window.unboundedPreceding, 0)
    )
    return (
        keyed.withColumn("_run", F.sum("_v").over(window))
        .join(F.broadcast(spark.createDataFrame(offsets, schema)), [*groups, "_b"])
        .withColumn("_run", (F.col("_run") + F.col("_off")).cast(DECIMAL))
        .drop("_off", "_b")
    )


def _scope(campaigns: Any, channels: Any, config: AppConfig) -> Column:
    cs = config.campaign_names if campaigns == "any" else list(campaigns)
    hs = config.channel_names if channels == "any" else list(channels)
    return F.col("campaign").isin(cs) & F.col("channel").isin(hs)


def _bound(rule: Any, side: str) -> Column:
    """The rule's min or max for the row's month (month exceptions replace it)."""
    bound = F.lit(getattr(rule, side)).cast("double")
    for e in rule.exceptions:
        if getattr(e, side) is not None:
            bound = F.when(
                F.col("month") == F.lit(e.month), F.lit(getattr(e, side)).cast("double")
            ).otherwise(bound)
    return bound


def _attr(rule: Any) -> Column:
    if rule.measure == "contacts":
        return F.lit(1)
    return F.coalesce(F.col(rule.column).cast("double"), F.lit(0.0))


def _cut(plan: DataFrame, config: AppConfig, keep: _Materialized) -> DataFrame:
    """Every max capacity in config order, then the spread maximums (see module docstring)."""
    for rule in config.capacities.rules:
        if rule.max is None and not any(e.max is not None for e in rule.exceptions):
            continue
        scope = _scope(rule.campaigns, rule.channels, config)
        bound = _bound(rule, "max")
        scoped = plan.filter(scope)
        if rule.measure == "average":
            kept = scoped.filter(bound.isNull() | (_attr(rule) <= bound))
        else:
            groups = ["month"] if rule.period == "month" else []
            kept = (
                running_sum(scoped, groups, _attr(rule))
                .filter(bound.isNull() | (F.col("_run") <= bound.cast(DECIMAL)))
                .drop("_run", "_v")
            )
        plan = keep(plan.filter(~scope).unionByName(kept))
    horizon = config.run.horizon_months
    for spread in config.capacities.spread:
        scope = _scope(spread.campaigns, spread.channels, config)
        tolerance = Fraction(str(spread.tolerance))
        for _ in range(SPREAD_ROUNDS):
            counts = {
                r["month"]: r["n"]
                for r in plan.filter(scope).groupBy("month").count().withColumnRenamed("count", "n").collect()
            }
            cap = math.floor((1 + tolerance) * sum(counts.values()) / horizon)
            if all(n <= cap for n in counts.values()):
                break
            scoped = running_sum(plan.filter(scope), ["month"], F.lit(1))
            plan = keep(
                plan.filter(~scope).unionByName(scoped.filter(F.col("_run") <= cap).drop("_run", "_v"))
            )
    return plan


def _attributes(
    rows: DataFrame, eligibility: DataFrame, customers: DataFrame, config: AppConfig
) -> DataFrame:
    """Contact rows (customer_id, m, k) with month, campaign, channel and every capacity attribute."""
    n_h = len(config.channel_names)
    campaigns = F.array(*[F.lit(c) for c in config.campaign_names])
    channels = F.array(*[F.lit(h) for h in config.channel_names])
    costs = F.create_map(
        *[x for h in config.channel_names for x in (F.lit(h), F.lit(config.channels[h].cost))]
    )
    out = rows.select(
        "customer_id",
        "m",
        "k",
        F.add_months(F.lit(config.run.first_month).cast("date"), F.col("m")).alias("month"),
        F.element_at(campaigns, F.floor(F.col("k") / n_h).cast("int") + 1).alias("campaign"),
        F.element_at(channels, (F.col("k") % n_h) + 1).alias("channel"),
    )
    cand = eligibility.groupBy("customer_id", "campaign", "channel").agg(
        F.max(F.col("propensity").cast("double")).alias("propensity"),
        F.max(F.col("expected_value").cast("double")).alias("expected_value"),
    )
    out = out.join(cand, ["customer_id", "campaign", "channel"], "left")
    out = out.withColumn("cost", F.element_at(costs, F.col("channel")).cast("double"))
    extra = sorted({r.column for r in config.capacities.rules if r.column and r.column not in BUILTIN})
    if extra:
        values = customers.groupBy("customer_id").agg(
            *[F.max(F.col(c).cast("double")).alias(c) for c in extra]
        )
        out = out.join(values, "customer_id", "left")
    return out


def _cells(campaigns: Any, channels: Any, config: AppConfig) -> list[str]:
    cs = config.campaign_names if campaigns == "any" else list(campaigns)
    hs = config.channel_names if channels == "any" else list(channels)
    return [f"{c}/{h}" for c in cs for h in hs]


def _shortfalls(plan: DataFrame, config: AppConfig) -> list[tuple[list[str], Any, str | None, float]]:
    """(cells, month or None, attribute or None for a count, amount short) of every min
    capacity and spread minimum the plan does not meet (usage per month: tiny aggregates)."""
    out: list[tuple[list[str], Any, str | None, float]] = []
    months = config.run.months()
    for rule in config.capacities.rules:
        if rule.measure == "average" or (
            rule.min is None and not any(e.min is not None for e in rule.exceptions)
        ):
            continue  # an average min is not a volume a greedy can add to
        cells = _cells(rule.campaigns, rule.channels, config)
        column = None if rule.measure == "contacts" else rule.column
        used = plan.filter(_scope(rule.campaigns, rule.channels, config))
        usage = {
            r["month"]: float(r["u"] or 0)
            for r in used.groupBy("month").agg(F.sum(_attr(rule)).alias("u")).collect()
        }
        if rule.period == "month":
            bounds = {e.month: e.min for e in rule.exceptions if e.min is not None}
            for m in months:
                need = (bounds.get(m, rule.min) or 0) - usage.get(m, 0.0)
                if need > 1e-9:
                    out.append((cells, m, column, need))
        elif (rule.min or 0) - sum(usage.values()) > 1e-9:
            out.append((cells, None, column, (rule.min or 0) - sum(usage.values())))
    horizon = config.run.horizon_months
    for spread in config.capacities.spread:
        scope = _scope(spread.campaigns, spread.channels, config)
        counts = {
            r["month"]: r["n"]
            for r in plan.filter(scope).groupBy("month").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        floor = (1 - Fraction(str(spread.tolerance))) * sum(counts.values()) / horizon
        for m in months:
            if counts.get(m, 0) < floor:
                out.append(
                    (
                        _cells(spread.campaigns, spread.channels, config),
                        m,
                        None,
                        float(math.ceil(floor - counts.get(m, 0))),
                    )
                )
    return out


def _fill(
    spark: SparkSession, allowed: DataFrame, targets: list[tuple[list[str], Any, str | None, float]]
) -> DataFrame:
    """The best allowed additions for every shortfall at once: per target, each customer's
    best addition in scope, then in propensity order until the target is met; a customer
    picked for several targets keeps the first (one addition per customer per round)."""
    specs = spark.createDataFrame(
        [(i, cells, month, Decimal(str(need))) for i, (cells, month, _, need) in enumerate(targets)],
        f"_target int, _cells array<string>, _month date, _need {DECIMAL}",
    )
    value = F.lit(1).cast("double")
    for i, (_, _, column, _) in enumerate(targets):
        if column is not None:
            value = F.when(
                F.col("_target") == i, F.coalesce(F.col(column).cast("double"), F.lit(0.0))
            ).otherwise(value)
    tagged = (
        allowed.crossJoin(F.broadcast(specs))
        .filter(
            F.array_contains("_cells", F.concat("campaign", F.lit("/"), "channel"))
            & (F.col("_month").isNull() | (F.col("month") == F.col("_month")))
        )
        .drop("_cells", "_month")
    )
    best = (
        tagged.groupBy("customer_id", "_target")
        # The lexicographic min of (order key, month, cell, …): deterministic on ties.
        .agg(
            F.min(
                F.struct("_key", "m", "k", *[c for c in tagged.columns if c not in ("_key", "m", "k")])
            ).alias("s")
        )
        .select("s.*")
    )
    picked = running_sum(best, ["_target"], value).filter(F.col("_run") - F.col("_v") < F.col("_need"))
    return (
        picked.groupBy("customer_id")
        .agg(F.min(F.struct("_target", *allowed.columns)).alias("s"))
        .select(*[F.col(f"s.{c}").alias(c) for c in allowed.columns])
    )


def greedy_plan(
    spark: SparkSession,
    config: AppConfig,
    eligibility: DataFrame,
    contact_history: DataFrame,
    customers: DataFrame,
    run_id: str,
) -> DataFrame:
    """The greedy plan, in the ``plan`` table's columns."""
    keep = _Materialized()
    frame = keep(customer_frame(eligibility, contact_history, config))
    eligibility = keep(
        eligibility.select("customer_id", "campaign", "channel", "propensity", "expected_value", "contact")
    )

    def attributed(rows: DataFrame, new: int) -> DataFrame:
        out = _attributes(rows, eligibility, customers, config).withColumn("_new", F.lit(new))
        # Existing contacts first, then by propensity: a later cut never removes an earlier contact.
        return out.withColumn("_key", F.col("_new") * 2.0 + 1.0 - F.coalesce("propensity", F.lit(0.0)))

    plan = keep(attributed(_per_customer(frame, config, "greedy"), 0))
    plan = _cut(plan, config, keep)
    plan = keep(
        plan.join(
            _per_customer(with_plan(frame, plan), config, "recheck"), ["customer_id", "m", "k"], "left_semi"
        )
    )
    for fill_round in range(1, FILL_ROUNDS + 1):
        targets = _shortfalls(plan, config)
        if not targets:
            break
        allowed = keep(
            attributed(
                _per_customer(with_plan(frame, plan), config, "allowed"),
                fill_round,
            )
        )
        chosen = keep(_fill(spark, allowed, targets))
        if chosen.limit(1).count() == 0:
            break
        plan = _cut(keep(plan.unionByName(chosen)), config, keep)
    seasonality = F.array(
        *[F.lit(float(s)) for s in (config.seasonality or [1.0] * config.run.horizon_months)]
    )
    solved = plan.groupBy("customer_id").agg(
        F.array_sort(
            F.collect_list(
                F.struct(
                    "m",
                    "k",
                    (
                        F.coalesce("expected_value", F.lit(0.0)) * F.element_at(seasonality, F.col("m") + 1)
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
    out = plan_rows(solved, eligibility, _layout(config), config.run.months(), run_id)
    out = keep(out)
    keep.frames.remove(out)
    keep.release()
    return out


def run_baseline_stage(spark: SparkSession, store: Any, config: AppConfig, run_id: str) -> dict[str, str]:
    """Write the greedy plan to ``baseline_plan`` (replacing the run's rows)."""
    plan = greedy_plan(
        spark,
        config,
        store.read_run("eligibility", run_id),
        store.read("contact_history"),
        store.read("customers"),
        run_id,
    )
    store.replace_run(plan, BASELINE_TABLE, run_id)
    plan.unpersist()
    return {BASELINE_TABLE: store.location(BASELINE_TABLE)}
