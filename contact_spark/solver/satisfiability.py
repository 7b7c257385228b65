"""Detect rule sets that no customer can live with, and name the rules responsible.

A probe customer with no history, every contact eligible and every contact worth +1 is
planned. If no plan exists, the rules contradict each other; if the best plan contacts
nobody, only "no contact at all" satisfies them. A deletion filter then drops rules one
by one while the problem persists, leaving a minimal set of rules to blame.

Without ``min_offers`` rules no solve is needed: every rule then allows the empty plan
(so nothing contradicts), and a plan with a contact exists exactly when some contact can
come first on its own — a cell no maximum caps at 0 and no ``only_after`` makes wait for
another contact (a first contact has nothing before it, and any legal plan's first
contact, alone, is legal too). That decision is exact and takes microseconds, whatever
the catalogue's size. With minimum rules, the probe plans the customer.

This is a solver question, so it lives here and not in config loading: the jobs call
:func:`check_satisfiable` explicitly after a config is loaded. Every probe is bounded
(``time_budget`` seconds for the whole check): a probe that cannot decide in time blames
no rule, so a slow probe never stops a job and never hangs it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from contact_spark.config.policy import PolicyConfig, PolicyError
from contact_spark.policy.compiler import CompiledPolicy, compile_policy

TIME_BUDGET_SECONDS = 2.0


def _first_contact_possible(policy: CompiledPolicy) -> bool:
    """Some cell can be a plan's only contact (exact when the policy has no minimum)."""
    banned: set[int] = set()
    for atom in policy.window_atoms:
        if atom.kind == "max" and atom.limit == 0:
            banned.update(atom.cells)
    for camp in policy.campaign_atoms:
        if camp.limit == 0:
            banned.update(camp.cells)
    for pair in policy.pair_atoms:
        if pair.kind == "only_after":
            banned.update(pair.b)
    return len(banned) < policy.n_cells


def _probe(
    policy: PolicyConfig, campaigns: list[str], channels: list[str], horizon: int, deadline: float
) -> str | None:
    """``"infeasible"``, ``"silent"`` (only no contact) or None when usable or undecided."""
    compiled = compile_policy(policy, campaigns, channels)
    if not any(a.kind == "min" for a in compiled.window_atoms):
        return None if _first_contact_possible(compiled) else "silent"
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
    seconds = max(0.05, deadline - time.monotonic())
    result = solve(compiled, batch, time_limit=seconds)
    if result.status[0] == ErrorCode.INFEASIBLE:
        return "infeasible"
    if result.status[0] != ErrorCode.OK:
        return None  # undecided in time, or the solver failed: do not blame the rules
    return "silent" if not result.x.any() else None


def find_unsatisfiable_core(
    policy: PolicyConfig,
    campaigns: Sequence[str],
    channels: Sequence[str],
    horizon: int = 12,
    time_budget: float = TIME_BUDGET_SECONDS,
) -> tuple[list[str], str] | None:
    """None if some plan with at least one contact exists (or the budget ran out before
    the probe could tell), else (a minimal list of rule names, a message)."""
    deadline = time.monotonic() + time_budget
    campaigns, channels = list(campaigns), list(channels)
    problem = _probe(policy, campaigns, channels, horizon, deadline)
    if problem is None:
        return None
    rules = list(policy.rules)
    i = 0
    while i < len(rules):
        if time.monotonic() >= deadline:
            break  # the set so far still shows the problem: blame it, if not minimal
        trial = rules[:i] + rules[i + 1 :]
        if _probe(PolicyConfig(rules=trial), campaigns, channels, horizon, deadline) == problem:
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


def check_satisfiable(
    policy: PolicyConfig,
    campaigns: Sequence[str],
    channels: Sequence[str],
    horizon: int = 12,
    time_budget: float = TIME_BUDGET_SECONDS,
) -> None:
    """Raise PolicyError naming the responsible rules when only "no contact" satisfies them."""
    policy.check_names(campaigns, channels)
    problem = find_unsatisfiable_core(policy, campaigns, channels, horizon, time_budget)
    if problem is not None:
        names, message = problem
        raise PolicyError(", ".join(names), message, names)
