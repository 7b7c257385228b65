"""The catalogue kernel (label DP with state-space refinement) against the MILP reference.

Properties, on random rule sets of every type (tests/solver/test_properties.py's
strategy) and on random catalogues of up to 8 offers with family caps, per-offer spacing
and pair rules, with histories:

* both report the same status; where both prove optimality the objectives are equal;
* the catalogue kernel's value is never above the MILP's proved bound, and its own bound
  is never below the MILP's optimum (so a certificate that sums it stays a proof);
* every plan is legal for the independent checker (tests/solver/rule_checker.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver import label_dp
from contact_spark.solver.automaton import StateSpaceTooLargeError
from contact_spark.solver.catalogue import get_catalogue_model, solve_catalogue
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch, SolverKind

from .rule_checker import violations
from .test_properties import cases

SETTINGS = settings(
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
CHANNELS = ["DEM", "SMS", "TLS"]


def _disagreements(
    policy: PolicyConfig, campaigns: list[str], channels: list[str], batch: KernelBatch
) -> list[str]:
    """What the catalogue kernel and the MILP disagree on, per the module docstring."""
    compiled = compile_policy(policy, campaigns, channels)
    label = solve(compiled, batch, method="label")
    milp = solve(compiled, batch, method="milp")
    if label.status.tolist() != milp.status.tolist():
        return [f"statuses {label.status.tolist()} vs MILP {milp.status.tolist()}"]
    out = []
    ok = label.status == ErrorCode.OK
    both = ok & label.proved & milp.proved
    for i in np.flatnonzero(both & (np.abs(label.objective - milp.objective) > 1e-7)):
        out.append(f"customer {i}: optimum {label.objective[i]} vs MILP {milp.objective[i]}")
    for i in np.flatnonzero(ok & (label.objective > milp.upper_bound + 1e-7)):
        out.append(f"customer {i}: value {label.objective[i]} above the MILP's bound {milp.upper_bound[i]}")
    for i in np.flatnonzero(ok & (label.upper_bound < milp.objective - 1e-7)):
        out.append(f"customer {i}: bound {label.upper_bound[i]} below the MILP's value {milp.objective[i]}")
    value = batch.schedule_value(label.x)
    for i in np.flatnonzero(ok & (np.abs(value - label.objective) > 1e-7)):
        out.append(f"customer {i}: objective {label.objective[i]} is not the plan's value {value[i]}")
    for i in np.flatnonzero(ok):
        out += [
            f"customer {i}: {v}"
            for v in violations(policy, campaigns, channels, batch.history[i], label.x[i])
        ]
    return out


@SETTINGS
@given(cases())
def test_the_catalogue_kernel_matches_the_milp_on_every_rule_type(case: tuple) -> None:
    policy, campaigns, channels, batch = case
    compiled = compile_policy(policy, campaigns, channels)
    if any(a.window > 1 for a in compiled.campaign_atoms):
        # distinct campaigns over several months: a set the kernel has no state for
        with pytest.raises(StateSpaceTooLargeError):
            solve(compiled, batch, method="label")
        return
    assert _disagreements(policy, campaigns, channels, batch) == []


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[PolicyConfig, list[str], list[str], KernelBatch]:
    """K offers in 1-3 families on DEM/SMS/TLS with the rules a CRM team writes."""
    n_c = draw(st.integers(2, 8))
    offers = [f"O{i}" for i in range(n_c)]
    n_fam = draw(st.integers(1, min(3, n_c)))
    family = [offers[f::n_fam] for f in range(n_fam)]
    rules: list[dict] = [
        {"name": "one_campaign_a_month", "type": "max_campaigns", "window_months": 1, "limit": 1},
        {
            "name": "call_alone",
            "type": "never_together",
            "a": {"channels": ["TLS"]},
            "b": {"channels": ["DEM", "SMS"]},
            "window_months": 1,
        },
        {
            "name": "dem_spacing",
            "type": "max_offers",
            "channels": ["DEM"],
            "per_campaign": True,
            "window_months": draw(st.integers(1, 3)),
            "limit": 1,
        },
        {
            "name": "tls_spacing",
            "type": "max_offers",
            "channels": ["TLS"],
            "per_campaign": True,
            "window_months": draw(st.integers(2, 6)),
            "limit": 1,
        },
        {
            "name": "no_calls_in_a_row",
            "type": "max_offers",
            "channels": ["TLS"],
            "window_months": 2,
            "limit": 1,
        },
        {"name": "packages", "type": "max_packages", "window_months": 3, "limit": draw(st.integers(1, 4))},
    ]
    for f, members in enumerate(family):
        rules.append(
            {
                "name": f"family_{f}_a_year",
                "type": "max_offers",
                "campaigns": members,
                "window_months": 12,
                "limit": draw(st.integers(1, 4)),
            }
        )
    if n_c >= 4:
        rules.append(
            {
                "name": "never_0_with_1",
                "type": "never_together",
                "a": {"campaigns": ["O0"]},
                "b": {"campaigns": ["O1"]},
                "window_months": draw(st.integers(1, 3)),
            }
        )
        rules.append(
            {
                "name": "3_only_after_2",
                "type": "only_after",
                "a": {"campaigns": ["O2"]},
                "b": {"campaigns": ["O3"]},
                "window_months": draw(st.sampled_from([None, 4])),
            }
        )
        rules.append(
            {
                "name": "no_0_after_3",
                "type": "never_followed_by",
                "a": {"campaigns": ["O3"]},
                "b": {"campaigns": ["O0"]},
                "window_months": 2,
            }
        )
    policy = PolicyConfig.model_validate({"rules": rules})
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = 3
    batch = KernelBatch(
        propensity=rng.beta(0.5, 12.0, (n, n_c, 3)),
        eligible=rng.uniform(size=(n, n_c, 3)) < 0.9,
        history=(rng.uniform(size=(n, 12, n_c, 3)) < 0.04).astype(np.int64),
        success_value=rng.uniform(50, 500, n_c),
        channel_cost=np.array([0.02, 0.06, 4.0]),
        horizon=12,
        seasonality=1.0 + 0.2 * np.sin(np.arange(12) * 2 * np.pi / 12),
        price=rng.normal(0, 0.5, (12, n_c, 3)) if draw(st.booleans()) else None,
    )
    return policy, offers, CHANNELS, batch


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(catalogues())
def test_the_catalogue_kernel_matches_the_milp_on_catalogues_of_up_to_8_offers(case: tuple) -> None:
    policy, offers, channels, batch = case
    compiled = compile_policy(policy, offers, channels)
    result = solve(compiled, batch)
    # the automaton takes small catalogues; beyond it the catalogue kernel, never the MILP
    assert set(result.solver.tolist()) <= {SolverKind.DP, SolverKind.LABEL}
    assert _disagreements(policy, offers, channels, batch) == []


def _yearly_cap_case() -> tuple[PolicyConfig, KernelBatch]:
    policy = PolicyConfig.model_validate(
        {
            "rules": [
                {"name": "one_a_month", "type": "max_campaigns", "window_months": 1, "limit": 1},
                {
                    "name": "twice_a_year",
                    "type": "max_offers",
                    "campaigns": ["A"],
                    "window_months": 12,
                    "limit": 2,
                },
            ]
        }
    )
    batch = KernelBatch(
        propensity=np.array([[[0.5], [0.1]]]),  # A is worth 50 a contact, B 10
        eligible=np.ones((1, 2, 1), dtype=bool),
        history=np.zeros((1, 1, 2, 1), dtype=np.int64),
        success_value=np.array([100.0, 100.0]),
        channel_cost=np.array([0.0]),
        horizon=4,
        seasonality=np.array([1.0, 1.2, 1.1, 1.0]),
    )
    return policy, batch


def test_a_yearly_cap_the_first_relaxation_breaks_is_tracked_and_the_plan_is_proved() -> None:
    """Ignoring every rule, A is best in all 4 months; A's yearly cap of 2 breaks, joins
    the DP state, and the second round puts A in its two most seasonal months (1 and 2)
    and B in the others: 50*1.2 + 50*1.1 + 10*1.0 + 10*1.0 = 135, proved in 2 rounds."""
    policy, batch = _yearly_cap_case()
    compiled = compile_policy(policy, ["A", "B"], ["DEM"])
    model = get_catalogue_model(compiled, 4)
    assert model is not None
    sol = solve_catalogue(model, batch, np.array([0]))
    assert sol.status.tolist() == [label_dp.DONE]
    assert sol.rounds.tolist() == [2]
    assert sol.value[0] == pytest.approx(135.0, abs=1e-12)
    assert sol.upper[0] == sol.value[0]
    x = model.action_cells[sol.actions[0]].reshape(4, 2)
    assert x.tolist() == [[False, True], [True, False], [True, False], [False, True]]


def test_a_customer_over_the_label_budget_keeps_a_legal_plan_with_a_proved_bound() -> None:
    """With a budget of 3 labels the DP cannot finish a round: the customer keeps the
    greedy plan repaired month by month (A in months 0 and 1 until its cap, then B:
    50*1.0 + 50*1.2 + 10*1.1 + 10*1.0 = 131) and the best bound proved so far, which is
    not below the optimum of 135."""
    policy, batch = _yearly_cap_case()
    compiled = compile_policy(policy, ["A", "B"], ["DEM"])
    model = get_catalogue_model(compiled, 4)
    assert model is not None
    sol = solve_catalogue(model, batch, np.array([0]), max_labels=3)
    assert sol.status.tolist() == [label_dp.BOUNDED]
    assert sol.value[0] == pytest.approx(131.0, abs=1e-12)
    assert sol.upper[0] >= 135.0
    x = model.action_cells[sol.actions[0]].reshape(1, 4, 2, 1)
    assert violations(policy, ["A", "B"], ["DEM"], batch.history[0], x[0]) == []
    assert batch.schedule_value(x)[0] == pytest.approx(sol.value[0], abs=1e-12)


def test_freedom_numbers_grow_with_what_a_state_still_allows() -> None:
    """One atom of each type, states side by side: a max window's running sums (most recent
    first) count against, a min window's for; a pair's age is freest when there is none
    (never_together, window 3: none = 3 > age 2 > age 1); only_after's prerequisite is
    freest when recent (window 4: age 1 -> 4, age 4 -> 1, none -> 0)."""
    from contact_spark.solver.label_atoms import AFTER, LONG, SHORT, TOGETHER
    from contact_spark.solver.label_dominance import freedom

    typ = np.array([SHORT, SHORT, LONG, TOGETHER, AFTER])
    win = np.array([3, 3, 12, 3, 4])
    ismin = np.array([False, True, False, False, False])
    atoms = np.arange(5)
    toff = np.array([0, 2, 4, 5, 7, 8])

    def numbers(row: list[int]) -> list[int]:
        out = np.zeros(8, dtype=np.int32)
        freedom(typ, win, ismin, atoms, toff, np.array(row, dtype=np.int32), out)
        return out.tolist()

    assert numbers([1, 1, 1, 1, 2, 0, 2, 1]) == [-1, -2, 1, 2, -2, 3, 2, 4]
    assert numbers([0, 2, 0, 0, 0, 1, 0, 4]) == [0, -2, 0, 0, 0, 1, 3, 1]
    assert numbers([0, 0, 0, 0, 0, 0, 0, 0])[6:] == [3, 0]


def test_auto_hands_a_customer_past_the_label_budget_to_the_milp(monkeypatch: pytest.MonkeyPatch) -> None:
    """6 offers x 4 channels (24 cells: past the automaton) with one campaign a month and a
    yearly cap of 2 on O0: refinement needs a second round. With a hand-off budget of 3
    labels "auto" gives the customer to the MILP; with the default it stays with the
    catalogue kernel; both prove the same optimum."""
    import contact_spark.solver.kernel as kernel

    offers = [f"O{i}" for i in range(6)]
    channels = ["DEM", "SMS", "TLS", "APP"]
    policy = PolicyConfig.model_validate(
        {
            "rules": [
                {"name": "one_a_month", "type": "max_campaigns", "window_months": 1, "limit": 1},
                {
                    "name": "o0_twice",
                    "type": "max_offers",
                    "campaigns": ["O0"],
                    "window_months": 12,
                    "limit": 2,
                },
            ]
        }
    )
    compiled = compile_policy(policy, offers, channels)
    propensity = np.full((1, 6, 4), 0.01)
    propensity[0, 0] = 0.3  # O0 is the best offer every month
    batch = KernelBatch(
        propensity=propensity,
        eligible=np.ones((1, 6, 4), dtype=bool),
        history=np.zeros((1, 1, 6, 4), dtype=np.int64),
        success_value=np.full(6, 100.0),
        channel_cost=np.full(4, 0.5),
        horizon=6,
    )
    default = solve(compiled, batch)
    monkeypatch.setattr(kernel, "HANDOFF_LABELS", 3)
    handed = solve(compiled, batch)
    assert default.solver.tolist() == [SolverKind.LABEL]
    assert handed.solver.tolist() == [SolverKind.MILP]
    assert default.proved.all() and handed.proved.all()
    assert handed.objective[0] == pytest.approx(default.objective[0], abs=1e-9)
