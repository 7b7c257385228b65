"""Benchmark of the checks after the plan: greedy baseline, plan validator, contact_decisions.

    .venv/bin/python bench/bench_validate.py --customers 10000 [--customers 100000 ...]

For each size: generates the demo base, runs the contacts and eligibility stages into a
fresh Delta base path, then times (Spark local mode, wall clock) the greedy baseline
(written to ``baseline_plan``), the independent validator on that plan (written to
``baseline_violations``) and ``contact_decisions`` for it. The greedy plan is the plan
validated so that the benchmark does not depend on the optimizer's run time; it has the
optimizer's shape (one row per contact, every rule type checked). Prints a Markdown table
and writes ``bench/results/validate.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from contact_spark.baseline.greedy import BASELINE_TABLE, greedy_plan
from contact_spark.config import load_config
from contact_spark.explain.decisions import contact_decisions
from contact_spark.io.tables import TableStore
from contact_spark.spark import get_spark
from contact_spark.stages import run_stage
from contact_spark.validation.run import validate_plan
from contact_spark.validation.stage import BASELINE_VIOLATIONS, stored_inputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import peak_memory_mb

RESULTS = Path(__file__).resolve().parent / "results"
RUN_ID = "bench-validate"


def run_size(customers: int, cores: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"bench-validate-{customers}-"))
    config = load_config(overrides={"storage.base_path": str(base), "demo.customers": customers})
    spark = get_spark(
        "bench-validate",
        local_cores=cores,
        ui=False,
        extra_conf={"spark.sql.shuffle.partitions": str(max(8, cores * 4)), "spark.driver.memory": "6g"},
    )
    store = TableStore(spark, config.storage)
    seconds: dict[str, float] = {}
    try:
        for stage in ("generate", "contacts", "eligibility"):
            start = time.perf_counter()
            run_stage(stage, spark, store, config, RUN_ID)
            seconds[stage] = time.perf_counter() - start
        eligibility = store.read_run("eligibility", RUN_ID)
        start = time.perf_counter()
        plan = greedy_plan(
            spark, config, eligibility, store.read("contact_history"), store.read("customers"), RUN_ID
        )
        store.replace_run(plan, BASELINE_TABLE, RUN_ID)
        seconds["greedy"] = time.perf_counter() - start
        plan = store.read_run(BASELINE_TABLE, RUN_ID)
        start = time.perf_counter()
        violations = validate_plan(spark, config, stored_inputs(store, RUN_ID, plan), RUN_ID)
        store.replace_run(violations, BASELINE_VIOLATIONS, RUN_ID)
        seconds["validate"] = time.perf_counter() - start
        start = time.perf_counter()
        decisions = contact_decisions(
            spark,
            config,
            eligibility,
            plan,
            store.read("contact_history"),
            RUN_ID,
            customers=store.read("customers"),
        )
        store.replace_run(decisions, "contact_decisions", RUN_ID)
        seconds["decisions"] = time.perf_counter() - start
        found = store.read_run(BASELINE_VIOLATIONS, RUN_ID)
        return {
            "customers": customers,
            "eligibility_rows": eligibility.count(),
            "plan_rows": plan.count(),
            "violations": found.filter(F.col("severity") == "ERROR").count(),
            "decision_rows": store.read_run("contact_decisions", RUN_ID).count(),
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            **peak_memory_mb(),
        }
    finally:
        spark.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, action="append", required=True)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    results = [run_size(n, args.cores) for n in args.customers]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validate.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(
        "| customers | eligibility rows | plan rows | greedy s | validate s | decisions s | violations | driver JVM MB | worker MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["seconds"]
        print(
            f"| {r['customers']:,} | {r['eligibility_rows']:,} | {r['plan_rows']:,} | {s['greedy']} | "
            f"{s['validate']} | {s['decisions']} | {r['violations']} | {r['driver_jvm_mb']} | {r['python_worker_mb']} |"
        )


if __name__ == "__main__":
    main()
