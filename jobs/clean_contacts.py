"""Clean, score and rank contacts: contacts_clean, contacts_rejected, best_contacts, contactability.

Checks the four input tables first. Stage 2 of a run; the next is jobs/eligibility.py.

spark-submit --py-files dist/contact_spark-*.whl jobs/clean_contacts.py --config contact_spark/config/default.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import main_guard
from contact_spark.stage_job import stage_job


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return stage_job("contacts", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
