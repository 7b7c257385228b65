"""max_campaigns: the real-time check agrees with the independent validator, contact by contact.

The method of ``test_agreement.py`` (refused by exactly the rules whose validator rows
change when the contact is added to the plan), on random histories and random plans only:
the per-customer solver plans of that test do not know this rule type yet. Windows of 1
and 3 months, one of them split per channel, reach back into a 6-month history.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import SparkSession
from spark_conf import LEAN, temporary_conf

from contact_spark.config.models import StorageSettings
from contact_spark.io.tables import TableStore
from contact_spark.realtime import Snapshot, check
from contact_spark.validation import ValidationInputs, validate_plan

from .world import CELLS, RUN_ID, customer_row, make_config, write_world

HORIZON = 12
Event = tuple[int, str, str]
POLICY: list[dict[str, Any]] = [
    {"name": "one_campaign_per_month", "type": "max_campaigns", "window_months": 1, "limit": 1},
    {
        "name": "one_campaign_per_quarter_per_channel",
        "type": "max_campaigns",
        "channels": ["DEM", "SMS"],
        "per_channel": True,
        "window_months": 3,
        "limit": 1,
    },
]


def test_max_campaigns_check_refuses_exactly_what_the_validator_flags(
    spark: SparkSession, tmp_path: Path
) -> None:
    base = tmp_path / "lakehouse"
    config = make_config(base, policy=POLICY)
    rng = np.random.default_rng(11)
    ids = ["A", "B", "C", "D"]
    history = {
        cid: [
            (m, c, h) for m in range(-6, 0) for c, h in CELLS if rng.uniform() < (0.08 if cid != "D" else 0.0)
        ]
        for cid in ids
    }
    plans: dict[str, set[Event]] = {}
    for cid in ids:
        picks = rng.choice(HORIZON * len(CELLS), size=6, replace=False)
        plans[cid] = {(int(k) // len(CELLS), *CELLS[int(k) % len(CELLS)]) for k in picks}
    # One variant customer per (customer, contact): the plan with the contact added or removed.
    variants: dict[tuple[str, Event], str] = {}
    all_plans = dict(plans)
    for cid in ids:
        for t in range(HORIZON):
            for c, h in CELLS:
                y = (t, c, h)
                vid = f"{cid}~{t}~{c}~{h}"
                variants[(cid, y)] = vid
                all_plans[vid] = plans[cid] - {y} if y in plans[cid] else plans[cid] | {y}
    owner = {vid: cid for (cid, _), vid in variants.items()} | {cid: cid for cid in ids}
    write_world(
        base,
        [customer_row(vid) for vid in owner],
        history=[(vid, *e) for vid, cid in owner.items() for e in history[cid]],
        plan=[(vid, *e) for vid, rows in all_plans.items() for e in sorted(rows)],
    )
    with temporary_conf(spark, LEAN) as lean:
        store = TableStore(lean, StorageSettings(base_path=str(base), backend="deltalake"))
        inputs = ValidationInputs(
            plan=store.read_run("plan", RUN_ID),
            customers=store.read("customers"),
            eligibility=store.read_run("eligibility", RUN_ID),
            best_contacts=store.read_run("best_contacts", RUN_ID),
            contact_history=store.read("contact_history"),
        )
        rows: dict[str, Counter[tuple[Any, ...]]] = {vid: Counter() for vid in owner}
        for r in validate_plan(lean, config, inputs, RUN_ID).collect():
            assert r["kind"] == "policy", r  # everyone is eligible and consents
            rows[r["customer_id"]][(r["rule"], r["month"], r["detail"])] += 1
    snapshot = Snapshot.load(config, RUN_ID)
    refused_by: Counter[str] = Counter()
    allowed = 0
    for cid, plan in plans.items():
        for t in range(HORIZON):
            for c, h in CELLS:
                y = (t, c, h)
                variant = rows[variants[(cid, y)]]
                with_y, without_y = (rows[cid], variant) if y in plan else (variant, rows[cid])
                flagged = {rule for rule, *_ in (with_y - without_y)}
                decision = check(snapshot, cid, c, h, dt.date(2027, t + 1, 10))
                got = {r.rule for r in decision.reasons}
                assert got == flagged, (cid, y, decision.reasons)
                refused_by.update(got)
                allowed += int(decision.allowed)
    # Not vacuous: both rules refused contacts, and contacts were allowed too.
    assert set(refused_by) == {r["name"] for r in POLICY}, refused_by
    assert allowed > 20
