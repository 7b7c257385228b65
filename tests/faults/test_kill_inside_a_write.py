"""A writer killed inside a Delta write, at the two moments a crash can leave files behind
(tests/faults/table_writer.py, a real process, SIGKILL; delta-rs, the local engine).

* **Files in the table, no commit yet.** The table reads as before the write: the killed
  write's run keeps its earlier rows, whole; the files the log never referenced are only
  garbage, and ``make maintain``'s vacuum removes them.
* **Commit made, staging folder not yet removed.** The write is in, whole; the staging
  folder is left for ``make maintain``.

In both, the same writer run again replaces each run's rows and never duplicates one.
(The pipeline's kills, which land in the plan stage's writes and in every stage, are
tests/deploy/test_standalone_cluster.py in CI and tests/faults/test_kill_every_stage.py in
``make faults``.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from contact_spark.config.models import StorageSettings
from contact_spark.io.delta_rs import STAGING_DIR
from contact_spark.io.maintenance import remove_staging, vacuum
from contact_spark.io.tables import TableStore
from tests.faults.table_writer import PAUSED_WRITE, ROWS, TABLE

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("table_writer.py")


def run_writer(lakehouse: Path, pause_at: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(lakehouse), pause_at],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_when_paused(lakehouse: Path, pause_at: str) -> list[str]:
    """Run the writer until it pauses inside write ``PAUSED_WRITE``, then SIGKILL it."""
    writer = run_writer(lakehouse, pause_at)
    assert writer.stdout is not None
    lines = []
    for line in writer.stdout:
        lines.append(line.strip())
        if line.startswith("paused"):
            os.killpg(writer.pid, signal.SIGKILL)
            break
    writer.wait(timeout=60)
    assert lines[-1] == f"paused {PAUSED_WRITE}", lines
    return lines


def committed_files(table_dir: Path) -> set[str]:
    """The data files the table's current version references (paths relative to the table)."""
    return set(pa.table(DeltaTable(str(table_dir)).get_add_actions(flatten=True)).column("path").to_pylist())


def writes_by_run(lakehouse: Path) -> dict[str, Counter[int]]:
    """{run: Counter(write: rows)} as the table's log says (delta-rs reads the committed files)."""
    table = DeltaTable(str(lakehouse / TABLE)).to_pyarrow_table().to_pydict()
    out: dict[str, Counter[int]] = {}
    for run, write in zip(table["run_id"], table["write"], strict=True):
        out.setdefault(run, Counter())[write] += 1
    return out


@pytest.mark.parametrize(
    ("pause_at", "r1_after_kill"),
    [
        ("committing", 1),  # the killed write 4 never committed: r1 keeps write 1
        ("cleaning", PAUSED_WRITE),  # committed before the kill: r1 holds write 4
    ],
)
def test_a_writer_killed_inside_a_write_leaves_whole_versions_and_its_rerun_no_duplicate(
    tmp_path: Path, pause_at: str, r1_after_kill: int
) -> None:
    lakehouse = tmp_path / "lakehouse"
    lines = kill_when_paused(lakehouse, pause_at)
    assert lines[:-1] == [f"committed {w}" for w in range(PAUSED_WRITE)]
    assert writes_by_run(lakehouse) == {
        "r0": Counter({3: ROWS}),
        "r1": Counter({r1_after_kill: ROWS}),
        "r2": Counter({2: ROWS}),
    }
    table_dir = lakehouse / TABLE
    if pause_at == "committing":
        staged = [p for p in table_dir.rglob("*.parquet") if STAGING_DIR not in p.parts]
        assert len(staged) > len(committed_files(table_dir)), "the killed write's files are in"
    else:
        assert any((table_dir / STAGING_DIR).iterdir()), "the staging folder is left"

    rerun = run_writer(lakehouse, "none")
    assert rerun.wait(timeout=120) == 0
    assert writes_by_run(lakehouse) == {
        "r0": Counter({3: ROWS}),
        "r1": Counter({4: ROWS}),
        "r2": Counter({5: ROWS}),
    }
    # What the kill left behind is maintenance's to remove (zero retention: no writer runs).
    store = TableStore(
        cast(SparkSession, None), StorageSettings(base_path=str(lakehouse), backend="deltalake")
    )
    remove_staging(store, TABLE, retention_hours=0, now=float("inf"), dry_run=False)
    vacuum(store, TABLE, retention_hours=0, dry_run=False, allow_short_retention=True)
    data_files = {str(p.relative_to(table_dir)) for p in table_dir.rglob("*.parquet")}
    assert data_files == committed_files(table_dir)
    assert writes_by_run(lakehouse)["r1"] == Counter({4: ROWS})
