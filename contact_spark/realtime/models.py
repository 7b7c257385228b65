"""What a real-time check answers: a decision with its reasons, and the errors it can raise."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from contact_spark.errors import ContactSparkError

# Reason codes (``Reason.code``). ``Reason.rule`` is the name the validator uses for the
# same check (``privacy_consent``, ``eligibility``, a policy rule's name, ...).
UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
UNKNOWN_CAMPAIGN = "UNKNOWN_CAMPAIGN"
UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
DUPLICATE_CUSTOMER_ID = "DUPLICATE_CUSTOMER_ID"
NO_PRIVACY_CONSENT = "NO_PRIVACY_CONSENT"
PRIVACY_CONSENT_UNKNOWN = "PRIVACY_CONSENT_UNKNOWN"
CHURN_RISK = "CHURN_RISK"
CHURN_RISK_UNKNOWN = "CHURN_RISK_UNKNOWN"
OUTBOUND = "OUTBOUND"
OUTBOUND_UNKNOWN = "OUTBOUND_UNKNOWN"
CHANNEL_OPT_OUT = "CHANNEL_OPT_OUT"
CHANNEL_OPT_OUT_UNKNOWN = "CHANNEL_OPT_OUT_UNKNOWN"
NOT_ELIGIBLE = "NOT_ELIGIBLE"
NO_ELIGIBILITY_ROW = "NO_ELIGIBILITY_ROW"
TRIGGER_NOT_ACTIVE = "TRIGGER_NOT_ACTIVE"  # a triggered campaign outside its applied events' months
TRIGGER_SUPPRESSED = "TRIGGER_SUPPRESSED"  # in the scope of an active suppressing event
OUTSIDE_FLIGHT = "OUTSIDE_FLIGHT"  # the month lies outside the campaign's flight (on the channel)
POLICY_PREFIX = "POLICY_"  # + the rule type in upper case, e.g. POLICY_MAX_OFFERS
# Notes: information that never forbids a contact.
PLANNED = "PLANNED"
OUTSIDE_PLAN_HORIZON = "OUTSIDE_PLAN_HORIZON"
CAPACITY = "CAPACITY"
CAPACITY_EXCEEDED = "CAPACITY_EXCEEDED"


class Reason(BaseModel):
    """Why a contact is not allowed (or, in ``Decision.notes``, something worth knowing)."""

    model_config = ConfigDict(frozen=True)

    code: str
    rule: str
    detail: str


class Decision(BaseModel):
    """The answer of one check. ``allowed`` is true exactly when ``reasons`` is empty."""

    check_id: str
    allowed: bool
    customer_id: str
    campaign: str
    channel: str
    date: dt.date
    month: str
    reasons: list[Reason]
    notes: list[Reason]
    contact: str | None  # the contact to use, masked
    run_id: str


class Confirmation(BaseModel):
    """A contact recorded in ``realtime_contacts`` (``recorded`` false: already recorded)."""

    recorded: bool
    check_id: str
    confirmed_at: dt.datetime
    forced: bool
    decision: Decision


class RealtimeError(ContactSparkError):
    """The real-time check cannot run: a table or run is missing, or an input is invalid."""


class SnapshotError(RealtimeError):
    """A table the snapshot needs is missing or unusable."""


class ContactsUnavailableError(SnapshotError):
    """The run's contact tables (``contactability``, ``contacts_clean``) cannot answer a profile.

    Checks do not need them: the snapshot loads without them and only a contact profile fails.
    """


class UnknownCustomerError(RealtimeError):
    """A contact profile of a customer the run's ``contactability`` does not hold."""


class ContactRefusedError(RealtimeError):
    """``confirm`` of a contact the check does not allow (pass ``force`` to record it anyway)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        rules = ", ".join(r.rule for r in decision.reasons)
        super().__init__(
            f"contact {decision.customer_id} {decision.campaign}/{decision.channel} on {decision.date} "
            f"is not allowed ({rules}); nothing recorded"
        )
