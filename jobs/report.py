"""Write the run's HTML report (<report-dir>/<run_id>/report.html) from its Delta tables.

Reads the run's plan (jobs/plan.py, same --run-id), the other stages' tables and run_stages.

spark-submit --py-files dist/contact_spark-*.whl jobs/report.py --config contact_spark/config/default.yaml --report-dir /dbfs/reports
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-dir", default="reports", help="directory of the report (default: reports)")


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job(
        "report",
        __doc__.splitlines()[0],
        argv,
        add_arguments=_arguments,
        stage_kwargs=lambda args: {"report_dir": args.report_dir},
    )


if __name__ == "__main__":
    sys.exit(main())
