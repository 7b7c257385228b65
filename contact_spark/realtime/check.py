"""The real-time check (allowed / not allowed, with every reason) and the confirmation of a contact.

``check`` counts the customer's history, the contacts confirmed in real time and the run's
plan. A planned contact identical to the checked one (same customer, month, campaign and
channel) is that contact, not a second one: per (month, campaign, channel) the world after
the check holds ``max(planned, made + 1)`` contacts, where ``made`` counts history and
confirmed contacts. So checking a planned contact against a legal plan says allowed, and
once it is confirmed (made), the same offer again counts twice and is refused by the rule
it breaks.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from contact_spark.contacts.masking import mask_contact
from contact_spark.io.months import month_number
from contact_spark.realtime.delta import table_location
from contact_spark.realtime.models import (
    NO_ELIGIBILITY_ROW,
    NOT_ELIGIBLE,
    OUTSIDE_FLIGHT,
    OUTSIDE_PLAN_HORIZON,
    PLANNED,
    POLICY_PREFIX,
    UNKNOWN_CAMPAIGN,
    UNKNOWN_CHANNEL,
    Confirmation,
    ContactRefusedError,
    Decision,
    RealtimeError,
    Reason,
)
from contact_spark.realtime.policy import month_label
from contact_spark.realtime.snapshot import REALTIME_SCHEMA, REALTIME_TABLE, Snapshot

log = logging.getLogger(__name__)


def _as_date(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if not isinstance(value, dt.date):
        raise RealtimeError(f"date must be a date (YYYY-MM-DD), got {type(value).__name__}")
    return value


def _evaluate(
    snapshot: Snapshot, customer_id: str, campaign: str, channel: str, day: dt.date
) -> tuple[list[Reason], list[Reason], str | None]:
    """Blocking reasons, notes and the raw contact to use (caller holds the snapshot lock)."""
    reasons: list[Reason] = []
    notes: list[Reason] = []
    month = month_number(day)
    state = snapshot.state(customer_id)
    reasons += state.customer_reasons
    known_cell = True
    if campaign not in snapshot.campaigns:
        known_cell = False
        reasons.append(
            Reason(
                code=UNKNOWN_CAMPAIGN, rule="unknown_cell", detail=f"campaign '{campaign}' is not configured"
            )
        )
    if channel not in snapshot.channels:
        known_cell = False
        reasons.append(
            Reason(code=UNKNOWN_CHANNEL, rule="unknown_cell", detail=f"channel '{channel}' is not configured")
        )
    if not known_cell:
        return reasons, notes, None
    cell = (campaign, channel)
    reasons += state.channel_reasons.get(channel, [])
    candidate = state.eligibility.get(cell)
    if candidate is None:
        reasons.append(
            Reason(
                code=NO_ELIGIBILITY_ROW,
                rule="eligibility",
                detail=f"{campaign}/{channel} has no eligibility row in run '{snapshot.run_id}'",
            )
        )
    elif not candidate[0]:
        why = ",".join(candidate[1]) or "eligible is false or null"
        reasons.append(
            Reason(
                code=NOT_ELIGIBLE, rule="eligibility", detail=f"{campaign}/{channel} is not eligible: {why}"
            )
        )
    reasons += snapshot.triggers.reasons(state.trigger_events, month, campaign, channel)
    if not snapshot.config.campaigns[campaign].runs(channel, day.replace(day=1)):
        reasons.append(
            Reason(
                code=OUTSIDE_FLIGHT,
                rule="outside_flight",
                detail=f"{campaign}/{channel} does not run in {month_label(month)} (campaigns.{campaign}.flight)",
            )
        )
    key = (month, campaign, channel)
    planned = key in state.planned
    events = dict(state.events)
    events[key] = max(int(planned), state.actual.get(key, 0) + 1)
    for v in snapshot.policy.violations(events, month, cell):
        reasons.append(Reason(code=POLICY_PREFIX + v.type.upper(), rule=v.rule, detail=v.detail))
    if planned:
        notes.append(
            Reason(
                code=PLANNED,
                rule="plan",
                detail=f"planned in {month_label(month)} by run '{snapshot.run_id}'",
            )
        )
    if not snapshot.in_horizon(month):
        notes.append(
            Reason(
                code=OUTSIDE_PLAN_HORIZON,
                rule="plan",
                detail=f"{month_label(month)} is outside the plan's months: later planned contacts are not known",
            )
        )
    notes += snapshot.capacity.notes(snapshot.usage, month, cell)
    return reasons, notes, candidate[2] if candidate is not None else None


def _decision(
    snapshot: Snapshot, customer_id: str, campaign: str, channel: str, day: dt.date
) -> tuple[Decision, str | None]:
    reasons, notes, contact = _evaluate(snapshot, customer_id, campaign, channel, day)
    decision = Decision(
        check_id=uuid.uuid4().hex,
        allowed=not reasons,
        customer_id=customer_id,
        campaign=campaign,
        channel=channel,
        date=day,
        month=month_label(month_number(day)),
        reasons=reasons,
        notes=notes,
        contact=mask_contact(contact, snapshot.kinds.get(channel)),
        run_id=snapshot.run_id,
    )
    return decision, contact


def check(snapshot: Snapshot, customer_id: str, campaign: str, channel: str, date: dt.date) -> Decision:
    """Whether ``customer_id`` may be contacted about ``campaign`` through ``channel`` on ``date``.

    Never raises for an unknown customer, campaign or channel: the decision says why not.
    """
    day = _as_date(date)
    with snapshot.lock:
        decision, _ = _decision(snapshot, str(customer_id), str(campaign), str(channel), day)
    return decision


def confirm(
    snapshot: Snapshot,
    customer_id: str,
    campaign: str,
    channel: str,
    date: dt.date,
    *,
    check_id: str | None = None,
    contact: str | None = None,
    force: bool = False,
) -> Confirmation:
    """Record a contact made in real time, so later checks and the next batch run count it.

    The contact is checked again first: a contact the check refuses raises
    ContactRefusedError and nothing is recorded, unless ``force`` (the contact was made
    anyway and must be counted). ``check_id`` (the id of the check that allowed it) makes
    the call idempotent: a check id already recorded is not recorded twice.
    """
    day = _as_date(date)
    # Confirmations one at a time (check, write, count is atomic); checks only wait for the
    # snapshot lock, which is not held during the Delta write.
    with snapshot.write_lock:
        with snapshot.lock:
            decision, best = _decision(snapshot, str(customer_id), str(campaign), str(channel), day)
        if check_id:
            decision = decision.model_copy(update={"check_id": check_id})
        now = dt.datetime.now(dt.timezone.utc)
        if decision.check_id in snapshot.confirmed_ids:
            log.info("confirm %s: check id already recorded", decision.check_id)
            return Confirmation(
                recorded=False, check_id=decision.check_id, confirmed_at=now, forced=force, decision=decision
            )
        if not decision.allowed and not force:
            raise ContactRefusedError(decision)
        used = contact if contact is not None else best
        row: dict[str, Any] = {
            "customer_id": decision.customer_id,
            "contact_date": day,
            "campaign": decision.campaign,
            "channel": decision.channel,
            "contact": used,
            "outcome": None,
            "confirmed_at": now,
            "check_id": decision.check_id,
            "plan_run_id": snapshot.run_id,
            "forced": bool(force and not decision.allowed),
        }
        _append(snapshot, row)
        with snapshot.lock:
            snapshot.add_confirmed(row)
            snapshot.journal.append(row)
    log.info(
        "confirmed %s %s/%s on %s contact=%s check=%s%s",
        decision.customer_id,
        decision.campaign,
        decision.channel,
        day,
        mask_contact(used, snapshot.kinds.get(decision.channel)),
        decision.check_id,
        " (forced)" if row["forced"] else "",
    )
    return Confirmation(
        recorded=True, check_id=decision.check_id, confirmed_at=now, forced=row["forced"], decision=decision
    )


def _append(snapshot: Snapshot, row: dict[str, Any]) -> None:
    """Append one row to ``realtime_contacts`` (created on first use) with delta-rs."""
    import pyarrow as pa
    from deltalake import write_deltalake

    table = pa.Table.from_pylist([row], schema=REALTIME_SCHEMA)
    try:
        write_deltalake(table_location(snapshot.base, REALTIME_TABLE), table, mode="append")
    except Exception as exc:  # any storage failure becomes one named error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RealtimeError(f"could not record the contact in table '{REALTIME_TABLE}': {first}") from exc
