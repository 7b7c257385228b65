"""Apply new trigger events to a plan run: re-plan only the customers they concern.

spark-submit --py-files dist/contact_spark-*.whl jobs/trigger.py --run-id <run> --executed-through 2027-03
Reads the events table; writes trigger_events, plan_drift and plan_lineage rows and merges the
new schedules into the run's plan (docs/adaptive.md). Running it again with no new event changes
nothing. Exit 2 on a user error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.adaptive.triggers import run_triggers
from contact_spark.cli import (
    base_parser,
    config_from_args,
    default_run_id,
    main_guard,
    parse_month,
    setup_logging,
)
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.spark import get_spark


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--executed-through",
        required=True,
        help="last month of complete contact history, YYYY-MM",
    )
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    executed_through = parse_month(args.executed_through, "--executed-through")
    run_id = check_run_id(args.run_id or default_run_id(config))
    spark = get_spark("contact_spark.trigger")
    store = TableStore(spark, config.storage)
    result = run_triggers(spark, store, config, run_id, executed_through)
    drift = ", ".join(f"{k}={v}" for k, v in sorted(result.drift.items())) or "no change"
    print(
        f"run {run_id} revision {result.revision}: {result.applied} event(s) applied, {result.rejected} rejected, "
        f"{result.customers} customer(s) re-planned; {drift}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
