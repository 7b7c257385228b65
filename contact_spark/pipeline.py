"""The pipeline: stages that read and write Delta tables through the table layer.

Each stage is a plain function usable from a job, a notebook or a test. Stages of
later milestones (cleaning, eligibility, planning, validation) join ``run_pipeline``
as they land; the run's stage timings and row counts are recorded per run_id.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from contact_spark.capacity.result import CapacityResult
from contact_spark.config.models import AppConfig
from contact_spark.contract import (
    CONTACT_HISTORY,
    CONTACTS,
    PROPENSITIES,
    customers_spec,
    validate_input,
)
from contact_spark.data.generator import generate_demo_data
from contact_spark.io.tables import LocalRows, TableStore
from contact_spark.realtime.snapshot import REALTIME_TABLE
from contact_spark.stages import RUN_STAGES_SCHEMA, run_stage

log = logging.getLogger(__name__)

INPUT_TABLE_NAMES = ("customers", "contacts", "contact_history", "propensities")


@dataclass(frozen=True)
class Inputs:
    """The four input tables, checked against the input contract."""

    customers: DataFrame
    contacts: DataFrame
    contact_history: DataFrame
    propensities: DataFrame


@dataclass
class StageTiming:
    stage: str
    seconds: float
    rows: int | None = None


@dataclass
class PipelineResult:
    """What a pipeline run produced: tables written, their locations, timings."""

    run_id: str
    tables: dict[str, str] = field(default_factory=dict)
    stages: list[StageTiming] = field(default_factory=list)
    report_path: str | None = None
    capacity: CapacityResult | None = None


@contextmanager
def timed(result: PipelineResult, stage: str) -> Iterator[StageTiming]:
    """Time a stage and record it on the result; the stage may set ``rows``."""
    timing = StageTiming(stage, 0.0)
    start = time.perf_counter()
    log.info("stage %s: start", stage)
    yield timing
    timing.seconds = round(time.perf_counter() - start, 3)
    result.stages.append(timing)
    log.info("stage %s: done in %.1fs rows=%s", stage, timing.seconds, timing.rows)


def write_demo_data(spark: SparkSession, store: TableStore, config: AppConfig) -> dict[str, str]:
    """Generate the demo customer base and overwrite the four input tables with it."""
    data = generate_demo_data(spark, config)
    written = {}
    for name in INPUT_TABLE_NAMES:
        store.overwrite(getattr(data, name), name)
        written[name] = store.location(name)
        log.info("wrote input table %s", name)
    return written


def load_inputs(store: TableStore, config: AppConfig) -> Inputs:
    """Read and check the input tables; a contract breach stops here, before any work."""
    specs = {
        "customers": customers_spec(config.channel_names),
        "contacts": CONTACTS,
        "contact_history": CONTACT_HISTORY,
        "propensities": PROPENSITIES,
    }
    frames = {name: validate_input(store.read(name), spec) for name, spec in specs.items()}
    if store.exists(REALTIME_TABLE):
        # Contacts confirmed through the real-time check count as history (docs/realtime.md).
        from contact_spark.realtime.history import with_realtime_contacts

        frames["contact_history"] = with_realtime_contacts(
            frames["contact_history"], store.read(REALTIME_TABLE)
        )
    return Inputs(**frames)


def record_stages(spark: SparkSession, store: TableStore, result: PipelineResult) -> None:
    """Write the run's stage timings to ``run_stages`` (replacing a rerun's rows)."""
    rows = [(result.run_id, i, s.stage, float(s.seconds), s.rows) for i, s in enumerate(result.stages)]
    store.replace_run(LocalRows.of(rows, RUN_STAGES_SCHEMA), "run_stages", result.run_id)
    result.tables["run_stages"] = store.location("run_stages")


Stage = Callable[[SparkSession, TableStore, AppConfig, Inputs, PipelineResult], None]


def run_pipeline(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    *,
    generate: bool = False,
    report_dir: str | None = "reports",
) -> PipelineResult:
    """Run every stage for ``run_id``: rerunning the same run_id replaces its rows."""
    result = PipelineResult(run_id=run_id)
    if generate:
        with timed(result, "generate") as t:
            result.tables.update(write_demo_data(spark, store, config))
            t.rows = store.read("customers").count()
    with timed(result, "load_inputs") as t:
        inputs = load_inputs(store, config)
        t.rows = inputs.customers.count()
    for name in INPUT_TABLE_NAMES:
        result.tables.setdefault(name, store.location(name))
    from contact_spark.propensity.stage import knowledge_stages

    for stage in ("contacts", *knowledge_stages(config), "eligibility", "plan"):
        outcome = run_stage(stage, spark, store, config, run_id, record=False, inputs=inputs)
        result.tables.update(outcome.tables)
        result.stages.append(StageTiming(stage, outcome.seconds, outcome.rows))
        if outcome.capacity is not None:
            result.capacity = outcome.capacity
    from contact_spark.validation.stage import run_checks_stages

    run_checks_stages(spark, store, config, run_id, result, timed, record_stages)
    from contact_spark.explain.decisions import DECISIONS_TABLE, run_decisions_stage

    with timed(result, "decisions") as t:  # every customer × campaign × channel: planned or why not
        t.rows = run_decisions_stage(spark, store, config, run_id)
        result.tables[DECISIONS_TABLE] = store.location(DECISIONS_TABLE)
    record_stages(spark, store, result)
    if report_dir:
        from contact_spark.report.html import write_run_report

        result.report_path = write_run_report(spark, store, config, result, report_dir)
    log.info("run %s finished at %s", run_id, dt.datetime.now(dt.timezone.utc).isoformat())
    return result
