"""Train, calibrate and save one propensity model per campaign x channel and score every customer: propensity_scores, propensity_metrics, propensity_calibration, propensity_features.

Reads the input tables and the run's best_contacts and contactability (jobs/clean_contacts.py,
same --run-id). With propensity.source: model the next stage, jobs/eligibility.py, uses the
learned scores; with source: table the job only evaluates the models (docs/propensity.md).

spark-submit --py-files dist/contact_spark-*.whl jobs/train_propensity.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("propensity", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
