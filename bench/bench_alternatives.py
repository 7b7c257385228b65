"""Against the alternatives a user would pick, side by side on the same generated instance.

    .venv/bin/python bench/bench_alternatives.py --customers 300 --customers 1000 \
        --milp-customers 100 --milp-customers 300 [--milp-time-limit 600]

For each size N (``contact_spark/config/default.yaml`` with ``demo.customers = N`` and capacities scaled to
N so they bind: TLS calls N/20 per month, N/40 in August, SMS cost budget N/5 per year),
the demo base is generated and run through the pipeline's contacts and eligibility
stages, then, in the same process and on the same customer frame:

1. **contact_spark** — the planning stage's :func:`solve_plan` (Lagrangian prices, repair,
   certified dual bound);
2. **global MILP** — :func:`solve_reference` (one HiGHS model of the coupled problem) with
   a time limit, for the sizes of ``--milp-customers`` until the first one that does not
   prove optimality (larger sizes are skipped and reported as such);
3. **greedy** — :func:`greedy_plan` of the baseline (its public function only);
4. **chunks** — the customers cut into chunks of ``--chunk-size`` (by customer-id hash),
   each chunk given every capacity times its share of the customers and planned
   separately by the same engine; the plans are concatenated.

Every plan is valued by one value model, the kernel's ``KernelBatch.schedule_value`` at
zero prices, on the same batch built from the customer frame; usage of every capacity is
recounted from the plan's contacts and every customer's schedule is checked against the
policy by the independent checker of the test suite (``tests/solver/rule_checker.py``).
Writes ``bench/results/alternatives.json`` and ``alternatives.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.baseline.greedy import greedy_plan
from contact_spark.capacity.constraints import Constraint, attributes_needed
from contact_spark.capacity.engine import CapacityEngine
from contact_spark.capacity.reference import solve_reference
from contact_spark.config import AppConfig, load_config
from contact_spark.inputs import load_inputs, write_demo_data
from contact_spark.io.tables import TableStore
from contact_spark.planning.solve import batch_from_pandas
from contact_spark.planning.stage import PlanScope, default_scope, solve_plan
from contact_spark.spark import get_spark
from contact_spark.stages import run_stage

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
AUGUST = "2027-08-01"


def progress(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ instance
def capacity_rules(n: int) -> list[dict[str, Any]]:
    """The capacity tests' rules scaled to ``n`` customers, so that they bind."""
    return [
        {
            "name": "call_centre",
            "channels": ["TLS"],
            "max": n / 20,
            "exceptions": [{"month": AUGUST, "max": n / 40}],
        },
        {
            "name": "sms_budget",
            "measure": "sum",
            "column": "cost",
            "channels": ["SMS"],
            "period": "year",
            "max": n / 5,
        },
    ]


def instance_config(n: int, base: Path, config_path: str | None) -> AppConfig:
    """``contact_spark/config/default.yaml`` with ``n`` demo customers, scaled capacities, a private lakehouse."""
    return load_config(
        config_path,
        overrides={
            "demo.customers": n,
            "demo.partitions": 2,
            "storage.base_path": str(base / "lakehouse"),
            "storage.backend": "deltalake",
            "capacities.rules": capacity_rules(n),
        },
    )


@dataclasses.dataclass
class Instance:
    """One generated instance: its inputs, eligibility and the value model's batch."""

    config: AppConfig
    store: TableStore
    run_id: str
    eligibility: DataFrame
    history: DataFrame
    customers: DataFrame
    scope: PlanScope
    customer_ids: list[str]  # every customer of the base
    frame: pd.DataFrame | None = None  # the planner's customer frame (with attr_* columns)
    batch: Any = None  # KernelBatch at zero prices, customers in ``frame`` order
    index: dict[str, int] = dataclasses.field(default_factory=dict)


def build_instance(spark: SparkSession, n: int, base: Path, config_path: str | None) -> Instance:
    """Generate the demo base and run the contacts and eligibility stages into ``base``."""
    config = instance_config(n, base, config_path)
    store = TableStore(spark, config.storage)
    run_id = f"alt{n}"
    write_demo_data(spark, store, config)
    inputs = load_inputs(store, config)
    # run_stage skips segments and propensity when the configuration turns them off.
    for stage in ("contacts", "segments", "propensity", "eligibility"):
        run_stage(stage, spark, store, config, run_id, record=False, inputs=inputs)
    eligibility = store.read_run("eligibility", run_id).persist(StorageLevel.MEMORY_AND_DISK)
    history = inputs.contact_history.persist(StorageLevel.MEMORY_AND_DISK)
    customers = inputs.customers.persist(StorageLevel.MEMORY_AND_DISK)
    ids = sorted(r.customer_id for r in customers.select("customer_id").collect())
    return Instance(config, store, run_id, eligibility, history, customers, default_scope(config), ids)


def attach_frame(inst: Instance, frame: DataFrame) -> None:
    """Collect the planner's customer frame and build the value model's batch from it."""
    pdf = frame.drop("batch").toPandas().sort_values("customer_id").reset_index(drop=True)
    layout = inst.scope.layout
    zero = np.zeros((layout.horizon, len(layout.campaigns), len(layout.channels)))
    inst.frame = pdf
    inst.batch = batch_from_pandas(pdf, layout, inst.scope.static, zero)
    inst.index = {c: i for i, c in enumerate(pdf["customer_id"])}


# ------------------------------------------------------------------ one value model
def x_from_solved(inst: Instance, solved: pd.DataFrame) -> np.ndarray:
    """``x[N, T, C, H]`` from solver rows (``customer_id``, ``status``, ``months``, ``cells``)."""
    layout = inst.scope.layout
    n_h = len(layout.channels)
    x = np.zeros((len(inst.index), layout.horizon, len(layout.campaigns), n_h), dtype=bool)
    for row in solved.itertuples():
        if row.status != 0:
            continue
        i = inst.index[row.customer_id]
        for t, k in zip(row.months, row.cells, strict=True):
            x[i, int(t), int(k) // n_h, int(k) % n_h] = True
    return x


def x_from_plan(inst: Instance, plan: pd.DataFrame) -> tuple[np.ndarray, int]:
    """``x`` from ``plan``-table rows (month, campaign, channel); also the rows outside the frame."""
    layout = inst.scope.layout
    months = {m: t for t, m in enumerate(inst.scope.months)}
    campaigns = {c: j for j, c in enumerate(layout.campaigns)}
    channels = {h: j for j, h in enumerate(layout.channels)}
    x = np.zeros((len(inst.index), layout.horizon, len(layout.campaigns), len(layout.channels)), dtype=bool)
    outside = 0
    for row in plan.itertuples():
        i = inst.index.get(row.customer_id)
        month = row.month.date() if hasattr(row.month, "date") else row.month
        if i is None or month not in months:
            outside += 1
            continue
        x[i, months[month], campaigns[row.campaign], channels[row.channel]] = True
    return x, outside


def usage(inst: Instance, x: np.ndarray, constraints: list[Constraint]) -> np.ndarray:
    """Every constraint's usage recounted from the contacts ``x``."""
    layout = inst.scope.layout
    n, n_c, n_h = x.shape[0], len(layout.campaigns), len(layout.channels)
    counts = x.sum(axis=0).astype(np.float64)
    out = []
    for c in constraints:
        sums = {}
        if c.attr is not None:
            attr = np.nan_to_num(np.stack(inst.frame[f"attr_{c.attr}"].to_numpy()).astype(np.float64))
            sums[c.attr] = (x * attr.reshape(n, n_c, n_h)[:, None]).sum(axis=0)
        out.append(c.usage(counts, sums))
    return np.asarray(out)


def policy_violations(inst: Instance, x: np.ndarray) -> int:
    """Customers whose schedule breaks a policy rule or uses an ineligible cell."""
    sys.path.insert(0, str(ROOT / "tests"))
    from solver.rule_checker import violations  # the test suite's independent checker

    layout = inst.scope.layout
    hist = inst.batch.clean_history()
    eligible = inst.batch.eligible
    bad = 0
    for i in range(x.shape[0]):
        if not x[i].any():
            continue
        broken = violations(inst.config.policy, layout.campaigns, layout.channels, hist[i], x[i])
        if broken or (x[i] & ~eligible[i]).any():
            bad += 1
    return bad


def assess(inst: Instance, x: np.ndarray, constraints: list[Constraint]) -> dict[str, Any]:
    """Value (one value model), contacts, capacity excess and policy check of a plan."""
    used = usage(inst, x, constraints)
    excess = {
        c.name: round(float(u - c.bound), 6)
        for c, u in zip(constraints, used, strict=True)
        if (c.sense == "max" and u > c.bound + 1e-6) or (c.sense == "min" and u < c.bound - 1e-6)
    }
    return {
        "value": float(inst.batch.schedule_value(x).sum()),
        "contacts": int(x.sum()),
        "capacity_violations": excess,
        "customers_breaking_policy": policy_violations(inst, x),
    }


# ------------------------------------------------------------------ the four methods
def run_ours(spark: SparkSession, inst: Instance) -> tuple[dict[str, Any], DataFrame]:
    """The planning stage's solve: value, certified bound, gap, time."""
    start = time.perf_counter()
    solved = solve_plan(
        spark,
        inst.store,
        inst.config,
        inst.scope,
        inst.eligibility,
        inst.history,
        inst.customers,
        inst.run_id,
        "bench",
    )
    result = solved.capacity
    rows = result.solved.select("customer_id", "status", "months", "cells").toPandas()
    seconds = time.perf_counter() - start
    attach_frame(inst, solved.frame)
    x = x_from_solved(inst, rows)
    out = assess(inst, x, result.constraints)
    out.update(
        seconds=round(seconds, 1),
        engine_value=result.primal_value,
        dual_bound=result.dual_bound,
        gap=result.gap,
        iterations=result.iterations,
        repair_rounds=result.repair_rounds,
        quarantined=int((rows["status"] != 0).sum()),
    )
    return out, solved.frame


def run_milp(inst: Instance, time_limit: float, gap: float) -> dict[str, Any]:
    """The whole coupled problem as one HiGHS MILP."""
    start = time.perf_counter()
    ref = solve_reference(
        inst.frame,
        inst.scope.policy,
        inst.scope.layout,
        inst.scope.static,
        inst.scope.constraints,
        time_limit=time_limit,
        mip_rel_gap=gap,
    )
    seconds = time.perf_counter() - start
    # solve_reference sorts by customer_id, as the frame already is.
    assert ref.customer_ids == list(inst.frame["customer_id"])
    out = assess(inst, ref.x, inst.scope.constraints)
    out.update(
        seconds=round(seconds, 1),
        status=ref.status,
        message=ref.message,
        optimal=ref.optimal,
        milp_bound=ref.bound,
        milp_value=ref.value,
        time_limit=time_limit,
        mip_rel_gap=gap,
    )
    return out


def run_greedy(spark: SparkSession, inst: Instance) -> dict[str, Any]:
    """The greedy baseline's plan, revalued by the kernel's value model."""
    start = time.perf_counter()
    plan = greedy_plan(spark, inst.config, inst.eligibility, inst.history, inst.customers, inst.run_id)
    rows = plan.select("customer_id", "month", "campaign", "channel", "expected_value").toPandas()
    seconds = time.perf_counter() - start
    plan.unpersist()
    x, outside = x_from_plan(inst, rows)
    out = assess(inst, x, inst.scope.constraints)
    out.update(
        seconds=round(seconds, 1),
        rows_outside_frame=outside,
        duplicate_rows=int(
            len(rows) - rows.drop_duplicates(["customer_id", "month", "campaign", "channel"]).shape[0]
        ),
        own_expected_value_sum=float(rows["expected_value"].fillna(0.0).sum()),
    )
    return out


def chunk_of(customer_ids: list[str], chunk_size: int) -> dict[str, int]:
    """Customers ordered by a hash of their id (xxhash64 as Spark computes it), cut into chunks."""
    spark = SparkSession.getActiveSession()
    assert spark is not None
    hashed = (
        spark.createDataFrame([(c,) for c in customer_ids], "customer_id string")
        .select("customer_id", F.xxhash64("customer_id").alias("h"))
        .toPandas()
        .sort_values(["h", "customer_id"])
    )
    return {c: i // chunk_size for i, c in enumerate(hashed["customer_id"])}


def run_chunks(
    spark: SparkSession, inst: Instance, frame: DataFrame, chunk_size: int, ours: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Capacities split evenly over chunks of customers, each chunk planned on its own."""
    chunks = chunk_of(inst.customer_ids, chunk_size)
    n_all = len(inst.customer_ids)
    n_chunks = max(chunks.values()) + 1
    if n_chunks == 1 and ours is not None:
        # One chunk holding every customer with the whole capacities: the same problem as
        # ours, solved by the same engine; not run again.
        out = {k: ours[k] for k in ("value", "contacts", "capacity_violations", "customers_breaking_policy")}
        out.update(
            seconds=0.0,
            chunk_size=chunk_size,
            chunks=1,
            chunk_bound_sum=ours["dual_bound"],
            same_as_ours=True,
        )
        return out
    assign = spark.createDataFrame(list(chunks.items()), "customer_id string, chunk int")
    tagged = frame.join(F.broadcast(assign), "customer_id").persist(StorageLevel.MEMORY_AND_DISK)
    attributes = attributes_needed(inst.scope.constraints)
    parts, per_chunk = [], []
    start = time.perf_counter()
    for j in range(n_chunks):
        size = sum(1 for v in chunks.values() if v == j)
        share = size / n_all
        constraints = [dataclasses.replace(c, bound=c.bound * share) for c in inst.scope.constraints]
        sub = tagged.filter(F.col("chunk") == j).drop("chunk").persist(StorageLevel.MEMORY_AND_DISK)
        t0 = time.perf_counter()
        engine = CapacityEngine(
            spark,
            sub,
            inst.scope.policy,
            inst.scope.layout,
            inst.scope.static,
            constraints,
            inst.config.capacities.lagrangian,
            attributes,
        )
        result = engine.run()
        rows = result.solved.select("customer_id", "status", "months", "cells").toPandas()
        parts.append(rows)
        per_chunk.append(
            {
                "chunk": j,
                "customers": size,
                "share": share,
                "value": result.primal_value,
                "dual_bound": result.dual_bound,
                "gap": result.gap,
                "max_violations": result.max_violations(),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        result.solved.unpersist()
        sub.unpersist()
    seconds = time.perf_counter() - start
    tagged.unpersist()
    x = x_from_solved(inst, pd.concat(parts, ignore_index=True))
    out = assess(inst, x, inst.scope.constraints)
    out.update(
        seconds=round(seconds, 1),
        chunk_size=chunk_size,
        chunks=n_chunks,
        # Σ of the chunks' certified bounds: no chunked plan can do better than this.
        chunk_bound_sum=float(sum(c["dual_bound"] for c in per_chunk)),
        per_chunk=per_chunk,
    )
    return out


# ------------------------------------------------------------------ driver
def compare(ours: dict[str, Any], other: dict[str, Any]) -> None:
    """Ratio to our value and gap to our certified dual bound (valid for every feasible plan)."""
    other["ratio_to_ours"] = other["value"] / ours["value"] if ours["value"] else math.nan
    bound = ours["dual_bound"]
    other["gap_to_our_bound"] = (bound - other["value"]) / abs(bound) if bound else math.nan


def machine_load() -> str:
    """``uptime`` output: the machine is shared, timings are pessimistic."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"loadavg {os.getloadavg()}"


def run_size(
    spark: SparkSession,
    n: int,
    args: argparse.Namespace,
    run_milp_here: bool,
) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"bench-alt-{n}-"))
    try:
        row: dict[str, Any] = {"customers": n, "load_before": machine_load()}
        t0 = time.perf_counter()
        progress(f"N={n}: generating the instance")
        inst = build_instance(spark, n, base, args.config)
        progress(f"N={n}: contact_spark")
        row["prepare_seconds"] = round(time.perf_counter() - t0, 1)
        ours, frame = run_ours(spark, inst)
        row["planned_customers"] = len(inst.index)
        row["constraints"] = [
            {"name": c.name, "sense": c.sense, "bound": c.bound} for c in inst.scope.constraints
        ]
        row["ours"] = ours
        print(f"[N={n}] ours: {json.dumps(ours, default=str)}", flush=True)
        if not args.skip_greedy:
            progress(f"N={n}: greedy")
            row["greedy"] = run_greedy(spark, inst)
            compare(ours, row["greedy"])
            print(f"[N={n}] greedy: {json.dumps(row['greedy'], default=str)}", flush=True)
        if not args.skip_chunks:
            progress(f"N={n}: chunks")
            row["chunks"] = run_chunks(spark, inst, frame, args.chunk_size, ours)
            compare(ours, row["chunks"])
            print(f"[N={n}] chunks: {json.dumps(row['chunks'], default=str)}", flush=True)
        if run_milp_here:
            progress(f"N={n}: global MILP ({args.milp_time_limit:.0f} s limit)")
            row["milp"] = run_milp(inst, args.milp_time_limit, args.milp_gap)
            compare(ours, row["milp"])
            row["milp"]["our_value_over_milp_value"] = (
                ours["value"] / row["milp"]["value"] if row["milp"]["value"] else math.nan
            )
            print(f"[N={n}] milp: {json.dumps(row['milp'], default=str)}", flush=True)
        frame.unpersist()
        for df in (inst.eligibility, inst.history, inst.customers):
            df.unpersist()
        row["load_after"] = machine_load()
        return row
    finally:
        shutil.rmtree(base, ignore_errors=True)


def pct(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.2f} %"


def markdown(rows: list[dict[str, Any]], scan: list[dict[str, Any]]) -> str:
    """The side-by-side table (values by the kernel's value model)."""
    head = [
        "N",
        "method",
        "plan value",
        "ratio to ours",
        "gap to our bound",
        "own bound",
        "capacity / policy breaks",
        "time s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        o = r["ours"]
        breaks = lambda m: f"{len(m['capacity_violations'])} / {m['customers_breaking_policy']}"  # noqa: E731
        lines.append(
            f"| {r['customers']:,} | contact_spark | {o['value']:,.0f} | 1 | {pct(o['gap'])} "
            f"| {o['dual_bound']:,.0f} (certified) | {breaks(o)} | {o['seconds']:.0f} |"
        )
        if "milp" in r:
            m = r["milp"]
            status = (
                "optimal"
                if m["optimal"]
                else ("stopped at the time limit" if m["status"] == 1 else m["message"])
            )
            lines.append(
                f"| {r['customers']:,} | global HiGHS MILP, {status} | {m['value']:,.0f} | {m['ratio_to_ours']:.4f} "
                f"| {pct(m['gap_to_our_bound'])} | {m['milp_bound']:,.0f} | {breaks(m)} | {m['seconds']:.0f} |"
            )
        if "greedy" in r:
            g = r["greedy"]
            lines.append(
                f"| {r['customers']:,} | greedy baseline | {g['value']:,.0f} | {g['ratio_to_ours']:.4f} "
                f"| {pct(g['gap_to_our_bound'])} | – | {breaks(g)} | {g['seconds']:.0f} |"
            )
        if "chunks" in r:
            c = r["chunks"]
            lines.append(
                f"| {r['customers']:,} | {c['chunks']} chunk(s) of {c['chunk_size']:,}"
                f"{' (= ours: one chunk)' if c.get('same_as_ours') else ''} | {c['value']:,.0f} "
                f"| {c['ratio_to_ours']:.4f} | {pct(c['gap_to_our_bound'])} | Σ chunks {c['chunk_bound_sum']:,.0f} "
                f"| {breaks(c)} | {c['seconds']:.0f} |"
            )
    if scan:
        lines += ["", "MILP scan: " + "; ".join(f"N={s['customers']:,}: {s['outcome']}" for s in scan) + "."]
    lines += [
        "",
        "Machine load: "
        + "; ".join(
            f"N={r['customers']:,}: {r['load_before'].split('load average:')[-1].strip()}" for r in rows
        )
        + " (1/5/15 min, before each size).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, action="append", help="size (repeatable); default 300, 1000, 3000"
    )
    parser.add_argument(
        "--milp-customers",
        type=int,
        action="append",
        help="sizes for the global MILP scan (repeatable, ascending); default 100, 300, 1000, 3000",
    )
    parser.add_argument("--milp-time-limit", type=float, default=600.0, help="seconds per MILP (default 600)")
    parser.add_argument("--milp-gap", type=float, default=1e-4, help="HiGHS mip_rel_gap counted as optimal")
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--skip-greedy", action="store_true")
    parser.add_argument("--skip-chunks", action="store_true")
    parser.add_argument("--config", default=None)
    parser.add_argument("--output", default=str(RESULTS / "alternatives.json"))
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the JSON and stop")
    args = parser.parse_args()
    if args.markdown_only:
        saved = json.loads(Path(args.output).read_text())
        Path(args.output).with_suffix(".md").write_text(markdown(saved["sizes"], saved["milp_scan"]) + "\n")
        return
    sizes = args.customers or [300, 1000, 3000]
    milp_sizes = sorted(args.milp_customers or [100, 300, 1000, 3000])
    spark = get_spark(
        "contact_spark.bench_alternatives",
        local_cores=2,
        ui=False,
        extra_conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4"},
    )
    rows: list[dict[str, Any]] = []
    scan: list[dict[str, Any]] = []
    milp_stopped = False
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    for n in sorted(set(sizes) | set(milp_sizes)):
        do_milp = n in milp_sizes and not milp_stopped
        if n not in sizes and not do_milp:
            scan.append({"customers": n, "outcome": "not attempted: a smaller size already hit the limit"})
            continue
        row = run_size(spark, n, args, do_milp)
        if n in sizes or do_milp:
            rows.append(row)
        if n in milp_sizes:
            if do_milp:
                m = row["milp"]
                outcome = (
                    f"optimal in {m['seconds']:.0f} s"
                    if m["optimal"]
                    else f"not proven optimal in {m['time_limit']:.0f} s (HiGHS status {m['status']})"
                )
                milp_stopped = not m["optimal"]
            else:
                outcome = "not attempted: a smaller size already hit the limit"
            scan.append({"customers": n, "outcome": outcome})
        result = {"args": vars(args), "sizes": rows, "milp_scan": scan}
        output.write_text(json.dumps(result, indent=2, default=str))
        output.with_suffix(".md").write_text(markdown(rows, scan) + "\n")
    print(markdown(rows, scan))


if __name__ == "__main__":
    main()
