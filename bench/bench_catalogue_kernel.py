"""Benchmark the catalogue kernel (``contact_spark.solver.catalogue``) against the MILP.

Same customers and catalogue policy as ``bench/bench_milp.py`` (K offers x DEM/SMS/TLS/APP,
one campaign a month, per-offer spacing, family yearly caps, packages a quarter, pair
rules, random histories). For each K: customers per second on one core (after a warm-up
batch that compiles numba), the share proved optimal, the largest per-customer bound gap
(upper bound - value, relative), refinement rounds and labels, and the MILP's seconds per
customer on a sample with the largest objective difference where both prove optimality.

With ``--config FILE`` the policy, offers, values and channel costs are that config's
(for example conf/examples/catalogue_50.yaml) and the customers the same random ones. The
``auto`` column times ``kernel.solve(method="auto")``: the catalogue kernel with the MILP
for customers past ``HANDOFF_LABELS``.

    PYTHONPATH=. .venv/bin/python bench/bench_catalogue_kernel.py [--offers 8 20 50]
        [--config FILE] [--customers 300] [--milp-sample 10] [--max-labels 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_milp import CHANNELS, catalogue_policy, random_customers

from contact_spark.config import load_config
from contact_spark.policy.compiler import CompiledPolicy, compile_policy
from contact_spark.solver import label_dp
from contact_spark.solver.catalogue import get_catalogue_model, solve_catalogue
from contact_spark.solver.kernel import solve
from contact_spark.solver.milp import solve_milp_with_bounds
from contact_spark.solver.problem import ErrorCode, KernelBatch


def _synthetic(k: int, args: argparse.Namespace) -> tuple[CompiledPolicy, KernelBatch]:
    policy = compile_policy(catalogue_policy(k), [f"O{i}" for i in range(k)], CHANNELS)
    return policy, random_customers(args.customers, k, args.seed)


def _from_config(args: argparse.Namespace) -> tuple[str, CompiledPolicy, KernelBatch]:
    config = load_config(args.config)
    offers, channels = list(config.campaigns), list(config.channels)
    base = random_customers(args.customers, len(offers), args.seed)
    if len(channels) != base.shape[3]:
        raise SystemExit(f"{args.config}: the random customers have 4 channels, the config {len(channels)}")
    batch = KernelBatch(
        propensity=base.propensity,
        eligible=base.eligible,
        history=base.history,
        success_value=np.array([config.campaigns[c].success_value for c in offers]),
        channel_cost=np.array([config.channels[h].cost for h in channels]),
        horizon=12,
        seasonality=base.seasonality,
    )
    return Path(args.config).stem, compile_policy(config.policy, offers, channels), batch


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offers", type=int, nargs="+", default=[8, 20, 50])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--milp-sample", type=int, default=10)
    parser.add_argument("--max-labels", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--config", help="take policy, offers, values and channel costs from this config")
    args = parser.parse_args()
    print(
        "| offers | actions | customers/s | proved | largest bound gap | rounds mean | labels median / p99 "
        "| MILP s/customer | max |diff| vs MILP | auto customers/s, proved |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    cases = [(str(k), *_synthetic(k, args)) for k in args.offers] if not args.config else [_from_config(args)]
    for k, policy, batch in cases:
        model = get_catalogue_model(policy, 12)
        assert model is not None
        idx = np.arange(args.customers)
        solve_catalogue(model, batch, idx[:2], args.max_labels)  # compile numba
        start = time.process_time()
        sol = solve_catalogue(model, batch, idx, args.max_labels)
        rate = args.customers / (time.process_time() - start)
        proved = float(np.mean(sol.status == label_dp.DONE))
        gap = float(np.max((sol.upper - sol.value) / np.maximum(1.0, np.abs(sol.value))))
        sample = idx[: args.milp_sample]
        start = time.process_time()
        xm, sm, _ = solve_milp_with_bounds(policy, batch, sample, time_limit=120)
        milp_s = (time.process_time() - start) / max(1, sample.size)
        vm = batch.subset(sample).schedule_value(xm[sample])
        both = (sm[sample] == ErrorCode.OK) & (sol.status[sample] == label_dp.DONE)
        diff = float(np.max(np.abs(vm[both] - sol.value[sample][both]))) if both.any() else float("nan")
        p50, p99 = np.percentile(sol.labels, [50, 99])
        start = time.process_time()
        auto = solve(policy, batch, method="auto")
        auto_rate = args.customers / (time.process_time() - start)
        print(
            f"| {k} | {len(model.actions)} | {rate:,.1f} | {100 * proved:.1f} % | {100 * gap:.2f} % | "
            f"{sol.rounds.mean():.2f} | {p50:,.0f} / {p99:,.0f} | {milp_s:.3f} | {diff:.1e} | "
            f"{auto_rate:,.1f}, {100 * auto.proved.mean():.1f} % |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
