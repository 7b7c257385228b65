"""Detect rule sets that no customer can live with, and name the rules responsible.

A probe customer with no history, every contact eligible and every contact worth +1 is
planned. If no plan exists, the rules contradict each other; if the best plan contacts
nobody, only "no contact at all" satisfies them. A deletion filter then drops rules one
by one while the problem persists, leaving a minimal set of rules to blame.
"""

from __future__ import annotations

import numpy as np

from contact_spark.policy.compiler import compile_policy
from contact_spark.policy.rules import PolicyConfig


def _probe(policy: PolicyConfig, campaigns: list[str], channels: list[str], horizon: int) -> str | None:
    """``"infeasible"``, ``"silent"`` (only no contact) or None when the policy is usable."""
    from contact_spark.solver.kernel import solve
    from contact_spark.solver.problem import ErrorCode, KernelBatch

    c, h = len(campaigns), len(channels)
    batch = KernelBatch(
        propensity=np.zeros((1, c, h)),
        eligible=np.ones((1, c, h), dtype=bool),
        history=np.zeros((1, 1, c, h), dtype=np.int64),
        success_value=np.zeros(c),
        channel_cost=np.zeros(h),
        horizon=horizon,
        price=-np.ones((horizon, c, h)),  # a negative price is a bonus: +1 per contact
    )
    result = solve(compile_policy(policy, campaigns, channels), batch)
    if result.status[0] == ErrorCode.INFEASIBLE:
        return "infeasible"
    if result.status[0] != ErrorCode.OK:
        return None  # the solver failed; do not blame the rules for it
    return "silent" if not result.x.any() else None


def find_unsatisfiable_core(
    policy: PolicyConfig, campaigns: list[str], channels: list[str], horizon: int = 12
) -> tuple[list[str], str] | None:
    """None if some plan with at least one contact exists, else (rule names, message)."""
    problem = _probe(policy, campaigns, channels, horizon)
    if problem is None:
        return None
    rules = list(policy.rules)
    i = 0
    while i < len(rules):
        trial = rules[:i] + rules[i + 1 :]
        if _probe(PolicyConfig(rules=trial), campaigns, channels, horizon) == problem:
            rules = trial
        else:
            i += 1
    names = [r.name for r in rules]
    if problem == "infeasible":
        message = (
            "these rules contradict each other: no plan satisfies them even for a customer "
            "with no history and every contact allowed; relax a limit or drop a rule"
        )
    else:
        message = (
            "these rules allow no contact at all, for every customer; raise the limit "
            "(a max of 0 forbids its whole scope) or narrow the scope"
        )
    return names, message
