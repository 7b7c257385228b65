"""Benchmark the reference MILP (``contact_spark.solver.milp``) on catalogue-like customers.

Builds K offers x 4 channels (DEM, SMS, TLS, APP) with a catalogue policy written the way
a CRM team would: one campaign per month (``max_campaigns`` window 1, limit 1), per offer
DEM/SMS every 2 months and TLS every 6 months, one DEM and one SMS per month, no TLS in
consecutive months nor beside DEM/SMS, yearly caps per family (5-10 offers, window 12),
at most 4 packages per 3 months, two never_together and two only_after pairs between
offers. Customers get Beta propensities, 90 % channel reachability and 12 months of random
history. Reports seconds per customer (one core, HiGHS single-threaded by scipy) and, with
``--baseline COMMIT``, the same for ``contact_spark/solver/milp.py`` as of that commit
(loaded from git into a scratch module) with the largest objective difference between
the two where both prove optimality.

    PYTHONPATH=. .venv/bin/python bench/bench_milp.py [--offers 8 20 50] [--customers 20]
        [--baseline COMMIT] [--baseline-customers 5] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import CompiledPolicy, compile_policy
from contact_spark.solver import milp
from contact_spark.solver.problem import ErrorCode, KernelBatch

CHANNELS = ["DEM", "SMS", "TLS", "APP"]
CHANNEL_COST = np.array([0.02, 0.06, 4.0, 0.01])
MEAN_PROPENSITY = np.array([0.02, 0.015, 0.06, 0.01])
HISTORY_RATE = np.array([0.15, 0.10, 0.02, 0.10])  # monthly chance of a past contact, per channel
HORIZON = 12


def families(n_offers: int, rng: np.random.Generator) -> list[list[str]]:
    """Offers split in consecutive families of 5-10 (the last one takes the rest)."""
    out, start = [], 0
    while start < n_offers:
        size = int(rng.integers(5, 11))
        out.append([f"O{i}" for i in range(start, min(n_offers, start + size))])
        start += size
    return out


def catalogue_policy(n_offers: int, seed: int = 0) -> PolicyConfig:
    """The catalogue policy described in the module docstring."""
    rng = np.random.default_rng(seed)
    rules: list[dict] = [
        {"name": "one_campaign_per_month", "type": "max_campaigns", "window_months": 1, "limit": 1},
        {
            "name": "tls_alone_in_month",
            "type": "never_together",
            "a": {"channels": ["TLS"]},
            "b": {"channels": ["DEM", "SMS"]},
            "window_months": 1,
        },
    ]
    for channel, window in (("DEM", 2), ("SMS", 2), ("TLS", 6)):
        rules.append(
            {
                "name": f"{channel.lower()}_every_{window}_months_per_offer",
                "type": "max_offers",
                "channels": [channel],
                "per_campaign": True,
                "window_months": window,
                "limit": 1,
            }
        )
    rules += [
        {
            "name": "one_dem_per_month",
            "type": "max_offers",
            "channels": ["DEM"],
            "window_months": 1,
            "limit": 1,
        },
        {
            "name": "one_sms_per_month",
            "type": "max_offers",
            "channels": ["SMS"],
            "window_months": 1,
            "limit": 1,
        },
        {
            "name": "no_tls_in_a_row",
            "type": "max_offers",
            "channels": ["TLS"],
            "window_months": 2,
            "limit": 1,
        },
        {"name": "four_packages_a_quarter", "type": "max_packages", "window_months": 3, "limit": 4},
    ]
    for f, offers in enumerate(families(n_offers, rng)):
        limit = int(rng.integers(3, 7))
        rules.append(
            {
                "name": f"family_{f}_per_year",
                "type": "max_offers",
                "campaigns": offers,
                "window_months": 12,
                "limit": limit,
            }
        )
    pairs = [
        ("never_together", 0, 1, 3),
        ("never_together", 2, 3, 1),
        ("only_after", 4, 5, 6),
        ("only_after", 6, 7, None),
    ]
    for kind, a, b, window in pairs:
        rules.append(
            {
                "name": f"{kind}_O{a}_O{b}",
                "type": kind,
                "a": {"campaigns": [f"O{a}"]},
                "b": {"campaigns": [f"O{b}"]},
                "window_months": window,
            }
        )
    return PolicyConfig.model_validate({"rules": rules})


def random_customers(n: int, n_offers: int, seed: int) -> KernelBatch:
    """Beta propensities per offer x channel, 90 % reachability, 12 months of history."""
    rng = np.random.default_rng(seed)
    concentration = 4.0
    mean = MEAN_PROPENSITY[None] * rng.uniform(0.5, 1.5, size=(n_offers, 1))
    propensity = rng.beta(mean * concentration, (1 - mean) * concentration, size=(n, n_offers, 4))
    reachable = rng.uniform(size=(n, 1, 4)) < 0.9
    eligible = np.broadcast_to(reachable, (n, n_offers, 4)) & (rng.uniform(size=(n, n_offers, 1)) < 0.95)
    history = (rng.uniform(size=(n, 12, n_offers, 4)) < HISTORY_RATE / n_offers * 2).astype(np.int64)
    return KernelBatch(
        propensity=propensity,
        eligible=eligible,
        history=history,
        success_value=rng.uniform(50.0, 500.0, n_offers),
        channel_cost=CHANNEL_COST,
        horizon=HORIZON,
        seasonality=1.0 + 0.2 * np.sin(np.arange(HORIZON) * 2 * np.pi / 12),
    )


def load_baseline(commit: str) -> ModuleType:
    """``contact_spark/solver/milp.py`` as of ``commit``, imported as a scratch module."""
    source = subprocess.run(
        ["git", "show", f"{commit}:contact_spark/solver/milp.py"],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "milp_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("milp_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(
    solve: Callable[..., tuple[np.ndarray, np.ndarray]],
    policy: CompiledPolicy,
    batch: KernelBatch,
    n: int,
    time_limit: float,
) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Seconds per customer, objectives (NaN unless optimal) and statuses of the first n."""
    seconds = []
    status = np.zeros(n, dtype=np.int8)
    x = np.zeros((n, *batch.shape[1:]), dtype=bool)
    for i in range(n):
        start = time.perf_counter()
        xi, si = solve(policy, batch, np.array([i]), time_limit=time_limit)
        seconds.append(time.perf_counter() - start)
        x[i], status[i] = xi[i], si[i]
    value = batch.subset(np.arange(n)).schedule_value(x)
    return seconds, np.where(status == ErrorCode.OK, value, np.nan), status


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offers", type=int, nargs="+", default=[8, 20, 50])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--baseline", help="git commit whose milp.py is timed too")
    parser.add_argument("--baseline-customers", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per customer MILP")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    baseline = load_baseline(args.baseline) if args.baseline else None
    lines = [
        "| offers | formulation | customers | s/customer (mean) | median | max | not optimal | max obj diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for n_offers in args.offers:
        campaigns = [f"O{i}" for i in range(n_offers)]
        policy = compile_policy(catalogue_policy(n_offers, args.seed), campaigns, CHANNELS)
        batch = random_customers(max(args.customers, args.baseline_customers), n_offers, args.seed + n_offers)
        new_s, new_obj, new_st = run(milp.solve_milp, policy, batch, args.customers, args.time_limit)
        runs = [("new", new_s, new_st, "")]
        if baseline is not None:
            m = args.baseline_customers
            old_s, old_obj, old_st = run(baseline.solve_milp, policy, batch, m, args.time_limit)
            both = ~np.isnan(old_obj) & ~np.isnan(new_obj[:m])
            diff = float(np.abs(old_obj[both] - new_obj[:m][both]).max()) if both.any() else float("nan")
            worst = max(worst, diff) if both.any() else worst
            runs.append((f"old ({args.baseline[:7]})", old_s, old_st, f"{diff:.1e}"))
        for name, secs, st, diff in runs:
            lines.append(
                f"| {n_offers} | {name} | {len(secs)} | {np.mean(secs):.3f} | {np.median(secs):.3f} | {np.max(secs):.3f} "
                f"| {int((st != ErrorCode.OK).sum())} | {diff} |"
            )
        print("\n".join(lines[-len(runs) :]), flush=True)
    print("\n" + "\n".join(lines))
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
