"""End-to-end benchmark: the whole pipeline on generated data, timed by stage.

    .venv/bin/python bench/bench_pipeline.py --customers 10000 [--customers 100000 ...]

For each size: generates the demo base, runs every stage in Spark local mode into a
fresh Delta base path, and reports the seconds per stage (from ``run_stages``), the
number of price iterations, the objective, dual bound and gap (``plan_summary``), the plan
stage by phase (customer frame, each dual iteration, primal round, repair round and
certificate, writing; timed from the stage's log records) and the peak memory (VmHWM) of
the driver's JVM and of the Python workers. Writes ``bench/results/<output>.json``
(default ``pipeline``) and ``<output>.md``: Markdown tables with the seconds of the target
path (contacts → eligibility → plan → validate → metrics → report) and of the plan phases.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from contact_spark.cli import default_run_id
from contact_spark.config import load_config
from contact_spark.io.tables import TableStore
from contact_spark.pipeline import run_pipeline
from contact_spark.spark import get_spark

RESULTS = Path(__file__).resolve().parent / "results"
# The end-to-end target: clean → eligibility → price iterations → repair →
# validate → report (the report's metrics included; the greedy baseline and the
# per-contact decisions are extra stages, timed but outside the path).
TARGET_PATH = ("contacts", "eligibility", "plan", "validate", "metrics", "report")


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory (VmHWM) of this machine's Spark JVM and Python workers, in MB."""
    jvm, workers = 0.0, 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), None)
        if hwm is None:
            continue
        mb = int(hwm) / 1024
        if "org.apache.spark.deploy.SparkSubmit" in cmdline:
            jvm = max(jvm, mb)
        elif "pyspark.daemon" in cmdline or "pyspark/daemon" in cmdline or "pyspark.worker" in cmdline:
            workers = max(workers, mb)
    import resource

    driver_python = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "driver_jvm_mb": round(jvm, 1),
        "driver_python_mb": round(driver_python, 1),
        "python_worker_mb": round(workers, 1),
    }


_PHASE_LINE = re.compile(r"capacity (dual|primal|repair|certificate) iteration (-?\d+)")


class PlanPhaseTimer(logging.Handler):
    """Keeps the time of the plan stage's log records: each price iteration, repair round
    and certificate logs one line when it ends, so the gaps between lines time them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.marks: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.name.startswith("contact_spark.") and (
            "stage plan:" in message or message.startswith(("planning:", "capacity "))
        ):
            self.marks.append((record.created, message))

    def phases(self) -> dict[str, Any]:
        """Seconds of the customer frame, of every iteration per phase, and of the writing.

        An interval ends at its phase's log line: a dual iteration includes writing its rows,
        the first repair round the re-solve of the kept primal round with its schedules."""
        out: dict[str, Any] = {"dual": [], "primal": [], "repair": [], "certificate": []}
        previous = None
        for created, message in self.marks:
            if "stage plan: start" in message:
                previous = created
                continue
            if previous is None:
                continue
            elapsed = round(created - previous, 3)
            match = _PHASE_LINE.match(message)
            if match:
                out[match.group(1)].append(elapsed)
            elif message.startswith("planning:") and "customers" in message:
                out["frame"] = elapsed
            elif "stage plan: done" in message:
                out["write"] = elapsed
            else:
                continue
            previous = created
        if not out["dual"] and not out["primal"]:
            raise RuntimeError("the plan stage logged no price iteration: its log lines changed?")
        return out


def run_size(customers: int, config_path: str | None) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"bench-{customers}-"))
    try:
        config = load_config(
            config_path,
            overrides={"demo.customers": customers, "storage.base_path": str(base / "lakehouse")},
        )
        spark = get_spark("contact_spark.bench", ui=False)
        store = TableStore(spark, config.storage)
        run_id = default_run_id(config)
        timer = PlanPhaseTimer()
        package_log = logging.getLogger("contact_spark")
        level = package_log.level
        package_log.setLevel(logging.INFO)
        package_log.addHandler(timer)
        try:
            start = time.perf_counter()
            result = run_pipeline(
                spark, store, config, run_id, generate=True, report_dir=str(base / "reports")
            )
            total = time.perf_counter() - start
        finally:
            package_log.removeHandler(timer)
            package_log.setLevel(level)
        summary = store.read_run("plan_summary", run_id).first().asDict()
        stages = {s.stage: s.seconds for s in result.stages}
        # The HTML report is written after the stage timings are recorded: the rest of the time.
        stages["report"] = round(total - sum(stages.values()), 3)
        return {
            "customers": customers,
            "total_seconds": round(total, 1),
            "target_path_seconds": round(sum(stages.get(s, 0.0) for s in TARGET_PATH), 1),
            "stages": stages,
            "plan_phases": timer.phases(),
            "iterations": summary["iterations"],
            "objective": summary["objective"],
            "dual_bound": summary["dual_bound"],
            "gap": summary["gap"],
            "contacts": summary["contacts"],
            "memory": peak_memory_mb(),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    """Markdown table lines."""
    return ["| " + " | ".join(row) + " |" for row in [head, ["---"] * len(head), *body]]


def _phase(times: list[float]) -> str:
    """A phase's total seconds and its iterations, e.g. ``29.1 (30 × 0.97)``."""
    return f"{sum(times):.1f} ({len(times)} × {sum(times) / len(times):.2f})" if times else "–"


def markdown(rows: list[dict[str, Any]]) -> str:
    stages = sorted(
        {s for r in rows for s in r["stages"]},
        key=lambda s: list(rows[0]["stages"]).index(s) if s in rows[0]["stages"] else 99,
    )
    head = ["customers", *stages, "target path s", "total s", "iterations", "gap", "JVM MB", "worker MB"]
    body = []
    for r in rows:
        cells = [f"{r['customers']:,}", *[f"{r['stages'].get(s, 0):.1f}" for s in stages]]
        cells += [f"{r['target_path_seconds']:.1f}", f"{r['total_seconds']:.1f}"]
        cells += [str(r["iterations"]), f"{r['gap']:.4%}"]
        cells += [f"{r['memory']['driver_jvm_mb']:.0f}", f"{r['memory']['python_worker_mb']:.0f}"]
        body.append(cells)
    phases = ["dual", "primal", "repair", "certificate"]
    phase_head = [
        "customers",
        "frame",
        "dual iterations",
        "primal rounds",
        "repair rounds",
        "certificates",
        "write",
    ]
    phase_body = [
        [
            f"{r['customers']:,}",
            f"{r['plan_phases'].get('frame', 0):.1f}",
            *[_phase(r["plan_phases"][k]) for k in phases],
            f"{r['plan_phases'].get('write', 0):.1f}",
        ]
        for r in rows
    ]
    title = ["", "Plan stage by phase (seconds; n × mean):", ""]
    return "\n".join([*_table(head, body), *title, *_table(phase_head, phase_body)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, action="append", help="size (repeatable); default 10000")
    parser.add_argument("--config", default=None)
    parser.add_argument("--output", default="pipeline", help="results file name in bench/results (no suffix)")
    args = parser.parse_args()
    rows = [run_size(n, args.config) for n in (args.customers or [10_000])]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(rows, indent=2, default=str))
    (RESULTS / f"{args.output}.md").write_text(markdown(rows) + "\n")
    print(json.dumps(rows, indent=2, default=str))
    print(markdown(rows))


if __name__ == "__main__":
    main()
