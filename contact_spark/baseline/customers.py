"""The greedy's per-customer passes: the customer frame and the numba rule checker over it.

Each customer is one row (eligible cells and past contacts, :func:`customer_frame`;
planned contacts added by :func:`with_plan`) and :func:`per_customer` runs the kernels of
:mod:`contact_spark.baseline.rules` on batches of them (``mapInPandas``): the first-pass
schedule, the re-check after the global cuts, or every contact one more could be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.baseline import rules as R
from contact_spark.baseline import schedule as S
from contact_spark.config.models import AppConfig
from contact_spark.io.months import month_index
from contact_spark.planning.frame import Layout

CONTACT_SCHEMA = "customer_id string, m int, k int"


def layout(config: AppConfig) -> Layout:
    """The planner's cell layout (``k = campaign_index * n_channels + channel_index``)."""
    return Layout(tuple(config.campaign_names), tuple(config.channel_names), config.run.horizon_months, 0)


def _cell(config: AppConfig) -> Column:
    n_h = len(config.channel_names)
    campaign = F.array_position(F.array(*[F.lit(c) for c in config.campaign_names]), F.col("campaign")) - 1
    channel = F.array_position(F.array(*[F.lit(h) for h in config.channel_names]), F.col("channel")) - 1
    return (campaign * n_h + channel).cast("int")


def _month_index(col: Column, config: AppConfig) -> Column:
    return month_index(config.run.first_month)(col)


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


def per_customer(frame: DataFrame, config: AppConfig, mode: str) -> DataFrame:
    """``greedy``: the first-pass schedule; ``recheck``: the planned contacts that still
    hold in month order; ``allowed``: every eligible contact one more could be."""
    rules = R.rule_arrays(config)
    n_k = len(config.campaign_names) * len(config.channel_names)
    rule_args = R.args(rules)
    # [T, K]: whether each cell's campaign runs that month (campaigns.<NAME>.flight).
    mask = config.flight_mask()
    horizon = config.run.horizon_months
    runs = (
        np.ones((horizon, n_k), dtype=np.bool_)
        if mask is None
        else np.asarray(mask, np.bool_).reshape(horizon, n_k)
    )

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
                    value_ok = np.zeros((horizon, n_k), dtype=np.bool_)
                    value_ok[:, ks[np.asarray(row.ev, dtype=np.float64) > 0]] = True
                    fill_ok = np.zeros((horizon, n_k), dtype=np.bool_)
                    fill_ok[:, ks] = True
                    value_ok &= runs
                    fill_ok &= runs
                    before = counts[rules.offset :].copy()
                    S.greedy_schedule(counts, order, value_ok, fill_ok, *rule_args)
                    t_idx, k_idx = np.nonzero(counts[rules.offset :] - before)
                elif mode == "recheck":
                    pm = np.asarray(row.pm if row.pm is not None else [], dtype=np.int64)
                    pk = np.asarray(row.pk if row.pk is not None else [], dtype=np.int64)
                    kept = S.keep_legal(counts, pm, pk, *rule_args)
                    t_idx, k_idx = pm[kept], pk[kept]
                else:
                    if row.pm is not None:
                        for m, k in zip(row.pm, row.pk, strict=True):
                            counts[rules.row(int(m)), int(k)] = 1
                    grid = R.blocking_grid(counts, ks, *rule_args)
                    i_idx, t_idx = np.nonzero((grid == 0) & runs[:, ks].T)
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
