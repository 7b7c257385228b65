"""The per-customer solver input as a Spark DataFrame: one row per customer, arrays per cell.

A *cell* is a (campaign, channel) pair in config order: ``cell = campaign_index * H +
channel_index`` – the kernel's flattened ``[C, H]`` axes. History is encoded sparsely
(index, count) so that a customer with no past contacts costs nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.columns import case_when
from contact_spark.io.months import month_index
from contact_spark.policy.compiler import CompiledPolicy, compile_policy

CUSTOMER_FRAME_COLUMNS = (
    "customer_id",
    "batch",
    "propensity",
    "eligible",
    "history_index",
    "history_count",
)


@dataclass(frozen=True)
class Layout:
    """Array layout shared by the Spark side and the kernel side."""

    campaigns: tuple[str, ...]
    channels: tuple[str, ...]
    horizon: int
    history_months: int

    @property
    def n_cells(self) -> int:
        return len(self.campaigns) * len(self.channels)

    def cell(self, campaign: str, channel: str) -> int:
        return self.campaigns.index(campaign) * len(self.channels) + self.channels.index(channel)


def history_depth(policy: CompiledPolicy, horizon: int) -> int:
    """Months of history any rule can reach back to from the plan's first month."""
    windows = [a.window for a in policy.window_atoms]
    windows += [a.window or horizon for a in policy.pair_atoms]
    return max([w - 1 for w in windows] + [0])


def layout_for(config: AppConfig) -> tuple[Layout, CompiledPolicy]:
    """The array layout and the compiled policy of a configuration."""
    policy = compile_policy(config.policy, config.campaign_names, config.channel_names)
    horizon = config.run.horizon_months
    layout = Layout(
        campaigns=tuple(config.campaign_names),
        channels=tuple(config.channel_names),
        horizon=horizon,
        history_months=history_depth(policy, horizon),
    )
    return layout, policy


def cell_column(layout: Layout) -> F.Column:
    """The cell index of a row's (campaign, channel); null for names outside the layout."""
    return case_when(
        (
            (F.col("campaign") == campaign) & (F.col("channel") == channel),
            F.lit(layout.cell(campaign, channel)),
        )
        for campaign in layout.campaigns
        for channel in layout.channels
    )


def customer_frame(
    eligibility: DataFrame,
    contact_history: DataFrame,
    layout: Layout,
    first_month: dt.date,
    batches: int,
) -> DataFrame:
    """One row per customer with its propensity/eligibility arrays and sparse history.

    ``eligibility`` has one row per customer × campaign × channel (``eligible``,
    ``propensity``). Customers with no eligible cell are left out: their plan is empty
    and their reasons are already in the eligibility table.
    """
    cells = eligibility.withColumn("cell", cell_column(layout)).filter(F.col("cell").isNotNull())
    per_customer = (
        cells.groupBy("customer_id")
        .agg(
            F.max(F.col("eligible").cast("int")).alias("_any"),
            # Only eligible cells carry their propensity: a cell made ineligible by a bad value
            # (INVALID_PROPENSITY: NaN, > 1) must not make the kernel reject the whole customer.
            F.collect_list(
                F.struct(
                    "cell",
                    F.when(F.col("eligible"), F.coalesce("propensity", F.lit(0.0))).otherwise(0.0).alias("p"),
                    F.col("eligible").alias("e"),
                )
            ).alias("_cells"),
        )
        .filter(F.col("_any") == 1)
    )
    n = layout.n_cells
    # Dense arrays in cell order, built from the (cell, value) structs.
    positions = F.sequence(F.lit(0), F.lit(n - 1))
    sorted_cells = F.array_sort(F.col("_cells"))
    propensity = F.transform(
        positions,
        lambda k: F.coalesce(
            F.element_at(F.filter(sorted_cells, lambda s: s["cell"] == k), 1)["p"], F.lit(0.0)
        ),
    )
    eligible = F.transform(
        positions,
        lambda k: F.coalesce(
            F.element_at(F.filter(sorted_cells, lambda s: s["cell"] == k), 1)["e"], F.lit(False)
        ),
    )
    frame = per_customer.select(
        "customer_id",
        propensity.alias("propensity"),
        eligible.alias("eligible"),
    )
    history = _sparse_history(contact_history, layout, first_month)
    frame = frame.join(history, "customer_id", "left").select(
        "customer_id",
        batch_of(F.col("customer_id"), batches).alias("batch"),
        "propensity",
        "eligible",
        F.coalesce("history_index", F.array().cast("array<int>")).alias("history_index"),
        F.coalesce("history_count", F.array().cast("array<int>")).alias("history_count"),
    )
    return frame


def batch_of(customer_id: Column, batches: int) -> Column:
    """The customer's batch: the partition ``repartition(batches, "customer_id")`` puts it in.

    Spark's hash partitioning is ``pmod(hash(key), n)``; hashing the batch number itself
    again would put several batches in one partition and none in others (4 batches on 4
    partitions: measured 47k, 20k, 0 and 0 customers), so one task would do most of each
    price iteration.
    """
    return F.pmod(F.hash(customer_id), F.lit(batches)).cast("int")


def _sparse_history(contact_history: DataFrame, layout: Layout, first_month: dt.date) -> DataFrame:
    """Past contacts per customer as (flat index, count); index = (age - 1) * cells + cell."""
    if layout.history_months == 0:
        return (
            contact_history.select("customer_id")
            .limit(0)
            .select(
                "customer_id",
                F.array().cast("array<int>").alias("history_index"),
                F.array().cast("array<int>").alias("history_count"),
            )
        )
    age = -month_index(first_month)(F.col("contact_date"))  # 1: the month before the plan
    recent = (
        contact_history.withColumn("cell", cell_column(layout))
        .withColumn("age", age)
        .filter(F.col("cell").isNotNull() & F.col("age").between(1, layout.history_months))
        .groupBy("customer_id", "age", "cell")
        .agg(F.count(F.lit(1)).cast("int").alias("count"))
        .withColumn("index", ((F.col("age") - 1) * layout.n_cells + F.col("cell")).cast("int"))
    )
    return (
        recent.groupBy("customer_id")
        .agg(F.array_sort(F.collect_list(F.struct("index", "count"))).alias("_h"))
        .select(
            "customer_id",
            F.col("_h.index").alias("history_index"),
            F.col("_h.count").alias("history_count"),
        )
    )
