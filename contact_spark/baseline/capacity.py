"""The greedy's global passes over all customers: capacity and spread cuts and min fills.

* :func:`cut` – every max capacity in configuration order, in one global order
  (``_key``: propensity descending, then customer, month, campaign, channel), keeping a
  contact while the exact running sum of its period (month, quarter or horizon) stays
  within the max (:func:`running_sum`); a rolling window's max month by month, each month
  taking what every window holding it has left (:func:`_rolling_cut`); a ratio (max or
  min) keeps the contacts that each meet it; then each spread maximum, for at most
  ``SPREAD_ROUNDS`` rounds; last each share max, its ``of`` contacts in the global order
  within the room the rest of its scope leaves (``s · rest / (1 − s)``), for at most
  ``SHARE_ROUNDS`` rounds;
* :func:`shortfalls` – every min capacity, share minimum (the ``of`` contacts missing) and
  spread minimum the plan does not meet;
* :func:`fill` – the best allowed additions for all shortfalls at once (one per customer).

Only small aggregates (bucket totals, usage per month) reach the driver.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.config.capacity import CapacityRule
from contact_spark.config.models import AppConfig
from contact_spark.config.scope import Resolved, Scoped
from contact_spark.io.columns import case_when
from contact_spark.io.offers import contact_cost, offer_attribute

log = logging.getLogger(__name__)

DECIMAL = "decimal(38,12)"
SPREAD_ROUNDS = 3
SHARE_ROUNDS = 3
KEY_GRID = 32  # order-key buckets per unit of propensity
BUILTIN = ("cost", "expected_value", "propensity")
# A min to reach: cells in scope, the period's months (None: the whole horizon), the
# attribute summed (None: contacts counted) and the amount short.
Target = tuple[list[str], list[dt.date] | None, str | None, float]


class Materialized:
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
        """Drop every checkpoint kept so far."""
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


def _scope(rule: Scoped, config: AppConfig) -> Column:
    return _in(rule.resolve(config))


def _month_bound(rule: CapacityRule, months: list[dt.date], side: Literal["max", "min"]) -> Column:
    """The bound a contact of the row's month must keep on its own, from the periods holding
    the month: for ``max`` the least of their maxima (an exception's where one applies; for a
    rolling window, what an average's max, a bound per contact, has to meet), for ``min`` the
    greatest of their minima (a ratio's k). Null: no such bound."""
    pick = min if side == "max" else max
    periods = rule.periods(months)
    per_month: list[float | None] = []
    for t in range(len(months)):
        bounds = [getattr(p, side) for p in periods if t in p.months and getattr(p, side) is not None]
        per_month.append(pick(bounds) if bounds else None)
    if len(set(per_month)) == 1:
        return F.lit(per_month[0]).cast("double")
    return case_when(
        (F.col("month") == F.lit(m), F.lit(h).cast("double")) for m, h in zip(months, per_month, strict=True)
    )


def _attr(rule: Any) -> Column:
    if rule.measure == "contacts" or rule.column is None:  # a count (a share of contacts too)
        return F.lit(1)
    return F.coalesce(F.col(rule.column).cast("double"), F.lit(0.0))


def _in(names: Resolved) -> Column:
    return F.col("campaign").isin(list(names.campaigns)) & F.col("channel").isin(list(names.channels))


def _ratio_cut(scoped: DataFrame, rule: CapacityRule, months: list[dt.date]) -> DataFrame:
    """A ratio's contacts that each meet it on their own (``column ≤ k · per`` for a max,
    ``≥`` for a min): any set of them meets it, as the hand-made rule "only contacts that pay
    for themselves" does."""
    assert rule.per is not None  # config load
    column, per = _attr(rule), F.coalesce(F.col(rule.per).cast("double"), F.lit(0.0))
    high, low = _month_bound(rule, months, "max"), _month_bound(rule, months, "min")
    return scoped.filter((high.isNull() | (column <= high * per)) & (low.isNull() | (column >= low * per)))


def _share_rooms(plan: DataFrame, rule: CapacityRule, config: AppConfig, sense: str) -> list[Decimal | None]:
    """Per period of a share rule: the most (``max``) or least (``min``) its ``of`` part may
    hold given the rest of its scope in the plan: ``part ≤ s · (part + rest)`` is
    ``part ≤ s · rest / (1 − s)`` (rounded down to the 12 decimals of the sums). None: no
    bound, or a share of 1."""
    months = config.run.months()
    rest = plan.filter(_scope(rule, config) & ~_in(rule.numerator(config)))
    by_month = {
        r["month"]: Fraction(str(r["u"] or 0))
        for r in rest.groupBy("month").agg(F.sum(_attr(rule).cast(DECIMAL)).alias("u")).collect()
    }
    rooms: list[Decimal | None] = []
    for period in rule.periods(months):
        share = period.max if sense == "max" else period.min
        if share is None or share >= 1:
            rooms.append(None)
            continue
        s = Fraction(str(share))
        others = sum((by_month.get(months[t], Fraction(0)) for t in period.months), Fraction(0))
        room = s * others / (1 - s)
        exact = Decimal(room.numerator) / Decimal(room.denominator)
        rooms.append(exact.quantize(Decimal("1e-12"), rounding=ROUND_FLOOR))
    return rooms


def _share_cut(plan: DataFrame, rule: CapacityRule, config: AppConfig, keep: Materialized) -> DataFrame:
    """A share max: its ``of`` contacts kept in the global order while their running sum stays
    within the room the rest of the scope leaves (:func:`_share_rooms`); the rest is never
    cut for it (a contact outside ``of`` only lowers the share)."""
    months = config.run.months()
    part = _in(rule.numerator(config))
    scoped = plan.filter(part)
    rooms = _share_rooms(plan, rule, config, "max")
    if rule.period == "rolling":
        kept = _rolling_cut(scoped, rule, config, keep, rooms)
    else:
        periods = rule.periods(months)
        start = {months[t]: months[p.start] for p in periods for t in p.months}
        room = {months[p.start]: r for p, r in zip(periods, rooms, strict=True)}
        limits = scoped.sparkSession.createDataFrame(
            [(m, start[m], room[start[m]]) for m in months], f"month date, _start date, _room {DECIMAL}"
        )
        kept = (
            running_sum(scoped.join(F.broadcast(limits), "month"), ["_start"], _attr(rule))
            .filter(F.col("_room").isNull() | (F.col("_run") <= F.col("_room")))
            .select(*scoped.columns)
        )
    return keep(plan.filter(~part).unionByName(kept))


def _rolling_cut(
    scoped: DataFrame,
    rule: CapacityRule,
    config: AppConfig,
    keep: Materialized,
    bounds: list[Decimal | None] | None = None,
) -> DataFrame:
    """The contacts of a rolling-window max kept month by month: in month ``t`` the first
    contacts of the global order whose running sum stays within the room every window
    holding ``t`` has left after the months before it (so earlier months come first, and a
    contact left out for one window takes no room in the next). One small aggregate per
    month reaches the driver: the month's kept usage. ``bounds``: each window's max (a
    share's room), else the rule's."""
    months = config.run.months()
    periods = rule.periods(months)
    if bounds is None:
        bounds = [None if p.max is None else Decimal(str(p.max)) for p in periods]
    ranked = keep(running_sum(scoped, ["month"], _attr(rule)))
    # A count keeps the month's first ⌊room⌋ contacts: its usage follows from the month's size.
    sizes = (
        {
            r["month"]: Decimal(r["n"])
            for r in scoped.groupBy("month").count().withColumnRenamed("count", "n").collect()
        }
        if rule.column is None
        else None
    )
    used: list[Decimal] = []
    rooms: list[tuple[dt.date, Decimal | None]] = []
    for t, month in enumerate(months):
        limits = [
            bound - sum((used[s] for s in p.months if s < t), Decimal(0))
            for p, bound in zip(periods, bounds, strict=True)
            if t in p.months and bound is not None
        ]
        room = min(limits) if limits else None
        rooms.append((month, room))
        if sizes is not None:
            size = sizes.get(month, Decimal(0))
            used.append(
                size if room is None else max(Decimal(0), min(size, room.to_integral_value("ROUND_FLOOR")))
            )
            continue
        month_rows = ranked.filter(F.col("month") == F.lit(month))
        if room is not None:
            month_rows = month_rows.filter(F.col("_run") <= F.lit(room).cast(DECIMAL))
        usage = month_rows.agg(F.max("_run").alias("u")).first()
        used.append((usage["u"] if usage is not None else None) or Decimal(0))
    limit = scoped.sparkSession.createDataFrame(rooms, f"month date, _room {DECIMAL}")
    return (
        ranked.join(F.broadcast(limit), "month")
        .filter(F.col("_room").isNull() | (F.col("_run") <= F.col("_room")))
        .select(*scoped.columns)
    )


def cut(plan: DataFrame, config: AppConfig, keep: Materialized) -> DataFrame:
    """Every max capacity in config order, then the spread maximums (see module docstring)."""
    months = config.run.months()
    for rule in config.capacities.rules:
        if rule.measure == "ratio":  # its min too: each contact meets it on its own
            scope = _scope(rule, config)
            plan = keep(plan.filter(~scope).unionByName(_ratio_cut(plan.filter(scope), rule, months)))
            continue
        if rule.measure == "share" or all(p.max is None for p in rule.periods(months)):
            continue  # shares: last (below), once every other cut is done
        scope = _scope(rule, config)
        scoped = plan.filter(scope)
        high = _month_bound(rule, months, "max")
        if rule.measure == "average":
            kept = scoped.filter(high.isNull() | (_attr(rule) <= high))
        elif rule.period == "rolling":
            kept = _rolling_cut(scoped, rule, config, keep)
        else:  # one period per contact: its month, its calendar quarter or the whole horizon
            groups = {"month": ["month"], "quarter": ["_quarter"]}.get(rule.period, [])
            kept = (
                running_sum(scoped.withColumn("_quarter", F.trunc("month", "quarter")), groups, _attr(rule))
                .filter(high.isNull() | (F.col("_run") <= high.cast(DECIMAL)))
                .select(*scoped.columns)
            )
        plan = keep(plan.filter(~scope).unionByName(kept))
    horizon = config.run.horizon_months
    for spread in config.capacities.spread:
        scope = _scope(spread, config)
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
    # Share maxima last: a later cut of another rule could drop contacts of a share's rest
    # and break it. One share's cut can lower another's rest: repeated while one cuts.
    shares = [
        r
        for r in config.capacities.rules
        if r.measure == "share" and any(p.max is not None for p in r.periods(months))
    ]
    for _ in range(SHARE_ROUNDS if shares else 0):
        before = plan.count()
        for rule in shares:
            plan = _share_cut(plan, rule, config, keep)
        if plan.count() == before:
            break
    return plan


def attributes(rows: DataFrame, eligibility: DataFrame, customers: DataFrame, config: AppConfig) -> DataFrame:
    """Contact rows (customer_id, m, k) with month, campaign, channel and every capacity attribute."""
    n_h = len(config.channel_names)
    campaigns = F.array(*[F.lit(c) for c in config.campaign_names])
    channels = F.array(*[F.lit(h) for h in config.channel_names])
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
    out = out.withColumn("cost", contact_cost(config))
    named = {name for r in config.capacities.rules for name in (r.column, r.per) if name}
    custom = sorted(name for name in named if name not in BUILTIN)
    extra = [c for c in custom if config.offer_values(c) is None]
    for name in custom:
        if name not in extra:
            out = out.withColumn(name, offer_attribute(config, name))
    if extra:
        values = customers.groupBy("customer_id").agg(
            *[F.max(F.col(c).cast("double")).alias(c) for c in extra]
        )
        out = out.join(values, "customer_id", "left")
    return out


def _cells(rule: Scoped, config: AppConfig) -> list[str]:
    return [f"{c}/{h}" for c, h in rule.resolve(config).cells()]


def shortfalls(plan: DataFrame, config: AppConfig) -> list[Target]:
    """(cells, the period's months or None for the whole horizon, attribute or None for a
    count, amount short) of every min capacity and spread minimum the plan does not meet
    (usage per month: tiny aggregates)."""
    out: list[Target] = []
    months = config.run.months()
    for rule in config.capacities.rules:
        if rule.measure in ("average", "ratio") or all(p.min is None for p in rule.periods(months)):
            continue  # an average min is not a volume a greedy can add to (a ratio's: cut above)
        if rule.measure == "share":
            out += _share_shortfalls(plan, rule, config)
            continue
        cells = _cells(rule, config)
        column = None if rule.measure == "contacts" else rule.column
        used = plan.filter(_scope(rule, config))
        usage = {
            r["month"]: float(r["u"] or 0)
            for r in used.groupBy("month").agg(F.sum(_attr(rule)).alias("u")).collect()
        }
        for period in rule.periods(months):
            inside = [months[t] for t in period.months]
            need = (period.min or 0) - sum(usage.get(m, 0.0) for m in inside)
            if need > 1e-9:
                out.append((cells, None if period.month is None else inside, column, need))
    horizon = config.run.horizon_months
    for spread in config.capacities.spread:
        scope = _scope(spread, config)
        counts = {
            r["month"]: r["n"]
            for r in plan.filter(scope).groupBy("month").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        floor = (1 - Fraction(str(spread.tolerance))) * sum(counts.values()) / horizon
        for m in months:
            if counts.get(m, 0) < floor:
                out.append(
                    (
                        _cells(spread, config),
                        [m],
                        None,
                        float(math.ceil(floor - counts.get(m, 0))),
                    )
                )
    return out


def _share_shortfalls(plan: DataFrame, rule: CapacityRule, config: AppConfig) -> list[Target]:
    """A share min short in a period: its ``of`` part needs ``s · rest / (1 − s)``
    (:func:`_share_rooms`); the greedy adds ``of`` contacts (never drops the rest). A min
    share of 1 cannot be reached by adding."""
    months = config.run.months()
    part = rule.numerator(config)
    used = {
        r["month"]: float(r["u"] or 0)
        for r in plan.filter(_in(part)).groupBy("month").agg(F.sum(_attr(rule)).alias("u")).collect()
    }
    out: list[Target] = []
    cells = [f"{c}/{h}" for c, h in part.cells()]
    for period, room in zip(rule.periods(months), _share_rooms(plan, rule, config, "min"), strict=True):
        if room is None:
            continue
        inside = [months[t] for t in period.months]
        need = float(room) - sum(used.get(m, 0.0) for m in inside)
        if need > 1e-9:
            out.append((cells, None if period.month is None else inside, rule.column, need))
    return out


def fill(spark: SparkSession, allowed: DataFrame, targets: list[Target]) -> DataFrame:
    """The best allowed additions for every shortfall at once: per target, each customer's
    best addition in scope, then in propensity order until the target is met; a customer
    picked for several targets keeps the first (one addition per customer per round)."""
    specs = spark.createDataFrame(
        [(i, cells, inside, Decimal(str(need))) for i, (cells, inside, _, need) in enumerate(targets)],
        f"_target int, _cells array<string>, _months array<date>, _need {DECIMAL}",
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
            & (F.col("_months").isNull() | F.array_contains("_months", F.col("month")))
        )
        .drop("_cells", "_months")
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
