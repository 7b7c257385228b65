"""Run the whole contact_spark pipeline for one run.

spark-submit --py-files dist/contact_spark-*.whl jobs/run_pipeline.py --config contact_spark/config/default.yaml
A what-if run: --scenario NAME [--base-run RUN] with its --set overrides, recorded in the
scenarios table; compare it with jobs/compare_runs.py.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contact_spark.cli import (
    add_lock_arguments,
    base_parser,
    config_from_args,
    default_run_id,
    main_guard,
    setup_logging,
)
from contact_spark.deploy import enable_wheel_imports, job_session, package_archive, package_location
from contact_spark.io.run_lock import RunLock
from contact_spark.io.scenarios import Scenario, ScenarioError
from contact_spark.io.tables import TableStore, check_run_id


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    enable_wheel_imports()  # before the config check imports the solver
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--generate", action="store_true", help="generate the demo input tables first")
    parser.add_argument("--report-dir", default="reports", help="where the HTML report is written")
    parser.add_argument(
        "--scenario",
        default=None,
        metavar="NAME",
        help="name this run as a scenario: the name, --base-run and the --set overrides are recorded "
        "in the scenarios table (the run id still follows the config)",
    )
    parser.add_argument(
        "--base-run", default=None, metavar="RUN", help="the run this scenario varies (with --scenario)"
    )
    add_lock_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.base_run and not args.scenario:
        raise ScenarioError("--base-run needs --scenario NAME: it says which run the scenario varies")
    scenario = (
        Scenario.from_arguments(args.scenario, args.base_run, args.overrides, args.config)
        if args.scenario
        else None
    )
    config = config_from_args(args)
    run_id = check_run_id(args.run_id or default_run_id(config))
    # Imported after enable_wheel_imports(): the stage registry imports the numba kernels,
    # whose on-disk cache needs the wheel's locator when the package runs from a zip.
    from contact_spark.pipeline import run_pipeline

    spark = job_session("contact_spark.run_pipeline")
    store = TableStore(spark, config.storage)
    with RunLock(store, run_id).hold(force=args.force) as lock:  # one process per run id
        result = run_pipeline(
            spark,
            store,
            config,
            run_id,
            generate=args.generate,
            report_dir=args.report_dir,
            lock=lock,
            scenario=scenario,
        )
    print(f"run {result.run_id} finished ({store.backend.name} Delta backend)")
    if scenario is not None:
        base = scenario.base_run_id or "BASE_RUN"
        print(f"  scenario {scenario.name}: compare with jobs/compare_runs.py --base {base} --scenario {run_id}")
    print(f"  package contact_spark from {package_archive() or package_location()}")
    for name, location in sorted(result.tables.items()):
        print(f"  table {name:<18} {location}")
    if result.report_path:
        print(f"  report {result.report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
