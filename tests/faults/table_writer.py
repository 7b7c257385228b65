"""A writer of one Delta table through the table layer (delta-rs, no Spark), killed by
tests/faults/test_kill_inside_a_write.py (not a test module).

``python table_writer.py LAKEHOUSE PAUSE_AT`` replaces the rows of runs r0, r1 and r2 in turn
(``WRITES`` commits, ``ROWS`` rows each, every row of write ``i`` holds ``i``). With
``PAUSE_AT`` = ``committing`` or ``cleaning`` it prints ``paused <i>`` and sleeps inside write
``PAUSED_WRITE`` at that point, so that the test's SIGKILL lands there:

* ``committing``: the Parquet files are written and moved into the table, the log commit
  not yet made;
* ``cleaning``: the commit is made, the staging folder not yet removed.

``none`` writes straight through. Each finished write prints ``committed <i>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, cast

from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from contact_spark.config.models import StorageSettings
from contact_spark.io import delta_rs
from contact_spark.io.rows import LocalRows
from contact_spark.io.tables import TableStore

TABLE = "kill_target"
RUNS = ("r0", "r1", "r2")
WRITES = 6
ROWS = 5_000
SCHEMA = StructType(
    [
        StructField("run_id", StringType()),
        StructField("row", IntegerType()),
        StructField("write", IntegerType()),
    ]
)
PAUSE_SECONDS = 30.0
PAUSED_WRITE = 4  # r1's second write: r1 holds write 1's rows before it


def rows(write: int) -> LocalRows:
    run = RUNS[write % len(RUNS)]
    return LocalRows.of([(run, r, write) for r in range(ROWS)], SCHEMA)


def pausing(function: Any, write: list[int]) -> Any:
    """``function`` preceded by a ``paused <i>`` line and a sleep the test kills."""

    def paused(*args: Any, **kwargs: Any) -> Any:
        if write[0] == PAUSED_WRITE:
            print(f"paused {write[0]}", flush=True)
            time.sleep(PAUSE_SECONDS)
        return function(*args, **kwargs)

    return paused


def main(lakehouse: str, pause_at: str) -> None:
    # delta-rs writes local rows without Spark: no session is needed.
    store = TableStore(cast(SparkSession, None), StorageSettings(base_path=lakehouse, backend="deltalake"))
    current = [0]
    backend = cast(Any, store.backend)
    if pause_at == "committing":
        backend._commit_staged = pausing(backend._commit_staged, current)
    elif pause_at == "cleaning":
        delta_rs._remove_staging = pausing(delta_rs._remove_staging, current)
    for write in range(WRITES):
        current[0] = write
        store.replace_run(rows(write), TABLE, RUNS[write % len(RUNS)])
        print(f"committed {write}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    Path(sys.argv[1], "done").touch()
