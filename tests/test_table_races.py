"""Writers racing on one Delta table: every run owns its partition, so commits of different
runs all land (a lost race is retried), and cleaning up after a write never fails it."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from contact_spark.config.models import StorageSettings
from contact_spark.io.delta_rs import DeltaRsBackend, _remove_staging
from contact_spark.io.tables import LocalRows, TableStore

# Explicit, not DDL: StructType.fromDDL needs a Spark session and the writers have none.
SCHEMA = StructType([StructField("run_id", StringType()), StructField("i", IntegerType())])
WRITERS, WRITES = 5, 6


def _replace_own_run_repeatedly(base: str, run_id: str, start: object, errors: object) -> None:
    """One writer process: replace its run's partition WRITES times, after the others start."""
    backend = DeltaRsBackend(None, base)  # type: ignore[arg-type]  # local rows need no Spark
    start.wait()  # type: ignore[attr-defined]
    for i in range(WRITES):
        try:
            backend.replace_run(LocalRows.of([(run_id, i)], SCHEMA), "plan", run_id)
        except Exception as error:  # reported to the test, which fails on it
            errors.put(f"{run_id}: {type(error).__name__}: {error}")  # type: ignore[attr-defined]


def test_simultaneous_commits_of_different_runs_all_land_on_delta_rs(tmp_path: Path) -> None:
    """Before the retry, 9 of these 30 commits failed with delta-rs's CommitFailedError
    ("a concurrent transaction deleted data"), though each run only replaces its own rows."""
    context = multiprocessing.get_context("spawn")
    start, errors = context.Barrier(WRITERS), context.Queue()
    writers = [
        context.Process(target=_replace_own_run_repeatedly, args=(str(tmp_path), f"r{k}", start, errors))
        for k in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    assert [p.exitcode for p in writers] == [0] * WRITERS
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    rows = DeltaTable(str(tmp_path / "plan")).to_pyarrow_table().to_pydict()
    # Every run's last write, once: nothing lost, nothing duplicated.
    assert sorted(zip(rows["run_id"], rows["i"], strict=True)) == [
        (f"r{k}", WRITES - 1) for k in range(WRITERS)
    ]
    assert not (tmp_path / "plan" / "_staging").exists()


def test_simultaneous_commits_of_different_runs_all_land_on_native_delta(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = TableStore(spark, StorageSettings(base_path=str(tmp_path), backend="spark"))
    store.replace_run(LocalRows.of([("r0", -1)], SCHEMA), "plan", "r0")  # the table exists

    def writer(run_id: str) -> None:
        for i in range(3):
            store.replace_run(LocalRows.of([(run_id, i)], SCHEMA), "plan", run_id)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(writer, ["r0", "r1", "r2"]))
    got = sorted((r["run_id"], r["i"]) for r in store.read("plan").collect())
    assert got == [("r0", 2), ("r1", 2), ("r2", 2)]


@pytest.mark.parametrize("backend", ["spark", "deltalake"])
def test_a_tagged_write_finds_its_own_version_after_later_commits(
    spark: SparkSession, tmp_path: Path, backend: str
) -> None:
    store = TableStore(spark, StorageSettings(base_path=str(tmp_path), backend=backend))
    store.overwrite(LocalRows.of([("a", 1)], SCHEMA), "kv", tag="mine")
    store.append(LocalRows.of([("b", 2)], SCHEMA), "kv", tag="theirs")
    store.append(LocalRows.of([("c", 3)], SCHEMA), "kv")
    assert (store.tagged_version("kv", "mine"), store.tagged_version("kv", "theirs")) == (0, 1)
    with pytest.raises(LookupError, match="no commit tagged 'other'"):
        store.tagged_version("kv", "other")


def test_removing_a_staging_folder_never_fails_a_committed_write(tmp_path: Path) -> None:
    staging = tmp_path / "plan" / "_staging"
    (staging / "w1").mkdir(parents=True)
    (staging / "w2").mkdir()
    _remove_staging(staging / "w1")  # another write still stages: _staging stays
    assert [p.name for p in staging.iterdir()] == ["w2"]
    _remove_staging(staging / "w2")  # the last one: _staging goes
    assert not staging.exists()
    _remove_staging(staging / "w3")  # already gone (a concurrent cleanup): no error


def test_a_commit_landing_while_the_history_is_read_does_not_shift_its_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """delta-rs numbers the commits it lists down from the version its table object was
    loaded at, but lists the log as it is when asked. A commit landing in between made a run
    lock's claim at version 1 read as version 0, and two of three claimants won the run (CI,
    once in about 12 tries). Here a real commit lands exactly in that window."""
    backend = DeltaRsBackend(None, str(tmp_path))  # type: ignore[arg-type]  # local rows need no Spark
    backend.append(LocalRows.of([("r0", 0)], SCHEMA), "plan", None, None, tag="first")
    listing = DeltaTable.history

    def commit_then_list(table: DeltaTable, limit: int | None = None) -> list[dict[str, object]]:
        if not landed:
            landed.append(True)
            backend.append(LocalRows.of([("r1", 1)], SCHEMA), "plan", None, None, tag="second")
        return listing(table, limit)

    landed: list[bool] = []
    monkeypatch.setattr(DeltaTable, "history", commit_then_list)
    commits = backend.history("plan")
    assert landed == [True]
    assert [(c["version"], c.get("userMetadata")) for c in commits] == [(1, "second"), (0, "first")]
