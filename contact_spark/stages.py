"""One function per pipeline stage that reads its inputs from Delta and writes its outputs.

A scheduler (Databricks job, Airflow…) runs the stages as separate jobs —
``generate → contacts → eligibility → plan → report`` — each in its own Spark
application: every function here reads the input tables and the previous stages'
tables of the same ``run_id``, runs its stage, writes its tables, and records its
timing and row count in ``run_stages`` (a rerun replaces that stage's row).
``run_pipeline`` can call the same functions in one application.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.io.tables import LocalRows, TableStore, check_run_id

if TYPE_CHECKING:
    from contact_spark.capacity.result import CapacityResult
    from contact_spark.pipeline import Inputs

log = logging.getLogger(__name__)

# Order of the stages in a run (also the stage_order column of ``run_stages``).
STAGES = ("generate", "load_inputs", "contacts", "segments", "propensity", "eligibility", "plan", "report")
RUN_STAGES_SCHEMA = "run_id string, stage_order int, stage string, seconds double, rows long"

CONTACT_TABLES = ("contacts_clean", "contacts_rejected", "best_contacts", "contactability")
ELIGIBILITY_TABLES = ("eligibility", "eligibility_funnel", "inputs_rejected")
PLAN_TABLES = ("plan", "plan_quarantine", "capacity_iterations", "capacity_sensitivity", "plan_summary")
KNOWLEDGE_TABLES = (
    "customer_segments",
    "segment_profiles",
    "propensity_scores",
    "propensity_metrics",
    "propensity_calibration",
    "propensity_features",
)
INPUT_TABLES = ("customers", "contacts", "contact_history", "propensities")


class StageOrderError(ContactSparkError):
    """A stage was run before the stage whose tables it reads, for this run id."""


@dataclass
class StageOutcome:
    """What one stage wrote: table name → location, its row count and time."""

    stage: str
    run_id: str
    tables: dict[str, str] = field(default_factory=dict)
    rows: int | None = None
    seconds: float = 0.0
    details: dict[str, object] = field(default_factory=dict)
    capacity: CapacityResult | None = None  # the plan stage's solve and certificate


def require_run(store: TableStore, table: str, run_id: str, producer: str) -> None:
    """Stop with one line when ``table`` has no rows of ``run_id`` yet."""
    if not store.exists(table) or store.read_run(table, run_id).limit(1).count() == 0:
        raise StageOrderError(
            f"table '{table}' has no rows for run '{run_id}': run the {producer} stage "
            f"for this run first (same config and --run-id)"
        )


def generate_stage(spark: SparkSession, store: TableStore, config: AppConfig, run_id: str) -> StageOutcome:
    """Generate the seeded demo base into the four input tables (not run-scoped)."""
    from contact_spark.pipeline import write_demo_data

    out = StageOutcome("generate", run_id, write_demo_data(spark, store, config))
    out.rows = store.read("customers").count()
    return out


def contacts_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, inputs: Inputs | None = None
) -> StageOutcome:
    """Check the inputs (unless given, already checked), then clean, score and rank contacts."""
    from contact_spark.contacts.stage import run_contacts_stage
    from contact_spark.pipeline import load_inputs

    inputs = inputs or load_inputs(store, config)
    out = StageOutcome("contacts", run_id, run_contacts_stage(spark, store, config, inputs, run_id))
    out.rows = store.read_run("best_contacts", run_id).count()
    return out


def eligibility_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, inputs: Inputs | None = None
) -> StageOutcome:
    """Eligibility of every customer × campaign × channel from the run's best contacts."""
    from contact_spark.eligibility.stage import run_eligibility_stage
    from contact_spark.pipeline import load_inputs

    require_run(store, "best_contacts", run_id, "contacts")
    inputs = inputs or load_inputs(store, config)
    # Segments and learned propensities of the run, when configured (docs/propensity.md).
    from contact_spark.propensity.stage import eligibility_inputs

    customers, propensities = eligibility_inputs(store, config, run_id, inputs.customers, inputs.propensities)
    tables = run_eligibility_stage(spark, store, config, customers, propensities, run_id)
    out = StageOutcome("eligibility", run_id, tables)
    out.rows = store.read_run("eligibility", run_id).count()
    return out


def segments_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, inputs: Inputs | None = None
) -> StageOutcome:
    """Cluster the customers into behaviour segments (``customer_segments``, ``segment_profiles``)."""
    from contact_spark.pipeline import load_inputs
    from contact_spark.propensity.stage import run_segments_stage

    require_run(store, "contactability", run_id, "contacts")
    inputs = inputs or load_inputs(store, config)
    tables = run_segments_stage(spark, store, config, inputs.customers, inputs.contact_history, run_id)
    out = StageOutcome("segments", run_id, tables)
    out.rows = store.read_run("customer_segments", run_id).count()
    return out


def propensity_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, inputs: Inputs | None = None
) -> StageOutcome:
    """Train, calibrate, save and score one propensity model per campaign × channel."""
    from contact_spark.pipeline import load_inputs
    from contact_spark.propensity.stage import run_propensity_stage

    require_run(store, "best_contacts", run_id, "contacts")
    inputs = inputs or load_inputs(store, config)
    tables = run_propensity_stage(spark, store, config, inputs.customers, inputs.contact_history, run_id)
    out = StageOutcome("propensity", run_id, tables)
    out.rows = store.read_run("propensity_scores", run_id).count()
    return out


def plan_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, inputs: Inputs | None = None
) -> StageOutcome:
    """Per-customer schedules under the policy and the global capacities."""
    from contact_spark.pipeline import load_inputs
    from contact_spark.planning.stage import run_planning_stage

    require_run(store, "eligibility", run_id, "eligibility")
    inputs = inputs or load_inputs(store, config)
    planning = run_planning_stage(
        spark,
        store,
        config,
        store.read_run("eligibility", run_id),
        inputs.contact_history,
        inputs.customers,
        run_id,
        config_hash(config),
    )
    out = StageOutcome("plan", run_id, dict(planning.tables))
    out.rows = store.read_run("plan", run_id).count()
    capacity = out.capacity = planning.capacity
    if capacity is not None:
        out.details = {
            "iterations": capacity.iterations,
            "gap": capacity.gap,
            "value": capacity.primal_value,
            "dual_bound": capacity.dual_bound,
        }
    return out


def report_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, run_id: str, report_dir: str = "reports"
) -> StageOutcome:
    """The run's HTML report, from the tables and ``run_stages`` the other stages wrote."""
    from contact_spark.pipeline import PipelineResult, StageTiming
    from contact_spark.report.html import write_run_report

    require_run(store, "plan", run_id, "plan")
    result = PipelineResult(run_id=run_id)
    for name in (
        *INPUT_TABLES,
        *CONTACT_TABLES,
        *KNOWLEDGE_TABLES,
        *ELIGIBILITY_TABLES,
        *PLAN_TABLES,
        "run_stages",
    ):
        if store.exists(name):
            result.tables[name] = store.location(name)
    if store.exists("run_stages"):
        rows = store.read_run("run_stages", run_id).orderBy("stage_order").collect()
        result.stages = [StageTiming(r["stage"], r["seconds"], r["rows"]) for r in rows]
    out = StageOutcome("report", run_id, {})
    out.details["report_path"] = write_run_report(spark, store, config, result, report_dir)
    return out


STAGE_FUNCTIONS: dict[str, Callable[..., StageOutcome]] = {
    "generate": generate_stage,
    "contacts": contacts_stage,
    "segments": segments_stage,
    "propensity": propensity_stage,
    "eligibility": eligibility_stage,
    "plan": plan_stage,
    "report": report_stage,
}


def record_stage(spark: SparkSession, store: TableStore, outcome: StageOutcome) -> None:
    """Upsert the stage's row of ``run_stages`` (other stages' rows of the run are kept)."""
    run_id = check_run_id(outcome.run_id)
    new = LocalRows.of(
        [(run_id, STAGES.index(outcome.stage), outcome.stage, float(outcome.seconds), outcome.rows)],
        RUN_STAGES_SCHEMA,
    )
    if store.exists("run_stages"):
        # Collected first (a few rows): the replacement must not read the files it replaces.
        kept = store.read_run("run_stages", run_id).filter(F.col("stage") != outcome.stage)
        rows = [tuple(r) for r in kept.select(*new.columns).collect()]
        new = LocalRows(rows + new.rows, new.schema)
    store.replace_run(new, "run_stages", run_id)


def run_stage(
    stage: str,
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    *,
    record: bool = True,
    **kwargs: object,
) -> StageOutcome:
    """Run one stage by name, time it, log its counts and record it in ``run_stages``."""
    if stage not in STAGE_FUNCTIONS:
        raise ValueError(f"unknown stage '{stage}': one of {', '.join(STAGE_FUNCTIONS)}")
    check_run_id(run_id)
    log.info("stage %s: start (run %s, %s Delta backend)", stage, run_id, store.backend.name)
    start = time.perf_counter()
    outcome = STAGE_FUNCTIONS[stage](spark, store, config, run_id, **kwargs)
    outcome.seconds = round(time.perf_counter() - start, 3)
    extra = " ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in outcome.details.items()
    )
    log.info("stage %s: done in %.1fs rows=%s %s", stage, outcome.seconds, outcome.rows, extra)
    if record and stage != "report":
        record_stage(spark, store, outcome)
    return outcome
