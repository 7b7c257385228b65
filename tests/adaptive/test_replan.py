"""Monthly re-plan: January executed (with deviations), February..December re-planned."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.adaptive.replan import replan
from contact_spark.adaptive.window import ReplanWindowError, shifted_config
from contact_spark.report.drift import drift_counts, drift_section
from contact_spark.report.html import build_report
from contact_spark.stage_job import StageRunner
from contact_spark.validation.stage import run_validation_stage

from .conftest import FEB, JAN, Replanned


def test_the_replan_passes_the_validator_with_january_as_history(
    spark: SparkSession, replanned: Replanned
) -> None:
    """The validator reads the executed January from contact_history: every rolling window
    ending in February..December reaches back over it."""
    config = shifted_config(replanned.config, 1)
    assert run_validation_stage(spark, replanned.store, config, "year-r1", fail=False) == 0
    assert replanned.store.read_run("plan", "year-r1").agg(F.min("month")).first()[0] == FEB


def test_an_executed_call_moves_the_next_call_out_of_the_window(replanned: Replanned) -> None:
    """no_tls_in_consecutive_months: the February call planned before must go, and the
    drift says it is because the execution differed from the plan."""
    store = replanned.store
    feb_tls = store.read_run("plan", "year-r1").filter(
        (F.col("customer_id") == replanned.forced_tls_customer)
        & (F.col("month") == F.lit(FEB))
        & (F.col("channel") == "TLS")
    )
    assert feb_tls.count() == 0
    drift = store.read_run("plan_drift", "year-r1").filter(
        F.col("customer_id") == replanned.forced_tls_customer
    )
    removed = (
        drift.filter((F.col("month") == F.lit(FEB)) & (F.col("channel") == "TLS"))
        .select("change", "reason")
        .collect()
    )
    assert [tuple(r) for r in removed] == [("removed", "EXECUTION_DIFFERED")]
    off_plan = drift.filter(F.col("month") == F.lit(JAN)).select("channel", "change", "reason").collect()
    assert [tuple(r) for r in off_plan] == [("TLS", "executed_off_plan", "EXECUTED_OFF_PLAN")]


def test_contacts_not_executed_are_in_the_drift(replanned: Replanned) -> None:
    got = (
        replanned.store.read_run("plan_drift", "year-r1")
        .filter(F.col("change") == "not_executed")
        .select("customer_id", "campaign", "channel")
        .collect()
    )
    assert sorted(tuple(r) for r in got) == sorted(replanned.dropped)


def test_the_yearly_budget_carries_what_january_spent(replanned: Replanned) -> None:
    sms_in_january = replanned.executed.filter(F.col("channel") == "SMS").count()
    (row,) = (
        replanned.store.read_run("capacity_carryover", "year-r1")
        .filter(F.col("constraint_name") == "sms_budget:max")
        .collect()
    )
    assert row["frozen_usage"] == pytest.approx(0.06 * sms_in_january)
    assert row["remaining_bound"] == pytest.approx(9.0 - 0.06 * sms_in_january)
    spent = replanned.store.read_run("plan", "year-r1").filter(F.col("channel") == "SMS").count() * 0.06
    assert spent <= row["remaining_bound"] + 1e-9
    january_tls = (
        replanned.store.read_run("capacity_carryover", "year-r1")
        .filter(F.col("constraint_name") == "call_centre[2027-01]:max")
        .select("remaining_bound")
        .first()
    )
    assert january_tls["remaining_bound"] is None  # a closed month


def test_prices_start_from_the_parent_runs_shadow_prices(replanned: Replanned) -> None:
    store = replanned.store
    parent = {
        r["constraint_name"]: r["shadow_price"]
        for r in store.read_run("capacity_sensitivity", "year").collect()
    }
    first = store.read_run("capacity_iterations", "year-r1").filter(
        (F.col("phase") == "dual") & (F.col("iteration") == 0)
    )
    got = {r["constraint_name"]: r["price"] for r in first.collect()}
    assert got and got == {name: pytest.approx(parent[name]) for name in got}


def test_lineage_names_the_parent_and_the_window(replanned: Replanned) -> None:
    store = replanned.store
    (row,) = store.read_run("plan_lineage", "year-r1").collect()
    assert (row["parent_run_id"], row["kind"], row["replanned_from"], row["executed_through"]) == (
        "year",
        "replan",
        FEB,
        JAN,
    )
    kept = store.read_run("plan_drift_summary", "year-r1").filter(F.col("change") == "kept").first()
    assert kept["contacts"] > 0


def test_the_report_shows_the_drift_the_replan_recorded(spark: SparkSession, replanned: Replanned) -> None:
    """The re-plan's report (as jobs/report.py --run-id writes it) shows the recorded
    plan_drift_summary: the two planned January contacts not made, the one off-plan call, the
    contacts kept; and January's call centre, closed, with the calls it took. The parent run
    has no drift and says so."""
    store = replanned.store
    summary = {
        (r["change"], r["reason"]): (r["contacts"], r["customers"])
        for r in store.read_run("plan_drift_summary", "year-r1").collect()
    }
    counts = drift_counts(store, "year-r1")
    assert {rev for rev, *_ in counts} == {0}
    assert {(change, reason): (n, k) for _, change, reason, n, k in counts} == summary
    assert summary[("not_executed", "NOT_EXECUTED")] == (2, len({d[0] for d in replanned.dropped}))
    assert summary[("executed_off_plan", "EXECUTED_OFF_PLAN")] == (1, 1)
    report = build_report(spark, store, replanned.config, "year-r1")
    page = report[report.index("<h2>Re-plan drift</h2>") : report.index("<h2>Eligibility funnel</h2>")]
    assert "Re-plan of run year from February 2027, executed through January 2027" in page
    assert "<td>0</td><td class='text'>not_executed</td><td class='text'>NOT_EXECUTED</td><td>2</td>" in page
    assert "<td class='text'>call_centre[2027-01]:max</td><td>8.00</td>" in page
    assert replanned.forced_tls_customer not in page  # counts only, no customer
    assert "No drift to show: this run is not a re-plan" in drift_section(store, "year")


def test_a_history_running_past_the_window_is_refused(spark: SparkSession, replanned: Replanned) -> None:
    """Executed through December 2026 of a year starting then, while January is in the history."""
    config = replanned.config
    earlier = config.model_copy(
        update={"run": config.run.model_copy(update={"first_month": dt.date(2026, 12, 1)})}
    )
    with pytest.raises(
        ReplanWindowError, match=r"'contact_history' has [0-9]+ contact.* on or after 2027-01-01"
    ):
        replan(
            spark,
            replanned.store,
            earlier,
            "year",
            dt.date(2026, 12, 31),
            "bad",
            StageRunner(spark, replanned.store, "bad"),
        )
