"""Real-time contact check (allowed / not allowed with reasons) and contact profiles, from a Delta snapshot.

See docs/realtime.md.
"""

from contact_spark.realtime.check import check, confirm
from contact_spark.realtime.contacts import ContactProfile, RankedContact, contact_profile
from contact_spark.realtime.holder import SnapshotHolder
from contact_spark.realtime.models import (
    Confirmation,
    ContactRefusedError,
    ContactsUnavailableError,
    Decision,
    RealtimeError,
    Reason,
    SnapshotError,
    UnknownCustomerError,
)
from contact_spark.realtime.snapshot import REALTIME_SCHEMA, REALTIME_TABLE, Snapshot

__all__ = [
    "REALTIME_SCHEMA",
    "REALTIME_TABLE",
    "Confirmation",
    "ContactProfile",
    "ContactRefusedError",
    "ContactsUnavailableError",
    "Decision",
    "RankedContact",
    "RealtimeError",
    "Reason",
    "Snapshot",
    "SnapshotError",
    "SnapshotHolder",
    "UnknownCustomerError",
    "check",
    "confirm",
    "contact_profile",
]
