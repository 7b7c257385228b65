"""Cluster the customers into behaviour segments (k-means on behaviour and value features): customer_segments, segment_profiles.

Reads the input tables and the run's contactability (jobs/clean_contacts.py, same --run-id).
With segments.enabled: true, jobs/eligibility.py joins the label as customer column
behaviour_segment for include/exclude rules (docs/propensity.md).

spark-submit --py-files dist/contact_spark-*.whl jobs/segment_customers.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("segments", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
