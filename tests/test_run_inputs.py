"""A run reads the inputs it pinned: another run's generate, or inputs that change after
the run started, never leak into it; a rerun after the inputs changed is a fresh run."""

from __future__ import annotations

from pathlib import Path

from demo_run import small_demo_config
from pyspark.sql import SparkSession

from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.io.fingerprint import table_fingerprint
from contact_spark.io.run_inputs import pinned_versions, run_fingerprint
from contact_spark.io.tables import TableStore
from contact_spark.stages import BY_NAME, StageContext, execute


def demo_config(lakehouse: Path, seed: int) -> AppConfig:
    return small_demo_config(lakehouse, 40, **{"run.seed": seed})


def generate(spark: SparkSession, config: AppConfig, run_id: str) -> StageContext:
    ctx = StageContext(spark, TableStore(spark, config.storage), config, run_id)
    execute(BY_NAME["generate"], ctx, needs_checked=True)
    return ctx


def test_a_run_reads_its_own_generated_data_after_another_run_generates(
    spark: SparkSession, lakehouse: Path
) -> None:
    """Two --generate runs with different seeds in one lakehouse: before pinning, run a
    planned run b's data (both plans came out identical)."""
    a = generate(spark, demo_config(lakehouse, seed=1), "run-a")
    a_customers = table_fingerprint(a.inputs().customers)
    b = generate(spark, demo_config(lakehouse, seed=2), "run-b")
    assert table_fingerprint(b.inputs().customers) != a_customers
    # A later stage of run a, in a new application (a stage job), reads a's versions.
    later = StageContext(spark, a.store, a.config, "run-a")
    assert table_fingerprint(later.inputs().customers) == a_customers
    assert later.versions() == a.versions() != b.versions()
    assert set(pinned_versions(a.store, "run-a")) == {
        "customers",
        "contacts",
        "contact_history",
        "propensities",
    }


def test_generating_the_same_configuration_again_keeps_the_data_and_its_versions(
    spark: SparkSession, lakehouse: Path
) -> None:
    """A rerun of a --generate run reads the same versions, so a crashed run can resume."""
    config = demo_config(lakehouse, seed=1)
    first = generate(spark, config, "run-a")
    commits = first.store.version("customers")
    again = generate(spark, config, "run-a")
    assert again.versions() == first.versions()
    assert first.store.version("customers") == commits  # nothing written


def test_a_rerun_after_the_inputs_changed_has_another_fingerprint(
    spark: SparkSession, lakehouse: Path
) -> None:
    """Before, the plan's recorded iterations were keyed by the config alone: a rerun with
    new inputs resumed the 27 price iterations of the old ones."""
    config = demo_config(lakehouse, seed=1)
    first = generate(spark, config, "seeded")
    run = StageContext(spark, first.store, config, "run-x")
    run.start_inputs()  # the run's first stage (contacts) pins the latest versions
    before = run_fingerprint(config_hash(config), run.versions())
    store = first.store
    store.append(store.read("propensities").limit(1), "propensities")  # a new export arrives
    rerun = StageContext(spark, store, config, "run-x")
    rerun.start_inputs()
    after = run_fingerprint(config_hash(config), rerun.versions())
    assert after != before
    # Stages after the first, in other applications, see the rerun's pin.
    assert StageContext(spark, store, config, "run-x").versions() == rerun.versions()
    # Regenerating the demo over the changed tables writes it again (the data was not ours).
    assert generate(spark, config, "seeded").versions()["propensities"] > first.versions()["propensities"]
