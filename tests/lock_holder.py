"""A process that claims a run's lock, for tests/test_run_lock.py (not a test module).

    python tests/lock_holder.py BASE_PATH RUN_ID MODE [GO_FILE]

Lines for the test start with ``LOCK``. MODE ``hold``: claim, print ``LOCK held``, keep the lock until a line arrives on stdin, release.
MODE ``try``: claim and release at once. MODE ``die``: claim, then exit without releasing.
With GO_FILE the claim waits until that file exists (to start claimants together). A
refused claim prints its one-line error and exits with 2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import cast

from pyspark.sql import SparkSession

from contact_spark.config.models import StorageSettings
from contact_spark.errors import RunLockedError
from contact_spark.io.run_lock import RunLock
from contact_spark.io.tables import TableStore


def say(line: str) -> None:
    """A line for the test; Spark's own logging may write to stdout too."""
    print(f"LOCK {line}", flush=True)


def main(base: str, run_id: str, mode: str, go: str | None = None) -> int:
    # The lock reads and writes its few rows through delta-rs without Spark: no JVM to start.
    store = TableStore(cast(SparkSession, None), StorageSettings(base_path=base, backend="deltalake"))
    lock = RunLock(store, run_id, heartbeat=0.5)
    say("ready")
    while go and not Path(go).exists():
        time.sleep(0.01)
    try:
        lock.acquire()
    except RunLockedError as error:
        say(f"refused: {error}")
        return 2
    say("held")
    if mode == "die":
        os._exit(0)  # no release, like a killed driver
    if mode == "hold":
        sys.stdin.readline()
    lock.release()
    say("released")
    return 0


if __name__ == "__main__":
    code = main(*sys.argv[1:])
    sys.stdout.flush()
    # No interpreter teardown: the test may have closed the pipe already, and only the exit
    # code and the lines above matter.
    os._exit(code)
