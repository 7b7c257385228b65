"""Benchmark the per-customer kernel under the default energy-retailer policy.

Generates random customers (propensities per campaign x channel, channel eligibility,
12 months of random contact history), solves them with the exact DP and a sample with
the reference MILP, and writes ``bench/results/kernel.json`` and ``kernel.md``:
customers/s on one core for each solver and the largest objective difference on the
common sample. Exits non-zero when that difference exceeds 1e-9.

    .venv/bin/python bench/bench_kernel.py [--customers 10000] [--milp-sample 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver.dp import get_model
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch, KernelResult, SolverKind

CAMPAIGNS = ["CROSS_SELLING", "SOLUTION"]
CHANNELS = ["DEM", "SMS", "TLS"]
SUCCESS_VALUE = np.array([120.0, 450.0])  # contact_spark/config/default.yaml
CHANNEL_COST = np.array([0.02, 0.06, 4.0])
# Mean propensity per campaign x channel (SOLUTION converts less often than CROSS_SELLING).
MEAN_PROPENSITY = np.array([[0.03, 0.02, 0.08], [0.006, 0.004, 0.02]])
# Monthly probability that a past contact happened, per channel.
HISTORY_RATE = np.array([0.35, 0.25, 0.06])


def random_customers(n: int, horizon: int, seed: int) -> KernelBatch:
    """Random but plausible customers: Beta propensities, 90% channel reachability."""
    rng = np.random.default_rng(seed)
    concentration = 4.0
    a = MEAN_PROPENSITY * concentration
    b = (1.0 - MEAN_PROPENSITY) * concentration
    propensity = rng.beta(a, b, size=(n, 2, 3))
    reachable = rng.uniform(size=(n, 1, 3)) < 0.9
    eligible = np.broadcast_to(reachable, (n, 2, 3)) & (rng.uniform(size=(n, 2, 1)) < 0.95)
    history = (rng.uniform(size=(n, 12, 2, 3)) < HISTORY_RATE / 2).astype(np.int64)
    seasonality = 1.0 + 0.2 * np.sin(np.arange(horizon) * 2 * np.pi / 12)
    return KernelBatch(
        propensity=propensity,
        eligible=eligible,
        history=history,
        success_value=SUCCESS_VALUE,
        channel_cost=CHANNEL_COST,
        horizon=horizon,
        seasonality=seasonality,
    )


RESULTS = Path(__file__).resolve().parent / "results"
OBJECTIVE_TOLERANCE = 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--milp-sample", type=int, default=300)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    policy = compile_policy(PolicyConfig.default(), CAMPAIGNS, CHANNELS)
    batch = random_customers(args.customers, args.horizon, args.seed)

    # Load/compile the numba kernels on another batch so that only solving is timed.
    solve(policy, random_customers(8, args.horizon, args.seed + 1), method="dp")
    get_model(policy, args.horizon).dag_cache.clear()

    def timed(fn: Callable[[], KernelResult]) -> tuple[KernelResult, float, float]:
        """(result, wall seconds, CPU seconds of this process); CPU time is the per-core
        cost even when other processes share the machine."""
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - wall, time.process_time() - cpu

    cold, dp_cold, dp_cold_cpu = timed(lambda: solve(policy, batch, method="dp"))
    dp, dp_warm, dp_warm_cpu = timed(lambda: solve(policy, batch, method="dp"))
    assert (dp.x == cold.x).all()

    sample = np.sort(np.random.default_rng(args.seed).choice(args.customers, args.milp_sample, replace=False))
    milp, milp_time, milp_cpu = timed(lambda: solve(policy, batch.subset(sample), method="milp"))
    dp_sub = dp.objective[sample]
    both = (milp.status == ErrorCode.OK) & ~np.isnan(dp_sub)
    model = get_model(policy, args.horizon)
    result = {
        "customers": args.customers,
        "horizon": args.horizon,
        "policy_rules": len(PolicyConfig.default().rules),
        "dp_customers_per_s_cpu_cold": round(args.customers / dp_cold_cpu),
        "dp_customers_per_s_cpu_warm": round(args.customers / dp_warm_cpu),
        "dp_customers_per_s_wall_cold": round(args.customers / dp_cold),
        "dp_customers_per_s_wall_warm": round(args.customers / dp_warm),
        "milp_sample": args.milp_sample,
        "milp_customers_per_s_cpu": round(args.milp_sample / milp_cpu, 2),
        "milp_ms_per_customer_cpu": round(1000 * milp_cpu / args.milp_sample, 2),
        "milp_customers_per_s_wall": round(args.milp_sample / milp_time, 2),
        "dp_speedup_vs_milp_cpu": round(milp_cpu / args.milp_sample / (dp_warm_cpu / args.customers)),
        "max_abs_objective_diff": float(np.max(np.abs(dp_sub[both] - milp.objective[both]))),
        "dp_status_ok": int((dp.status == ErrorCode.OK).sum()),
        "solved_by_dp": int((dp.solver == SolverKind.DP).sum()),
        "automaton_states": len(model.states),
        "month_actions": len(model.actions),
        "mean_objective": float(np.nanmean(dp.objective)),
        "cores": 1,
        "note": "cold = first solve (automaton, canonical tables, DAGs built); warm = DAGs cached",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kernel.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "kernel.md").write_text(markdown(result) + "\n")
    print(json.dumps(result, indent=2))
    print(markdown(result))
    if not result["max_abs_objective_diff"] <= OBJECTIVE_TOLERANCE:
        sys.exit(
            f"DP and MILP objectives differ by {result['max_abs_objective_diff']:g} (> {OBJECTIVE_TOLERANCE:g})"
        )


def markdown(r: dict) -> str:
    """The kernel figures as a Markdown table."""
    return "\n".join(
        [
            "| solver | customers / s per core | ms per customer |",
            "|---|---|---|",
            f"| exact DP, warm | {r['dp_customers_per_s_cpu_warm']:,} | {1000 / r['dp_customers_per_s_cpu_warm']:.3f} |",
            f"| exact DP, cold | {r['dp_customers_per_s_cpu_cold']:,} | {1000 / r['dp_customers_per_s_cpu_cold']:.3f} |",
            f"| scipy milp (HiGHS) | {r['milp_customers_per_s_cpu']:,} | {r['milp_ms_per_customer_cpu']} |",
            "",
            f"Largest objective difference DP vs MILP on {r['milp_sample']} customers: "
            f"{r['max_abs_objective_diff']:.2g} (must be ≤ {OBJECTIVE_TOLERANCE:g}).",
        ]
    )


if __name__ == "__main__":
    main()
