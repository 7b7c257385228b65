"""The current snapshot of a long-running service and the confirmations made through it.

This module sits above both :mod:`contact_spark.realtime.snapshot` (the data) and
:mod:`contact_spark.realtime.check` (which reads a snapshot): the holder confirms through
``check.confirm``, so keeping it apart from the snapshot keeps ``check -> snapshot`` a
one-way import.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from contact_spark.realtime.check import confirm
from contact_spark.realtime.models import Confirmation
from contact_spark.realtime.snapshot import Snapshot

log = logging.getLogger(__name__)


class SnapshotHolder:
    """The current snapshot of a long-running service, refreshed when its tables change.

    Confirmations go through the holder so that none is lost while a refresh swaps the
    snapshot: the fresh one is loaded without blocking anything, then the contacts
    confirmed meanwhile are replayed into it and it is swapped in, both under the lock
    every confirmation takes.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._refreshing = threading.Lock()
        self._writing = threading.Lock()

    def confirm(
        self,
        customer_id: str,
        campaign: str,
        channel: str,
        date: dt.date,
        *,
        check_id: str | None = None,
        contact: str | None = None,
        force: bool = False,
    ) -> Confirmation:
        """:func:`contact_spark.realtime.check.confirm` on the current snapshot."""
        with self._writing:
            return confirm(
                self.snapshot,
                customer_id,
                campaign,
                channel,
                date,
                check_id=check_id,
                contact=contact,
                force=force,
            )

    def refresh(self, force: bool = False) -> bool:
        """Reload when a table changed (or ``force``); True when a new snapshot was swapped in."""
        with self._refreshing:
            old = self.snapshot
            if not force and not old.is_stale():
                return False
            fresh = Snapshot.load(old.config, old.run_id, old.base, old._cache_size)
            with self._writing:
                fresh.replay(self.snapshot.journal)
                self.snapshot = fresh
            log.info("snapshot of run %s reloaded: %s", old.run_id, fresh.versions)
            return True

    def start_refresher(self, seconds: float) -> threading.Event:
        """Refresh every ``seconds`` in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(seconds):
                try:
                    self.refresh()
                except Exception as exc:  # keep serving the last good snapshot
                    text = str(exc).strip().splitlines()
                    log.warning("snapshot refresh failed: %s", text[0] if text else type(exc).__name__)

        threading.Thread(target=loop, name="snapshot-refresh", daemon=True).start()
        return stop
