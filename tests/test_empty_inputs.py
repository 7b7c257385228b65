"""Empty inputs stop with one line saying so, not with a stage-order message after the
stage that found nothing (before: "'best_contacts' has no rows … run the contacts stage
first", just after the contacts stage ran)."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_run import small_demo
from pyspark.sql import SparkSession

from contact_spark.config.models import AppConfig
from contact_spark.errors import InputContractError
from contact_spark.io.runs import EmptyStageError, StageOrderError, require_run
from contact_spark.io.tables import TableStore
from contact_spark.stages import StageOutcome, record_stage, run_stage


@pytest.fixture
def demo(spark: SparkSession, lakehouse: Path) -> tuple[AppConfig, TableStore]:
    return small_demo(spark, lakehouse, 30)


def test_no_customers_stops_at_the_inputs(spark: SparkSession, demo: tuple[AppConfig, TableStore]) -> None:
    config, store = demo
    store.overwrite(store.read("customers").limit(0), "customers")
    with pytest.raises(
        InputContractError, match=r"^input table 'customers' has no rows: there is nobody to plan for$"
    ):
        run_stage("contacts", spark, store, config, "r1")


def test_no_usable_contact_stops_the_contacts_stage(
    spark: SparkSession, demo: tuple[AppConfig, TableStore]
) -> None:
    config, store = demo
    store.overwrite(store.read("contacts").limit(0), "contacts")
    with pytest.raises(EmptyStageError, match="run 'r1': no customer has a usable contact"):
        run_stage("contacts", spark, store, config, "r1")
    assert store.read_run("contacts_rejected", "r1").count() == 0  # written: nothing was refused


def test_a_stage_that_ran_and_wrote_nothing_is_not_reported_as_not_run(
    spark: SparkSession, demo: tuple[AppConfig, TableStore]
) -> None:
    _, store = demo
    with pytest.raises(StageOrderError, match="run the contacts stage for this run first"):
        require_run(store, "best_contacts", "r1", "contacts")
    record_stage(spark, store, StageOutcome("contacts", "r1", rows=0))
    with pytest.raises(
        EmptyStageError, match="the contacts stage of run 'r1' wrote no rows to table 'best_contacts'"
    ):
        require_run(store, "best_contacts", "r1", "contacts")
