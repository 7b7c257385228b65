"""Trigger runs: events of a few customers re-plan those customers and nobody else."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.adaptive.triggers import TriggerResult, run_triggers
from contact_spark.adaptive.window import shifted_config
from contact_spark.report.drift import drift_counts
from contact_spark.validation.stage import run_validation_stage

from .conftest import FEB, JAN, Replanned, copy_of

RUN = "year-r1"  # the trigger run updates the re-planned run (January executed)
MAR, APR, MAY = dt.date(2027, 3, 1), dt.date(2027, 4, 1), dt.date(2027, 5, 1)
EVENTS_SCHEMA = "customer_id string, event_type string, event_time timestamp, attributes map<string,string>"


@dataclass(frozen=True)
class Triggered:
    before: DataFrame  # the run's plan before the trigger run (materialised)
    result: TriggerResult
    again: TriggerResult
    mover: str
    complainer: str


def _pick(world: Replanned) -> tuple[str, str]:
    """A mover: reachable by SMS (eligible for CROSS_SELLING by SMS), no January contact;
    a complainer: planned contacts in February..April."""
    store = world.store
    january = world.executed.select("customer_id").distinct()
    mover = (
        store.read_run("eligibility", RUN)
        .filter((F.col("campaign") == "CROSS_SELLING") & (F.col("channel") == "SMS") & F.col("eligible"))
        .join(january, "customer_id", "left_anti")
        .orderBy("customer_id")
        .first()["customer_id"]
    )
    complainer = (
        store.read_run("plan", RUN)
        .filter(F.col("month").between(FEB, APR) & (F.col("customer_id") != mover))
        .groupBy("customer_id")
        .count()
        .orderBy(F.desc("count"), "customer_id")
        .first()["customer_id"]
    )
    return mover, complainer


@pytest.fixture(scope="module")
def world(spark: SparkSession, replanned: Replanned, tmp_path_factory: pytest.TempPathFactory) -> Replanned:
    """The re-planned year in its own lakehouse: the trigger runs below rewrite its plan."""
    return copy_of(spark, replanned, tmp_path_factory.mktemp("triggers") / "lakehouse")


@pytest.fixture(scope="module")
def triggered(spark: SparkSession, world: Replanned) -> Triggered:
    store, config = world.store, world.config
    mover, complainer = _pick(world)
    events = spark.createDataFrame(
        [
            (mover, "MOVE", dt.datetime(2027, 2, 3, 9), {"new_city": "Torino"}),
            (complainer, "COMPLAINT", dt.datetime(2027, 2, 2, 17), None),
            (complainer, "WON_LOTTERY", dt.datetime(2027, 1, 28, 17), None),
            ("C999999999", "MOVE", dt.datetime(2027, 1, 20), None),
            (mover, "CONTRACT_ENDING", dt.datetime(2026, 10, 1), None),
        ],
        EVENTS_SCHEMA,
    )
    store.overwrite(events, "events")
    before = spark.createDataFrame(store.read_run("plan", RUN).collect(), store.read_run("plan", RUN).schema)
    result = run_triggers(spark, store, config, RUN, JAN)
    again = run_triggers(spark, store, config, RUN, JAN)
    return Triggered(before, result, again, mover, complainer)


def test_nobody_else_s_plan_changes(world: Replanned, triggered: Triggered) -> None:
    others = [triggered.mover, triggered.complainer]
    after = world.store.read_run("plan", RUN).filter(~F.col("customer_id").isin(others))
    assert_df_equality(
        triggered.before.filter(~F.col("customer_id").isin(others)),
        after,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_the_mover_gets_the_triggered_campaign_only_while_the_event_lasts(
    world: Replanned, triggered: Triggered
) -> None:
    rows = (
        world.store.read_run("plan", RUN)
        .filter((F.col("customer_id") == triggered.mover) & (F.col("campaign") == "MOVING_HOME"))
        .select("month")
        .collect()
    )
    assert rows, "a mover worth 200 with a 10% SMS propensity is contacted"
    assert {r["month"] for r in rows} <= {FEB, MAR}
    assert world.store.read_run("plan", RUN).filter(F.col("campaign") == "MOVING_HOME").select(
        "customer_id"
    ).distinct().collect() == [(triggered.mover,)]


def test_a_complaint_clears_three_months(world: Replanned, triggered: Triggered) -> None:
    plan = world.store.read_run("plan", RUN).filter(F.col("customer_id") == triggered.complainer)
    assert plan.filter(F.col("month").between(FEB, APR)).count() == 0
    removed = (
        world.store.read_run("plan_drift", RUN)
        .filter(
            (F.col("customer_id") == triggered.complainer)
            & (F.col("change") == "removed")
            & (F.col("revision") == triggered.result.revision)
        )
        .select("reason")
        .distinct()
        .collect()
    )
    assert [r["reason"] for r in removed] == ["TRIGGER:COMPLAINT"]
    removed_in_window = (
        world.store.read_run("plan_drift", RUN)
        .filter(
            (F.col("customer_id") == triggered.complainer)
            & (F.col("change") == "removed")
            & (F.col("revision") == triggered.result.revision)
            & F.col("month").between(FEB, APR)
        )
        .count()
    )
    planned_in_window = triggered.before.filter(
        (F.col("customer_id") == triggered.complainer) & F.col("month").between(FEB, APR)
    ).count()
    assert removed_in_window == planned_in_window > 0


def test_every_event_is_applied_or_rejected_with_a_reason(world: Replanned, triggered: Triggered) -> None:
    got = {
        (r["event_type"], r["status"], r["reason"])
        for r in world.store.read_run("trigger_events", RUN).collect()
    }
    assert got == {
        ("MOVE", "applied", None),
        ("COMPLAINT", "applied", None),
        ("WON_LOTTERY", "rejected", "UNKNOWN_EVENT_TYPE"),
        ("MOVE", "rejected", "UNKNOWN_CUSTOMER"),
        ("CONTRACT_ENDING", "rejected", "EFFECT_ENDS_BEFORE_REPLANNED_MONTHS"),
    }
    assert (triggered.result.applied, triggered.result.rejected, triggered.result.customers) == (2, 3, 2)


def test_a_second_run_without_new_events_changes_nothing(world: Replanned, triggered: Triggered) -> None:
    assert (triggered.again.applied, triggered.again.rejected, triggered.again.customers) == (0, 0, 0)
    lineage = world.store.read_run("plan_lineage", RUN).filter(F.col("kind") == "trigger").collect()
    assert [(r["revision"], r["events"], r["customers_replanned"]) for r in lineage] == [(1, 2, 2)]


def test_the_merged_plan_passes_the_validator_and_the_yearly_budget(
    spark: SparkSession, world: Replanned, triggered: Triggered
) -> None:
    store = world.store
    rest_of_year = store.read_run("plan", RUN).filter(F.col("month") >= FEB)
    config = shifted_config(world.config, 1)
    assert (
        run_validation_stage(
            spark, store, config, RUN, plan=rest_of_year, table="trigger_violations", fail=False
        )
        == 0
    )
    sms = (
        world.executed.filter(F.col("channel") == "SMS").count()
        + rest_of_year.filter(F.col("channel") == "SMS").count()
    )
    assert sms * 0.06 <= 9.0 + 1e-9


def test_the_report_counts_the_trigger_revision_beside_the_replan(
    world: Replanned, triggered: Triggered
) -> None:
    """The drift section keeps the re-plan's recorded summary for revision 0 and counts the
    trigger run's added/removed contacts, with their TRIGGER reasons, under its revision."""
    counts = drift_counts(world.store, RUN)
    replan = {(change, reason) for rev, change, reason, *_ in counts if rev == 0}
    assert ("kept", "UNCHANGED") in replan
    trigger = [row for row in counts if row[0] == triggered.result.revision]
    assert trigger and all(reason.startswith("TRIGGER:") for _, _, reason, *_ in trigger)
    removed = world.store.read_run("plan_drift", RUN).filter(
        (F.col("revision") == triggered.result.revision) & (F.col("change") == "removed")
    )
    assert sum(n for _, change, _, n, _ in trigger if change == "removed") == removed.count()
