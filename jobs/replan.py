"""Re-plan the rest of the plan year after the months already executed.

spark-submit --py-files dist/contact_spark-*.whl jobs/replan.py \
    --parent-run-id <run> --executed-through 2027-01 [--run-id <new run>]
Executed contacts are read from contact_history; the new run gets plan_drift, plan_drift_summary,
capacity_carryover and plan_lineage rows (docs/adaptive.md). Exit 2 on a user error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.adaptive.replan import replan
from contact_spark.cli import base_parser, config_from_args, main_guard, parse_month, setup_logging
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.spark import get_spark
from contact_spark.stage_job import StageRunner


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--parent-run-id", required=True, help="run whose plan was being executed")
    parser.add_argument("--executed-through", required=True, help="last executed month, YYYY-MM")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    executed_through = parse_month(args.executed_through, "--executed-through")
    parent = check_run_id(args.parent_run_id)
    run_id = check_run_id(args.run_id or f"{parent}-r{executed_through:%Y%m}")
    spark = get_spark("contact_spark.replan")
    store = TableStore(spark, config.storage)
    result = replan(spark, store, config, parent, executed_through, run_id, StageRunner(spark, store, run_id))
    drift = ", ".join(f"{k}={v}" for k, v in sorted(result.drift.items()))
    print(
        f"run {run_id}: re-planned from {result.replanned_from:%Y-%m} (parent {parent}), gap {result.gap:.4%}; {drift}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
