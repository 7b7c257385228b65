"""Export a run's plan to the execution systems: per month, one list per channel (CSV and Parquet) and a manifest.

spark-submit --py-files dist/contact_spark-*.whl jobs/export_plan.py \
    --run-id <run> [--month 2027-01] [--out exports]
Consent is checked again against the current customers and contacts; rows that no longer
pass go to export_rejected with a reason. A rerun replaces the month's files and rows
(docs/export.md). Exit 2 on a user error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import (
    add_lock_arguments,
    base_parser,
    config_from_args,
    default_run_id,
    main_guard,
    parse_month,
    setup_logging,
)
from contact_spark.deploy import enable_wheel_imports, job_session
from contact_spark.export.run import export_plan
from contact_spark.io.run_lock import RunLock
from contact_spark.io.tables import TableStore, check_run_id


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    enable_wheel_imports()
    parser = base_parser(__doc__.splitlines()[0])
    add_lock_arguments(parser)
    parser.add_argument(
        "--month", default=None, help="month to export, YYYY-MM (default: every month of the plan)"
    )
    parser.add_argument("--out", default="exports", help="folder of the exports (default: ./exports)")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    run_id = check_run_id(args.run_id or default_run_id(config))
    month = parse_month(args.month, "--month") if args.month else None
    spark = job_session("contact_spark.export_plan")
    store = TableStore(spark, config.storage)
    with RunLock(store, run_id).hold(force=args.force):  # one export (or stage) of the run at a time
        result = export_plan(spark, store, config, run_id, args.out, month)
    for done in result.months:
        counts = done.manifest["consent_recheck"]
        print(
            f"run {run_id} {done.month:%Y-%m}: {counts['exported']} exported, {counts['rejected']} "
            f"rejected at the consent re-check -> {done.folder}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
