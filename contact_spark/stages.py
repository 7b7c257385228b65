"""The stage registry: every stage of a run, what it reads, what it writes, how it runs.

``STAGES`` lists the stages in run order; each ``Stage`` names the run-scoped tables it
needs from earlier stages (checked before it runs), the tables it produces, the function
that runs it and the ``jobs/*.py`` entry point that runs it alone. Everything that runs
stages is derived from this list or checked against it by a test:

* ``run_pipeline`` runs every enabled stage in one Spark application;
* each stage job (``contact_spark.stage_job``) runs one stage in its own application;
* ``notebooks/run_pipeline.py`` offers the stage names as its choices;
* ``databricks.yml`` has one task per stage with a job (but ``generate``), each after the
  one before it in this order (``tests/deploy/test_databricks.py``).

A stage's position in ``STAGES`` is its ``stage_order`` in ``run_stages``. Re-plan and
trigger runs are not stages: they start from a parent run's plan and re-run some of
these stages themselves (``contact_spark.adaptive``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contact_spark.baseline.greedy import BASELINE_TABLE, run_baseline_stage
from contact_spark.capacity.result import CapacityResult
from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.config.stages import OptionalStage
from contact_spark.contacts.stage import run_contacts_stage
from contact_spark.eligibility.stage import run_eligibility_stage
from contact_spark.explain.decisions import DECISIONS_TABLE, run_decisions_stage
from contact_spark.inputs import PINNED_TABLES, load_inputs, write_demo_data
from contact_spark.io.catalog import (
    CONTACT_TABLES,
    ELIGIBILITY_TABLES,
    INPUT_TABLES,
    PLAN_TABLES,
    PROPENSITY_TABLES,
    RUN_STAGES_TABLE,
    SEGMENT_TABLES,
)
from contact_spark.io.history import normalise_history
from contact_spark.io.run_inputs import (
    current_versions,
    optional_stage_runs,
    pin_inputs,
    pinned_versions,
    run_fingerprint,
)
from contact_spark.io.runs import RUN_STAGES_SCHEMA, EmptyStageError, Inputs, require_run
from contact_spark.io.tables import LocalRows, TableStore, check_run_id
from contact_spark.planning.stage import run_planning_stage
from contact_spark.propensity.stage import eligibility_inputs, run_propensity_stage, run_segments_stage
from contact_spark.report.html import write_run_report
from contact_spark.validation.metrics import METRICS_TABLE, write_run_metrics
from contact_spark.validation.run import PlanValidationError
from contact_spark.validation.stage import (
    BASELINE_VIOLATIONS,
    VIOLATIONS_TABLE,
    raise_for_violations,
    run_validation_stage,
)

log = logging.getLogger(__name__)


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
    # Raised by the runner after the stage is recorded (the validation's violations), so
    # that a failed run keeps its timings.
    failure: Exception | None = None


@dataclass
class StageContext:
    """What a stage function gets: the session, the tables, the config and the run."""

    spark: SparkSession
    store: TableStore
    config: AppConfig
    run_id: str
    report_dir: str = "reports"
    loaded: Inputs | None = None
    # The input versions the run reads (``io.run_inputs``); None until pinned or looked up.
    input_versions: dict[str, int] | None = None

    def pin_inputs(self, versions: dict[str, int] | None = None, source: str = "latest") -> None:
        """Pin the run's inputs: ``versions`` (those a generate wrote), else the latest."""
        self.input_versions = (
            versions if versions is not None else current_versions(self.store, PINNED_TABLES)
        )
        pin_inputs(self.store, self.run_id, self.input_versions, source)
        self.loaded = None

    def start_inputs(self) -> None:
        """The first stage of a run reading inputs: pins the latest versions unless this
        application pinned them already (a generate just wrote them). A rerun of the run
        thus reads the inputs as they are now."""
        if self.input_versions is None:
            self.pin_inputs()

    def versions(self) -> dict[str, int]:
        """The run's pinned input versions (pinned now if the run has none yet)."""
        if self.input_versions is None:
            self.input_versions = pinned_versions(self.store, self.run_id) or None
            if self.input_versions is None:
                self.pin_inputs()
        assert self.input_versions is not None
        return self.input_versions

    def inputs(self) -> Inputs:
        """The checked input tables as of the run's pinned versions, read once per context."""
        if self.loaded is None:
            self.loaded = load_inputs(self.store, self.config, self.versions())
        return self.loaded

    def outcome(self, stage: str, tables: dict[str, str], count_table: str | None = None) -> StageOutcome:
        """An outcome whose row count is the run's rows of ``count_table``."""
        out = StageOutcome(stage, self.run_id, dict(tables))
        if count_table is not None:
            out.rows = self.store.read_run(count_table, self.run_id).count()
        return out


StageFunction = Callable[[StageContext], StageOutcome]


def _always(config: AppConfig) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One stage of a run (see module docstring)."""

    name: str
    description: str
    function: StageFunction
    needs: tuple[str, ...] = ()  # run-scoped tables of earlier stages, checked first
    produces: tuple[str, ...] = ()
    job: str | None = None  # jobs/<job>.py runs the stage alone
    enabled: Callable[[AppConfig], bool] = _always
    recorded: bool = True  # a row in run_stages (the report reads them, so it has none)


# ------------------------------------------------------------------ the stage functions
def _generate(ctx: StageContext) -> StageOutcome:
    ctx.pin_inputs(write_demo_data(ctx.spark, ctx.store, ctx.config), source="generate")
    out = ctx.outcome("generate", {name: ctx.store.location(name) for name in INPUT_TABLES})
    out.rows = ctx.inputs().customers.count()
    return out


def _load_inputs(ctx: StageContext) -> StageOutcome:
    ctx.start_inputs()
    out = ctx.outcome("load_inputs", {name: ctx.store.location(name) for name in INPUT_TABLES})
    out.rows = ctx.inputs().customers.count()
    return out


def _contacts(ctx: StageContext) -> StageOutcome:
    ctx.start_inputs()
    tables = run_contacts_stage(ctx.spark, ctx.store, ctx.config, ctx.inputs(), ctx.run_id)
    out = ctx.outcome("contacts", tables, "best_contacts")
    if out.rows == 0:
        raise EmptyStageError(
            f"run '{ctx.run_id}': no customer has a usable contact (best_contacts is empty); "
            f"contacts_rejected gives the reason for every contact refused"
        )
    return out


def _segments(ctx: StageContext) -> StageOutcome:
    inputs = ctx.inputs()
    tables = run_segments_stage(
        ctx.spark, ctx.store, ctx.config, inputs.customers, inputs.contact_history, ctx.run_id
    )
    return ctx.outcome("segments", tables, "customer_segments")


def _propensity(ctx: StageContext) -> StageOutcome:
    inputs = ctx.inputs()
    tables = run_propensity_stage(
        ctx.spark, ctx.store, ctx.config, inputs.customers, inputs.contact_history, ctx.run_id
    )
    return ctx.outcome("propensity", tables, "propensity_scores")


def _eligibility(ctx: StageContext) -> StageOutcome:
    inputs = ctx.inputs()
    # Segments and learned propensities of the run, when configured (docs/propensity.md).
    customers, propensities = eligibility_inputs(
        ctx.store, ctx.config, ctx.run_id, inputs.customers, inputs.propensities
    )
    # The history table as exported (realtime confirmations aside), for its rejected rows.
    history = normalise_history(
        ctx.store.read("contact_history", version=ctx.versions().get("contact_history")),
        ctx.config.campaign_names,
        ctx.config.channel_names,
    )
    tables = run_eligibility_stage(
        ctx.spark, ctx.store, ctx.config, customers, propensities, ctx.run_id, contact_history=history
    )
    return ctx.outcome("eligibility", tables, "eligibility")


def _plan(ctx: StageContext) -> StageOutcome:
    inputs = ctx.inputs()
    planning = run_planning_stage(
        ctx.spark,
        ctx.store,
        ctx.config,
        ctx.store.read_run("eligibility", ctx.run_id),
        inputs.contact_history,
        inputs.customers,
        ctx.run_id,
        # Recorded price iterations resume only with the same config *and* inputs.
        run_fingerprint(config_hash(ctx.config), ctx.versions()),
    )
    out = ctx.outcome("plan", planning.tables, "plan")
    capacity = out.capacity = planning.capacity
    if capacity is not None:
        out.details = {
            "iterations": capacity.iterations,
            "gap": capacity.gap,
            "value": capacity.primal_value,
            "dual_bound": capacity.dual_bound,
        }
    return out


def _validate(ctx: StageContext) -> StageOutcome:
    out = ctx.outcome("validate", {VIOLATIONS_TABLE: ctx.store.location(VIOLATIONS_TABLE)})
    # Written first, failed after: the runner records the stage, then raises.
    out.rows = run_validation_stage(ctx.spark, ctx.store, ctx.config, ctx.run_id, fail=False)
    if out.rows:
        try:
            raise_for_violations(ctx.store, ctx.run_id)
        except PlanValidationError as error:
            out.failure = error
    return out


def _skipped(ctx: StageContext, stage: OptionalStage, tables: tuple[str, ...]) -> StageOutcome:
    """An optional stage the config turns off for this run: its tables lose the run's rows
    (a rerun with the stage off leaves no stale rows behind), and nothing else is written."""
    for table in tables:
        if ctx.store.exists(table):
            empty = ctx.spark.createDataFrame([], ctx.store.read(table).schema)
            ctx.store.replace_run(empty, table, ctx.run_id)
    log.info(
        "stage %s: off for this run (stages.%s=%s, auto below %d customers): skipped",
        stage,
        stage,
        getattr(ctx.config.stages, stage),
        ctx.config.stages.auto_max_customers,
    )
    out = ctx.outcome(stage, {})
    out.details["skipped"] = True
    return out


def _baseline(ctx: StageContext) -> StageOutcome:
    if not optional_stage_runs(ctx.store, ctx.config, ctx.run_id, "baseline"):
        return _skipped(ctx, "baseline", (BASELINE_TABLE, BASELINE_VIOLATIONS))
    tables = run_baseline_stage(ctx.spark, ctx.store, ctx.config, ctx.run_id)
    baseline = ctx.store.read_run(BASELINE_TABLE, ctx.run_id)
    # The greedy plan is checked by the same validator, without failing the run.
    run_validation_stage(
        ctx.spark, ctx.store, ctx.config, ctx.run_id, plan=baseline, table=BASELINE_VIOLATIONS, fail=False
    )
    out = ctx.outcome("baseline", {**tables, BASELINE_VIOLATIONS: ctx.store.location(BASELINE_VIOLATIONS)})
    out.rows = baseline.count()
    return out


def _metrics(ctx: StageContext) -> StageOutcome:
    out = ctx.outcome("metrics", {})
    out.rows = write_run_metrics(ctx.spark, ctx.store, ctx.config, ctx.run_id)
    out.tables[METRICS_TABLE] = ctx.store.location(METRICS_TABLE)
    return out


def _decisions(ctx: StageContext) -> StageOutcome:
    if not optional_stage_runs(ctx.store, ctx.config, ctx.run_id, "decisions"):
        return _skipped(ctx, "decisions", (DECISIONS_TABLE,))
    out = ctx.outcome("decisions", {})
    # Every customer × campaign × channel: planned, or why not.
    out.rows = run_decisions_stage(ctx.spark, ctx.store, ctx.config, ctx.run_id)
    out.tables[DECISIONS_TABLE] = ctx.store.location(DECISIONS_TABLE)
    return out


def _report(ctx: StageContext) -> StageOutcome:
    out = ctx.outcome("report", {})
    out.details["report_path"] = write_run_report(
        ctx.spark, ctx.store, ctx.config, ctx.run_id, ctx.report_dir
    )
    return out


def _segments_on(config: AppConfig) -> bool:
    return config.segments.enabled


def _learned_propensities(config: AppConfig) -> bool:
    return config.propensity.source == "model"


# ------------------------------------------------------------------------ the registry
STAGES: tuple[Stage, ...] = (
    Stage(
        "generate",
        "Generate the seeded demo customer base into the four input tables (not run-scoped).",
        _generate,
        produces=INPUT_TABLES,
        job="generate_demo_data",
    ),
    Stage("load_inputs", "Read the input tables and check them against the input contract.", _load_inputs),
    Stage(
        "contacts",
        "Check the inputs, then clean, score and rank the contacts.",
        _contacts,
        produces=CONTACT_TABLES,
        job="clean_contacts",
    ),
    Stage(
        "segments",
        "Cluster the customers into behaviour segments.",
        _segments,
        needs=("contactability",),
        produces=SEGMENT_TABLES,
        job="segment_customers",
        enabled=_segments_on,
    ),
    Stage(
        "propensity",
        "Train, calibrate, save and score one propensity model per campaign × channel.",
        _propensity,
        needs=("best_contacts",),
        produces=PROPENSITY_TABLES,
        job="train_propensity",
        enabled=_learned_propensities,
    ),
    Stage(
        "eligibility",
        "Eligibility of every customer × campaign × channel from the run's best contacts.",
        _eligibility,
        needs=("best_contacts",),
        produces=ELIGIBILITY_TABLES,
        job="eligibility",
    ),
    Stage(
        "plan",
        "Per-customer schedules under the policy and the global capacities.",
        _plan,
        needs=("eligibility",),
        produces=PLAN_TABLES,
        job="plan",
    ),
    Stage(
        "validate",
        "Re-check the plan independently of the solver (consent, eligibility, policy, capacities).",
        _validate,
        needs=("plan",),
        produces=(VIOLATIONS_TABLE,),
        job="validate_plan",
    ),
    Stage(
        "baseline",
        "The greedy baseline plan, validated by the same checks (never failing the run).",
        _baseline,
        needs=("plan",),
        produces=(BASELINE_TABLE, BASELINE_VIOLATIONS),
        job="baseline",
    ),
    Stage(
        "metrics",
        "Run metrics of the plan and the baseline (run_metrics).",
        _metrics,
        needs=("plan",),
        produces=(METRICS_TABLE,),
        job="metrics",
    ),
    Stage(
        "decisions",
        "Every customer × campaign × channel: planned, or the reason why not.",
        _decisions,
        needs=("plan",),
        produces=(DECISIONS_TABLE,),
        job="decisions",
    ),
    Stage(
        "report",
        "The run's HTML report, from the tables and run_stages the other stages wrote.",
        _report,
        needs=("plan",),
        job="report",
        recorded=False,
    ),
)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def stage_order(name: str) -> int:
    """The ``stage_order`` of a stage in ``run_stages``: its position in ``STAGES``."""
    return STAGES.index(BY_NAME[name])


def producer(table: str) -> Stage:
    """The stage that writes ``table``."""
    for stage in STAGES:
        if table in stage.produces:
            return stage
    raise KeyError(f"no stage produces table '{table}'")


def check_needs(stage: Stage, store: TableStore, run_id: str) -> None:
    """Stop with one line when a table the stage reads has no rows of the run yet."""
    for table in stage.needs:
        require_run(store, table, run_id, producer(table).name)


def record_stage(spark: SparkSession, store: TableStore, outcome: StageOutcome) -> None:
    """Upsert the stage's row of ``run_stages`` (other stages' rows of the run are kept)."""
    run_id = check_run_id(outcome.run_id)
    new = LocalRows.of(
        [(run_id, stage_order(outcome.stage), outcome.stage, float(outcome.seconds), outcome.rows)],
        RUN_STAGES_SCHEMA,
    )
    if store.exists(RUN_STAGES_TABLE):
        # Collected first (a few rows): the replacement must not read the files it replaces.
        kept = store.read_run(RUN_STAGES_TABLE, run_id).filter(F.col("stage") != outcome.stage)
        rows = [tuple(r) for r in kept.select(*new.columns).collect()]
        new = LocalRows(rows + new.rows, new.schema)
    store.replace_run(new, RUN_STAGES_TABLE, run_id)


def record_stages(store: TableStore, run_id: str, outcomes: list[StageOutcome]) -> None:
    """Replace the run's ``run_stages`` rows by ``outcomes`` (a whole run's timings)."""
    rows = [(run_id, stage_order(o.stage), o.stage, float(o.seconds), o.rows) for o in outcomes]
    store.replace_run(LocalRows.of(rows, RUN_STAGES_SCHEMA), RUN_STAGES_TABLE, run_id)


def execute(stage: Stage, ctx: StageContext, *, needs_checked: bool = False) -> StageOutcome:
    """Check the stage's needs (unless ``needs_checked``), run it, time it and log its
    counts (nothing recorded)."""
    check_run_id(ctx.run_id)
    log.info("stage %s: start (run %s, %s Delta backend)", stage.name, ctx.run_id, ctx.store.backend.name)
    start = time.perf_counter()
    if not needs_checked:
        check_needs(stage, ctx.store, ctx.run_id)
    outcome = stage.function(ctx)
    outcome.seconds = round(time.perf_counter() - start, 3)
    extra = " ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in outcome.details.items()
    )
    log.info("stage %s: done in %.1fs rows=%s %s", stage.name, outcome.seconds, outcome.rows, extra)
    return outcome


def run_stage(
    name: str,
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    *,
    record: bool = True,
    inputs: Inputs | None = None,
    report_dir: str = "reports",
) -> StageOutcome:
    """Run one stage by name, time it, record it in ``run_stages``; raise its failure after.

    ``inputs`` are the already checked input tables (read from the store when omitted). A
    stage the config turns off (segments, learned propensities) is skipped: its tables
    would be ignored by the stages after it.
    """
    if name not in BY_NAME:
        raise ValueError(f"unknown stage '{name}': one of {', '.join(BY_NAME)}")
    ctx = StageContext(spark, store, config, run_id, report_dir=report_dir, loaded=inputs)
    stage = BY_NAME[name]
    if not stage.enabled(config):
        log.info("stage %s: off in this configuration, skipped (run %s)", name, run_id)
        return StageOutcome(name, run_id, details={"skipped": True})
    outcome = execute(stage, ctx)
    if record and stage.recorded:
        record_stage(spark, store, outcome)
    if outcome.failure is not None:
        raise outcome.failure
    return outcome
