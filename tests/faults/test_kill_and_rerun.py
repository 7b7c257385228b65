"""A driver killed during the price iterations, then the same command again: the rerun
takes the dead run's lock over, keeps the generated inputs (so its fingerprint matches),
resumes what was recorded and plans exactly the pinned demo plan, with no row twice.

A real process (``jobs/run_pipeline.py``) killed with SIGKILL, JVM included, as an
operator's ``kill -9`` or a lost cluster driver would.
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


def pipeline(base: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "jobs" / "run_pipeline.py"),
        "--generate",
        "--set",
        "demo.customers=200",
        "--set",
        "demo.partitions=2",
        "--set",
        "storage.backend=deltalake",
        # The explaining stages are covered by the shared demo run; CI's budget is tight.
        "--set",
        "stages.baseline=off",
        "--set",
        "stages.decisions=off",
        "--base-path",
        str(base),
        "--report-dir",
        str(base.parent / "reports"),
        "--run-id",
        "demo-run",
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


def test_a_run_killed_in_its_price_iterations_resumes_to_the_same_plan(
    spark: SparkSession, tmp_path: Path
) -> None:
    base = tmp_path / "lakehouse"
    # The line is logged as the first price iteration is being recorded: the kill lands
    # before, inside or just after that Delta write.
    kill_when_logged(pipeline(base), "capacity dual iteration 0:")

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rerun = subprocess.run(pipeline(base), capture_output=True, text=True, env=env, timeout=900, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "has exited without releasing it: taken over" in rerun.stderr
    assert "input tables already hold this configuration's demo data: kept" in rerun.stderr
    # Resumed when the iteration's commit landed, started afresh otherwise: the same plan.
    recorded_before = "capacity: resuming run demo-run at iteration 1" in rerun.stderr
    assert recorded_before or "capacity dual iteration 0:" in rerun.stderr

    assert_the_pinned_plan_once(spark, base)


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
