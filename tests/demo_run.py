"""The shared demo pipeline run's handle (the fixture itself is in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contact_spark.config import AppConfig
from contact_spark.io.tables import TableStore
from contact_spark.pipeline import PipelineResult

DEMO_RUN_ID = "demo-run"


@dataclass(frozen=True)
class DemoRun:
    """One pipeline run on a small demo base: its config, tables, result, report folder and
    the file its log went to."""

    config: AppConfig
    store: TableStore
    result: PipelineResult
    run_id: str
    report_dir: Path
    log_file: Path
