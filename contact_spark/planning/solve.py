"""Solve every customer's schedule in Spark: one kernel call per Arrow batch of customers.

The UDF is a thin factory: it captures the static arrays (values, costs, seasonality,
prices) in a closure; the kernel itself is plain NumPy (``contact_spark.solver``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.planning.frame import Layout
from contact_spark.policy.compiler import CompiledPolicy

SOLVED_SCHEMA = (
    "customer_id string, status int, solver int, objective double, "
    "months array<int>, cells array<int>, values array<double>"
)

STATUS_REASONS = {
    1: "INVALID_PROPENSITY",
    2: "INVALID_HISTORY",
    3: "INVALID_UNIT_COST",
    4: "INVALID_STATIC_INPUT",
    5: "INFEASIBLE_POLICY",
    6: "SOLVER_FAILURE",
}


@dataclass(frozen=True)
class StaticInputs:
    """Arrays shared by every customer: value per campaign, cost per channel, seasonality."""

    success_value: np.ndarray
    channel_cost: np.ndarray
    seasonality: np.ndarray

    @classmethod
    def from_config(cls, config: AppConfig) -> StaticInputs:
        horizon = config.run.horizon_months
        return cls(
            success_value=np.array([c.success_value for c in config.campaigns.values()], dtype=np.float64),
            channel_cost=np.array([c.cost for c in config.channels.values()], dtype=np.float64),
            seasonality=np.asarray(config.seasonality or [1.0] * horizon, dtype=np.float64),
        )


def contact_values(
    x: np.ndarray, propensity: np.ndarray, static: StaticInputs
) -> np.ndarray:
    """``[N, T, C, H]`` expected value of each chosen contact (prices excluded).

    Channels of one campaign sharing a month succeed with the union probability; that
    joint value is split over them in proportion to their propensities, so the values of
    a customer's contacts add up to the value of the plan.
    """
    p = propensity[:, None, :, :]  # [N, 1, C, H]
    chosen_p = np.where(x, p, 0.0)
    hit = 1.0 - np.prod(np.where(x, 1.0 - p, 1.0), axis=-1, keepdims=True)  # [N, T, C, 1]
    total = chosen_p.sum(axis=-1, keepdims=True)
    share = np.divide(chosen_p, total, out=np.zeros_like(chosen_p), where=total > 0)
    value = hit * share * static.success_value[None, None, :, None] - static.channel_cost
    value = value * static.seasonality[None, :, None, None]
    return np.where(x, value, 0.0)


def batch_from_pandas(
    pdf: pd.DataFrame, layout: Layout, static: StaticInputs, price: np.ndarray
) -> object:
    """Build the kernel's batch from a pandas chunk of the customer frame."""
    from contact_spark.solver.problem import KernelBatch

    n = len(pdf)
    n_c, n_h = len(layout.campaigns), len(layout.channels)
    propensity = np.stack(pdf["propensity"].to_numpy()).astype(np.float64).reshape(n, n_c, n_h) if n else np.zeros((0, n_c, n_h))
    eligible = np.stack(pdf["eligible"].to_numpy()).astype(bool).reshape(n, n_c, n_h) if n else np.zeros((0, n_c, n_h), bool)
    history = np.zeros((n, layout.history_months * layout.n_cells), dtype=np.int64)
    for row, (index, count) in enumerate(zip(pdf["history_index"], pdf["history_count"], strict=True)):
        if len(index):
            history[row, np.asarray(index, dtype=np.int64)] = np.asarray(count, dtype=np.int64)
    return KernelBatch(
        propensity=propensity,
        eligible=eligible,
        history=history.reshape(n, layout.history_months, n_c, n_h),
        success_value=static.success_value,
        channel_cost=static.channel_cost,
        horizon=layout.horizon,
        seasonality=static.seasonality,
        price=price,
    )


def make_batch_solver(
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    price: np.ndarray,
    method: str = "auto",
):  # noqa: ANN201 - returns a mapInPandas function
    """A ``mapInPandas`` function solving each Arrow batch of customers with the kernel."""

    def solve_batches(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from contact_spark.solver.kernel import solve

        for pdf in chunks:
            if pdf.empty:
                continue
            batch = batch_from_pandas(pdf, layout, static, price)
            result = solve(policy, batch, method=method)  # type: ignore[arg-type]
            x = np.asarray(result.x, dtype=bool)
            values = contact_values(x, batch.clean_propensity(), static)
            n, n_t = x.shape[0], x.shape[1]
            flat = x.reshape(n, n_t, -1)
            months_out, cells_out, values_out = [], [], []
            flat_values = values.reshape(n, n_t, -1)
            for i in range(n):
                t_idx, k_idx = np.nonzero(flat[i])
                months_out.append(t_idx.astype(np.int32))
                cells_out.append(k_idx.astype(np.int32))
                values_out.append(flat_values[i, t_idx, k_idx].astype(np.float64))
            yield pd.DataFrame(
                {
                    "customer_id": pdf["customer_id"].to_numpy(),
                    "status": np.asarray(result.status, dtype=np.int32),
                    "solver": np.asarray(result.solver, dtype=np.int32),
                    "objective": np.asarray(result.objective, dtype=np.float64),
                    "months": months_out,
                    "cells": cells_out,
                    "values": values_out,
                }
            )

    return solve_batches


def solve_customers(
    frame: DataFrame,
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    price: np.ndarray | None = None,
    method: str = "auto",
) -> DataFrame:
    """Solve every customer of ``frame`` (see :func:`customer_frame`) against ``price``."""
    if price is None:
        price = np.zeros((layout.horizon, len(layout.campaigns), len(layout.channels)))
    solver = make_batch_solver(policy, layout, static, np.asarray(price, dtype=np.float64), method)
    return frame.mapInPandas(solver, SOLVED_SCHEMA)


def plan_rows(solved: DataFrame, eligibility: DataFrame, layout: Layout, months: list, run_id: str) -> DataFrame:
    """The ``plan`` table rows: one per chosen contact, with the contact to use."""
    cell_campaign = F.array(*[F.lit(c) for c in layout.campaigns for _ in layout.channels])
    cell_channel = F.array(*[F.lit(h) for _ in layout.campaigns for h in layout.channels])
    month_dates = F.array(*[F.lit(m) for m in months])
    exploded = solved.filter(F.col("status") == 0).select(
        "customer_id",
        F.explode(F.arrays_zip("months", "cells", "values")).alias("c"),
    )
    rows = exploded.select(
        "customer_id",
        F.element_at(month_dates, F.col("c.months") + 1).alias("month"),
        F.element_at(cell_campaign, F.col("c.cells") + 1).alias("campaign"),
        F.element_at(cell_channel, F.col("c.cells") + 1).alias("channel"),
        F.col("c.values").alias("expected_value"),
    )
    contacts = eligibility.select("customer_id", "campaign", "channel", "contact")
    return rows.join(contacts, ["customer_id", "campaign", "channel"], "left").select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "month",
        "campaign",
        "channel",
        "contact",
        "expected_value",
    )


def quarantine_rows(solved: DataFrame, run_id: str) -> DataFrame:
    """Customers the kernel could not plan, each with a reason code."""
    reason = F.element_at(
        F.create_map(*[x for code, name in STATUS_REASONS.items() for x in (F.lit(code), F.lit(name))]),
        F.col("status"),
    )
    return solved.filter(F.col("status") != 0).select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        F.coalesce(reason, F.lit("UNKNOWN_STATUS")).alias("reason_code"),
    )
