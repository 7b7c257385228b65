"""Import your own data (CSV, Parquet, JDBC, catalog tables) into the input tables, by a mapping file.

python jobs/import_inputs.py --mapping conf/examples/import_crm_export.yaml [--config my_config.yaml]
Bad rows go to import_quarantine with a reason code; import_summary and the output reconcile
read = written + quarantined per table (docs/import.md). Exit code 0 once imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, config_from_args, main_guard, setup_logging
from contact_spark.config.imports import load_import_mapping
from contact_spark.io.import_plan import check_mapping
from contact_spark.io.importer import import_inputs
from contact_spark.io.tables import TableStore
from contact_spark.spark import get_spark


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--mapping",
        required=True,
        help="the import mapping (YAML), e.g. conf/examples/import_crm_export.yaml",
    )
    parser.add_argument(
        "--jars",
        default=None,
        help="comma-separated jars for a local session, e.g. the JDBC driver "
        "(on a cluster give them to spark-submit --jars)",
    )
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    mapping = load_import_mapping(args.mapping)
    check_mapping(mapping, config.channel_names, args.mapping)  # before Spark starts
    spark = get_spark(
        "contact_spark.import_inputs", extra_conf={"spark.jars": args.jars} if args.jars else None
    )
    store = TableStore(spark, config.storage)
    result = import_inputs(
        spark, store, mapping, config.channel_names, mapping_path=args.mapping, run_id=args.run_id
    )
    print(result.summary())
    print(f"quarantine: {store.location('import_quarantine')}, summary: {store.location('import_summary')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
