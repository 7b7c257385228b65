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


def contact_values(x: np.ndarray, propensity: np.ndarray, static: StaticInputs) -> np.ndarray:
    """``[N, T, C, H]`` expected value of each chosen contact (prices excluded).

    Channels of one campaign sharing a month succeed with the union probability; that
    joint value is split over them in proportion to their propensities, so the values of
    a customer's contacts add up to the value of the plan.
    """
    p = propensity if propensity.ndim == 4 else propensity[:, None, :, :]  # [N, T|1, C, H]
    chosen_p = np.where(x, p, 0.0)
    hit = 1.0 - np.prod(np.where(x, 1.0 - p, 1.0), axis=-1, keepdims=True)  # [N, T, C, 1]
    total = chosen_p.sum(axis=-1, keepdims=True)
    share = np.divide(chosen_p, total, out=np.zeros_like(chosen_p), where=total > 0)
    value = hit * share * static.success_value[None, None, :, None] - static.channel_cost
    value = value * static.seasonality[None, :, None, None]
    return np.where(x, value, 0.0)


def batch_from_pandas(pdf: pd.DataFrame, layout: Layout, static: StaticInputs, price: np.ndarray) -> object:
    """Build the kernel's batch from a pandas chunk of the customer frame."""
    from contact_spark.solver.problem import KernelBatch

    n = len(pdf)
    n_c, n_h = len(layout.campaigns), len(layout.channels)
    propensity = (
        np.stack(pdf["propensity"].to_numpy()).astype(np.float64).reshape(n, n_c, n_h)
        if n
        else np.zeros((0, n_c, n_h))
    )
    eligible = (
        np.stack(pdf["eligible"].to_numpy()).astype(bool).reshape(n, n_c, n_h)
        if n
        else np.zeros((0, n_c, n_h), bool)
    )
    n_t = layout.horizon
    if "month_eligible" in pdf.columns and pdf["month_eligible"].notna().any():
        # Month-dependent eligibility (triggers): a null row means "every month".
        by_month = np.broadcast_to(eligible[:, None], (n, n_t, n_c, n_h)).copy()
        for row, mask in enumerate(pdf["month_eligible"]):
            if mask is not None:
                by_month[row] &= np.asarray(mask, dtype=bool).reshape(n_t, n_c, n_h)
        eligible = by_month
    if "month_propensity" in pdf.columns and pdf["month_propensity"].notna().any():
        by_month_p = np.broadcast_to(propensity[:, None], (n, n_t, n_c, n_h)).copy()
        for row, values in enumerate(pdf["month_propensity"]):
            if values is not None:
                by_month_p[row] = np.asarray(values, dtype=np.float64).reshape(n_t, n_c, n_h)
        propensity = by_month_p
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


def solved_schema(attributes: list[str]) -> str:
    """Schema of the solver output, with one aligned array per capacity attribute."""
    return SOLVED_SCHEMA + "".join(f", a_{name} array<double>" for name in attributes)


def make_batch_solver(
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    price: np.ndarray,
    attr_price: dict[str, np.ndarray] | None = None,
    attributes: list[str] | None = None,
    method: str = "auto",
    perturbation: float | np.ndarray = 0.0,
    summarise: bool = False,
):
    """A ``mapInPandas`` function solving each Arrow batch of customers with the kernel.

    It yields one row per customer (:func:`solved_schema`), or with ``summarise`` only the
    batch's usage totals (:func:`summary_schema`): what a price iteration needs, without
    sending every schedule back to the JVM to be exploded and aggregated there.

    ``price[T, C, H]`` is charged per contact; ``attr_price[name][T, C, H]`` multiplies the
    customer's attribute ``attr_<name>`` (custom capacities). A frame column ``banned``
    (flat ``t * cells + cell`` indices) forbids contacts for that customer, and a column
    ``allowed`` (same encoding, when not null) restricts it to those contacts (repair step).
    ``perturbation`` > 0 charges each contact a deterministic pseudo-random amount in
    ``[0, perturbation)`` so that customers tied between months spread over them; an array
    ``[T, C, H]`` gives each slot its own width (0: the slot is solved exactly).
    """
    attributes = list(attributes or [])
    attr_price = dict(attr_price or {})
    perturbed = bool(np.any(np.asarray(perturbation) > 0))

    def solve_batches(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from dataclasses import replace

        from contact_spark.solver.kernel import solve

        n_t, n_c, n_h = layout.horizon, len(layout.campaigns), len(layout.channels)
        for pdf in chunks:
            if pdf.empty:
                continue
            batch = batch_from_pandas(pdf, layout, static, price)
            n = len(pdf)
            attr_values = {
                name: np.stack(pdf[f"attr_{name}"].to_numpy()).astype(np.float64).reshape(n, n_c, n_h)
                for name in attributes
            }
            if attr_price or perturbed:
                unit_cost = np.zeros((n, n_t, n_c, n_h))
                for name, multiplier in attr_price.items():
                    unit_cost += multiplier[None] * np.nan_to_num(attr_values[name])[:, None]
                if perturbed:
                    # A scalar or a [T, C, H] width broadcasts over the customers.
                    widths = np.asarray(perturbation, dtype=np.float64)
                    unit_cost += widths * tie_breaker(pdf["customer_id"], n_t * n_c * n_h).reshape(
                        n, n_t, n_c, n_h
                    )
                batch = replace(batch, unit_cost=unit_cost)
            if "banned" in pdf.columns or "allowed" in pdf.columns:
                eligible = np.broadcast_to(batch.eligible, (n, n_t, n_c, n_h)).copy()
                flat = eligible.reshape(n, -1)
                for row, banned in enumerate(pdf["banned"] if "banned" in pdf.columns else []):
                    if banned is not None and len(banned):
                        flat[row, np.asarray(banned, dtype=np.int64)] = False
                for row, allowed in enumerate(pdf["allowed"] if "allowed" in pdf.columns else []):
                    if allowed is not None:
                        keep = np.zeros(flat.shape[1], dtype=bool)
                        keep[np.asarray(allowed, dtype=np.int64)] = True
                        flat[row] &= keep
                batch = replace(batch, eligible=flat.reshape(n, n_t, n_c, n_h))
            result = solve(policy, batch, method=method)  # type: ignore[arg-type]
            x = np.asarray(result.x, dtype=bool)
            values = contact_values(x, batch.clean_propensity(), static).reshape(n, n_t, -1)
            flat_x = x.reshape(n, n_t, -1)
            if summarise:
                yield usage_summary(result, flat_x, values, attr_values, attributes)
                continue
            columns: dict[str, list[np.ndarray]] = {"months": [], "cells": [], "values": []}
            for name in attributes:
                columns[f"a_{name}"] = []
            for i in range(n):
                t_idx, k_idx = np.nonzero(flat_x[i])
                columns["months"].append(t_idx.astype(np.int32))
                columns["cells"].append(k_idx.astype(np.int32))
                columns["values"].append(values[i, t_idx, k_idx])
                for name in attributes:
                    columns[f"a_{name}"].append(attr_values[name].reshape(n, -1)[i, k_idx])
            yield pd.DataFrame(
                {
                    "customer_id": pdf["customer_id"].to_numpy(),
                    "status": np.asarray(result.status, dtype=np.int32),
                    "solver": np.asarray(result.solver, dtype=np.int32),
                    "objective": np.asarray(result.objective, dtype=np.float64),
                    **columns,
                }
            )

    return solve_batches


def summary_schema(attributes: list[str]) -> str:
    """Schema of a summarised solve: per (month ``t``, cell ``k``) the contacts chosen and
    their attribute sums; the row ``t = k = −1`` holds Σ objective, Σ value and the
    number of customers the kernel could not solve (``bad``)."""
    return "t int, k int, n long, obj double, val double, bad long" + "".join(
        f", s_{name} double" for name in attributes
    )


def usage_summary(
    result: object,
    flat_x: np.ndarray,
    values: np.ndarray,
    attr_values: dict[str, np.ndarray],
    attributes: list[str],
) -> pd.DataFrame:
    """One batch's totals in :func:`summary_schema` (solved customers only)."""
    ok = np.asarray(result.status) == 0  # type: ignore[attr-defined]
    n, _, n_k = flat_x.shape
    chosen = flat_x & ok[:, None, None]
    counts = chosen.sum(axis=0)  # [T, K]
    t_idx, k_idx = np.nonzero(counts)
    frame: dict[str, np.ndarray] = {
        "t": np.concatenate([[-1], t_idx]).astype(np.int32),
        "k": np.concatenate([[-1], k_idx]).astype(np.int32),
        "n": np.concatenate([[0], counts[t_idx, k_idx]]).astype(np.int64),
        "obj": np.concatenate([[float(np.asarray(result.objective)[ok].sum())], np.zeros(len(t_idx))]),  # type: ignore[attr-defined]
        "val": np.concatenate([[float(values[ok].sum())], np.zeros(len(t_idx))]),
        "bad": np.concatenate([[int((~ok).sum())], np.zeros(len(t_idx))]).astype(np.int64),
    }
    for name in attributes:
        per_cell = attr_values[name].reshape(n, 1, n_k)  # a customer's attribute, every month
        sums = np.where(chosen, per_cell, 0.0).sum(axis=0)
        frame[f"s_{name}"] = np.concatenate([[np.nan], sums[t_idx, k_idx]])
    return pd.DataFrame(frame)


def tie_breaker(customer_ids: pd.Series, width: int) -> np.ndarray:
    """``[N, width]`` deterministic pseudo-random numbers in [0, 1) per customer and slot."""
    import zlib

    seeds = np.array([zlib.crc32(str(c).encode()) for c in customer_ids], dtype=np.uint64)
    slots = np.arange(1, width + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = seeds[:, None] * np.uint64(6364136223846793005) + slots[None, :] * np.uint64(
            1442695040888963407
        )
        mixed ^= mixed >> np.uint64(29)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(32)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def solve_customers(
    frame: DataFrame,
    policy: CompiledPolicy,
    layout: Layout,
    static: StaticInputs,
    price: np.ndarray | None = None,
    method: str = "auto",
    attr_price: dict[str, np.ndarray] | None = None,
    attributes: list[str] | None = None,
    perturbation: float | np.ndarray = 0.0,
    summarise: bool = False,
) -> DataFrame:
    """Solve every customer of ``frame`` (see :func:`customer_frame`) against the prices;
    with ``summarise`` only each batch's usage totals (:func:`summary_schema`)."""
    if price is None:
        price = np.zeros((layout.horizon, len(layout.campaigns), len(layout.channels)))
    attributes = list(attributes or [])
    solver = make_batch_solver(
        policy,
        layout,
        static,
        np.asarray(price, dtype=np.float64),
        attr_price,
        attributes,
        method,
        perturbation,
        summarise,
    )
    schema = summary_schema(attributes) if summarise else solved_schema(attributes)
    return frame.mapInPandas(solver, schema)


def plan_rows(
    solved: DataFrame, eligibility: DataFrame, layout: Layout, months: list, run_id: str
) -> DataFrame:
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
