"""The whole pipeline in one Spark application: every enabled stage of the registry, in order.

``run_pipeline`` runs the stages of ``contact_spark.stages.STAGES`` (``generate`` only
when asked, the report only with a report directory), records their timings and row
counts in ``run_stages`` once the recorded stages are done (also when validation fails,
so a failed run keeps its timings), then writes the report from the stored tables.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from contact_spark.capacity.result import CapacityResult
from contact_spark.config.models import AppConfig
from contact_spark.io.catalog import RUN_STAGES_TABLE
from contact_spark.io.run_lock import RunLock
from contact_spark.io.scenarios import Scenario, record_scenario
from contact_spark.io.tables import TableStore
from contact_spark.stages import STAGES, Stage, StageContext, StageOutcome, execute, record_stages

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """What a pipeline run produced: tables written, their locations, the stages' outcomes."""

    run_id: str
    tables: dict[str, str] = field(default_factory=dict)
    stages: list[StageOutcome] = field(default_factory=list)
    report_path: str | None = None
    capacity: CapacityResult | None = None


def pipeline_stages(config: AppConfig, *, generate: bool, report: bool) -> list[Stage]:
    """The registry's stages a run executes, in order."""
    return [
        stage
        for stage in STAGES
        if stage.enabled(config)
        and (generate or stage.name != "generate")
        and (report or stage.name != "report")
    ]


def run_pipeline(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    *,
    generate: bool = False,
    report_dir: str | None = "reports",
    lock: RunLock | None = None,
    scenario: Scenario | None = None,
) -> PipelineResult:
    """Run every stage for ``run_id``: rerunning the same run_id replaces its rows.

    With ``lock`` (held by the caller), the run stops before its next stage once another
    process took the run over. A ``scenario`` is recorded (and its base run checked) before
    the first stage, so a wrong base run costs nothing.
    """
    result = PipelineResult(run_id=run_id)
    if scenario is not None:
        record_scenario(store, run_id, scenario, config)
    ctx = StageContext(spark, store, config, run_id, report_dir=report_dir or "reports")
    recorded = False
    for stage in pipeline_stages(config, generate=generate, report=bool(report_dir)):
        if not stage.recorded and not recorded:
            # Stages that read run_stages (the report) come after the timings are written.
            record_stages(store, run_id, result.stages)
            recorded = True
        if lock is not None:
            lock.check()
        # The producers of every need ran just before in this loop: no Spark job to check them.
        outcome = execute(stage, ctx, needs_checked=True)
        result.tables.update(outcome.tables)
        if outcome.capacity is not None:
            result.capacity = outcome.capacity
        if "report_path" in outcome.details:
            result.report_path = str(outcome.details["report_path"])
        if stage.recorded:
            result.stages.append(outcome)
        if outcome.failure is not None:
            record_stages(store, run_id, result.stages)  # keep the timings of the failed run
            raise outcome.failure
    if not recorded:
        record_stages(store, run_id, result.stages)
    result.tables[RUN_STAGES_TABLE] = store.location(RUN_STAGES_TABLE)
    log.info("run %s finished at %s", run_id, dt.datetime.now(dt.timezone.utc).isoformat())
    return result
