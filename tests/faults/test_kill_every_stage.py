"""A driver killed at every stage boundary and inside every stage, one kill after another
on the same lakehouse, then the same command to the end: the pinned demo plan, row for row,
with no row twice and no violation.

Each kill is a SIGKILL of the whole process group (driver and JVM) of a real
``jobs/run_pipeline.py``: at the log line that starts a stage (the boundary: the previous
stage has committed), then ``INSIDE`` seconds after it (in the stage's computing or its
writes), boundary after boundary until a run reaches its end. Every rerun takes the dead
run's lock over and starts where the tables leave it. About 15 minutes on 2 cores:
``make faults`` runs it; CI runs one price-iteration kill (tests/deploy/test_standalone_cluster.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from tests.faults.kill import ROOT, assert_the_pinned_plan_once, pipeline

INSIDE = 1.5  # seconds after a stage's start line: inside its work or its writes
STAGE_START = re.compile(r"stage (\w+): start")

pytestmark = pytest.mark.faults_full


def kill_at(command: list[str], boundary: int, delay: float) -> str | None:
    """Run ``command``; SIGKILL it ``delay`` s after the ``boundary``-th stage start it logs.
    The stage killed, or None when the run ended first (it has fewer stages)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, start_new_session=True
    )
    assert process.stderr is not None
    starts = 0
    for line in process.stderr:
        found = STAGE_START.search(line)
        starts += found is not None
        if found and starts == boundary:
            time.sleep(delay)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return found.group(1)
    assert process.wait(timeout=600) == 0, f"the run failed before stage start {boundary}"
    return None


def test_kills_at_every_stage_boundary_and_inside_every_stage_leave_the_pinned_plan(
    spark: SparkSession, tmp_path: Path
) -> None:
    base = tmp_path / "lakehouse"
    killed: list[tuple[str, float]] = []
    boundary = 0
    while True:  # the run that reaches its end is the last one
        boundary += 1
        stage = kill_at(pipeline(base), boundary, 0.0)
        if stage is None:
            break
        killed.append((stage, 0.0))
        if kill_at(pipeline(base), boundary, INSIDE) is not None:
            killed.append((stage, INSIDE))
    stages = [name for name, delay in killed if delay == 0.0]
    assert stages[:3] == ["generate", "load_inputs", "contacts"] and "plan" in stages, killed

    assert_the_pinned_plan_once(spark, base)
    print(f"{len(killed)} kills: {killed}")
