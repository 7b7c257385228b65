"""The demo plan, pinned: refactors must leave the plan the same, row for row."""

from __future__ import annotations

from demo_run import DemoRun

from contact_spark.io.fingerprint import table_fingerprint

# Pinned at cc12f9f (session 6), before the architecture refactor of issue 18 and the
# catalogue kernel of issue 19: the 200-customer demo base (seed 42, default config).
# Rows are compared as (customer, month, campaign, channel, contact, expected value to
# 1e-6), in any order. A change here is a change of behaviour: say why in the commit.
DEMO_PLAN_FINGERPRINT = "1969:733a3357c11b21b9"
# `make run` (5,000 customers) gave 41151:6cf33a0d1a92479b at the same commit.


def test_the_demo_plan_is_unchanged(demo_run: DemoRun) -> None:
    """Same inputs, config and seed: the same plan, bit for bit (to 1e-6 in value)."""
    plan = demo_run.store.read_run("plan", demo_run.run_id).drop("run_id")
    assert table_fingerprint(plan) == DEMO_PLAN_FINGERPRINT
