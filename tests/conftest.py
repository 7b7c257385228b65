"""Shared fixtures: one real local SparkSession for the whole test session, with native Delta."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from demo_run import DEMO_RUN_ID, DemoRun
from pyspark.sql import SparkSession
from spark_conf import TINY_INPUTS, delta_conf, submit_args, with_jdbc_drivers

from contact_spark.config import AppConfig, load_config
from contact_spark.config.models import StorageSettings
from contact_spark.io.tables import TableStore
from contact_spark.pipeline import run_pipeline
from contact_spark.spark import get_spark

# Every Spark a test starts in a subprocess (jobs, lock holders) gets the tiny-input settings.
os.environ["PYSPARK_SUBMIT_ARGS"] = submit_args(TINY_INPUTS)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    session = get_spark(
        "contact_spark-tests",
        local_cores=2,
        ui=False,
        extra_conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "4",
            "spark.driver.memory": "3g",
            # Catalog tables (saveAsTable) land in a temporary warehouse, not in the repo.
            "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse")),
            **with_jdbc_drivers(delta_conf()),
            **TINY_INPUTS,
        },
    )
    yield session
    session.stop()


@pytest.fixture
def lakehouse(tmp_path: Path) -> Path:
    return tmp_path / "lakehouse"


@pytest.fixture
def store(spark: SparkSession, lakehouse: Path) -> TableStore:
    return TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="deltalake"))


@pytest.fixture
def small_config(lakehouse: Path) -> AppConfig:
    """The default config, pointed at the test's lakehouse, with a small demo base."""
    return load_config(
        overrides={"storage.base_path": str(lakehouse), "demo.customers": 300, "demo.partitions": 2}
    )


@pytest.fixture(scope="session")
def demo_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The whole pipeline once on a 200-customer demo base, shared by the tests that only
    read its outputs (the heaviest fixture of the suite).

    ``backend: auto`` picks native Delta here (the session loads the Delta jars): this is the
    suite's end-to-end run on native Delta, checked against the pinned plan
    (tests/test_plan_pinned.py) and read back through delta-rs by the real-time tests.
    """
    root = tmp_path_factory.mktemp("demo")
    config = load_config(
        overrides={"storage.base_path": str(root / "lakehouse"), "demo.customers": 200, "demo.partitions": 2}
    )
    store = TableStore(spark, config.storage)
    assert store.backend.name == "spark"
    reports = root / "reports"
    log_file = root / "logs" / "pipeline.log"
    with run_log(log_file):
        result = run_pipeline(spark, store, config, DEMO_RUN_ID, generate=True, report_dir=str(reports))
    return DemoRun(config, store, result, DEMO_RUN_ID, reports, log_file)


@contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Write what the run logs to ``path``, as a job does (``cli.setup_logging``: INFO, py4j
    and pyspark at WARNING) and the library's DEBUG lines too, for the privacy scan
    (tests/faults/test_raw_contacts.py). Levels are restored afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    levels = {
        "": logging.INFO,
        "contact_spark": logging.DEBUG,
        "py4j": logging.WARNING,
        "pyspark": logging.WARNING,
    }
    before = {name: logging.getLogger(name).level for name in levels}
    root = logging.getLogger()
    root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
