"""The body of the per-stage ``jobs/*.py`` entry points (each job is one call to :func:`stage_job`),
and the stage runner the re-plan job hands down to :func:`contact_spark.adaptive.replan.replan`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from contact_spark.cli import add_lock_arguments, base_parser, config_from_args, default_run_id, setup_logging
from contact_spark.config.models import AppConfig
from contact_spark.io.runs import Inputs
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.stages import StageOutcome, record_stage, run_stage


@dataclass(frozen=True)
class StageRunner:
    """Runs and records stages of one run for a layer below the stage registry (a re-plan:
    :class:`contact_spark.adaptive.replan.ReplanStages`)."""

    spark: SparkSession
    store: TableStore
    run_id: str

    def run(self, stage: str, config: AppConfig, inputs: Inputs) -> None:
        run_stage(stage, self.spark, self.store, config, self.run_id, inputs=inputs)

    def record(self, stage: str, tables: dict[str, str], seconds: float, rows: int) -> None:
        record_stage(self.spark, self.store, StageOutcome(stage, self.run_id, tables, rows, seconds))


def stage_job(
    stage: str,
    description: str,
    argv: Sequence[str] | None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    stage_kwargs: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
) -> int:
    """Parse arguments, load the config, run ``stage`` for the run id, print what it wrote.

    Wrap the caller's ``main`` in :func:`contact_spark.cli.main_guard`: a bad argument or
    config then ends the job with one line on stderr and exit code 2, before Spark starts.
    """
    from contact_spark.deploy import enable_wheel_imports

    enable_wheel_imports()  # before the config check imports the solver
    parser = base_parser(description)
    add_lock_arguments(parser)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    run_id = check_run_id(args.run_id or default_run_id(config))

    from contact_spark.deploy import job_session
    from contact_spark.io.run_lock import RunLock
    from contact_spark.io.tables import TableStore
    from contact_spark.stages import run_stage

    spark = job_session(f"contact_spark.{stage}")
    store = TableStore(spark, config.storage)
    with RunLock(store, run_id).hold(force=args.force):  # one process per run id
        outcome = run_stage(
            stage, spark, store, config, run_id, **(stage_kwargs(args) if stage_kwargs else {})
        )
    print(
        f"run {run_id} stage {stage} finished in {outcome.seconds:.1f}s ({store.backend.name} Delta backend)"
    )
    for name, location in sorted(outcome.tables.items()):
        print(f"  table {name:<20} {location}")
    if "report_path" in outcome.details:
        print(f"  report {outcome.details['report_path']}")
    return 0
