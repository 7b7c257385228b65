"""``contact_decisions``: for every customer × campaign × channel, planned or why not.

One row per eligibility row of the run (every customer of the ``customers`` table with a
usable id; a row without one is in ``inputs_rejected``), so every input customer is traced
to a planned contact or a reason. ``decision`` and ``reason_code``:

| decision | reason_code | how it is found |
|---|---|---|
| ``PLANNED`` | ``PLANNED`` | the plan has the cell (detail: its months) — exact |
| ``NOT_ELIGIBLE`` | the first eligibility reason | eligibility (detail: every reason) — exact |
| ``QUARANTINED`` | ``QUARANTINE:<status>`` | the solver could not plan the customer — exact |
| ``NOT_PLANNED`` | ``OUTSIDE_FLIGHT`` | the campaign's flight (``campaigns.<NAME>.flight``, on the channel) misses every month of the plan; the reasons below look only at the months of the flight — exact |
| ``NOT_PLANNED`` | ``NOT_WORTH`` | expected value (propensity × value − cost, or propensity × value under ``objective: value``) ≤ 0 at zero prices, or ≤ 0 in every month the policy allows next to the campaign's other planned channels — exact |
| ``NOT_PLANNED`` | ``POLICY:<rule>`` | one more contact of the cell breaks a max/pair rule in every month, given the customer's other planned contacts and history (the rule blocking most months) — exact |
| ``NOT_PLANNED`` | ``CAPACITY:<rule>/<period>`` | in every month allowed and worth it a max capacity is full: one more contact would exceed it (the period: ``2027-08``, ``2027-Q3``, ``2027-01..2027-03`` for a rolling window, or ``year``); a share or a ratio is full when one more such contact would take it past its bound (a min of either is the max of the opposite row) — exact |
| ``NOT_PLANNED`` | ``ROOM_LEFT`` | some month allows it, has room in every capacity and the contact adds value there: the plan could take it and be worth more (not locally optimal there; detail: the months, the value, and its net at the shadow prices) — exact |

Every reason is exact: a contact that fits and adds value is never explained away by a
shadow price (issue 21). The shadow prices (``capacity_sensitivity``) appear only in the
``ROOM_LEFT`` detail.

Per customer the work runs in ``mapInPandas`` over batches (the greedy's rule checker);
nothing per customer reaches the driver.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.baseline import rules as R
from contact_spark.baseline.customers import customer_frame, with_plan
from contact_spark.capacity.constraints import config_cells, expand_capacities
from contact_spark.config.models import AppConfig
from contact_spark.io.months import month_index
from contact_spark.io.run_inputs import read_history, read_pinned
from contact_spark.io.tables import TableStore
from contact_spark.planning.frame import Layout

DECISIONS_TABLE = "contact_decisions"
COLUMNS = ("run_id", "customer_id", "campaign", "channel", "decision", "reason_code", "detail")
EXPLAINED_SCHEMA = "customer_id string, k int, reason_code string, detail string"
BUILTIN = ("cost", "expected_value", "propensity")
TOLERANCE = 1e-9


def _capacity_arrays(config: AppConfig, sensitivity: DataFrame | None) -> dict[str, Any]:
    """Constraint weights ``[J, T, K]``, attributes, bounds, usage and shadow prices."""
    layout = Layout(tuple(config.campaign_names), tuple(config.channel_names), config.run.horizon_months, 0)
    constraints = expand_capacities(
        config.capacities, layout, config.run.months(), config_cells(config, layout)
    )
    rows = {r["constraint_name"]: r for r in (sensitivity.collect() if sensitivity is not None else [])}
    n_t, n_k = config.run.horizon_months, layout.n_cells
    return {
        "names": [c.name for c in constraints],
        "labels": [f"{c.rule}/{c.label}" for c in constraints],
        "weight": np.array([c.weight.reshape(n_t, n_k) for c in constraints]).reshape(
            len(constraints), n_t, n_k
        ),
        "attr": [c.attr for c in constraints],
        "offset": np.array([c.offsets.reshape(n_t, n_k) for c in constraints]).reshape(
            len(constraints), n_t, n_k
        ),
        "sign": np.array([c.sign for c in constraints]),
        "max": np.array([c.sense == "max" for c in constraints], dtype=bool),
        "bound": np.array([c.bound for c in constraints]),
        "usage": np.array([float((rows.get(c.name) or {"usage": 0.0})["usage"]) for c in constraints]),
        "price": np.array(
            [float((rows.get(c.name) or {"shadow_price": 0.0})["shadow_price"]) for c in constraints]
        ),
    }


def _months(ts: Any, months: list[Any]) -> str:
    return ", ".join(f"{months[t]:%Y-%m}" for t in ts)


def explain_unplanned(frame: DataFrame, config: AppConfig, sensitivity: DataFrame | None) -> DataFrame:
    """``customer_id, k, reason_code, detail`` for every eligible cell the plan does not use.

    ``frame``: the greedy's customer frame with the plan (:func:`with_plan`) and, for a
    capacity on a customers column, that column (``a_<name>``)."""
    rules = R.rule_arrays(config)
    rule_args = R.args(rules)
    caps = _capacity_arrays(config, sensitivity)
    n_h, n_k = len(config.channel_names), len(config.campaign_names) * len(config.channel_names)
    horizon = config.run.horizon_months
    months = config.run.months()
    season = np.asarray(config.value_factors(), dtype=float)  # [T, C]: seasonality × monthly_value
    flight = config.flight_mask()
    runs = (
        np.ones((horizon, n_k), dtype=bool)
        if flight is None
        else np.asarray(flight, bool).reshape(horizon, n_k)
    )
    value = np.array([config.campaigns[c].success_value for c in config.campaign_names])
    cost = np.array(config.cost_matrix(), dtype=np.float64).reshape(len(config.campaign_names), n_h)
    # What the objective takes off a contact's value: its cost, or nothing under objective: value.
    charged = np.array(config.objective_cost_matrix(), dtype=np.float64).reshape(len(config.campaign_names), n_h)
    value_model = "propensity × value − cost" if config.objective == "value_minus_cost" else "propensity × value"
    offer = {
        name: np.array([values.get(c, 0.0) for c in config.campaign_names])
        for name in caps["attr"]
        if name is not None and name != "cost" and (values := config.offer_values(name)) is not None
    }
    cells = [f"{c}/{h}" for c in config.campaign_names for h in config.channel_names]

    def explain(
        row: Any, k: int, p: np.ndarray, ev: float, counts: np.ndarray, mask: np.ndarray
    ) -> tuple[str, str]:
        c, h = divmod(k, n_h)
        flown = [t for t in range(horizon) if runs[t, k]]
        if not flown:
            return (
                "OUTSIDE_FLIGHT",
                f"{cells[k]}: the campaign's flight on the channel misses every month of the plan",
            )
        if ev * season[flown, c].max() <= 0:
            return (
                "NOT_WORTH",
                f"{cells[k]}: expected value {ev:.4f} ≤ 0 ({value_model}) at zero prices",
            )
        allowed = [t for t in flown if mask[t] == 0]
        if not allowed:
            blocked = Counter(name for t in flown for name in R.rule_names(int(mask[t]), rules))
            top = sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0]))
            detail = "; ".join(f"{name}: {n} month(s)" for name, n in top)
            return (
                f"POLICY:{top[0][0]}",
                f"{cells[k]}: one more contact breaks, given the customer's contacts, {detail}",
            )
        # Marginal value next to the campaign's other channels planned that month (union probability).
        plan_rows = counts[rules.offset :]
        others = np.prod(
            np.where(plan_rows[:, c * n_h : (c + 1) * n_h] > 0, 1.0 - p[c * n_h : (c + 1) * n_h], 1.0), axis=1
        )
        marginal = season[:, c] * (value[c] * p[k] * others - charged[c, h])
        worth = [t for t in allowed if marginal[t] > TOLERANCE]
        if not worth:
            return "NOT_WORTH", (
                f"{cells[k]}: allowed in {len(allowed)} month(s) but worth ≤ 0 there next to the campaign's "
                "other planned channels"
            )
        attrs = {"cost": cost[c, h], "propensity": p[k], "expected_value": ev}
        attrs.update({name: float(v[c]) for name, v in offer.items()})
        coef = np.zeros((len(caps["names"]), horizon))
        for j, name in enumerate(caps["attr"]):
            a = 1.0 if name is None else float(attrs.get(name, getattr(row, f"a_{name}", 0.0) or 0.0))
            coef[j] = caps["weight"][j, :, k] * (a - caps["offset"][j, :, k])
        full = (
            caps["max"][:, None]
            & (coef > TOLERANCE)
            & (caps["usage"][:, None] + coef > caps["bound"][:, None] + TOLERANCE)
        )
        charge = caps["sign"][:, None] * caps["price"][:, None] * coef
        open_months = [t for t in worth if not full[:, t].any()]
        if not open_months:
            t = max(worth, key=lambda t: marginal[t])
            j = int(np.argmax(np.where(full[:, t], coef[:, t], -np.inf)))
            return f"CAPACITY:{caps['labels'][j]}", (
                f"{cells[k]}: capacity full in every month it is allowed and worth it ({_months(worth, months)}); "
                f"in {months[t]:%Y-%m} one more would exceed {caps['names'][j]} (usage {caps['usage'][j]:g} of {caps['bound'][j]:g})"
            )
        # Some month has room: the contact alone fits every rule and every capacity and adds
        # value, so a plan with it is worth more. That is no trade-off (issue 21): it says the
        # plan is not locally optimal there, whatever the shadow prices would charge.
        t = max(open_months, key=lambda t: marginal[t])
        return "ROOM_LEFT", (
            f"{cells[k]}: fits in {len(open_months)} month(s): allowed by every rule given the customer's "
            f"contacts, room in every capacity, worth {marginal[t]:.4f} in {months[t]:%Y-%m} "
            f"({marginal[t] - charge[:, t].sum():.4f} at the shadow prices); the plan leaves it out, so it is "
            "not locally optimal here"
        )

    def run(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in chunks:
            out: dict[str, list[Any]] = {"customer_id": [], "k": [], "reason_code": [], "detail": []}
            for row in pdf.itertuples(index=False):
                counts = np.zeros((rules.rows, n_k), dtype=np.int64)
                if row.hm is not None:
                    for m, k, n in zip(row.hm, row.hk, row.hn, strict=True):
                        counts[rules.row(int(m)), int(k)] += int(n)
                planned = set()
                if row.pm is not None:
                    for m, k in zip(row.pm, row.pk, strict=True):
                        counts[rules.row(int(m)), int(k)] = 1
                        planned.add(int(k))
                ks = np.asarray(row.k, dtype=np.int64)
                p = np.zeros(n_k)
                p[ks] = np.asarray(row.p, dtype=float)
                ev = dict(zip(ks.tolist(), np.asarray(row.ev, dtype=float).tolist(), strict=True))
                todo = np.array([k for k in ks.tolist() if k not in planned], dtype=np.int64)
                if not len(todo):
                    continue
                grid = R.blocking_grid(counts, todo, *rule_args)
                for i, k in enumerate(todo.tolist()):
                    code, detail = explain(row, k, p, ev[k], counts, grid[i])
                    out["customer_id"].append(row.customer_id)
                    out["k"].append(k)
                    out["reason_code"].append(code)
                    out["detail"].append(detail)
            yield pd.DataFrame(out).astype({"k": "int32"})

    return frame.mapInPandas(run, EXPLAINED_SCHEMA)


def contact_decisions(
    spark: SparkSession,
    config: AppConfig,
    eligibility: DataFrame,
    plan: DataFrame,
    contact_history: DataFrame,
    run_id: str,
    quarantine: DataFrame | None = None,
    sensitivity: DataFrame | None = None,
    customers: DataFrame | None = None,
) -> DataFrame:
    """Every customer × campaign × channel of the run's eligibility with its decision and reason."""
    n_h = len(config.channel_names)
    cell = (
        (F.array_position(F.array(*[F.lit(c) for c in config.campaign_names]), F.col("campaign")) - 1) * n_h
        + F.array_position(F.array(*[F.lit(h) for h in config.channel_names]), F.col("channel"))
        - 1
    ).cast("int")
    elig = eligibility.select("customer_id", "campaign", "channel", "eligible", "reasons", "propensity")
    planned = plan.groupBy("customer_id", "campaign", "channel").agg(
        F.array_sort(F.collect_set(F.date_format("month", "yyyy-MM"))).alias("_months")
    )
    quarantined = (
        quarantine.select("customer_id", F.col("reason_code").alias("_q")).dropDuplicates(["customer_id"])
        if quarantine is not None
        else spark.createDataFrame([], "customer_id string, _q string")
    )
    rows = elig.join(planned, ["customer_id", "campaign", "channel"], "left").join(
        quarantined, "customer_id", "left"
    )
    decided = rows.select(
        "customer_id",
        "campaign",
        "channel",
        F.when(F.col("_months").isNotNull(), "PLANNED")
        .when(~F.coalesce("eligible", F.lit(False)), "NOT_ELIGIBLE")
        .when(F.col("_q").isNotNull(), "QUARANTINED")
        .otherwise("NOT_PLANNED")
        .alias("decision"),
        F.when(F.col("_months").isNotNull(), "PLANNED")
        .when(
            ~F.coalesce("eligible", F.lit(False)),
            F.coalesce(F.element_at("reasons", 1), F.lit("NOT_ELIGIBLE")),
        )
        .when(F.col("_q").isNotNull(), F.concat(F.lit("QUARANTINE:"), F.col("_q")))
        .alias("reason_code"),
        F.when(
            F.col("_months").isNotNull(),
            F.concat(F.size("_months").cast("string"), F.lit(" contact(s): "), F.concat_ws(", ", "_months")),
        )
        .when(~F.coalesce("eligible", F.lit(False)), F.concat_ws(", ", "reasons"))
        .when(F.col("_q").isNotNull(), F.lit("the solver could not plan this customer"))
        .alias("detail"),
    )
    open_cells = decided.filter(F.col("decision") == "NOT_PLANNED").select(
        "customer_id", "campaign", "channel"
    )
    plan_cells = plan.select(
        "customer_id",
        month_index(config.run.first_month)(F.col("month")).alias("m"),
        cell.alias("k"),
        "campaign",
        "channel",
    ).join(
        elig.select("customer_id", "campaign", "channel", "propensity"),
        ["customer_id", "campaign", "channel"],
        "left",
    )
    frame = with_plan(
        customer_frame(eligibility, contact_history, config).join(
            open_cells.select("customer_id").distinct(), "customer_id", "left_semi"
        ),
        plan_cells,
    )
    custom = sorted(
        {
            name
            for r in config.capacities.rules
            for name in (r.column, r.per)  # a ratio's per may be a customers column too
            if name and name not in BUILTIN and config.offer_values(name) is None
        }
    )
    if custom and customers is not None:
        values = customers.groupBy("customer_id").agg(
            *[F.max(F.col(c).cast("double")).alias(f"a_{c}") for c in custom]
        )
        frame = frame.join(values, "customer_id", "left")
    explained = explain_unplanned(frame, config, sensitivity).select(
        "customer_id",
        F.element_at(
            F.array(*[F.lit(c) for c in config.campaign_names]), F.floor(F.col("k") / n_h).cast("int") + 1
        ).alias("campaign"),
        F.element_at(F.array(*[F.lit(h) for h in config.channel_names]), (F.col("k") % n_h) + 1).alias(
            "channel"
        ),
        F.col("reason_code").alias("_code"),
        F.col("detail").alias("_detail"),
    )
    out = decided.join(explained, ["customer_id", "campaign", "channel"], "left").select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "campaign",
        "channel",
        "decision",
        F.coalesce("reason_code", "_code").alias("reason_code"),
        F.coalesce("detail", "_detail").alias("detail"),
    )
    return out


def run_decisions_stage(spark: SparkSession, store: TableStore, config: AppConfig, run_id: str) -> int:
    """Write the run's ``contact_decisions`` (replacing its rows); return the number of rows."""
    table = contact_decisions(
        spark,
        config,
        store.read_run("eligibility", run_id),
        store.read_run("plan", run_id),
        read_history(store, run_id, config.campaign_names, config.channel_names),
        run_id,
        store.read_run("plan_quarantine", run_id) if store.exists("plan_quarantine") else None,
        store.read_run("capacity_sensitivity", run_id) if store.exists("capacity_sensitivity") else None,
        read_pinned(store, "customers", run_id),
    )
    store.replace_run(table, DECISIONS_TABLE, run_id)
    return store.read_run(DECISIONS_TABLE, run_id).count()
