"""Plan every customer's months under the contact policy and the global capacities: plan, plan_quarantine, capacity_iterations, capacity_sensitivity, plan_summary.

Reads the run's eligibility (jobs/eligibility.py, same --run-id) and the input tables; logs
each capacity price iteration and the final gap. The next stage is jobs/report.py.

spark-submit --py-files dist/contact_spark-*.whl jobs/plan.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("plan", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
