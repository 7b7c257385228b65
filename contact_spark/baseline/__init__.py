"""Baselines the optimizer is compared with (the greedy, rule-based planning of today)."""

from contact_spark.baseline.greedy import BASELINE_TABLE, greedy_plan, run_baseline_stage

__all__ = ["BASELINE_TABLE", "greedy_plan", "run_baseline_stage"]
