"""Clean, score and rank contacts: contacts_clean, contacts_rejected, best_contacts, contactability.

spark-submit --py-files dist/contact_spark-*.whl jobs/clean_contacts.py --config conf/default.yaml
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, config_from_args, default_run_id, main_guard, setup_logging
from contact_spark.contacts.stage import run_contacts_stage
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.pipeline import load_inputs
from contact_spark.spark import get_spark


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    run_id = check_run_id(args.run_id or default_run_id(config))
    if not os.environ.get("PYSPARK_GATEWAY_PORT") and not os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        # Local mode: the pandas UDF workers need this interpreter's packages
        # (phonenumbers, email-validator), not whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = get_spark("contact_spark.clean_contacts")
    store = TableStore(spark, config.storage)
    inputs = load_inputs(store, config)
    tables = run_contacts_stage(spark, store, config, inputs, run_id)
    print(f"run {run_id} contacts stage finished ({store.backend.name} Delta backend)")
    for name, location in sorted(tables.items()):
        print(f"  table {name:<18} {location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
