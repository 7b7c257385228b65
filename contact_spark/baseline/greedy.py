"""The greedy baseline: the rule-based planning most companies run today.

1. **Per customer** (a grouped pandas UDF, one call per customer, nothing on the driver):
   month by month, candidate contacts in descending propensity are added while every
   maximum rule of the policy still holds — rolling windows counted over the contact
   history too, ``never_together``, ``never_followed_by`` and ``only_after``. Only eligible
   candidates with a positive expected value are considered. ``min_offers`` is not
   pursued (a greedy has no way to plan for it).
2. **Capacities**, in the configured order, in one deterministic global order (propensity
   descending, then customer, month, campaign, channel): window functions over the scope
   (partitioned by month for monthly rules) keep a contact while the running count or sum
   stays within the max (month exceptions included). An ``average`` max keeps only the
   contacts whose attribute is within the bound. Min capacities and spread rules are not
   enforced.
3. **Second pass** per customer over the kept contacts: a contact that relied on an
   ``only_after`` predecessor cut by a capacity is dropped (dropping never breaks a max).

The rule checker here is written for the greedy and shares nothing with the solver or the
validator, so the validator checking the greedy plan is a genuine cross-check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig

BASELINE_TABLE = "baseline_plan"
OUTPUT_SCHEMA = "customer_id string, m int, campaign string, channel string"


@dataclass(frozen=True)
class _Rule:
    """A policy rule with its scopes resolved to sets of (campaign, channel)."""

    name: str
    type: str
    window: int | None
    limit: int | None
    per_campaign: bool
    per_channel: bool
    cells: frozenset[tuple[str, str]]
    a: frozenset[tuple[str, str]]
    b: frozenset[tuple[str, str]]


def _resolve(campaigns: Any, channels: Any, config: AppConfig) -> frozenset[tuple[str, str]]:
    cs = config.campaign_names if campaigns == "any" else list(campaigns)
    hs = config.channel_names if channels == "any" else list(channels)
    return frozenset((c, h) for c in cs for h in hs)


def _rules(config: AppConfig) -> list[_Rule]:
    out = []
    for r in config.policy.rules:
        scoped = r.type in ("max_offers", "min_offers", "max_packages")
        empty: frozenset[tuple[str, str]] = frozenset()
        out.append(
            _Rule(
                name=r.name,
                type=r.type,
                window=r.window_months,
                limit=getattr(r, "limit", None),
                per_campaign=r.per_campaign,
                per_channel=r.per_channel,
                cells=_resolve(r.campaigns, r.channels, config) if scoped else empty,  # type: ignore[union-attr]
                a=empty if scoped else _resolve(r.a.campaigns, r.a.channels, config),  # type: ignore[union-attr]
                b=empty if scoped else _resolve(r.b.campaigns, r.b.channels, config),  # type: ignore[union-attr]
            )
        )
    return out


Contact = tuple[int, str, str]  # (month index, campaign, channel)


def _same_copy(rule: _Rule, x: Contact, y: Contact) -> bool:
    return (not rule.per_campaign or x[1] == y[1]) and (not rule.per_channel or x[2] == y[2])


def allowed(contacts: dict[Contact, int], x: Contact, rules: Iterable[_Rule], horizon: int) -> bool:
    """Whether adding ``x`` keeps every max/pair rule (``contacts`` holds history and plan)."""
    t, campaign, channel = x
    cell = (campaign, channel)
    for rule in rules:
        if rule.type in ("max_offers", "max_packages"):
            if cell not in rule.cells:
                continue
            w = rule.window or 1
            near = [
                (y, n)
                for y, n in contacts.items()
                if t - w < y[0] < t + w and (y[1], y[2]) in rule.cells and _same_copy(rule, x, y)
            ]
            for end in range(t, min(t + w, horizon)):
                inside = [(y, n) for y, n in near if end - w < y[0] <= end]
                if rule.type == "max_offers":
                    total = 1 + sum(n for _, n in inside)
                else:
                    total = len({(y[0], y[2]) for y, _ in inside} | {(t, channel)})
                if total > (rule.limit or 0):
                    return False
        elif rule.type == "never_together":
            w = rule.window or 1
            for y in contacts:
                if y == x or abs(y[0] - t) >= w or not _same_copy(rule, x, y):
                    continue
                ycell = (y[1], y[2])
                if (cell in rule.a and ycell in rule.b) or (cell in rule.b and ycell in rule.a):
                    return False
        elif rule.type == "never_followed_by":
            w = rule.window or 1
            if cell in rule.b and any(
                1 <= t - y[0] <= w and (y[1], y[2]) in rule.a and _same_copy(rule, x, y) for y in contacts
            ):
                return False
        elif rule.type == "only_after":
            if cell in rule.b and not any(
                y[0] < t
                and (rule.window is None or t - y[0] <= rule.window)
                and (y[1], y[2]) in rule.a
                and _same_copy(rule, x, y)
                for y in contacts
            ):
                return False
    return True


def greedy_customer(
    candidates: list[tuple[int | None, str, str, float]],
    history: dict[Contact, int],
    rules: list[_Rule],
    horizon: int,
) -> list[Contact]:
    """Month by month, the candidates in descending propensity while the rules allow.

    ``candidates`` are ``(month or None for every month, campaign, channel, propensity)``.
    """
    contacts = dict(history)
    chosen = []
    ordered = sorted(candidates, key=lambda c: (-c[3], c[1], c[2]))
    for t in range(horizon):
        for month, campaign, channel, _ in ordered:
            if month is not None and month != t:
                continue
            x = (t, campaign, channel)
            if x not in contacts and allowed(contacts, x, rules, horizon):
                contacts[x] = 1
                chosen.append(x)
    return chosen


def _per_customer(config: AppConfig, rows: DataFrame) -> DataFrame:
    """Rows ``customer_id, kind ('cand'|'hist'), m, campaign, channel, propensity, n`` → contacts."""
    rules = [r for r in _rules(config) if r.type != "min_offers"]
    horizon = config.run.horizon_months

    def solve(pdf: pd.DataFrame) -> pd.DataFrame:
        cid = pdf["customer_id"].iloc[0]
        hist = pdf[pdf["kind"] == "hist"]
        history = {
            (int(m), c, h): int(n)
            for m, c, h, n in zip(hist["m"], hist["campaign"], hist["channel"], hist["n"], strict=True)
        }
        cand = pdf[pdf["kind"] == "cand"]
        candidates = [
            (None if pd.isna(m) else int(m), c, h, float(p))
            for m, c, h, p in zip(
                cand["m"], cand["campaign"], cand["channel"], cand["propensity"], strict=True
            )
        ]
        chosen = greedy_customer(candidates, history, rules, horizon)
        return pd.DataFrame(
            {
                "customer_id": pd.Series([cid] * len(chosen), dtype=object),
                "m": pd.Series([x[0] for x in chosen], dtype="int32"),
                "campaign": pd.Series([x[1] for x in chosen], dtype=object),
                "channel": pd.Series([x[2] for x in chosen], dtype=object),
            }
        )

    return rows.groupBy("customer_id").applyInPandas(solve, OUTPUT_SCHEMA)


def _month_index(col: Column, config: AppConfig) -> Column:
    first = F.lit(config.run.first_month).cast("date")
    return F.months_between(F.trunc(col.cast("date"), "month"), first).cast("int")


def _history_rows(history: DataFrame, customers: DataFrame, config: AppConfig) -> DataFrame:
    return (
        history.select(
            "customer_id", _month_index(F.col("contact_date"), config).alias("m"), "campaign", "channel"
        )
        .filter(F.col("m") < 0)
        .join(customers, "customer_id", "left_semi")
        .groupBy("customer_id", "m", "campaign", "channel")
        .agg(F.count(F.lit(1)).cast("int").alias("n"))
        .select(
            "customer_id",
            F.lit("hist").alias("kind"),
            "m",
            "campaign",
            "channel",
            F.lit(None).cast("double").alias("propensity"),
            "n",
        )
    )


def _capacity_cut(plan: DataFrame, config: AppConfig) -> DataFrame:
    """Keep contacts in global propensity order while each max capacity allows."""
    order = [F.desc("propensity"), "customer_id", "month", "campaign", "channel"]
    for rule in config.capacities.rules:
        if rule.max is None and not any(e.max is not None for e in rule.exceptions):
            continue
        campaigns = config.campaign_names if rule.campaigns == "any" else list(rule.campaigns)
        channels = config.channel_names if rule.channels == "any" else list(rule.channels)
        in_scope = F.col("campaign").isin(campaigns) & F.col("channel").isin(channels)
        bound = F.lit(rule.max).cast("double")
        for e in rule.exceptions:
            if e.max is not None:
                bound = F.when(F.col("month") == F.lit(e.month), F.lit(e.max).cast("double")).otherwise(bound)
        attr = (
            F.lit(1.0)
            if rule.measure == "contacts"
            else F.coalesce(F.col(rule.column).cast("double"), F.lit(0.0))
        )
        scoped = plan.filter(in_scope)
        if rule.measure == "average":
            kept = scoped.filter(bound.isNull() | (attr <= bound))
        else:
            window = (
                Window.partitionBy("month") if rule.period == "month" else Window.partitionBy()
            ).orderBy(*order)
            # Exact decimals: the running sum must never exceed the bound through float rounding.
            running = F.sum(attr.cast("decimal(38,12)")).over(
                window.rowsBetween(Window.unboundedPreceding, 0)
            )
            kept = scoped.withColumn("_run", running).filter(
                bound.isNull() | (F.col("_run") <= bound.cast("decimal(38,12)"))
            )
            kept = kept.drop("_run")
        plan = plan.filter(~in_scope).unionByName(kept)
    return plan


def greedy_plan(
    spark: SparkSession,
    config: AppConfig,
    eligibility: DataFrame,
    contact_history: DataFrame,
    customers: DataFrame,
    run_id: str,
) -> DataFrame:
    """The greedy plan, in the ``plan`` table's columns plus ``propensity``."""
    cands = eligibility.filter(
        F.col("eligible") & (F.col("expected_value") > 0) & F.col("campaign").isin(config.campaign_names)
    ).select("customer_id", "campaign", "channel", "propensity", "expected_value", "contact")
    planned_customers = cands.select("customer_id").distinct()
    history = _history_rows(contact_history, planned_customers, config)
    first_pass = _per_customer(
        config,
        cands.select(
            "customer_id",
            F.lit("cand").alias("kind"),
            F.lit(None).cast("int").alias("m"),
            "campaign",
            "channel",
            "propensity",
            F.lit(1).alias("n"),
        ).unionByName(history),
    )
    months = F.add_months(F.lit(config.run.first_month).cast("date"), F.col("m"))
    rows = first_pass.withColumn("month", months).join(cands, ["customer_id", "campaign", "channel"])
    extra = sorted(
        {
            r.column
            for r in config.capacities.rules
            if r.column and r.column not in ("cost", "expected_value", "propensity")
        }
    )
    if extra:
        rows = rows.join(
            customers.groupBy("customer_id").agg(*[F.max(F.col(c).cast("double")).alias(c) for c in extra]),
            "customer_id",
            "left",
        )
    costs = F.create_map(
        *[x for c in config.channel_names for x in (F.lit(c), F.lit(config.channels[c].cost))]
    )
    rows = rows.withColumn("cost", F.element_at(costs, F.col("channel")))
    kept = _capacity_cut(rows, config)
    second_pass = _per_customer(
        config,
        kept.select(
            "customer_id",
            F.lit("cand").alias("kind"),
            "m",
            "campaign",
            "channel",
            "propensity",
            F.lit(1).alias("n"),
        ).unionByName(history),
    )
    final = second_pass.join(kept.drop("m"), ["customer_id", "campaign", "channel"]).filter(
        F.col("month") == F.add_months(F.lit(config.run.first_month).cast("date"), F.col("m"))
    )
    return final.select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "month",
        "campaign",
        "channel",
        "contact",
        "expected_value",
        "propensity",
    )


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
    return {BASELINE_TABLE: store.location(BASELINE_TABLE)}
