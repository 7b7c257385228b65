"""Real-time contact check: allowed / not allowed with reasons, from a Delta snapshot (docs/realtime.md)."""

from contact_spark.realtime.check import check, confirm
from contact_spark.realtime.holder import SnapshotHolder
from contact_spark.realtime.models import (
    Confirmation,
    ContactRefusedError,
    Decision,
    RealtimeError,
    Reason,
    SnapshotError,
)
from contact_spark.realtime.snapshot import REALTIME_SCHEMA, REALTIME_TABLE, Snapshot

__all__ = [
    "REALTIME_SCHEMA",
    "REALTIME_TABLE",
    "Confirmation",
    "ContactRefusedError",
    "Decision",
    "RealtimeError",
    "Reason",
    "Snapshot",
    "SnapshotError",
    "SnapshotHolder",
    "check",
    "confirm",
]
