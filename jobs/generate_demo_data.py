"""Generate the seeded demo customer base into the four input Delta tables.

Stage 1 of a demo run (real runs start from their own input tables); the next is jobs/clean_contacts.py.

spark-submit --py-files dist/contact_spark-*.whl jobs/generate_demo_data.py --set demo.customers=100000
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("generate", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
