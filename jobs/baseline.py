"""The greedy baseline plan of a run, validated by the same checks as the plan: baseline_plan, baseline_violations.

Reads the run's plan inputs (jobs/plan.py, same --run-id); never fails on the baseline's violations.

spark-submit --py-files dist/contact_spark-*.whl jobs/baseline.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("baseline", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
