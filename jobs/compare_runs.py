"""Compare a scenario run with its base run: the run_comparison Delta table and an HTML page side by side.

spark-submit --py-files dist/contact_spark-*.whl jobs/compare_runs.py --base RUN --scenario RUN \
    [--config the file both runs were made from] [--report-dir reports]
Value, contacts and cost by month x campaign x channel, capacity usage and shadow prices,
the customers whose plan changed, and the value change the base's shadow prices predicted
against the change measured (docs/scenarios.md). A rerun replaces the pair's rows and page.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, main_guard, overrides_from_args, setup_logging
from contact_spark.config import load_config
from contact_spark.deploy import enable_wheel_imports, job_session
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.scenarios.compare import compare_runs
from contact_spark.scenarios.configs import run_config
from contact_spark.scenarios.page import write_comparison_page


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    enable_wheel_imports()
    parser = base_parser(__doc__.splitlines()[0], run_id=False)
    parser.add_argument("--base", required=True, metavar="RUN", help="the base run id")
    parser.add_argument("--scenario", required=True, metavar="RUN", help="the scenario's run id")
    parser.add_argument("--report-dir", default="reports", help="where the HTML page is written")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    base_id, scenario_id = check_run_id(args.base), check_run_id(args.scenario)
    overrides = overrides_from_args(args)
    config = load_config(args.config, overrides)
    spark = job_session("contact_spark.compare_runs")
    store = TableStore(spark, config.storage)
    base = run_config(store, "base", base_id, args.config, overrides)
    scenario = run_config(store, "scenario", scenario_id, args.config, overrides)
    comparison = compare_runs(spark, store, base, scenario)
    page = write_comparison_page(comparison, args.report_dir)
    value, prediction = comparison.total("value"), comparison.prediction()
    print(f"scenario {scenario_id} against base {base_id} ({store.backend.name} Delta backend)")
    print(
        f"  value {value['base']:,.2f} -> {value['scenario']:,.2f}: measured {value['difference']:+,.2f}, "
        f"predicted by the base's shadow prices {prediction['predicted']:+,.2f}"
    )
    changed = sum(n for n, _ in comparison.changes.values())
    print(f"  customers whose plan changed: {changed}")
    print(f"  table run_comparison {store.location('run_comparison')} (run_id {comparison.id})")
    print(f"  page {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
