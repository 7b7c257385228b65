"""Benchmark the real-time check: snapshot load time and the latency of single checks.

Writes random Delta tables for N customers with delta-rs (customers with a few null flags,
eligibility of one run with ~10% ineligible candidates, 12 months of random history, a
random plan of ~8 contacts per customer), loads a :class:`Snapshot` under the default
energy-retailer policy and capacities, then times checks one by one on random customers,
campaigns, channels and days of the plan year, three offers per customer as in one
interaction: *cold* (the customer's first check builds its state from the columnar
tables) and *warm* (the next two, state cached), as wall-clock latency and as CPU time of
the checking thread (the latency on an idle core; the two differ on a busy machine, see
``load_average_1min``). A few confirmations (one Delta append each) are timed too. Prints
JSON; latencies in microseconds.

    .venv/bin/python bench/bench_realtime.py [--customers 100000] [--checks 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from contact_spark.config import load_config
from contact_spark.realtime import Snapshot, check, confirm

RUN_ID = "bench"
CAMPAIGNS = ["CROSS_SELLING", "SOLUTION"]
CHANNELS = ["DEM", "SMS", "TLS"]
CONTACT = {"DEM": "someone@example.org", "SMS": "+393470000000", "TLS": "+393470000000"}
HISTORY_RATE = np.array([0.35, 0.25, 0.06]) / 2  # monthly probability per campaign, per channel
PLAN_CONTACTS = 8


def _months(first: dt.date, offsets: np.ndarray, day: int) -> pa.Array:
    base = first.year * 12 + first.month - 1 + offsets
    low = int(base.min())
    dates = pa.array(
        [dt.date(m // 12, m % 12 + 1, day) for m in range(low, int(base.max()) + 1)], pa.date32()
    )
    return dates.take(pa.array(base - low))


def write_tables(base: Path, n: int, first: dt.date, seed: int) -> None:
    """Random inputs and run outputs for ``n`` customers, written as Delta tables."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 8))

    def flag(p_true: float, p_null: float) -> pa.Array:
        u = rng.uniform(size=n)
        return pa.array(u < p_true, mask=u > 1 - p_null)

    customers = pa.table(
        {
            "customer_id": ids,
            "churn_risk": flag(0.02, 0.01),
            "outbound": flag(0.01, 0.005),
            "privacy_consent": pa.array(rng.uniform(size=n) < 0.97, mask=rng.uniform(size=n) < 0.01),
            "optout_dem": flag(0.05, 0.01),
            "optout_sms": flag(0.05, 0.01),
            "optout_tls": flag(0.1, 0.01),
        }
    )
    cells = [(c, h) for c in CAMPAIGNS for h in CHANNELS]
    k = len(cells)
    eligible = rng.uniform(size=n * k) < 0.9
    offsets = np.concatenate(([0], np.cumsum(~eligible))).astype(np.int32)
    reasons = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(["NO_VALID_EMAIL"] * int((~eligible).sum()))
    )
    eligibility = pa.table(
        {
            "run_id": pa.array([RUN_ID] * (n * k)),
            "customer_id": np.repeat(ids, k),
            "campaign": np.tile([c for c, _ in cells], n),
            "channel": np.tile([h for _, h in cells], n),
            "eligible": eligible,
            "reasons": reasons,
            "contact": np.tile([CONTACT[h] for _, h in cells], n),
        }
    )
    # History: each (customer, past month, campaign, channel) with the channel's rate.
    hit = rng.uniform(size=(n, 12, len(CAMPAIGNS), len(CHANNELS))) < HISTORY_RATE
    who, back, campaign, channel = np.nonzero(hit)
    history = pa.table(
        {
            "customer_id": ids[who],
            "contact_date": _months(first, -(back + 1), 15),
            "campaign": np.asarray(CAMPAIGNS)[campaign],
            "channel": np.asarray(CHANNELS)[channel],
        }
    )
    # Plan: PLAN_CONTACTS random (month, cell) per customer (legal or not: the check's cost is the same).
    picks = rng.random((n, 12 * k)).argsort(axis=1)[:, :PLAN_CONTACTS]
    month, cell = np.divmod(picks.ravel(), k)
    plan = pa.table(
        {
            "run_id": pa.array([RUN_ID] * picks.size),
            "customer_id": np.repeat(ids, PLAN_CONTACTS),
            "month": _months(first, month, 1),
            "campaign": np.asarray([c for c, _ in cells])[cell],
            "channel": np.asarray([h for _, h in cells])[cell],
        }
    )
    write_deltalake(str(base / "customers"), customers, mode="overwrite")
    write_deltalake(str(base / "eligibility"), eligibility, mode="overwrite", partition_by=["run_id"])
    write_deltalake(str(base / "contact_history"), history, mode="overwrite")
    write_deltalake(str(base / "plan"), plan, mode="overwrite", partition_by=["run_id"])


def percentiles(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns) / 1000.0
    return {
        "p50_us": round(float(np.percentile(us, 50)), 1),
        "p90_us": round(float(np.percentile(us, 90)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
        "max_us": round(float(us.max()), 1),
        "mean_us": round(float(us.mean()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=20_000, help="customers checked (3 offers each)")
    parser.add_argument("--confirms", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--base-path", default=None, help="where to write the tables (default: a temp dir)")
    args = parser.parse_args()

    base = Path(args.base_path or tempfile.mkdtemp(prefix="bench_realtime_")) / "lakehouse"
    config = load_config(overrides={"storage.base_path": str(base)})
    first = config.run.first_month
    start = time.perf_counter()
    write_tables(base, args.customers, first, args.seed)
    written = time.perf_counter() - start

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    snapshot = Snapshot.load(config, RUN_ID)
    load_s = time.perf_counter() - start
    # As `jobs/realtime.py serve` does: the modules and the snapshot loaded so far are never
    # garbage; frozen, a full collection no longer walks them (~35 ms of CPU otherwise).
    gc.collect()
    gc.freeze()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # An interaction checks several offers of one customer: a first check (cold: the
    # customer's state is built), then the other campaign x channel cells (warm: cached).
    rng = np.random.default_rng(args.seed + 1)
    who = rng.choice(args.customers, size=args.checks, replace=args.checks > args.customers)
    days = [first + dt.timedelta(days=int(d)) for d in rng.integers(0, 360, size=args.checks)]
    cells = [(c, h) for c in CAMPAIGNS for h in CHANNELS]
    cold: list[int] = []  # wall-clock latency, ns
    warm: list[int] = []
    cold_cpu: list[int] = []  # CPU time of the checking thread: the latency on an idle core
    warm_cpu: list[int] = []
    allowed = 0
    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    cpu = time.process_time()
    for w, day in zip(who, days, strict=True):
        customer = f"C{int(w):08d}"
        picked = [cells[int(k)] for k in rng.permutation(len(cells))[:3]]
        for i, (campaign, channel) in enumerate(picked):
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            decision = check(snapshot, customer, campaign, channel, day)
            (warm if i else cold).append(time.perf_counter_ns() - t0)
            (warm_cpu if i else cold_cpu).append(time.thread_time_ns() - c0)
            allowed += decision.allowed
    cpu = time.process_time() - cpu
    gc.callbacks.remove(on_gc)

    confirm_ns = []
    for w in range(args.confirms):
        t0 = time.perf_counter_ns()
        confirm(snapshot, f"C{w:08d}", "CROSS_SELLING", "DEM", first, force=True)
        confirm_ns.append(time.perf_counter_ns() - t0)

    print(
        json.dumps(
            {
                "customers": args.customers,
                "checks": len(cold + warm),
                "policy_rules": len(config.policy.rules),
                "history_rows": snapshot._history.table.num_rows,
                "plan_rows": snapshot._plan.table.num_rows,
                "tables_written_s": round(written, 2),
                "snapshot_load_s": round(load_s, 2),
                "snapshot_peak_rss_mb_increase": round((rss_after - rss_before) / 1024, 1),
                "check_cold": percentiles(cold),
                "check_warm": percentiles(warm),
                "check_cold_thread_cpu": percentiles(cold_cpu),
                "check_warm_thread_cpu": percentiles(warm_cpu),
                "check_cpu_us_mean": round(1e6 * cpu / len(cold + warm), 1),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "cores": os.cpu_count(),
                "checks_over_10ms": int(sum(ns > 10_000_000 for ns in cold + warm)),
                "gc_collections_during_checks": len(pauses),
                "gc_longest_pause_ms": round(1000 * max(pauses, default=0.0), 2),
                "allowed_share": round(allowed / len(cold + warm), 3),
                "confirm": {
                    k.replace("_us", "_ms"): round(v / 1000, 2) for k, v in percentiles(confirm_ns).items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
