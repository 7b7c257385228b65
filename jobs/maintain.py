"""Maintain the lakehouse's Delta tables: old staging folders and unreferenced files removed, small files compacted.

Safe while runs write (docs/maintenance.md): nothing younger than the retention is removed,
versions pinned by recent runs stay readable, and a compaction that races a writer is retried.

spark-submit --py-files dist/contact_spark-*.whl jobs/maintain.py --config contact_spark/config/default.yaml --dry-run
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, config_from_args, main_guard, setup_logging
from contact_spark.deploy import enable_wheel_imports, job_session
from contact_spark.errors import ContactSparkError
from contact_spark.io.maintenance import (
    DEFAULT_KEEP_RUNS_DAYS,
    DEFAULT_RETENTION_HOURS,
    check_retention,
    maintain,
    total,
)
from contact_spark.io.tables import TableStore


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    enable_wheel_imports()
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--retention-hours",
        type=float,
        default=DEFAULT_RETENTION_HOURS,
        help=f"remove only files and staging folders older than this (default {DEFAULT_RETENTION_HOURS:g}, Delta's)",
    )
    parser.add_argument(
        "--allow-short-retention",
        action="store_true",
        help=f"accept a retention under {DEFAULT_RETENTION_HOURS:g} h: only when no write lasts that long",
    )
    parser.add_argument(
        "--keep-runs-days",
        type=float,
        default=DEFAULT_KEEP_RUNS_DAYS,
        help="keep the input versions pinned by runs of the last N days readable "
        f"(default {DEFAULT_KEEP_RUNS_DAYS:g})",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would be removed, change nothing")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.run_id:
        raise ContactSparkError("maintenance covers every run of the lakehouse: drop --run-id")
    check_retention(args.retention_hours, args.allow_short_retention)  # before Spark starts
    config = config_from_args(args)
    known: set[str] = set()
    storage = config.storage
    if storage.catalog or storage.database or "://" in storage.base_path:
        # No folder to list: every table a stage or the export writes, by name.
        from contact_spark.export.run import EXPORT_REJECTED_TABLE
        from contact_spark.inputs import PINNED_TABLES
        from contact_spark.stages import STAGES

        known = {
            *PINNED_TABLES,
            *(table for stage in STAGES for table in stage.produces),
            EXPORT_REJECTED_TABLE,
        }
    spark = job_session("contact_spark.maintain")
    store = TableStore(spark, storage)
    reports = maintain(
        store,
        args.retention_hours,
        dry_run=args.dry_run,
        keep_runs_days=args.keep_runs_days,
        allow_short_retention=args.allow_short_retention,
        known=known,
    )
    mode = " (dry run: nothing changed)" if args.dry_run else ""
    print(
        f"maintenance of {len(reports)} tables at {storage.base_path} ({store.backend.name} Delta backend){mode}"
    )
    for report in reports:
        print(f"  {report.line(args.dry_run)}")
    print(f"  {total(reports).line(args.dry_run)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
