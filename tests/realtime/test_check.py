"""The real-time check and confirm on hand-built worlds (delta-rs only, no Spark)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from contact_spark.config import load_config
from contact_spark.realtime import (
    REALTIME_TABLE,
    ContactRefusedError,
    Decision,
    RealtimeError,
    Snapshot,
    SnapshotError,
    check,
    confirm,
)

from .world import (
    CONTACT,
    ELIGIBILITY_SCHEMA,
    RUN_ID,
    contact_id,
    customer_row,
    make_config,
    write,
    write_world,
)

JAN, FEB, MAR = dt.date(2027, 1, 12), dt.date(2027, 2, 12), dt.date(2027, 3, 12)


def rules(decision: Decision) -> set[str]:
    return {r.rule for r in decision.reasons}


def codes(decision: Decision) -> set[str]:
    return {r.code for r in decision.reasons}


def snapshot_of(
    tmp_path: Path,
    customers: list[dict[str, Any]],
    history: list[tuple[str, int, str, str]] = (),  # type: ignore[assignment]
    plan: list[tuple[str, int, str, str]] = (),  # type: ignore[assignment]
    **config: Any,
) -> Snapshot:
    base = tmp_path / "lakehouse"
    write_world(base, customers, list(history), list(plan))
    return Snapshot.load(make_config(base, **config), RUN_ID)


def test_consent_and_opt_outs_are_fail_closed(tmp_path: Path) -> None:
    snap = snapshot_of(
        tmp_path,
        [
            customer_row("OK"),
            customer_row("NULL", privacy_consent=None),
            customer_row("NO", privacy_consent=False),
            customer_row("CHURN", churn_risk=None),
            customer_row("OUT", outbound=True),
            customer_row("OPT", optout_dem=None),
        ],
    )
    assert check(snap, "OK", "CROSS_SELLING", "DEM", JAN).allowed
    assert codes(check(snap, "NULL", "CROSS_SELLING", "DEM", JAN)) == {"PRIVACY_CONSENT_UNKNOWN"}
    assert codes(check(snap, "NO", "CROSS_SELLING", "DEM", JAN)) == {"NO_PRIVACY_CONSENT"}
    assert codes(check(snap, "CHURN", "CROSS_SELLING", "DEM", JAN)) == {"CHURN_RISK_UNKNOWN"}
    assert codes(check(snap, "OUT", "CROSS_SELLING", "DEM", JAN)) == {"OUTBOUND"}
    assert codes(check(snap, "OPT", "CROSS_SELLING", "DEM", JAN)) == {"CHANNEL_OPT_OUT_UNKNOWN"}
    assert check(snap, "OPT", "CROSS_SELLING", "SMS", JAN).allowed  # the opt-out is per channel


def test_unknown_customer_campaign_or_channel_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, [customer_row("C1")])
    unknown = check(snap, "NOBODY", "CROSS_SELLING", "DEM", JAN)
    assert not unknown.allowed and codes(unknown) == {"UNKNOWN_CUSTOMER", "NO_ELIGIBILITY_ROW"}
    assert codes(check(snap, "C1", "WINTER_SALE", "DEM", JAN)) == {"UNKNOWN_CAMPAIGN"}
    assert codes(check(snap, "C1", "CROSS_SELLING", "FAX", JAN)) == {"UNKNOWN_CHANNEL"}
    both = check(snap, "", "", "", JAN)
    assert codes(both) == {"UNKNOWN_CUSTOMER", "UNKNOWN_CAMPAIGN", "UNKNOWN_CHANNEL"}


def test_windows_reach_back_into_the_history(tmp_path: Path) -> None:
    # C1: a DEM in 2026-12 and a TLS in 2026-08 (5 months before the plan).
    history = [("C1", -1, "CROSS_SELLING", "DEM"), ("C1", -5, "CROSS_SELLING", "TLS")]
    snap = snapshot_of(tmp_path, [customer_row("C1"), customer_row("C2")], history)
    jan = check(snap, "C1", "CROSS_SELLING", "DEM", JAN)
    assert rules(jan) == {"dem_two_months"}
    assert "2026-12..2027-01" in jan.reasons[0].detail
    assert check(snap, "C1", "CROSS_SELLING", "DEM", FEB).allowed
    # tls_half_year: the 2026-08 call is inside the 6-month window ending 2027-01, not 2027-02.
    assert rules(check(snap, "C1", "CROSS_SELLING", "TLS", JAN)) == {"tls_half_year"}
    assert check(snap, "C1", "CROSS_SELLING", "TLS", FEB).allowed
    # only_after with a lookback: C2 has no DEM before, C1's 2026-12 DEM is 2 months before Feb.
    assert rules(check(snap, "C2", "CROSS_SELLING", "TLS", FEB)) == {"tls_after_dem"}
    # only_after without a lookback: SOLUTION needs a CROSS_SELLING contact in any earlier month.
    assert rules(check(snap, "C2", "SOLUTION", "DEM", JAN)) == {"solution_after_cross"}
    assert check(snap, "C1", "SOLUTION", "SMS", dt.date(2027, 9, 1)).allowed


def test_a_planned_contact_is_not_counted_twice_and_a_confirmed_one_is(tmp_path: Path) -> None:
    plan = [("C1", 0, "CROSS_SELLING", "SMS"), ("C1", 1, "CROSS_SELLING", "DEM")]
    snap = snapshot_of(tmp_path, [customer_row("C1")], plan=plan)
    planned = check(snap, "C1", "CROSS_SELLING", "SMS", JAN)
    assert planned.allowed and [n.code for n in planned.notes] == ["PLANNED"]
    # A SOLUTION SMS in January would be a second SMS that month, with no earlier CROSS_SELLING.
    assert rules(check(snap, "C1", "SOLUTION", "SMS", JAN)) == {
        "one_per_channel_month",
        "solution_after_cross",
    }
    done = confirm(snap, "C1", "CROSS_SELLING", "SMS", JAN, check_id=planned.check_id)
    assert done.recorded and not done.forced and done.check_id == planned.check_id
    again = check(snap, "C1", "CROSS_SELLING", "SMS", JAN)
    assert rules(again) == {"one_per_channel_month"}
    assert "2 contacts" in again.reasons[0].detail
    # The confirmed row is in the Delta table, with the contract's columns.
    rows = DeltaTable(str(snap.base) + f"/{REALTIME_TABLE}").to_pyarrow_table().to_pylist()
    assert len(rows) == 1
    assert rows[0]["customer_id"] == "C1" and rows[0]["contact_date"] == JAN
    assert rows[0]["contact"] == CONTACT["SMS"] and rows[0]["outcome"] is None
    assert rows[0]["check_id"] == planned.check_id and rows[0]["plan_run_id"] == RUN_ID
    # A fresh snapshot (another process, or after a refresh) counts it from the table.
    assert rules(check(Snapshot.load(snap.config, RUN_ID), "C1", "CROSS_SELLING", "SMS", JAN)) == {
        "one_per_channel_month"
    }


def test_confirm_then_check_refuses_by_the_rule_it_would_break(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, [customer_row("C1")], history=[("C1", -2, "CROSS_SELLING", "DEM")])
    assert check(snap, "C1", "CROSS_SELLING", "TLS", JAN).allowed  # the DEM 2 months before
    confirm(snap, "C1", "CROSS_SELLING", "TLS", JAN)
    # A SOLUTION call 2 months later: the two campaigns' calls must be 3 months apart.
    assert rules(check(snap, "C1", "SOLUTION", "TLS", MAR)) == {
        "tls_campaigns_apart",
        "tls_half_year",
        "tls_after_dem",
    }
    # An SMS the month after the call.
    assert rules(check(snap, "C1", "CROSS_SELLING", "SMS", FEB)) == {"no_sms_after_tls"}


def test_confirm_of_a_refused_contact_records_nothing_unless_forced(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, [customer_row("C1", privacy_consent=None)])
    with pytest.raises(ContactRefusedError, match="privacy_consent"):
        confirm(snap, "C1", "CROSS_SELLING", "DEM", JAN)
    assert not DeltaTable.is_deltatable(f"{snap.base}/{REALTIME_TABLE}")
    forced = confirm(snap, "C1", "CROSS_SELLING", "DEM", JAN, force=True)
    assert forced.recorded and forced.forced and not forced.decision.allowed
    assert DeltaTable(f"{snap.base}/{REALTIME_TABLE}").to_pyarrow_table().num_rows == 1


def test_confirm_is_idempotent_by_check_id(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, [customer_row("C1")])
    first = confirm(snap, "C1", "CROSS_SELLING", "DEM", JAN, check_id="abc")
    second = confirm(snap, "C1", "CROSS_SELLING", "DEM", JAN, check_id="abc")
    assert first.recorded and not second.recorded
    assert DeltaTable(f"{snap.base}/{REALTIME_TABLE}").to_pyarrow_table().num_rows == 1
    # Also across a reload, where the check id comes back from the table.
    assert not confirm(snap.reload(), "C1", "CROSS_SELLING", "DEM", JAN, check_id="abc").recorded


def test_reload_sees_new_tables_and_keeps_confirmed_contacts(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, [customer_row("C1")])
    assert not snap.is_stale()
    confirm(snap, "C1", "CROSS_SELLING", "DEM", JAN)
    assert snap.is_stale()  # realtime_contacts was created
    fresh = snap.reload()
    assert not fresh.is_stale()
    assert rules(check(fresh, "C1", "CROSS_SELLING", "DEM", JAN)) == {
        "dem_two_months",
        "one_per_channel_month",
    }
    # Consent withdrawn in the customers table: a reload applies it.
    write_world(Path(snap.base), [customer_row("C1", privacy_consent=False)], [], [])
    assert snap.is_stale()
    assert codes(check(snap.reload(), "C1", "CROSS_SELLING", "SMS", MAR)) == {"NO_PRIVACY_CONSENT"}


def test_min_rules_never_forbid_a_contact(tmp_path: Path) -> None:
    policy = [
        {"name": "dem_yearly", "type": "min_offers", "channels": ["DEM"], "window_months": 12, "limit": 1},
        {"name": "sms_monthly", "type": "max_offers", "channels": ["SMS"], "window_months": 1, "limit": 1},
    ]
    snap = snapshot_of(tmp_path, [customer_row("C1")], policy=policy)
    assert check(snap, "C1", "CROSS_SELLING", "SMS", JAN).allowed
    confirm(snap, "C1", "CROSS_SELLING", "SMS", JAN)
    assert rules(check(snap, "C1", "SOLUTION", "SMS", JAN)) == {"sms_monthly"}


def test_capacity_is_reported_as_a_note_never_as_a_refusal(tmp_path: Path) -> None:
    capacities = [
        {
            "name": "call_centre",
            "channels": ["TLS"],
            "max": 1,
            "exceptions": [{"month": "2027-02-01", "max": 5}],
        },
        {
            "name": "sms_budget",
            "measure": "sum",
            "column": "cost",
            "channels": ["SMS"],
            "period": "year",
            "max": 1,
        },
    ]
    plan = [("C2", 0, "CROSS_SELLING", "TLS"), ("C2", 0, "CROSS_SELLING", "SMS")]
    history = [("C1", -1, "CROSS_SELLING", "DEM")]
    snap = snapshot_of(
        tmp_path, [customer_row("C1"), customer_row("C2")], history, plan, capacities=capacities
    )
    jan = check(snap, "C1", "CROSS_SELLING", "TLS", JAN)
    assert jan.allowed
    assert [(n.code, n.rule) for n in jan.notes] == [("CAPACITY_EXCEEDED", "call_centre")]
    assert "1 planned or confirmed, 2 with this one, max 1" in jan.notes[0].detail
    feb = check(snap, "C1", "CROSS_SELLING", "TLS", FEB)
    assert [(n.code, n.rule) for n in feb.notes] == [("CAPACITY", "call_centre")]
    sms = check(snap, "C1", "SOLUTION", "SMS", FEB)
    assert [(n.code, n.rule) for n in sms.notes] == [("CAPACITY", "sms_budget")]
    assert "0.06 planned or confirmed, 0.12 with this one" in sms.notes[0].detail
    later = check(snap, "C1", "CROSS_SELLING", "TLS", dt.date(2028, 3, 1))
    assert [n.code for n in later.notes] == ["OUTSIDE_PLAN_HORIZON"]


def test_contacts_are_masked_in_decisions_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    snap = snapshot_of(tmp_path, [customer_row("C1")])
    decision = check(snap, "C1", "CROSS_SELLING", "SMS", JAN)
    assert decision.contact == "+39********67"
    assert check(snap, "C1", "CROSS_SELLING", "DEM", JAN).contact == "m***@example.org"
    with caplog.at_level(logging.INFO, logger="contact_spark.realtime"):
        confirm(snap, "C1", "CROSS_SELLING", "SMS", JAN)
    assert "+39********67" in caplog.text
    assert CONTACT["SMS"] not in caplog.text and CONTACT["SMS"][3:] not in caplog.text


def test_missing_tables_and_runs_are_named(tmp_path: Path) -> None:
    base = tmp_path / "lakehouse"
    config = make_config(base)
    with pytest.raises(SnapshotError, match="table 'customers' not found"):
        Snapshot.load(config, RUN_ID)
    write_world(base, [customer_row("C1")], [], [])
    with pytest.raises(SnapshotError, match="no rows for run 'other-run'"):
        Snapshot.load(config, "other-run")
    snap = Snapshot.load(config, RUN_ID)
    assert snap.customer_count == 1
    with pytest.raises(RealtimeError, match="date must be a date"):
        check(snap, "C1", "CROSS_SELLING", "DEM", "2027-01-01")  # type: ignore[arg-type]


TRIGGER_EVENTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("revision", pa.int32()),
        ("customer_id", pa.string()),
        ("event_type", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)
MOVE = {"months": 2, "campaign": "MOVING_HOME", "propensity": {"SMS": 0.1, "TLS": 0.3}}


def _event(
    cid: str, event_type: str, when: dt.datetime, status: str = "applied", run_id: str = RUN_ID
) -> dict:
    reason = None if status == "applied" else "UNKNOWN_CUSTOMER"
    return {
        "run_id": run_id,
        "revision": 1,
        "customer_id": cid,
        "event_type": event_type,
        "event_time": when.replace(tzinfo=dt.timezone.utc),
        "status": status,
        "reason": reason,
    }


def test_a_suppressing_event_refuses_contacts_while_it_is_active(tmp_path: Path) -> None:
    """The default config's COMPLAINT suppresses everything for 3 months from the event's month,
    as the validator's ``trigger_suppress`` check does for a plan; a rejected event, or one of
    another run, changes nothing."""
    base = tmp_path / "lakehouse"
    write_world(base, [customer_row("A"), customer_row("B"), customer_row("C")], [], [])
    write(
        base,
        "trigger_events",
        [
            _event("A", "COMPLAINT", dt.datetime(2027, 2, 2, 17)),
            _event("B", "COMPLAINT", dt.datetime(2027, 2, 2, 17), status="rejected"),
            _event("C", "COMPLAINT", dt.datetime(2027, 2, 2, 17), run_id="another-run"),
        ],
        TRIGGER_EVENTS_SCHEMA,
        partition_by=["run_id"],
    )
    snap = Snapshot.load(make_config(base, policy=[]), RUN_ID)
    refused = {
        day: codes(check(snap, "A", "CROSS_SELLING", "DEM", day))
        for day in (JAN, FEB, MAR, dt.date(2027, 4, 30), dt.date(2027, 5, 1))
    }
    assert refused == {
        JAN: set(),
        FEB: {"TRIGGER_SUPPRESSED"},
        MAR: {"TRIGGER_SUPPRESSED"},
        dt.date(2027, 4, 30): {"TRIGGER_SUPPRESSED"},
        dt.date(2027, 5, 1): set(),
    }
    assert rules(check(snap, "A", "SOLUTION", "TLS", MAR)) == {"trigger_suppress:COMPLAINT"}
    assert check(snap, "B", "CROSS_SELLING", "DEM", FEB).allowed
    assert check(snap, "C", "CROSS_SELLING", "DEM", FEB).allowed


def test_a_triggered_campaign_is_allowed_only_on_the_channels_and_months_its_event_opens(
    tmp_path: Path,
) -> None:
    """MOVING_HOME (trigger_only) is opened by MOVE on SMS and TLS for 2 months from the move's
    month: the validator's ``trigger_window`` rule, checked before a contact is made."""
    base = tmp_path / "lakehouse"
    write_world(base, [customer_row("MOVER"), customer_row("STAYER")], [], [])
    write_deltalake(
        str(base / "eligibility"),
        pa.Table.from_pylist(
            [
                {
                    "run_id": RUN_ID,
                    "customer_id": cid,
                    "campaign": "MOVING_HOME",
                    "channel": channel,
                    "eligible": True,
                    "reasons": [],
                    "contact_id": contact_id(cid, channel),
                    "propensity": 0.2,
                    "expected_value": 40.0,
                }
                for cid in ("MOVER", "STAYER")
                for channel in ("DEM", "SMS", "TLS")
            ],
            schema=ELIGIBILITY_SCHEMA,
        ),
        mode="append",
    )
    write(
        base, "trigger_events", [_event("MOVER", "MOVE", dt.datetime(2027, 2, 27, 23))], TRIGGER_EVENTS_SCHEMA
    )
    config = load_config(
        overrides={
            "storage.base_path": str(base),
            "policy.rules": [],
            "capacities.rules": [],
            "capacities.spread": [],
            "eligibility.rules": [],
            "campaigns.MOVING_HOME": {"success_value": 200.0, "trigger_only": True},
            "triggers.events.MOVE": MOVE,
        }
    )
    snap = Snapshot.load(config, RUN_ID)
    assert check(snap, "MOVER", "MOVING_HOME", "SMS", FEB).allowed
    assert check(snap, "MOVER", "MOVING_HOME", "TLS", MAR).allowed
    assert codes(check(snap, "MOVER", "MOVING_HOME", "SMS", JAN)) == {"TRIGGER_NOT_ACTIVE"}
    assert codes(check(snap, "MOVER", "MOVING_HOME", "SMS", dt.date(2027, 4, 1))) == {"TRIGGER_NOT_ACTIVE"}
    assert rules(check(snap, "MOVER", "MOVING_HOME", "DEM", FEB)) == {"trigger_window:MOVING_HOME"}
    assert codes(check(snap, "STAYER", "MOVING_HOME", "SMS", FEB)) == {"TRIGGER_NOT_ACTIVE"}
    assert check(snap, "STAYER", "CROSS_SELLING", "SMS", FEB).allowed


def test_max_campaigns_refuses_a_second_campaign_in_the_window(tmp_path: Path) -> None:
    """The snapshot's check applies max_campaigns over history and plan: C1 was e-mailed
    CROSS_SELLING in 2026-12 and has a CROSS_SELLING SMS planned in 2027-03. With at most
    one campaign in every 2 months, SOLUTION is refused in January (history) and in February
    and March (the planned SMS), allowed in May; CROSS_SELLING again is allowed in January
    (the same campaign counts once)."""
    one_campaign = [{"name": "one_campaign_2m", "type": "max_campaigns", "window_months": 2, "limit": 1}]
    snap = snapshot_of(
        tmp_path,
        [customer_row("C1")],
        history=[("C1", -1, "CROSS_SELLING", "DEM")],
        plan=[("C1", 2, "CROSS_SELLING", "SMS")],
        policy=one_campaign,
    )
    assert rules(check(snap, "C1", "SOLUTION", "DEM", JAN)) == {"one_campaign_2m"}
    assert rules(check(snap, "C1", "SOLUTION", "DEM", FEB)) == {"one_campaign_2m"}
    assert rules(check(snap, "C1", "SOLUTION", "TLS", MAR)) == {"one_campaign_2m"}
    assert check(snap, "C1", "SOLUTION", "DEM", dt.date(2027, 5, 2)).allowed
    assert check(snap, "C1", "CROSS_SELLING", "TLS", JAN).allowed
