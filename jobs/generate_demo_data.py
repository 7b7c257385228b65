"""Generate the seeded demo customer base into the four input Delta tables.

spark-submit --py-files dist/contact_spark-*.whl jobs/generate_demo_data.py --set demo.customers=100000
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, config_from_args, main_guard, setup_logging
from contact_spark.io.tables import TableStore
from contact_spark.pipeline import write_demo_data
from contact_spark.spark import get_spark


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = base_parser(__doc__.splitlines()[1]).parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    spark = get_spark("contact_spark.generate_demo_data")
    store = TableStore(spark, config.storage)
    for name, location in write_demo_data(spark, store, config).items():
        print(f"  table {name:<18} {location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
