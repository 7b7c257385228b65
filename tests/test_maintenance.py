"""Maintenance of the Delta tables (io/maintenance.py, jobs/maintain.py) on both engines:
old leftovers go, everything a reader or a concurrent writer may still need stays."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from contact_spark.config.models import StorageSettings
from contact_spark.io.maintenance import TableReport, list_tables, maintain
from contact_spark.io.run_inputs import pin_inputs
from contact_spark.io.tables import LocalRows, TableStore

ROOT = Path(__file__).resolve().parents[1]
# Explicit, not DDL: the writer thread builds rows too.
SCHEMA = StructType([StructField("run_id", StringType()), StructField("i", IntegerType())])
TEN_DAYS = 10 * 86400


@pytest.fixture
def store(spark: SparkSession, lakehouse: Path) -> TableStore:
    """delta-rs: the engine whose writes stage files (the staging and pin rules are the
    engine's own code, not Delta's)."""
    return TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="deltalake"))


@pytest.fixture(params=["spark", "deltalake"])
def either(request: pytest.FixtureRequest, spark: SparkSession, lakehouse: Path) -> TableStore:
    """Native Delta ("spark") and delta-rs ("deltalake"): for vacuum and compaction, which
    each engine does its own way (native runs take about a minute each, so only these two)."""
    return TableStore(spark, StorageSettings(base_path=str(lakehouse), backend=request.param))


def rows(run_id: str, *values: int) -> LocalRows:
    return LocalRows([(run_id, v) for v in values], SCHEMA)


def age(path: Path, seconds: float) -> None:
    """Make ``path`` and everything in it ``seconds`` old."""
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        then = time.time() - seconds
        os.utime(item, (then, then))


def data_files(table: Path) -> list[str]:
    """Every Parquet file of the table folder, hidden folders (``_staging``) left out."""
    return sorted(
        str(p.relative_to(table))
        for p in table.rglob("*.parquet")
        if not any(part.startswith("_") for part in p.relative_to(table).parts)
    )


def orphan(table: Path, partition: str) -> Path:
    """A crashed write's file: moved into the table, never committed, ten days old."""
    source = next((table / partition).glob("*.parquet"))
    target = table / partition / "crashed-part-0.parquet"
    shutil.copy(source, target)
    age(target, TEN_DAYS)
    return target


def staged(table: Path, write_id: str, seconds_old: float) -> Path:
    folder = table / "_staging" / write_id / "run_id=r1"
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"PAR1")
    age(folder.parent, seconds_old)
    return folder.parent


def test_a_staging_folder_older_than_the_retention_is_removed_and_a_fresh_one_kept(
    store: TableStore, lakehouse: Path
) -> None:
    store.replace_run(rows("r1", 1), "plan", "r1")
    old = staged(lakehouse / "plan", "crashed", TEN_DAYS)
    fresh = staged(lakehouse / "plan", "writing", 60)
    (report,) = maintain(store, 24, allow_short_retention=True)
    assert (report.table, report.staging_removed) == ("plan", 1)
    assert (old.exists(), fresh.exists()) == (False, True)
    (again,) = maintain(store, 24, allow_short_retention=True)
    assert again.staging_removed == 0
    assert fresh.exists()


def test_an_unreferenced_file_goes_and_every_version_inside_the_retention_reads_the_same(
    spark: SparkSession, either: TableStore, lakehouse: Path
) -> None:
    store = either
    store.replace_run(rows("r1", 1, 2), "plan", "r1")
    store.replace_run(rows("r2", 3), "plan", "r2")
    store.replace_run(rows("r1", 4), "plan", "r1")  # r1's first files: referenced by v0 and v1 only
    versions = {v: store.read("plan", version=v).localCheckpoint() for v in (0, 1, 2)}
    crashed = orphan(lakehouse / "plan", "run_id=r2")
    files_before, size = data_files(lakehouse / "plan"), crashed.stat().st_size
    (report,) = maintain(store, 1, allow_short_retention=True)
    assert (report.files_removed, report.bytes_removed, report.files_compacted) == (1, size, 0)
    assert not crashed.exists()
    assert data_files(lakehouse / "plan") == [f for f in files_before if "crashed" not in f]
    for version, before in versions.items():
        assert_df_equality(store.read("plan", version=version), before, ignore_row_order=True)
    assert_df_equality(store.read("plan"), versions[2], ignore_row_order=True)


def test_compaction_reduces_the_files_of_many_small_appends_and_keeps_the_rows(
    either: TableStore, lakehouse: Path
) -> None:
    store = either
    store.replace_run(rows("r1", 0), "run_locks", "r1")
    for i in range(1, 6):
        store.append(rows("r1", i), "run_locks")
    store.replace_run(rows("r2", 9), "run_locks", "r2")  # one file: nothing to compact
    before = store.read("run_locks").localCheckpoint()
    assert len(DeltaTable(str(lakehouse / "run_locks")).file_uris()) == 7
    (report,) = maintain(store, 1, allow_short_retention=True)
    assert (report.files_compacted, report.files_written, report.files_removed) == (6, 1, 0)
    assert len(DeltaTable(str(lakehouse / "run_locks")).file_uris()) == 2
    assert_df_equality(store.read("run_locks"), before, ignore_row_order=True)
    (again,) = maintain(store, 1, allow_short_retention=True)
    assert (again.files_compacted, again.files_written) == (0, 0)


def test_a_dry_run_reports_and_changes_nothing(store: TableStore, lakehouse: Path) -> None:
    store.replace_run(rows("r1", 0), "plan", "r1")
    for i in range(1, 4):
        store.append(rows("r1", i), "plan")
    orphan(lakehouse / "plan", "run_id=r1")
    staged(lakehouse / "plan", "crashed", TEN_DAYS)
    everything = sorted(str(p.relative_to(lakehouse)) for p in lakehouse.rglob("*"))
    version = store.version("plan")
    (report,) = maintain(store, 1, allow_short_retention=True, dry_run=True)
    assert (report.staging_removed, report.files_removed, report.files_compacted) == (1, 1, 0)
    assert sorted(str(p.relative_to(lakehouse)) for p in lakehouse.rglob("*")) == everything
    assert store.version("plan") == version


def test_versions_pinned_by_a_recent_run_stay_readable_even_with_no_retention(
    spark: SparkSession, store: TableStore, lakehouse: Path
) -> None:
    for table in ("customers", "kv"):  # one file per version
        store.overwrite(rows("a", 1), table)
        store.overwrite(rows("b", 2), table)
    pin_inputs(store, "r1", {"customers": 0}, "latest")
    pinned = store.read("customers", version=0).localCheckpoint()
    customers_files = data_files(lakehouse / "customers")
    current_kv = sorted(Path(uri).name for uri in DeltaTable(str(lakehouse / "kv")).file_uris())
    reports = {r.table: r for r in maintain(store, 0, allow_short_retention=True)}
    assert sorted(reports) == ["customers", "kv", "run_inputs"]
    # customers@0 is pinned: its files stay; kv@0 is not: every file but the current ones
    # goes (on delta-rs kv@0's one file; native Spark also leaves an untracked empty file per write).
    assert (reports["customers"].pinned_versions, reports["customers"].retention_hours) == ([0], 2.0)
    assert (reports["customers"].files_removed, data_files(lakehouse / "customers")) == (0, customers_files)
    assert data_files(lakehouse / "kv") == current_kv
    assert reports["kv"].files_removed == {"deltalake": 1, "spark": 3}[store.backend.name]
    assert (reports["kv"].pinned_versions, reports["kv"].retention_hours) == ([], 0.0)
    assert_df_equality(store.read("customers", version=0), pinned)


def test_a_pin_is_kept_for_keep_runs_days_after_its_version_was_superseded(
    spark: SparkSession, store: TableStore
) -> None:
    store.overwrite(rows("a", 1), "customers")
    store.overwrite(rows("b", 2), "customers")
    pin_inputs(store, "r1", {"customers": 0}, "latest")
    superseded = {c["version"]: c["timestamp"] for c in store.history("customers")}[1]
    seconds = superseded.timestamp() if hasattr(superseded, "timestamp") else superseded / 1000
    ten_days_later = seconds + 240 * 3600
    (kept,) = maintain(store, dry_run=True, tables=["customers"], now=ten_days_later)
    assert (kept.pinned_versions, kept.retention_hours) == ([0], 241.0)
    (dropped,) = maintain(store, dry_run=True, tables=["customers"], now=ten_days_later, keep_runs_days=7)
    assert (dropped.pinned_versions, dropped.retention_hours) == ([], 168.0)


def test_maintenance_while_another_run_commits_to_the_same_table_loses_nothing(
    spark: SparkSession, lakehouse: Path
) -> None:
    store = TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="deltalake"))
    store.replace_run(rows("m", 0), "plan", "m")
    for i in range(1, 6):
        store.append(rows("m", i), "plan")
    crashed = orphan(lakehouse / "plan", "run_id=m")
    staged(lakehouse / "plan", "crashed", TEN_DAYS)
    errors: list[str] = []
    done = threading.Event()
    writes = 0

    def writer() -> None:  # another run, replacing its own partition again and again
        nonlocal writes
        while not done.is_set() or writes < 10:
            try:
                store.replace_run(rows("w", writes), "plan", "w", tag=f"w{writes}")
            except Exception as error:  # reported to the test, which fails on it
                errors.append(f"{type(error).__name__}: {error}")
                return
            writes += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        first = maintain(store, 1, allow_short_retention=True, tables=["plan"])
        second = maintain(store, 1, allow_short_retention=True, tables=["plan"])
    finally:
        done.set()
        thread.join(timeout=120)
    assert errors == []
    assert [(r.staging_removed, r.files_removed, r.files_compacted, r.files_written) for r in first] == [
        (1, 1, 6, 1)
    ]
    assert [(r.staging_removed, r.files_removed, r.files_compacted) for r in second] == [(0, 0, 0)]
    assert not crashed.exists()
    got = sorted((r["run_id"], r["i"]) for r in store.read("plan").collect())
    assert got == [("m", i) for i in range(6)] + [("w", writes - 1)]
    for i in range(writes):  # every write of the other run committed once
        store.tagged_version("plan", f"w{i}")
    assert not (lakehouse / "plan" / "_staging").exists()


def test_list_tables_finds_the_delta_tables_under_the_base_path(store: TableStore, lakehouse: Path) -> None:
    store.replace_run(rows("r1", 1), "plan", "r1")
    store.append(rows("r1", 1), "run_locks")
    (lakehouse / "not_a_table").mkdir()
    assert list_tables(store) == ["plan", "run_locks"]


def test_the_report_line_and_the_total_show_counts_only() -> None:
    report = TableReport("plan", 168.0, staging_removed=2, files_removed=3, bytes_removed=12345)
    assert report.line() == (
        "plan                     removed 2 staging folders, 3 unreferenced files (12,345 bytes); "
        "0 small files compacted into 0; retention 168 h"
    )


def load_job() -> object:
    spec = importlib.util.spec_from_file_location("maintain_job", ROOT / "jobs" / "maintain.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_job_prints_one_line_per_table_and_a_total(
    spark: SparkSession, lakehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="deltalake"))
    store.replace_run(rows("r1", 1), "plan", "r1")
    store.append(rows("r1", 2), "plan")
    staged(lakehouse / "plan", "crashed", TEN_DAYS)
    job = load_job()
    code = job.main(  # type: ignore[attr-defined]
        ["--base-path", str(lakehouse), "--set", "storage.backend=deltalake", "--log-level", "WARNING"]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [
        f"maintenance of 1 tables at {lakehouse} (deltalake Delta backend)",
        "  plan                     removed 1 staging folders, 0 unreferenced files (0 bytes); "
        "2 small files compacted into 1; retention 168 h",
        "  total (1 tables)         removed 1 staging folders, 0 unreferenced files (0 bytes); "
        "2 small files compacted into 1; retention 168 h",
    ]


def test_a_short_retention_is_refused_in_one_line_before_spark_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "jobs/maintain.py", "--base-path", str(tmp_path), "--retention-hours", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: retention of 1 hours is shorter than Delta's 168: files of a write still in progress "
        "could be removed; allow it (--allow-short-retention) only when no write lasts that long\n"
    )
