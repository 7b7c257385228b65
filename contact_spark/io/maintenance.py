"""Maintenance of the lakehouse's Delta tables: staging leftovers, unreferenced files, compaction.

For every Delta table of a :class:`~contact_spark.io.tables.TableStore`, :func:`maintain`

1. removes the ``_staging/<write_id>`` folders of the delta-rs backend that nothing has
   touched for the retention period (a crashed write's leftovers; a younger one may belong
   to a write staging right now, so it is kept);
2. vacuums: removes the data files no Delta version inside the retention references,
   which includes the moved-but-never-committed files of a crashed write (delta-rs
   ``vacuum(full=True)``, native ``DeltaTable.vacuum``: both also keep any unreferenced
   file younger than the retention, so a concurrent write's files are safe);
3. compacts small files into larger ones (a Delta commit that changes no data; a race
   lost to a concurrent writer is retried, as the table layer's writes are).

**Retention rule** (docs/maintenance.md). The retention defaults to Delta's 168 hours; a
shorter one must be asked for (``allow_short_retention``), as it is only safe when no
write lasts longer. Runs pin the input versions they read (``run_inputs``); for each pinned
table the retention is extended, table by table, so that every version pinned by a run
that may still be resumed stays readable: a pin of version ``v`` is kept for as long as
the commit that superseded it (``v + 1``) is younger than ``keep_runs_days``. A run pins
the current version, so ``v + 1`` is never older than the run itself: every run younger
than ``keep_runs_days`` keeps its inputs.

Only counts are reported, never rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from contact_spark.errors import ContactSparkError
from contact_spark.io import catalog
from contact_spark.io.delta_rs import STAGING_DIR, DeltaRsBackend
from contact_spark.io.delta_spark import native_races
from contact_spark.io.rows import COMMIT_ATTEMPTS, after_lost_race
from contact_spark.io.run_lock import LOCKS_TABLE
from contact_spark.io.tables import TableStore

log = logging.getLogger(__name__)

DEFAULT_RETENTION_HOURS = 168.0  # Delta's delta.deletedFileRetentionDuration default
DEFAULT_KEEP_RUNS_DAYS = 30.0
T = TypeVar("T")


@dataclass
class TableReport:
    """What maintenance did to one table (or would do, in a dry run): counts and bytes."""

    table: str
    retention_hours: float  # the retention the vacuum used (extended for pinned versions)
    staging_removed: int = 0
    files_removed: int = 0
    bytes_removed: int = 0
    files_compacted: int = 0  # small files rewritten by the compaction
    files_written: int = 0  # the files they were compacted into
    pinned_versions: list[int] = field(default_factory=list)

    def line(self, dry_run: bool = False) -> str:
        verb = "would remove" if dry_run else "removed"
        compaction = (
            "compaction skipped (dry run)"
            if dry_run
            else f"{self.files_compacted} small files compacted into {self.files_written}"
        )
        return (
            f"{self.table:<24} {verb} {self.staging_removed} staging folders, {self.files_removed} "
            f"unreferenced files ({self.bytes_removed:,} bytes); {compaction}; "
            f"retention {self.retention_hours:g} h"
        )


def list_tables(store: TableStore, known: Iterable[str] = ()) -> list[str]:
    """The Delta tables of the lakehouse: the table folders under a local base path, else
    (catalog names, object stores) the known names (``io.catalog``, the run tables and
    ``known``) that exist."""
    base = Path(store.storage.base_path).expanduser()
    if store.storage.catalog is None and store.storage.database is None and "://" not in str(base):
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "_delta_log").is_dir())
    names = {
        *catalog.INPUT_TABLES,
        *catalog.CONTACT_TABLES,
        *catalog.SEGMENT_TABLES,
        *catalog.PROPENSITY_TABLES,
        *catalog.ELIGIBILITY_TABLES,
        *catalog.PLAN_TABLES,
        catalog.RUN_STAGES_TABLE,
        catalog.RUN_INPUTS_TABLE,
        catalog.SCENARIOS_TABLE,
        catalog.COMPARISON_TABLE,
        LOCKS_TABLE,
        *known,
    }
    return sorted(name for name in names if store.exists(name))


def _local_root(store: TableStore, table: str) -> Path | None:
    location = store.location(table)
    return None if store.storage.catalog or store.storage.database or "://" in location else Path(location)


def _newest_mtime(folder: Path) -> float:
    """The last time anything in ``folder`` changed: a staging folder is old only when
    every file and folder in it is."""
    newest = folder.stat().st_mtime
    for path in folder.rglob("*"):
        try:
            newest = max(newest, path.stat().st_mtime)
        except FileNotFoundError:  # removed by its write meanwhile
            continue
    return newest


def remove_staging(store: TableStore, table: str, retention_hours: float, now: float, dry_run: bool) -> int:
    """Remove the table's ``_staging/<write_id>`` folders untouched for ``retention_hours``."""
    root = _local_root(store, table)
    staging = root / STAGING_DIR if root else None
    if staging is None or not staging.is_dir():
        return 0
    cutoff = now - retention_hours * 3600
    removed = 0
    for folder in sorted(staging.iterdir()):
        try:
            old = _newest_mtime(folder) < cutoff
        except FileNotFoundError:  # its write finished meanwhile
            continue
        if old:
            removed += 1
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    # ``_staging`` itself stays: a write may be creating its folder in it right now (the
    # last write to finish removes it when empty).
    return removed


def _epoch(timestamp: Any) -> float:
    """A commit timestamp (delta-rs: epoch milliseconds; Spark: a datetime) in epoch seconds."""
    if isinstance(timestamp, dt.datetime):
        return timestamp.timestamp()
    return float(timestamp) / 1000.0


def pinned_versions_by_table(store: TableStore) -> dict[str, set[int]]:
    """Every version any run pinned in ``run_inputs``, by input table (a few rows per run)."""
    if not store.exists(catalog.RUN_INPUTS_TABLE):
        return {}
    pins: dict[str, set[int]] = {}
    rows = store.read(catalog.RUN_INPUTS_TABLE).select("input_table", "version").distinct().collect()
    for row in rows:
        pins.setdefault(row["input_table"], set()).add(int(row["version"]))
    return pins


def pinned_retention_hours(
    store: TableStore, table: str, versions: Iterable[int], now: float, keep_runs_days: float
) -> tuple[float, list[int]]:
    """The retention (hours) that keeps every version of ``versions`` readable whose
    successor commit is younger than ``keep_runs_days``, and those versions.

    Files of version ``v`` can only have been removed by a commit after ``v``; a vacuum
    removes the files a commit removed once that commit is older than the retention. So
    ``v`` stays readable while the retention exceeds the age of commit ``v + 1``.
    """
    committed = {int(c["version"]): _epoch(c["timestamp"]) for c in store.history(table)}
    needed, kept = 0.0, []
    for version in sorted(set(versions)):
        successor = committed.get(version + 1)
        if successor is None:  # the current version: no vacuum removes its files
            continue
        age_hours = max(0.0, now - successor) / 3600
        if age_hours <= keep_runs_days * 24:
            kept.append(version)
            needed = max(needed, age_hours)
    # Whole hours (delta-rs takes an integer) and one more, for the time the vacuum takes.
    return (float(math.ceil(round(needed, 6)) + 1) if kept else 0.0), kept


def _races(store: TableStore) -> tuple[type[Exception], ...]:
    if isinstance(store.backend, DeltaRsBackend):
        from deltalake.exceptions import CommitFailedError

        return (CommitFailedError,)
    return native_races()


def _retrying(store: TableStore, table: str, what: str, action: Callable[[], T]) -> T:
    """Run a maintenance commit, again when it lost a race with a writer of the table."""
    races = _races(store)
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return action()
        except races as error:
            after_lost_race(table, store.location(table), what, attempt, error)
    raise AssertionError("unreachable")


def _native_table(store: TableStore, table: str) -> Any:
    from delta.tables import DeltaTable

    if store.storage.catalog or store.storage.database:
        return DeltaTable.forName(store.spark, store.location(table))
    return DeltaTable.forPath(store.spark, store.location(table))


def _file_bytes(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def vacuum(
    store: TableStore, table: str, retention_hours: float, dry_run: bool, allow_short_retention: bool
) -> tuple[int, int]:
    """Remove the files no version inside the retention references: (files, bytes)."""
    if isinstance(store.backend, DeltaRsBackend):
        from deltalake import DeltaTable

        root = Path(store.location(table))
        hours = math.ceil(retention_hours)

        def run(dry: bool) -> list[str]:
            return list(
                DeltaTable(str(root)).vacuum(
                    retention_hours=hours,
                    dry_run=dry,
                    enforce_retention_duration=not allow_short_retention,
                    full=True,  # unreferenced files too, not only those removed by a commit
                )
            )

        candidates = run(True)
        sizes = {path: _file_bytes([root / path]) for path in candidates}
        if dry_run:
            return len(candidates), sum(sizes.values())
        removed = _retrying(store, table, "vacuum", lambda: run(False))
        return len(removed), sum(sizes.get(path, 0) for path in removed)

    # Delta 4 ignores a RETAIN other than 0 hours unless told not to (it would use the
    # table's 168 h, and so drop the files of a version pinned for longer); the retention
    # check refuses less than 168 h unless a short retention was allowed.
    settings = {
        "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
        # Vacuum lists the table's folders in this many tasks (10,000 by default, most of
        # them empty: a minute per table on 2 cores); a few per core are plenty.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            max(8, 4 * store.spark.sparkContext.defaultParallelism)
        ),
    }
    if allow_short_retention:
        settings["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    previous = {key: store.spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        store.spark.conf.set(key, value)
    try:
        location = store.location(table)
        ident = location if _local_root(store, table) is None else f"delta.`{location}`"
        hours = math.ceil(retention_hours)
        listed = store.spark.sql(f"VACUUM {ident} RETAIN {hours} HOURS DRY RUN").collect()
        paths = [Path(str(row[0]).removeprefix("file:")) for row in listed]  # the files, not rows
        # Data files only: Hadoop's local file system adds a ``.<name>.crc`` beside each.
        paths = [p for p in paths if not p.name.startswith(".")]
        size = _file_bytes(paths)
        if dry_run or not paths:
            return len(paths), size
        _retrying(store, table, "vacuum", lambda: _native_table(store, table).vacuum(float(hours)))
        return sum(not p.exists() for p in paths), size
    finally:
        for key, old in previous.items():
            if old is None:
                store.spark.conf.unset(key)
            else:
                store.spark.conf.set(key, old)


def compact(store: TableStore, table: str) -> tuple[int, int]:
    """Rewrite the table's small files into larger ones: (files rewritten, files written)."""
    if isinstance(store.backend, DeltaRsBackend):
        from deltalake import DeltaTable

        metrics = _retrying(
            store, table, "compaction", lambda: DeltaTable(store.location(table)).optimize.compact()
        )
        return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])
    result = _retrying(
        store, table, "compaction", lambda: _native_table(store, table).optimize().executeCompaction()
    ).collect()  # one row of metrics
    metrics = result[0]["metrics"]
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


def check_retention(retention_hours: float, allow_short_retention: bool) -> None:
    """Refuse a retention that is not a number of hours, or shorter than Delta's default
    unless allowed: a write's files are unreferenced until it commits, and a vacuum removes
    unreferenced files older than the retention."""
    if not math.isfinite(retention_hours) or retention_hours < 0:
        raise ContactSparkError(f"retention of {retention_hours:g} hours: give a number of hours >= 0")
    if retention_hours < DEFAULT_RETENTION_HOURS and not allow_short_retention:
        raise ContactSparkError(
            f"retention of {retention_hours:g} hours is shorter than Delta's {DEFAULT_RETENTION_HOURS:g}: "
            "files of a write still in progress could be removed; allow it (--allow-short-retention) "
            "only when no write lasts that long"
        )


def maintain(
    store: TableStore,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    *,
    dry_run: bool = False,
    keep_runs_days: float = DEFAULT_KEEP_RUNS_DAYS,
    allow_short_retention: bool = False,
    tables: Iterable[str] | None = None,
    known: Iterable[str] = (),
    now: float | None = None,
) -> list[TableReport]:
    """Remove old staging folders and unreferenced files, then compact, table by table."""
    check_retention(retention_hours, allow_short_retention)
    now = time.time() if now is None else now
    names = sorted(tables) if tables is not None else list_tables(store, known)
    pins = pinned_versions_by_table(store)
    reports = []
    for table in names:
        extended, kept = pinned_retention_hours(store, table, pins.get(table, ()), now, keep_runs_days)
        report = TableReport(table, max(retention_hours, extended), pinned_versions=kept)
        if report.retention_hours > retention_hours:
            log.warning(
                "table %s: retention extended to %g h to keep pinned versions %s readable",
                table,
                report.retention_hours,
                kept,
            )
        report.staging_removed = remove_staging(store, table, retention_hours, now, dry_run)
        report.files_removed, report.bytes_removed = vacuum(
            store, table, report.retention_hours, dry_run, allow_short_retention
        )
        if not dry_run:
            report.files_compacted, report.files_written = compact(store, table)
        log.info("maintenance: %s", report.line(dry_run))
        reports.append(report)
    return reports


def total(reports: list[TableReport]) -> TableReport:
    """The sum of the reports (its retention: the longest used)."""
    return TableReport(
        f"total ({len(reports)} tables)",
        max((r.retention_hours for r in reports), default=0.0),
        staging_removed=sum(r.staging_removed for r in reports),
        files_removed=sum(r.files_removed for r in reports),
        bytes_removed=sum(r.bytes_removed for r in reports),
        files_compacted=sum(r.files_compacted for r in reports),
        files_written=sum(r.files_written for r in reports),
    )
