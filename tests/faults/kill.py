"""Killing a real pipeline run, for the fault tests (not a test module).

A real process (``jobs/run_pipeline.py``) killed with SIGKILL, JVM included, as an
operator's ``kill -9`` or a lost cluster driver would. CI kills one in its price iterations
and resumes it with the wheel on a standalone cluster
(tests/deploy/test_standalone_cluster.py); ``make faults`` kills at every stage
(tests/faults/test_kill_every_stage.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deltalake import DeltaTable
from pyspark.sql import SparkSession

from contact_spark.config.models import StorageSettings
from contact_spark.io.fingerprint import table_fingerprint
from contact_spark.io.tables import TableStore

ROOT = Path(__file__).resolve().parents[2]
# The pinned 200-customer demo plan (tests/test_plan_pinned.py), rows as there.
sys.path.insert(0, str(ROOT / "tests"))
from test_plan_pinned import DEMO_PLAN_FINGERPRINT  # noqa: E402

# The shared demo run's base (tests/conftest.py, plan pinned) without the explaining stages
# (the shared demo run covers them; CI's budget is tight), as the killed run and the cluster
# run that resumes it both give it.
DEMO_RUN_ARGS = [
    "--generate",
    "--set",
    "demo.customers=200",
    "--set",
    "demo.partitions=2",
    "--set",
    "stages.baseline=off",
    "--set",
    "stages.decisions=off",
]


def run_arguments(base: Path) -> list[str]:
    """``DEMO_RUN_ARGS`` with the lakehouse, the report folder and the run id ``demo-run``."""
    return [
        *DEMO_RUN_ARGS,
        "--base-path",
        str(base),
        "--report-dir",
        str(base.parent / "reports"),
        "--run-id",
        "demo-run",
    ]


def pipeline(base: Path) -> list[str]:
    """The local run on delta-rs: ``jobs/run_pipeline.py`` with :func:`run_arguments`."""
    return [
        sys.executable,
        str(ROOT / "jobs" / "run_pipeline.py"),
        *run_arguments(base),
        "--set",
        "storage.backend=deltalake",
    ]


def kill_when_logged(command: list[str], marker: str, timeout: float = 300) -> list[str]:
    """Start ``command``, SIGKILL its whole process group once ``marker`` is logged."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, start_new_session=True
    )
    assert process.stderr is not None
    seen, deadline = [], time.monotonic() + timeout
    for line in process.stderr:
        seen.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert any(marker in line for line in seen), "".join(seen[-20:])
    return seen


def assert_the_pinned_plan_once(spark: SparkSession, base: Path) -> None:
    """The run's plan is the pinned demo plan, no plan or price-iteration row is there twice,
    and the validator found no violation."""
    store = TableStore(spark, StorageSettings(base_path=str(base), backend="deltalake"))
    plan = store.read_run("plan", "demo-run").drop("run_id")
    assert table_fingerprint(plan) == DEMO_PLAN_FINGERPRINT
    keys = ["customer_id", "month", "campaign", "channel"]
    assert plan.count() == plan.dropDuplicates(keys).count()
    recorded = DeltaTable(str(base / "capacity_iterations")).to_pandas()
    assert not recorded.duplicated(["run_id", "phase", "iteration", "constraint_name"]).any()
    assert DeltaTable(str(base / "violations")).to_pandas().shape[0] == 0
