"""A scenario against its base run: the ``run_comparison`` Delta table.

One long table (like ``run_metrics``), its rows told apart by ``section``:

| section | metric | one row per |
|---|---|---|
| ``total`` | ``value``, ``contacts``, ``cost``, ``customers_contacted``, ``objective``, ``dual_bound``, ``gap`` | comparison |
| ``cell`` | ``value``, ``contacts``, ``cost`` | month × campaign × channel |
| ``capacity`` | ``bound``, ``usage``, ``shadow_price`` | capacity constraint |
| ``prediction`` | ``bound`` (``predicted``: price × Δbound), ``value`` (``predicted``: their sum) | changed bound; comparison |
| ``customer`` | ``value`` (``change``, ``added``, ``removed``) | customer whose planned contacts changed |

``base`` and ``scenario`` hold the two runs' figures and ``difference`` is scenario − base.
``value`` is the plan's expected value net of contact costs (``plan.expected_value``, what
the optimizer maximises); ``cost`` is contacts × the contact's cost in the run's config.

The prediction is first-order sensitivity: the base run's shadow price of a capacity
constraint is the value one more unit of its bound is worth (the derivative of the dual
bound), so a bound moved by Δ is predicted to change the value by ``sign × price × Δ``
(``sign`` −1 for a minimum). It is exact while the moved bounds stay inside the range where
the prices hold; the measured change is the difference of the two plans' values.

Only aggregates reach the driver (cells, constraints, counts of changed customers by kind);
the per-customer rows are computed and written by Spark. The rows of one pair of runs are
replaced as a whole: the table's ``run_id`` is the comparison's id (:func:`comparison_id`).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.io.catalog import COMPARISON_TABLE
from contact_spark.io.columns import case_when
from contact_spark.io.scenarios import ScenarioError, require_planned_run
from contact_spark.io.tables import TableStore
from contact_spark.scenarios.configs import ComparedRun, check_catalogue, check_comparable

COMPARISON_SCHEMA = (
    "run_id string, base_run_id string, scenario_run_id string, section string, metric string, "
    "month date, campaign string, channel string, constraint_name string, customer_id string, "
    "change string, added string, removed string, base double, scenario double, difference double, "
    "predicted double"
)
# Kinds of change of a customer's planned contacts (month, campaign, channel), in page order.
CHANGE_KINDS = (
    ("NEWLY_CONTACTED", "contacted in the scenario only"),
    ("NO_LONGER_CONTACTED", "contacted in the base only"),
    ("CONTACTS_ADDED", "scenario adds contacts, removes none"),
    ("CONTACTS_REMOVED", "scenario removes contacts, adds none"),
    ("CONTACTS_MOVED", "scenario adds some contacts and removes others"),
)
DIGITS = 6  # figures are rounded so that a rerun writes identical rows
PLAN_KEY = ["customer_id", "month", "campaign", "channel"]


def comparison_id(base_run_id: str, scenario_run_id: str) -> str:
    """The table's ``run_id`` of a comparison: a digest of the pair (run ids may use every
    character a run id may hold, so no separator could join them without ambiguity)."""
    return "cmp-" + hashlib.sha256(f"{base_run_id}\n{scenario_run_id}".encode()).hexdigest()[:16]


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), DIGITS)


@dataclass
class Comparison:
    """What the page shows: the comparison's aggregate rows (as written) and the counts of
    changed customers by kind (the customers themselves stay in the table)."""

    base: ComparedRun
    scenario: ComparedRun
    id: str
    rows: list[dict[str, Any]]
    changes: dict[str, tuple[int, float]] = field(default_factory=dict)  # kind -> (customers, Δ value)

    def section(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["section"] == name]

    def total(self, metric: str) -> dict[str, Any]:
        return next(r for r in self.section("total") if r["metric"] == metric)

    def prediction(self) -> dict[str, Any]:
        return next(r for r in self.section("prediction") if r["metric"] == "value")


def _row(
    section: str, metric: str, base: float | None, scenario: float | None, **keys: Any
) -> dict[str, Any]:
    b, s = _round(base), _round(scenario)
    difference = None
    if base is not None and scenario is not None and b is not None and s is not None:
        difference = _round(scenario - base)  # of the figures before rounding
    return {"section": section, "metric": metric, "base": b, "scenario": s, "difference": difference, **keys}


def cell_rows(
    store: TableStore, base: ComparedRun, scenario: ComparedRun
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], float]]:
    """Value, contacts and cost per month × campaign × channel of both plans (one Spark
    aggregate; at most months × campaigns × channels rows reach the driver)."""
    sides = []
    for run in (base, scenario):
        sides.append(
            store.read_run("plan", run.run_id)
            .groupBy("month", "campaign", "channel")
            .agg(
                F.count(F.lit(1)).alias(f"{run.role}_contacts"),
                F.sum(F.coalesce("expected_value", F.lit(0.0))).alias(f"{run.role}_value"),
            )
        )
    cells = sides[0].join(sides[1], ["month", "campaign", "channel"], "full").collect()
    months = set(base.config.run.months())  # one horizon and catalogue: check_comparable
    rows = []
    sums: dict[tuple[str, str], float] = defaultdict(float)  # (metric, role) -> total, not rounded
    for cell in sorted(cells, key=lambda r: (r["month"], r["campaign"], r["channel"])):
        keys = {"month": cell["month"], "campaign": cell["campaign"], "channel": cell["channel"]}
        if cell["month"] not in months:
            run = base if cell["base_contacts"] else scenario
            raise ScenarioError(
                f"{run.label} plans contacts in {cell['month']:%Y-%m}, outside the horizon of its "
                "configuration: pass --config with the file the run was made with"
            )
        contacts = {run.role: int(cell[f"{run.role}_contacts"] or 0) for run in (base, scenario)}
        cost = {
            run.role: contacts[run.role] * run.config.contact_cost(cell["campaign"], cell["channel"])
            for run in (base, scenario)
        }
        value = {run.role: float(cell[f"{run.role}_value"] or 0.0) for run in (base, scenario)}
        for metric, figures in (("contacts", contacts), ("cost", cost), ("value", value)):
            rows.append(_row("cell", metric, figures["base"], figures["scenario"], **keys))
            for role in ("base", "scenario"):
                sums[(metric, role)] += figures[role]
    return rows, sums


def _by_run(store: TableStore, table: str, base: ComparedRun, scenario: ComparedRun) -> DataFrame:
    """The rows of both runs of a run-scoped table (one read, one Spark job per use)."""
    return store.read(table).filter(F.col("run_id").isin(base.run_id, scenario.run_id))


def _constraints(store: TableStore, base: ComparedRun, scenario: ComparedRun) -> dict[str, dict[str, Any]]:
    """Each run's capacity constraints by name (``capacity_sensitivity``: one row each)."""
    out: dict[str, dict[str, Any]] = {base.run_id: {}, scenario.run_id: {}}
    if store.exists("capacity_sensitivity"):
        for r in _by_run(store, "capacity_sensitivity", base, scenario).collect():
            out[r["run_id"]][r["constraint_name"]] = r.asDict()
    return out


def capacity_rows(
    store: TableStore, base: ComparedRun, scenario: ComparedRun
) -> tuple[list[dict[str, Any]], float]:
    """Bound, usage and shadow price of every constraint of either run, and the prediction:
    each moved bound's first-order value change at the base run's price (none for a
    constraint only one run has: its bound moved from or to no limit), and their sum."""
    constraints = _constraints(store, base, scenario)
    b, s = constraints[base.run_id], constraints[scenario.run_id]
    both = {**s, **b}
    order = sorted(both, key=lambda n: (both[n]["rule"], str(both[n]["month"]), n))
    rows: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    total = 0.0  # summed before rounding
    for name in order:
        old, new = b.get(name), s.get(name)
        keys = {"constraint_name": name, "month": both[name]["month"]}
        for metric in ("bound", "usage", "shadow_price"):
            rows.append(
                _row("capacity", metric, old[metric] if old else None, new[metric] if new else None, **keys)
            )
        if old is not None and new is not None and abs(new["bound"] - old["bound"]) <= 1e-9:
            continue
        predicted = None
        if old is not None and new is not None:
            sign = 1.0 if old["sense"] == "max" else -1.0  # a higher minimum costs value
            predicted = sign * old["shadow_price"] * (new["bound"] - old["bound"])
            total += predicted
        old_bound, new_bound = (old["bound"] if old else None), (new["bound"] if new else None)
        predictions.append(
            {**_row("prediction", "bound", old_bound, new_bound, **keys), "predicted": _round(predicted)}
        )
    return rows + predictions, total


def customer_changes(store: TableStore, base: ComparedRun, scenario: ComparedRun, cmp_id: str) -> DataFrame:
    """One row per customer whose planned contacts (month, campaign, channel) differ between
    the plans: the kind of change, the contacts added and removed, the customer's value in
    each plan. Computed by Spark; nothing per customer reaches the driver."""
    sides = [
        store.read_run("plan", run.run_id)
        .groupBy(*PLAN_KEY)
        .agg(F.sum(F.coalesce("expected_value", F.lit(0.0))).alias(f"{run.role}_value"))
        for run in (base, scenario)
    ]
    joined = sides[0].join(sides[1], PLAN_KEY, "full")
    in_base, in_scenario = F.col("base_value").isNotNull(), F.col("scenario_value").isNotNull()
    label = F.concat(F.date_format("month", "yyyy-MM"), F.lit(" "), "campaign", F.lit("/"), "channel")
    per_customer = joined.groupBy("customer_id").agg(
        F.count(F.when(in_base, 1)).alias("base_contacts"),
        F.count(F.when(in_scenario, 1)).alias("scenario_contacts"),
        F.coalesce(F.sum("base_value"), F.lit(0.0)).alias("base"),
        F.coalesce(F.sum("scenario_value"), F.lit(0.0)).alias("scenario"),
        F.array_sort(F.collect_list(F.when(in_scenario & ~in_base, label))).alias("added"),
        F.array_sort(F.collect_list(F.when(in_base & ~in_scenario, label))).alias("removed"),
    )
    changed = per_customer.filter((F.size("added") > 0) | (F.size("removed") > 0))
    change = case_when(
        [
            (F.col("base_contacts") == 0, F.lit("NEWLY_CONTACTED")),
            (F.col("scenario_contacts") == 0, F.lit("NO_LONGER_CONTACTED")),
            (F.size("removed") == 0, F.lit("CONTACTS_ADDED")),
            (F.size("added") == 0, F.lit("CONTACTS_REMOVED")),
        ]
    ).otherwise(F.lit("CONTACTS_MOVED"))
    base_value, scenario_value = F.round("base", DIGITS), F.round("scenario", DIGITS)
    null = F.lit(None)
    return changed.select(
        F.lit(cmp_id).alias("run_id"),
        F.lit(base.run_id).alias("base_run_id"),
        F.lit(scenario.run_id).alias("scenario_run_id"),
        F.lit("customer").alias("section"),
        F.lit("value").alias("metric"),
        null.cast("date").alias("month"),
        null.cast("string").alias("campaign"),
        null.cast("string").alias("channel"),
        null.cast("string").alias("constraint_name"),
        "customer_id",
        change.alias("change"),
        F.concat_ws(", ", "added").alias("added"),
        F.concat_ws(", ", "removed").alias("removed"),
        base_value.alias("base"),
        scenario_value.alias("scenario"),
        F.round(scenario_value - base_value, DIGITS).alias("difference"),
        null.cast("double").alias("predicted"),
    )


def _summaries(store: TableStore, base: ComparedRun, scenario: ComparedRun) -> dict[str, dict[str, Any]]:
    """Each run's ``plan_summary`` row (objective, dual bound, gap), by role; a run without
    one is unknown (:func:`require_planned_run` says so in one line)."""
    rows = {}
    if store.exists("plan_summary"):
        rows = {r["run_id"]: r.asDict() for r in _by_run(store, "plan_summary", base, scenario).collect()}
    for run in (base, scenario):
        if run.run_id not in rows:
            require_planned_run(store, run.run_id, run.role)
    return {run.role: rows[run.run_id] for run in (base, scenario)}


def _contacted(store: TableStore, base: ComparedRun, scenario: ComparedRun) -> dict[str, int]:
    """Customers with a planned contact, per role."""
    counts = {
        r["run_id"]: int(r["customers"])
        for r in _by_run(store, "plan", base, scenario)
        .groupBy("run_id")
        .agg(F.countDistinct("customer_id").alias("customers"))
        .collect()
    }
    return {run.role: counts.get(run.run_id, 0) for run in (base, scenario)}


def total_rows(
    sums: dict[tuple[str, str], float],
    contacted: dict[str, int],
    summaries: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """The plans' totals (``sums`` of the cells), customers contacted and the plan stage's figures."""
    rows = [
        _row("total", metric, sums[(metric, "base")], sums[(metric, "scenario")])
        for metric in ("value", "contacts", "cost")
    ]
    rows.append(_row("total", "customers_contacted", contacted["base"], contacted["scenario"]))
    for metric in ("objective", "dual_bound", "gap"):
        rows.append(_row("total", metric, summaries["base"].get(metric), summaries["scenario"].get(metric)))
    return rows


def _prediction_total(predicted: float, sums: dict[tuple[str, str], float]) -> dict[str, Any]:
    measured = _row("prediction", "value", sums[("value", "base")], sums[("value", "scenario")])
    return {**measured, "predicted": _round(predicted)}


def compare_runs(
    spark: SparkSession, store: TableStore, base: ComparedRun, scenario: ComparedRun
) -> Comparison:
    """Compare ``scenario`` with ``base`` and replace their rows of ``run_comparison``.

    Checked first, each a one-line error: both runs have a plan, they are two runs of one
    horizon and catalogue, and each run's eligibility has its configuration's catalogue.
    """
    summaries = _summaries(store, base, scenario)
    check_comparable(base, scenario)
    check_catalogue(store, base, scenario)
    cmp_id = comparison_id(base.run_id, scenario.run_id)
    cells, sums = cell_rows(store, base, scenario)
    capacity, predicted = capacity_rows(store, base, scenario)
    changes = customer_changes(store, base, scenario, cmp_id)
    totals = total_rows(sums, _contacted(store, base, scenario), summaries)
    rows = totals + cells + capacity + [_prediction_total(predicted, sums)]
    columns = [c.split(" ")[0] for c in COMPARISON_SCHEMA.split(", ")]
    local = [
        tuple(
            {"run_id": cmp_id, "base_run_id": base.run_id, "scenario_run_id": scenario.run_id, **r}.get(c)
            for c in columns
        )
        for r in rows
    ]
    frame = spark.createDataFrame(local, COMPARISON_SCHEMA).unionByName(changes)
    store.replace_run(frame, COMPARISON_TABLE, cmp_id)
    by_kind = {
        r["change"]: (int(r["customers"]), float(r["value"] or 0.0))
        for r in store.read_run(COMPARISON_TABLE, cmp_id)
        .filter(F.col("section") == "customer")
        .groupBy("change")
        .agg(F.count(F.lit(1)).alias("customers"), F.sum("difference").alias("value"))
        .collect()  # one row per kind of change
    }
    return Comparison(base, scenario, cmp_id, rows, by_kind)
