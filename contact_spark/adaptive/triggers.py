"""Incremental trigger runs: re-plan only the customers whose events arrived.

``run_triggers(…, run_id, executed_through)`` reads the ``events`` table, takes the events
of the run not processed yet, and re-plans their customers from the month after
``executed_through`` to the end of the plan year, under the same contact policy and what
is left of every capacity (the executed months' usage and the plan of every other
customer are subtracted from the bounds; prices start from the run's shadow prices).
Each event type's effects (``triggers.events`` in the config, see
:mod:`contact_spark.config.triggers`) become per-month overlays of the customer's
eligibility and propensities. The new schedules are merged into the run's ``plan`` (rows
of other customers are not touched), the affected customers' eligibility rows are
updated, and the run's lineage gets a revision:

* ``trigger_events`` — every event seen, ``applied`` or ``rejected`` with a reason code;
* ``plan_drift`` — contacts added/removed for the affected customers, reason
  ``TRIGGER:<event types>``, with the revision;
* ``plan_lineage`` — one row per revision (kind ``trigger``).

A rerun with no new event changes nothing (events are matched on customer, type and time).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.adaptive.replan import (
    DRIFT_TABLE,
    LINEAGE_TABLE,
    PLAN_KEY,
    check_history_until,
    lineage_row,
)
from contact_spark.adaptive.window import (
    frozen_contacts,
    month_index,
    rest_of_year,
)
from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.config.scope import Configured, Scoped
from contact_spark.contract import EVENTS, validate_input
from contact_spark.errors import ContactSparkError
from contact_spark.io.columns import one_row
from contact_spark.io.months import month_index as plan_month_index
from contact_spark.io.runs import Inputs, require_run
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.planning.frame import Layout, layout_for
from contact_spark.planning.stage import best_contact_values, solve_plan

log = logging.getLogger(__name__)

TRIGGER_EVENTS_TABLE = "trigger_events"
EVENT_KEY = ["customer_id", "event_type", "event_time"]
TRIGGER_EVENT_SCHEMA = (
    "run_id string, revision int, customer_id string, event_type string, event_time timestamp, "
    "status string, reason string"
)
UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
NULL_FIELD = "NULL_CUSTOMER_OR_TYPE_OR_TIME"
ENDS_BEFORE_WINDOW = "EFFECT_ENDS_BEFORE_REPLANNED_MONTHS"


class TriggerError(ContactSparkError):
    """The events table is missing, or the trigger run cannot start."""


@dataclass(frozen=True)
class TriggerResult:
    run_id: str
    revision: int
    applied: int
    rejected: int
    customers: int
    replanned_from: dt.date | None
    drift: dict[str, int]


def _event_month(config: AppConfig) -> F.Column:
    """Event month index in the plan year (may be negative or past the end)."""
    return plan_month_index(config.run.first_month)(F.col("event_time"))


def classify_events(events: DataFrame, config: AppConfig, customers: DataFrame, start: int) -> DataFrame:
    """Every new event with ``status`` (applied/rejected) and a ``reason`` code."""
    durations = F.create_map(
        *[x for name, effect in config.triggers.events.items() for x in (F.lit(name), F.lit(effect.months))]
    )
    known = list(config.triggers.events) or ["\u0000"]
    reason = (
        F.when(
            F.col("customer_id").isNull() | F.col("event_type").isNull() | F.col("event_time").isNull(),
            NULL_FIELD,
        )
        .when(~F.col("event_type").isin(*known), UNKNOWN_EVENT_TYPE)
        .when(F.col("_known").isNull(), UNKNOWN_CUSTOMER)
        .when(
            _event_month(config) + F.element_at(durations, F.col("event_type")) <= F.lit(start),
            ENDS_BEFORE_WINDOW,
        )
    )
    return (
        events.join(
            customers.select("customer_id", F.lit(1).alias("_known")).distinct(), "customer_id", "left"
        )
        .withColumn("reason", reason)
        .select(
            *EVENT_KEY,
            F.when(F.col("reason").isNull(), "applied").otherwise("rejected").alias("status"),
            "reason",
        )
    )


def trigger_eligibility(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    customers: DataFrame,
    propensities: DataFrame,
    affected: DataFrame,
    active: DataFrame,
) -> DataFrame:
    """The affected customers' eligibility, computed again by the eligibility engine with each
    triggered campaign's channels opened where an event of the customer triggers it (consent,
    opt-outs, contacts and every include/exclude rule apply as usual); the configured
    probability is used where the propensities table has none."""
    from contact_spark.eligibility.engine import compute_eligibility
    from contact_spark.eligibility.stage import best_contacts_for_run

    pairs = [
        (event, effect.campaign, channel, float(p))
        for event, effect in config.triggers.events.items()
        if effect.campaign is not None
        for channel, p in effect.propensity.items()
    ]
    opened = (
        active.select("customer_id", "event_type")
        .distinct()
        .join(
            spark.createDataFrame(pairs, "event_type string, campaign string, channel string, p double"),
            "event_type",
        )
        .groupBy("customer_id", "campaign", "channel")
        .agg(F.max("p").alias("propensity"))
    )
    own = propensities.join(affected, "customer_id")
    configured = opened.join(
        own.select("customer_id", "campaign", "channel"), ["customer_id", "campaign", "channel"], "left_anti"
    )
    scores = own.select("customer_id", "campaign", "channel", F.col("propensity").cast("double")).unionByName(
        configured
    )
    household_best = None
    if config.contacts.household.suppress_other_members:
        household_best = store.read_run("contactability", run_id).select("customer_id", "household_best")
    return compute_eligibility(
        spark,
        config,
        customers.join(affected, "customer_id"),
        best_contacts_for_run(store, run_id).join(affected, "customer_id"),
        scores,
        run_id,
        household_best,
        opened=opened.select("customer_id", "campaign", "channel"),
    ).eligibility


def month_overlay(
    eligibility: DataFrame, active: DataFrame, config: AppConfig, layout: Layout, start: int
) -> DataFrame:
    """Per affected customer, ``month_eligible`` and ``month_propensity`` (flat ``t * cells + k``
    over the re-planned months) from its active events."""
    n_t, n_k = layout.horizon, layout.n_cells
    trigger_cells = np.zeros(n_k, dtype=bool)
    for campaign in config.trigger_campaigns:
        trigger_cells[[layout.cell(campaign, h) for h in layout.channels]] = True

    names = Configured.of(layout.campaigns, layout.channels)

    def scoped(scope: Scoped) -> list[int]:
        return [layout.cell(c, h) for c, h in scope.resolve(names).cells()]

    # Plain data for the closure (workers must not unpickle config models): per event type,
    # (months, cells it opens, cells it suppresses, cells it boosts, boost factor).
    effects = {
        name: (
            effect.months,
            [layout.cell(effect.campaign, h) for h in effect.propensity] if effect.campaign else [],
            scoped(effect.suppress) if effect.suppress else [],
            scoped(effect.boost) if effect.boost else [],
            float(effect.boost.factor) if effect.boost else 1.0,
        )
        for name, effect in config.triggers.events.items()
    }

    def build(events: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
        base = np.zeros(n_k)
        base[cells["cell"].to_numpy(dtype=np.int64)] = cells["p"].fillna(0.0).to_numpy(dtype=np.float64)
        allow = np.zeros((n_t, n_k), dtype=bool)
        suppressed = np.zeros((n_t, n_k), dtype=bool)
        factor = np.ones((n_t, n_k))
        for event_type, t0 in zip(events["event_type"], events["t0"], strict=True):
            months, opens, suppresses, boosts, boost = effects[event_type]
            active_months = slice(max(int(t0) - start, 0), max(min(int(t0) - start + months, n_t), 0))
            allow[active_months, opens] = True
            suppressed[active_months, suppresses] = True
            factor[active_months, boosts] *= boost
        eligible = (~trigger_cells[None] | allow) & ~suppressed
        propensity = np.minimum(base[None] * factor, 1.0)
        return pd.DataFrame(
            {
                "customer_id": [events["customer_id"].iloc[0]],
                "month_eligible": [eligible.reshape(-1)],
                "month_propensity": [propensity.reshape(-1)],
            }
        )

    cell_of = F.create_map(
        *[
            x
            for c in layout.campaigns
            for h in layout.channels
            for x in (F.lit(f"{c}/{h}"), F.lit(layout.cell(c, h)))
        ]
    )
    cells = eligibility.select(
        "customer_id",
        F.element_at(cell_of, F.concat_ws("/", "campaign", "channel")).alias("cell"),
        F.col("propensity").cast("double").alias("p"),
    ).filter(F.col("cell").isNotNull())
    return (
        active.select("customer_id", "event_type", _event_month(config).alias("t0"))
        .groupBy("customer_id")
        .cogroup(cells.groupBy("customer_id"))
        .applyInPandas(
            lambda e, c: (
                build(e, c)
                if len(e)
                else pd.DataFrame(columns=["customer_id", "month_eligible", "month_propensity"])
            ),
            "customer_id string, month_eligible array<boolean>, month_propensity array<double>",
        )
    )


def upsert_revision(store: TableStore, rows: DataFrame, table: str, run_id: str, revision: int) -> None:
    """Replace revision ``revision`` of the run's rows in ``table`` (other revisions stay)."""
    if store.exists(table):
        kept = store.read_run(table, run_id).filter(F.col("revision") != F.lit(revision))
        rows = kept.unionByName(rows.select(*kept.columns))
    # Materialised first: the replacement must not read the files it replaces.
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    rows.count()
    store.replace_run(rows, table, run_id)
    rows.unpersist()


def _next_revision(store: TableStore, run_id: str) -> int:
    if not store.exists(LINEAGE_TABLE):
        return 1
    row = one_row(store.read_run(LINEAGE_TABLE, run_id).agg(F.max("revision").alias("r")))
    return int(row["r"] or 0) + 1


def run_triggers(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, executed_through: dt.date
) -> TriggerResult:
    """Apply the run's new events (see module docstring)."""
    from contact_spark.inputs import load_inputs

    check_run_id(run_id)
    require_run(store, "plan", run_id, "plan")
    if not store.exists("events"):
        raise TriggerError(
            "table 'events' does not exist: load the trigger events first (docs/input_contract.md)"
        )
    if not config.triggers.events:
        raise TriggerError(
            "the config has no triggers.events: say what each event type does (docs/adaptive.md)"
        )
    events = validate_input(store.read("events"), EVENTS).select(
        "customer_id", "event_type", F.col("event_time").cast("timestamp").alias("event_time")
    )
    months = config.run.months()
    start = month_index(config, executed_through, "executed_through") + 1
    if start >= len(months):
        raise TriggerError(f"nothing left to plan after {executed_through:%Y-%m}: the plan year ends there")
    start_month = months[start]
    inputs = load_inputs(store, config)
    check_history_until(inputs.contact_history, start_month)
    revision = _next_revision(store, run_id)
    eligibility = store.read_run("eligibility", run_id)
    seen = (
        store.read_run(TRIGGER_EVENTS_TABLE, run_id)
        if store.exists(TRIGGER_EVENTS_TABLE)
        else spark.createDataFrame([], TRIGGER_EVENT_SCHEMA)
    )
    fresh = events.join(seen.select(*EVENT_KEY), EVENT_KEY, "left_anti").dropDuplicates(EVENT_KEY)
    classified = classify_events(fresh, config, eligibility, start).persist(StorageLevel.MEMORY_AND_DISK)
    applied_new = classified.filter(F.col("status") == "applied")
    affected = applied_new.select("customer_id").distinct().persist(StorageLevel.MEMORY_AND_DISK)
    n_affected = affected.count()
    counts = {
        r["status"]: int(r["n"])
        for r in classified.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    if n_affected:
        drift = _replan_affected(
            spark,
            store,
            config,
            run_id,
            revision,
            start,
            inputs,
            eligibility,
            seen,
            applied_new,
            affected,
            n_affected,
            counts.get("applied", 0),
        )
    else:
        drift = {}
    # Events are recorded last: a crash before this point leaves them to the next run.
    upsert_revision(
        store,
        classified.select(
            F.lit(run_id).alias("run_id"), F.lit(revision).alias("revision"), *classified.columns
        ),
        TRIGGER_EVENTS_TABLE,
        run_id,
        revision,
    )
    classified.unpersist()
    affected.unpersist()
    log.info(
        "triggers for run %s (revision %d): %s, %d customers re-planned from %s",
        run_id,
        revision,
        counts,
        n_affected,
        start_month,
    )
    return TriggerResult(
        run_id,
        revision,
        counts.get("applied", 0),
        counts.get("rejected", 0),
        n_affected,
        start_month if n_affected else None,
        drift,
    )


def _replan_affected(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    revision: int,
    start: int,
    inputs: Inputs,
    eligibility: DataFrame,
    seen: DataFrame,
    applied_new: DataFrame,
    affected: DataFrame,
    n_customers: int,
    n_applied: int,
) -> dict[str, int]:
    months = config.run.months()
    start_month = months[start]
    history, customers = inputs.contact_history, inputs.customers
    # Every applied event of the affected customers (earlier revisions too) keeps its effect.
    active = (
        seen.filter(F.col("status") == "applied")
        .select(*EVENT_KEY)
        .unionByName(applied_new.select(*EVENT_KEY))
        .join(affected, "customer_id")
    )
    affected_elig = trigger_eligibility(
        spark,
        store,
        config,
        run_id,
        customers,
        inputs.propensities,
        affected,
        active,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    full_layout, _ = layout_for(config)
    plan = store.read_run("plan", run_id)
    window = rest_of_year(
        config,
        start,
        frozen_contacts(history, config, full_layout, start),
        eligibility,
        customers,
        store.read_run("capacity_sensitivity", run_id) if store.exists("capacity_sensitivity") else None,
        fixed_plan=plan.join(affected, "customer_id", "left_anti"),
    )
    sub_config = window.config
    scope = replace(
        window.scope, overlay=month_overlay(affected_elig, active, config, window.scope.layout, start)
    )
    solved = solve_plan(
        spark,
        store,
        sub_config,
        scope,
        affected_elig,
        history,
        customers,
        f"{run_id}.t{revision}",
        config_hash(config),
        contacts=best_contact_values(store, run_id),
    )
    new_rows = solved.plan.select(
        F.lit(run_id).alias("run_id"), *[c for c in solved.plan.columns if c != "run_id"]
    )
    new_rows = new_rows.persist(StorageLevel.MEMORY_AND_DISK)
    new_rows.count()
    old_rows = plan.join(affected, "customer_id").filter(F.col("month") >= F.lit(start_month))
    event_types = active.groupBy("customer_id").agg(
        F.concat(F.lit("TRIGGER:"), F.array_join(F.array_sort(F.collect_set("event_type")), "+")).alias(
            "reason"
        )
    )
    old_key = old_rows.select(*PLAN_KEY, F.lit(1).alias("_old"))
    new_key = new_rows.select(*PLAN_KEY, F.lit(1).alias("_new"))
    drift = (
        old_key.join(new_key, PLAN_KEY, "full_outer")
        .filter(F.col("_old").isNull() | F.col("_new").isNull())
        .select(*PLAN_KEY, F.when(F.col("_new").isNull(), "removed").otherwise("added").alias("change"))
        .join(event_types, "customer_id")
        .select(
            F.lit(run_id).alias("run_id"),
            F.lit(run_id).alias("parent_run_id"),
            F.lit(revision).alias("revision"),
            *PLAN_KEY,
            "change",
            "reason",
        )
    )
    upsert_revision(store, drift, DRIFT_TABLE, run_id, revision)
    # Merge: the run's rows of everybody else, and the affected customers' frozen months, stay.
    kept = plan.join(old_rows.select(*PLAN_KEY), PLAN_KEY, "left_anti")
    merged = kept.unionByName(new_rows.select(*plan.columns)).persist(StorageLevel.MEMORY_AND_DISK)
    merged.count()
    store.replace_run(merged, "plan", run_id)
    kept_elig = eligibility.join(affected, "customer_id", "left_anti")
    merged_elig = kept_elig.unionByName(affected_elig.select(*eligibility.columns)).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    merged_elig.count()
    store.replace_run(merged_elig, "eligibility", run_id)
    if store.exists("plan_quarantine"):
        quarantine = store.read_run("plan_quarantine", run_id)
        merged_q = quarantine.join(affected, "customer_id", "left_anti").unionByName(
            solved.quarantine.select(F.lit(run_id).alias("run_id"), "customer_id", "reason_code")
        )
        merged_q = merged_q.persist(StorageLevel.MEMORY_AND_DISK)
        merged_q.count()
        store.replace_run(merged_q, "plan_quarantine", run_id)
        merged_q.unpersist()
    upsert_revision(
        store,
        lineage_row(
            spark,
            run_id,
            run_id,
            "trigger",
            revision,
            config,
            start_month,
            months[start - 1],
            n_customers,
            n_applied,
            f"value={solved.capacity.primal_value:.6g} dual_bound={solved.capacity.dual_bound:.6g}",
        ),
        LINEAGE_TABLE,
        run_id,
        revision,
    )
    summary = {
        f"{r['change']}/{r['reason']}": int(r["n"])
        for r in store.read_run(DRIFT_TABLE, run_id)
        .filter(F.col("revision") == revision)
        .groupBy("change", "reason")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()  # a handful of (change, reason) rows
    }
    for df in (merged, merged_elig, new_rows, affected_elig):
        df.unpersist()
    solved.frame.unpersist()
    return summary
