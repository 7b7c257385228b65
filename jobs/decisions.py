"""Every customer x campaign x channel of a run, planned or the reason why not: contact_decisions.

Reads the run's plan, eligibility and capacity sensitivity (jobs/plan.py, same --run-id).

spark-submit --py-files dist/contact_spark-*.whl jobs/decisions.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("decisions", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
