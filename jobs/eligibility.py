"""Eligibility of every customer x campaign x channel with every reason against it: eligibility, eligibility_funnel, inputs_rejected.

Reads the input tables and the run's best_contacts (jobs/clean_contacts.py, same --run-id);
the next stage is jobs/plan.py.

spark-submit --py-files dist/contact_spark-*.whl jobs/eligibility.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("eligibility", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
