"""The real-time check agrees with the independent validator, contact by contact.

For a customer with plan ``P`` and a contact ``y`` (any month of the horizon, any cell), the
check of ``y`` against ``P`` must refuse ``y`` by exactly the rules whose validator rows
change when ``y`` is added: the rows of ``validate(P ∪ {y})`` missing from
``validate(P ∖ {y})`` (as multisets of rule, month and detail; a window holding ``y`` changes
its total, a pair or a consent row holding ``y`` appears). For ``y`` in ``P`` this is "the
contacts the validator flags", for ``y`` outside ``P`` it is "adding ``y`` keeps the plan
valid". Plans come from the per-customer solver (valid) and at random (broken), histories
at random, so windows reach back into the history; one validator run checks every variant.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.config.models import StorageSettings
from contact_spark.io.tables import TableStore
from contact_spark.policy.compiler import compile_policy
from contact_spark.realtime import Snapshot, check
from contact_spark.solver.kernel import solve
from contact_spark.solver.problem import ErrorCode, KernelBatch
from contact_spark.validation import ValidationInputs, validate_plan

from .world import CAMPAIGNS, CELLS, CHANNELS, POLICY, RUN_ID, customer_row, make_config, write_world

HORIZON = 12
HISTORY_MONTHS = 12
Event = tuple[int, str, str]
# (flags of the customer's row(s), how its plan is made)
BASE: dict[str, tuple[list[dict[str, Any]], str]] = {
    "A": ([{}], "solver"),
    "B": ([{}], "solver"),
    "C": ([{}], "solver"),
    "D": ([{}], "random"),
    "E": ([{}], "random"),
    "F": ([{"privacy_consent": None}], "solver"),
    "G": ([{"optout_sms": None, "churn_risk": None}], "random"),
    "H": ([{}, {"outbound": True}], "solver"),  # a duplicated customer id
}
KINDS = ("policy", "consent", "eligibility")


def solver_plans(
    history: dict[str, list[Event]], eligible: dict[str, np.ndarray], ids: list[str]
) -> dict[str, set[Event]]:
    """Optimal legal plans of the per-customer MILP (the DP is not needed for a handful)."""
    config = make_config(Path("/nonexistent"))
    policy = compile_policy(config.policy, list(CAMPAIGNS), list(CHANNELS))
    rng = np.random.default_rng(7)
    hist = np.zeros((len(ids), HISTORY_MONTHS, len(CAMPAIGNS), len(CHANNELS)), dtype=np.int64)
    for i, cid in enumerate(ids):
        for m, campaign, channel in history[cid]:
            hist[i, -m - 1, CAMPAIGNS.index(campaign), CHANNELS.index(channel)] += 1
    batch = KernelBatch(
        propensity=rng.uniform(0.05, 0.6, size=(len(ids), len(CAMPAIGNS), len(CHANNELS))),
        eligible=np.stack([eligible[cid] for cid in ids]),
        history=hist,
        success_value=np.array([120.0, 450.0]),
        channel_cost=np.array([0.02, 0.06, 4.0]),
        horizon=HORIZON,
    )
    result = solve(policy, batch, method="milp")
    assert (result.status == ErrorCode.OK).all()
    return {
        cid: {(int(t), CAMPAIGNS[c], CHANNELS[h]) for t, c, h in zip(*np.nonzero(result.x[i]), strict=True)}
        for i, cid in enumerate(ids)
    }


@pytest.fixture(scope="module")
def lean_spark(spark: SparkSession) -> Iterator[SparkSession]:
    """Tiny inputs: one shuffle partition and no broadcast jobs make the validation faster."""
    with temporary_conf(spark, LEAN) as lean:
        yield lean


@pytest.fixture(scope="module")
def world(lean_spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("agreement") / "lakehouse"
    config = make_config(base)
    rng = np.random.default_rng(2027)
    ids = list(BASE)
    history = {
        cid: [
            (m, campaign, channel)
            for m in range(-HISTORY_MONTHS, 0)
            for campaign, channel in CELLS
            if rng.uniform() < (0.1 if cid != "E" else 0.0)  # E: no history at all
        ]
        for cid in ids
    }
    ineligible = {(cid, *CELLS[k]) for cid in ids for k in range(len(CELLS)) if rng.uniform() < 0.15}
    eligible = {
        cid: np.array([[(cid, c, h) not in ineligible for h in CHANNELS] for c in CAMPAIGNS]) for cid in ids
    }
    solved = solver_plans(history, eligible, [c for c in ids if BASE[c][1] == "solver"])
    plans: dict[str, set[Event]] = {}
    for cid in ids:
        if BASE[cid][1] == "solver":
            plans[cid] = solved[cid]
        else:  # a broken plan: a dozen random contacts
            picks = rng.choice(HORIZON * len(CELLS), size=12, replace=False)
            plans[cid] = {(int(k) // len(CELLS), *CELLS[int(k) % len(CELLS)]) for k in picks}
    # One variant customer per (customer, contact): P with the contact added or removed.
    variants: dict[tuple[str, Event], str] = {}
    all_plans = dict(plans)
    for cid in ids:
        for t in range(HORIZON):
            for campaign, channel in CELLS:
                y = (t, campaign, channel)
                vid = f"{cid}~{t}~{campaign}~{channel}"
                variants[(cid, y)] = vid
                all_plans[vid] = plans[cid] - {y} if y in plans[cid] else plans[cid] | {y}
    owner = {vid: cid for (cid, _), vid in variants.items()} | {cid: cid for cid in ids}
    customers = [customer_row(vid, **flags) for vid, cid in owner.items() for flags in BASE[cid][0]]
    write_world(
        base,
        customers,
        history=[(vid, *e) for vid, cid in owner.items() for e in history[cid]],
        plan=[(vid, *e) for vid, rows in all_plans.items() for e in sorted(rows)],
        ineligible={(vid, c, h) for vid, cid in owner.items() for (o, c, h) in ineligible if o == cid},
    )
    store = TableStore(lean_spark, StorageSettings(base_path=str(base), backend="deltalake"))
    inputs = ValidationInputs(
        plan=store.read_run("plan", RUN_ID),
        customers=store.read("customers"),
        eligibility=store.read_run("eligibility", RUN_ID),
        best_contacts=store.read_run("best_contacts", RUN_ID),
        contact_history=store.read("contact_history"),
    )
    rows: dict[str, Counter[tuple[Any, ...]]] = {vid: Counter() for vid in owner}
    for r in validate_plan(lean_spark, config, inputs, RUN_ID).collect():
        if r["kind"] in KINDS:
            rows[r["customer_id"]][(r["rule"], r["kind"], r["month"], r["detail"])] += 1
    return {
        "snapshot": Snapshot.load(config, RUN_ID),
        "plans": plans,
        "variants": variants,
        "rows": rows,
    }


def flagged(world: dict[str, Any], cid: str, y: Event) -> set[str]:
    """Rules of the validator rows that adding ``y`` to the plan creates (or changes)."""
    plan, variant = world["rows"][cid], world["rows"][world["variants"][(cid, y)]]
    with_y, without_y = (plan, variant) if y in world["plans"][cid] else (variant, plan)
    return {rule for rule, *_ in (with_y - without_y)}


def test_check_refuses_exactly_what_the_validator_flags(world: dict[str, Any]) -> None:
    snapshot = world["snapshot"]
    refused_by: Counter[str] = Counter()
    allowed_planned = 0
    for cid, plan in world["plans"].items():
        for t in range(HORIZON):
            for campaign, channel in CELLS:
                y = (t, campaign, channel)
                day = dt.date(2027 + t // 12, t % 12 + 1, 10)
                decision = check(snapshot, cid, campaign, channel, day)
                got = {r.rule for r in decision.reasons}
                assert got == flagged(world, cid, y), (cid, y, decision.reasons)
                assert decision.allowed == (not got)
                refused_by.update(got)
                allowed_planned += int(decision.allowed and y in plan)
    # Not vacuous: every policy rule and every consent / eligibility check refused something,
    # and contacts of the legal plans were allowed.
    expected = {r["name"] for r in POLICY} | {
        "privacy_consent",
        "churn_risk",
        "outbound",
        "channel_opt_out",
        "duplicate_customer_id",
        "eligibility",
    }
    assert expected <= set(refused_by), expected - set(refused_by)
    assert allowed_planned > 10


def test_every_contact_of_a_valid_plan_is_allowed(world: dict[str, Any]) -> None:
    snapshot = world["snapshot"]
    for cid in ("A", "B", "C"):
        assert world["rows"][cid] == Counter(), cid  # the solver's plan passes the validator
        assert world["plans"][cid], cid
        for t, campaign, channel in sorted(world["plans"][cid]):
            decision = check(snapshot, cid, campaign, channel, dt.date(2027, t + 1, 28))
            assert decision.allowed, (cid, t, campaign, channel, decision.reasons)
            assert [n.code for n in decision.notes] == ["PLANNED"]
