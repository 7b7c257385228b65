"""The shared demo pipeline run's handle (the fixture itself is in conftest.py), and small
demo lakehouses for tests that run stages themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from contact_spark.config import AppConfig, load_config
from contact_spark.inputs import write_demo_data
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


def small_demo_config(lakehouse: Path, customers: int, **overrides: Any) -> AppConfig:
    """The default config on a demo base of ``customers`` in ``lakehouse`` (delta-rs, one
    partition); ``overrides`` as dotted keys (``**{"run.seed": 3}``)."""
    return load_config(
        overrides={
            "storage.base_path": str(lakehouse),
            "storage.backend": "deltalake",
            "demo.customers": customers,
            "demo.partitions": 1,
            **overrides,
        }
    )


def small_demo(
    spark: SparkSession, lakehouse: Path, customers: int, **overrides: Any
) -> tuple[AppConfig, TableStore]:
    """:func:`small_demo_config` (with ``overrides``) with its demo input tables written."""
    config = small_demo_config(lakehouse, customers, **overrides)
    store = TableStore(spark, config.storage)
    write_demo_data(spark, store, config)
    return config, store
