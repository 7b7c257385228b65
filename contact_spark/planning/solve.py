"""Solve every customer's schedule in Spark: one kernel call per Arrow batch of customers.

The UDF is a thin factory: it captures the static arrays (values, costs, seasonality,
prices) in a closure; the kernel itself is plain NumPy (``contact_spark.solver``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.planning.frame import Layout
from contact_spark.policy.compiler import CompiledPolicy

if TYPE_CHECKING:
    # Imported where used: the solver's numba kernels must not load before a job has made
    # the wheel's modules importable (``deploy.enable_wheel_imports``).
    from contact_spark.solver.kernel import Method
    from contact_spark.solver.problem import KernelBatch, KernelResult

SOLVED_SCHEMA = (
    "customer_id string, status int, solver int, objective double, upper_bound double, "
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
    """Arrays shared by every customer: value per campaign, cost per campaign × channel
    (``channel_cost[C, H]``: the campaign's ``channel_costs``, else the channel's cost; all 0
    under ``objective: value``, where cost counts only in capacities), seasonality ``[T]``,
    or ``[T, C]`` when a campaign has a ``monthly_value``, and ``flight[T, C, H]``: the cells
    each month whose campaign runs (None: every campaign always runs). The flight is one
    static mask ANDed into every customer's eligibility, not a column of the frame."""

    success_value: np.ndarray
    channel_cost: np.ndarray
    seasonality: np.ndarray
    flight: np.ndarray | None = None

    @classmethod
    def from_config(cls, config: AppConfig) -> StaticInputs:
        horizon = config.run.horizon_months
        mask = config.flight_mask()
        if any(c.monthly_value for c in config.campaigns.values()):
            seasonality = np.asarray(config.value_factors(), dtype=np.float64)
        else:  # [T]: the arrays of configs without monthly values stay as they were
            seasonality = np.asarray(config.seasonality or [1.0] * horizon, dtype=np.float64)
        return cls(
            success_value=np.array([c.success_value for c in config.campaigns.values()], dtype=np.float64),
            channel_cost=np.array(config.objective_cost_matrix(), dtype=np.float64).reshape(
                len(config.campaigns), len(config.channels)
            ),
            seasonality=seasonality,
            flight=None if mask is None else np.asarray(mask, dtype=bool),
        )

    def season_by_campaign(self) -> np.ndarray:
        """``[T, C]`` value weight of each campaign each month."""
        if self.seasonality.ndim == 2:
            return self.seasonality
        return np.broadcast_to(self.seasonality[:, None], (len(self.seasonality), len(self.success_value)))


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
    value = value * static.season_by_campaign()[None, :, :, None]
    return np.where(x, value, 0.0)


def _dense_lists(column: pa.Array, width: int, dtype: type, name: str) -> np.ndarray:
    """``[N, width]`` from a list column whose rows all hold ``width`` elements."""
    n = len(column)
    if n == 0:
        return np.zeros((0, width), dtype=dtype)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if column.null_count or not (lengths == width).all():
        raise ValueError(f"customer frame column {name!r}: every row must hold {width} values")
    values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    return values.astype(dtype, copy=False).reshape(n, width)


def _sparse_lists(column: pa.Array, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(row, value) of every element of a list column: its rows flattened, nulls skipped."""
    rows = pc.list_parent_indices(column).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    flat = pc.list_flatten(column)
    if pa.types.is_null(flat.type):  # only empty lists: pyarrow could not infer a type
        return rows, np.zeros(0, dtype=dtype)
    return rows, flat.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _overlay_rows(column: pa.Array, width: int, dtype: type, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose (nullable) dense list is set, and those rows' ``[n, width]`` values."""
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    return rows, _dense_lists(column.filter(pa.array(valid)), width, dtype, name)


def _list_array(offsets: pa.Array, items: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """One list per customer: ``items`` cut at ``offsets`` (NaN becomes null)."""
    return pa.ListArray.from_arrays(offsets, pa.array(items, type=arrow_type, from_pandas=True))


def batch_from_arrow(
    record: pa.RecordBatch | pa.Table, layout: Layout, static: StaticInputs, price: np.ndarray
) -> KernelBatch:
    """Build the kernel's batch from an Arrow batch of the customer frame (no per-row Python)."""
    from contact_spark.solver.problem import KernelBatch

    n = record.num_rows
    n_t, n_c, n_h, n_k = layout.horizon, len(layout.campaigns), len(layout.channels), layout.n_cells
    names = record.schema.names
    propensity = _dense_lists(record.column("propensity"), n_k, np.float64, "propensity").reshape(n, n_c, n_h)
    eligible = _dense_lists(record.column("eligible"), n_k, bool, "eligible").reshape(n, n_c, n_h)
    if "month_eligible" in names and record.column("month_eligible").null_count < n:
        # Month-dependent eligibility (triggers): a null row means "every month".
        rows, masks = _overlay_rows(record.column("month_eligible"), n_t * n_k, bool, "month_eligible")
        by_month = np.broadcast_to(eligible[:, None], (n, n_t, n_c, n_h)).copy()
        by_month[rows] &= masks.reshape(-1, n_t, n_c, n_h)
        eligible = by_month
    if "month_propensity" in names and record.column("month_propensity").null_count < n:
        rows, values = _overlay_rows(
            record.column("month_propensity"), n_t * n_k, np.float64, "month_propensity"
        )
        by_month_p = np.broadcast_to(propensity[:, None], (n, n_t, n_c, n_h)).copy()
        by_month_p[rows] = values.reshape(-1, n_t, n_c, n_h)
        propensity = by_month_p
    if static.flight is not None:
        # Outside its flight a campaign is ineligible for everyone, whatever the frame says.
        eligible = (eligible if eligible.ndim == 4 else eligible[:, None]) & static.flight[None]
    history = np.zeros((n, layout.history_months * n_k), dtype=np.int64)
    rows, index = _sparse_lists(record.column("history_index"), np.int64)
    _, count = _sparse_lists(record.column("history_count"), np.int64)
    if len(index) != len(count):
        raise ValueError("customer frame: history_index and history_count differ in length")
    history[rows, index] = count
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


def batch_from_pandas(
    pdf: pd.DataFrame, layout: Layout, static: StaticInputs, price: np.ndarray
) -> KernelBatch:
    """Build the kernel's batch from a pandas chunk of the customer frame (e.g. ``toPandas()``)."""
    return batch_from_arrow(pa.RecordBatch.from_pandas(pdf, preserve_index=False), layout, static, price)


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
    method: Method = "auto",
    perturbation: float | np.ndarray = 0.0,
    summarise: bool = False,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function solving each Arrow batch of customers with the kernel.

    It yields one row per customer (:func:`solved_schema`), or with ``summarise`` only the
    task's usage totals (:func:`summary_schema`): what a price iteration needs, without
    sending every schedule back to the JVM to be exploded and aggregated there. The Arrow
    columns are read and written as whole arrays: no Python loop over customers.

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

    def solve_batches(records: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from contact_spark.solver.kernel import solve

        n_t, n_c, n_h = layout.horizon, len(layout.campaigns), len(layout.channels)
        # Summarised: one row set per task, however many Arrow batches it solves.
        totals = UsageTotals(n_t, n_c * n_h, attributes) if summarise else None
        for record in records:
            n = record.num_rows
            if n == 0:
                continue
            base, attr_values = frame_batch(record, layout, static, attributes)
            batch = priced_batch(base, record, attr_values, price, attr_price, perturbation)
            result = solve(policy, batch, method=method)
            x = np.asarray(result.x, dtype=bool)
            flat_x = x.reshape(n, n_t, -1)
            if totals is not None:
                # A plan's value is its objective plus the prices and charges it paid.
                paid = (x * batch.linear_cost()).sum(axis=(1, 2, 3))
                totals.add(result, flat_x, np.asarray(result.objective) + paid, attr_values)
                continue
            yield solved_record(record, result, x, batch, attr_values, static, attributes)
        if totals is not None:
            yield totals.record()

    return solve_batches


def solved_record(
    record: pa.RecordBatch,
    result: KernelResult,
    x: np.ndarray,
    batch: KernelBatch,
    attr_values: dict[str, np.ndarray],
    static: StaticInputs,
    attributes: list[str],
) -> pa.RecordBatch:
    """The solved rows (:func:`solved_schema`) of the customers of ``record``: the kernel's
    ``result`` and schedules ``x[N, T, C, H]``, each chosen contact with its value."""
    n, n_t = x.shape[0], x.shape[1]
    flat_x = x.reshape(n, n_t, -1)
    values = contact_values(x, batch.clean_propensity(), static).reshape(n, n_t, -1)
    # Every customer's chosen contacts, in (month, cell) order, as list arrays.
    row, t_idx, k_idx = np.nonzero(flat_x)
    offsets = pa.array(np.concatenate([[0], np.cumsum(flat_x.sum(axis=(1, 2)))]).astype(np.int32))
    columns = {
        "customer_id": record.column("customer_id"),
        "status": pa.array(np.asarray(result.status, dtype=np.int32)),
        "solver": pa.array(np.asarray(result.solver, dtype=np.int32)),
        "objective": pa.array(np.asarray(result.objective, dtype=np.float64), from_pandas=True),
        "upper_bound": pa.array(np.asarray(result.upper_bound, dtype=np.float64), from_pandas=True),
        "months": _list_array(offsets, t_idx, pa.int32()),
        "cells": _list_array(offsets, k_idx, pa.int32()),
        "values": _list_array(offsets, values[row, t_idx, k_idx], pa.float64()),
    }
    for name in attributes:
        columns[f"a_{name}"] = _list_array(
            offsets, attr_values[name].reshape(n, -1)[row, k_idx], pa.float64()
        )
    return pa.RecordBatch.from_pydict(columns)


def frame_batch(
    record: pa.RecordBatch,
    layout: Layout,
    static: StaticInputs,
    attributes: list[str],
    apply_bans: bool = True,
) -> tuple[KernelBatch, dict[str, np.ndarray]]:
    """The kernel batch of an Arrow batch of the customer frame at zero prices, with the
    repair's ``banned``/``allowed`` columns applied (unless not ``apply_bans``), and each
    capacity attribute ``[N, C, H]``."""
    from dataclasses import replace

    n = record.num_rows
    n_t, n_c, n_h = layout.horizon, len(layout.campaigns), len(layout.channels)
    width = n_t * n_c * n_h
    batch = batch_from_arrow(record, layout, static, np.zeros((n_t, n_c, n_h)))
    names = record.schema.names
    attr_values = {
        name: _dense_lists(record.column(f"attr_{name}"), n_c * n_h, np.float64, f"attr_{name}").reshape(
            n, n_c, n_h
        )
        for name in attributes
    }
    if apply_bans and ("banned" in names or "allowed" in names):
        flat = np.broadcast_to(batch.eligible, (n, n_t, n_c, n_h)).reshape(n, width).copy()
        if "banned" in names:
            rows, index = _sparse_lists(record.column("banned"), np.int64)
            flat[rows, index] = False
        if "allowed" in names:
            column = record.column("allowed")
            rows, index = _sparse_lists(column, np.int64)
            keep = np.zeros_like(flat)
            keep[rows, index] = True
            restricted = column.is_valid().to_numpy(zero_copy_only=False)
            flat[restricted] &= keep[restricted]
        batch = replace(batch, eligible=flat.reshape(n, n_t, n_c, n_h))
    return batch, attr_values


def priced_batch(
    batch: KernelBatch,
    record: pa.RecordBatch,
    attr_values: dict[str, np.ndarray],
    price: np.ndarray,
    attr_price: dict[str, np.ndarray],
    perturbation: float | np.ndarray,
) -> KernelBatch:
    """``batch`` charged ``price[T, C, H]`` per contact, ``attr_price`` per unit of each
    attribute and the deterministic tie-breaking charge of width ``perturbation``."""
    from dataclasses import replace

    n, n_t = record.num_rows, batch.horizon
    n_c, n_h = batch.channel_cost.shape
    batch = replace(batch, price=price)
    perturbed = bool(np.any(np.asarray(perturbation) > 0))
    if attr_price or perturbed:
        unit_cost = np.zeros((n, n_t, n_c, n_h))
        for name, multiplier in attr_price.items():
            unit_cost += multiplier[None] * np.nan_to_num(attr_values[name])[:, None]
        if perturbed:
            # A scalar or a [T, C, H] width broadcasts over the customers.
            widths = np.asarray(perturbation, dtype=np.float64)
            ids = record.column("customer_id").to_pylist()
            unit_cost += widths * tie_breaker(ids, n_t * n_c * n_h).reshape(n, n_t, n_c, n_h)
        batch = replace(batch, unit_cost=unit_cost)
    return batch


def summary_schema(attributes: list[str]) -> str:
    """Schema of a summarised solve, per task: per (month ``t``, cell ``k``) the contacts
    chosen and their attribute sums; the row ``t = k = −1`` holds Σ objective, Σ proved upper
    bound (``ub``: what a dual bound must sum), Σ value and the number of customers the
    kernel could not solve (``bad``)."""
    return "t int, k int, n long, obj double, ub double, val double, bad long" + "".join(
        f", s_{name} double" for name in attributes
    )


class UsageTotals:
    """Running usage totals of the batches one task solves (:func:`summary_schema` rows)."""

    def __init__(self, horizon: int, cells: int, attributes: list[str]) -> None:
        self.attributes = attributes
        self.counts = np.zeros((horizon, cells), dtype=np.int64)
        self.sums = {name: np.zeros((horizon, cells)) for name in attributes}
        self.objective, self.upper, self.value, self.bad = 0.0, 0.0, 0.0, 0

    def add(
        self, result: KernelResult, flat_x: np.ndarray, values: np.ndarray, attr_values: dict[str, np.ndarray]
    ) -> None:
        """Add one batch's solved customers (``flat_x[N, T, K]``, ``values[N]`` without prices);
        failed ones are counted."""
        ok = np.asarray(result.status) == 0
        n, _, n_k = flat_x.shape
        chosen = flat_x & ok[:, None, None]
        self.counts += chosen.sum(axis=0)
        self.objective += float(np.asarray(result.objective)[ok].sum())
        self.upper += float(np.asarray(result.upper_bound)[ok].sum())
        self.value += float(values[ok].sum())
        self.bad += int((~ok).sum())
        for name in self.attributes:
            per_cell = attr_values[name].reshape(n, 1, n_k)  # a customer's attribute, every month
            self.sums[name] += np.where(chosen, per_cell, 0.0).sum(axis=0)

    def record(self) -> pa.RecordBatch:
        """The totals as rows: one per used (month, cell), then ``t = k = −1`` for the sums."""
        t_idx, k_idx = np.nonzero(self.counts)
        frame: dict[str, pa.Array] = {
            "t": pa.array(np.concatenate([[-1], t_idx]).astype(np.int32)),
            "k": pa.array(np.concatenate([[-1], k_idx]).astype(np.int32)),
            "n": pa.array(np.concatenate([[0], self.counts[t_idx, k_idx]]).astype(np.int64)),
            "obj": pa.array(np.concatenate([[self.objective], np.zeros(len(t_idx))])),
            "ub": pa.array(np.concatenate([[self.upper], np.zeros(len(t_idx))])),
            "val": pa.array(np.concatenate([[self.value], np.zeros(len(t_idx))])),
            "bad": pa.array(np.concatenate([[self.bad], np.zeros(len(t_idx))]).astype(np.int64)),
        }
        for name in self.attributes:
            frame[f"s_{name}"] = pa.array(np.concatenate([[np.nan], self.sums[name][t_idx, k_idx]]))
        return pa.RecordBatch.from_pydict(frame)


def tie_breaker(customer_ids: Iterable[object], width: int) -> np.ndarray:
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
    method: Method = "auto",
    attr_price: dict[str, np.ndarray] | None = None,
    attributes: list[str] | None = None,
    perturbation: float | np.ndarray = 0.0,
    summarise: bool = False,
) -> DataFrame:
    """Solve every customer of ``frame`` (see :func:`customer_frame`) against the prices;
    with ``summarise`` only each task's usage totals (:func:`summary_schema`)."""
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
    return frame.mapInArrow(solver, schema)


def plan_rows(
    solved: DataFrame,
    eligibility: DataFrame,
    layout: Layout,
    months: list,
    run_id: str,
    contacts: DataFrame | None = None,
) -> DataFrame:
    """The ``plan`` table rows: one per chosen contact, with the contact to use.

    The eligibility names each cell's contact by its key (``contact_id``). With
    ``contacts`` (``customer_id, channel, contact_id, contact``: the run's best contacts,
    :func:`contact_spark.planning.stage.best_contact_values`) a row carries the raw phone
    or address as ``contact``, since the plan is what execution reads; without, it carries
    ``contact_id`` only (the greedy baseline, which nobody executes).
    """
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
    keys = eligibility.select("customer_id", "campaign", "channel", "contact_id")
    rows = rows.join(keys, ["customer_id", "campaign", "channel"], "left")
    contact = "contact_id"
    if contacts is not None:
        # One value per key, whatever the caller passes: a plan row is never doubled.
        values = contacts.groupBy("customer_id", "channel", "contact_id").agg(
            F.min("contact").alias("contact")
        )
        rows = rows.join(values, ["customer_id", "channel", "contact_id"], "left")
        contact = "contact"
    return rows.select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "month",
        "campaign",
        "channel",
        contact,
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
