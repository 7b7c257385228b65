"""Validate a stored plan against its inputs, eligibility, consent, history and the policy.

spark-submit --py-files dist/contact_spark-*.whl jobs/validate_plan.py --run-id <run_id>
Exit code 0 when the plan passes every check, 2 when it has violations (written to Delta).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, config_from_args, default_run_id, main_guard, setup_logging
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.spark import get_spark
from contact_spark.validation.stage import VIOLATIONS_TABLE, run_validation_stage


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--plan-table", default="plan", help="plan table to check (e.g. baseline_plan)")
    parser.add_argument(
        "--violations-table", default=VIOLATIONS_TABLE, help="where the run's violations are written"
    )
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    run_id = check_run_id(args.run_id or default_run_id(config))
    spark = get_spark("contact_spark.validate_plan")
    store = TableStore(spark, config.storage)
    plan = store.read_run(args.plan_table, run_id)
    run_validation_stage(spark, store, config, run_id, plan=plan, table=args.violations_table)
    print(f"plan '{args.plan_table}' of run {run_id}: no violation ({store.location(args.violations_table)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
