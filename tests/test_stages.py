"""The stage registry is consistent: unique names, one producer per table, needs produced
earlier (``run_pipeline`` relies on it to skip the needs check), the pipeline's selection."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from pyspark.sql import SparkSession

from contact_spark.baseline.greedy import BASELINE_TABLE
from contact_spark.config import load_config
from contact_spark.config.fingerprint import config_hash
from contact_spark.io.tables import TableStore
from contact_spark.pipeline import pipeline_stages
from contact_spark.stages import STAGES, producer, run_stage, stage_order
from contact_spark.validation.stage import BASELINE_VIOLATIONS


def test_names_are_unique_and_order_is_the_position() -> None:
    names = [s.name for s in STAGES]
    assert len(set(names)) == len(names)
    assert [stage_order(n) for n in names] == list(range(len(names)))


def test_every_table_has_one_producer_and_every_need_is_produced_earlier() -> None:
    produced = Counter(table for s in STAGES for table in s.produces)
    assert [t for t, n in produced.items() if n > 1] == []
    for stage in STAGES:
        for table in stage.needs:
            assert stage_order(producer(table).name) < stage_order(stage.name), (stage.name, table)


def test_the_pipeline_runs_the_enabled_stages_in_order() -> None:
    config = load_config()
    names = [s.name for s in pipeline_stages(config, generate=False, report=True)]
    assert names[0] == "load_inputs" and names[-1] == "report"
    assert "generate" not in names and "validate" in names
    assert names == sorted(names, key=stage_order)
    with_segments = load_config(overrides={"segments.enabled": True})
    assert "segments" in [s.name for s in pipeline_stages(with_segments, generate=True, report=False)]


def test_optional_stages_run_below_the_auto_limit_and_as_switched() -> None:
    """``auto`` means on below ``auto_max_customers``: the default runs both optional stages
    for a 999,999-customer base and neither for a million (issue 25)."""
    stages = load_config().stages
    assert (stages.runs("baseline", 999_999), stages.runs("decisions", 1_000_000)) == (True, False)
    # As YAML reads an unquoted off/on: a boolean.
    off = load_config(overrides={"stages.baseline": False, "stages.decisions": True}).stages
    assert (off.runs("baseline", 10), off.runs("decisions", 10_000_000)) == (False, True)


def test_the_switches_leave_the_run_id_alone() -> None:
    """They explain a plan, they do not change it: the run id (the config hash) stays."""
    assert config_hash(load_config(overrides={"stages.baseline": "off"})) == config_hash(load_config())


def test_a_stage_switched_off_removes_its_rows_of_the_run_and_no_other(
    spark: SparkSession, store: TableStore, lakehouse: Path
) -> None:
    """A rerun with the baseline off must not leave the earlier baseline of the same run
    behind (the report and the metrics would show it); other runs' rows stay."""
    config = load_config(overrides={"storage.base_path": str(lakehouse), "stages.baseline": "off"})
    mine, other = "202701-aaaaaaaaaa", "202701-bbbbbbbbbb"
    row = "run_id string, customer_id string, month date, campaign string, channel string"
    rows = [(run, "C1", dt.date(2027, 1, 1), "X", "DEM") for run in (mine, other)]
    for table in ("plan", BASELINE_TABLE):
        store.overwrite(spark.createDataFrame(rows, row), table, partition_by=["run_id"])
    outcome = run_stage("baseline", spark, store, config, mine, record=False)
    assert outcome.details == {"skipped": True}
    left = [r["run_id"] for r in store.read(BASELINE_TABLE).collect()]
    assert left == [other]
    assert not store.exists(BASELINE_VIOLATIONS)  # nothing else written
