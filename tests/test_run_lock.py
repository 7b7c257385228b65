"""One process per run id: the Delta-based run lock, with real processes.

Before the lock, the same run id started twice at once finished twice with exit 0 and
left every price iteration in ``capacity_iterations`` twice.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from contact_spark.config.models import StorageSettings
from contact_spark.errors import RunLockedError
from contact_spark.io.run_lock import LOCKS_TABLE, RunLock
from contact_spark.io.tables import TableStore

HOLDER = Path(__file__).resolve().parent / "lock_holder.py"
ROOT = HOLDER.parent.parent


def start(base: Path, run_id: str, mode: str, go: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, str(HOLDER), str(base), run_id, mode] + ([str(go)] if go else [])
    process = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert next_line(process) == "ready"
    return process


def next_line(process: subprocess.Popen[str]) -> str:
    """The holder's next line for the test (Spark may log to stdout too)."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("LOCK "):
            return line[5:].strip()
    raise AssertionError(f"lock holder ended with {process.wait()} before saying anything")


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Let a holder release and end: its exit code and its lines for the test."""
    out, _ = process.communicate("\n", timeout=120)
    return process.returncode, "".join(
        line[5:] + "\n" for line in out.splitlines() if line.startswith("LOCK ")
    )


@pytest.fixture
def locks(spark: SparkSession, tmp_path: Path) -> TableStore:
    return TableStore(spark, StorageSettings(base_path=str(tmp_path), backend="deltalake"))


def test_a_second_process_is_refused_while_the_first_holds_the_run(tmp_path: Path) -> None:
    first = start(tmp_path, "r1", "hold")
    assert next_line(first) == "held"
    code, out = finish(start(tmp_path, "r1", "try"))
    assert code == 2
    assert "refused: run 'r1' is already running in" in out
    assert f"its lock is in table run_locks at {tmp_path / 'run_locks'}" in out
    # Another run id is not held by it.
    assert finish(start(tmp_path, "r2", "try"))[0] == 0
    assert finish(first)[0] == 0
    assert finish(start(tmp_path, "r1", "try"))[0] == 0  # released: free again


def test_of_processes_claiming_one_run_at_the_same_moment_exactly_one_wins(tmp_path: Path) -> None:
    go = tmp_path / "go"
    claimants = [start(tmp_path, "r1", "hold", go) for _ in range(3)]
    go.touch()
    # Every claimant's outcome first, while the winner still holds the run: a winner told to
    # release at once could free the run before a slower claimant even reads it, and that
    # claimant would then rightly win too (CI saw it once).
    outcomes = [next_line(p) for p in claimants]
    results = [finish(p) for p in claimants]
    assert sorted(o.split(":")[0] for o in outcomes) == ["held", "refused", "refused"], outcomes
    assert all("refused: run 'r1'" in o for o in outcomes if o != "held")
    assert sorted(code for code, _ in results) == [0, 2, 2], results


def test_a_run_whose_holder_died_on_this_host_is_taken_over(tmp_path: Path) -> None:
    dead = start(tmp_path, "r1", "die")
    assert finish(dead) == (0, "held\n")
    code, out = finish(start(tmp_path, "r1", "try"))
    assert code == 0 and "held" in out


def test_force_takes_over_only_a_silent_holder_and_the_old_holder_stops(locks: TableStore) -> None:
    old = RunLock(locks, "r1", heartbeat=3600)
    old.acquire()
    with pytest.raises(RunLockedError, match="--force takes over only after 10 minutes of silence"):
        RunLock(locks, "r1").acquire(force=True)
    new = RunLock(locks, "r1", stale_after=dt.timedelta(0))
    new.acquire(force=True)
    old.beat()  # the old holder's next sign of life finds the run taken over
    with pytest.raises(
        RunLockedError, match=r"run 'r1' was taken over by .* \(--force\): this process stops"
    ):
        old.check()
    new.release()
    events = [(r["event"]) for r in locks.read(LOCKS_TABLE).orderBy("at").collect()]
    assert events == ["claim", "won", "claim", "release", "won", "release"]
