"""One writer per run: a lock on a run id, claimed by a Delta commit.

Two processes running the same run id at once would both write its rows (before this
lock, every price iteration was recorded twice). The lock is an append-only Delta table,
``run_locks``, of events ``claim``, ``won``, ``alive`` and ``release`` per run id, so it
holds wherever the tables live (a cluster's object store, Unity Catalog), not only on one
machine's disk:

1. read the run's events at the table's current version ``r``; if a holder is alive, stop
   with one line naming the holder and the table (``--force`` takes over a holder with no
   sign of life for ``stale_after``; a holder on this host whose process is gone is taken
   over at once);
2. append a ``claim`` (tagged with a fresh token) and find its version ``c``;
3. read the events at ``c - 1``: a claim of another process committed after ``r`` came
   first and wins, so this one releases its claim and stops. Delta commits are totally
   ordered, so of simultaneous claimants exactly the earliest wins;
4. append ``won``. While the run goes on, a daemon thread appends ``alive`` every
   ``heartbeat`` seconds, and stops the run at its next stage when the lock was taken over.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import Row
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from contact_spark.errors import RunLockedError
from contact_spark.io.rows import LocalRows
from contact_spark.io.tables import TableStore

log = logging.getLogger(__name__)

LOCKS_TABLE = "run_locks"
# Explicit (not DDL, which needs the JVM): the heartbeat thread builds rows too.
LOCK_SCHEMA = StructType(
    [
        StructField("run_id", StringType()),
        StructField("token", StringType()),
        StructField("event", StringType()),
        StructField("owner", StringType()),
        StructField("at", DoubleType()),  # epoch seconds: no time zone to get wrong
    ]
)
# A claim never confirmed within this time (seconds) belongs to a claimant that died mid-claim.
CLAIM_TTL = 120.0


@dataclass(frozen=True)
class Holder:
    """Who holds a run: its token, process (``host:pid``), since when, last sign of life."""

    token: str
    owner: str
    since: float  # epoch seconds
    alive_at: float

    def describe(self, now: float) -> str:
        since = dt.datetime.fromtimestamp(self.since, dt.timezone.utc)
        return (
            f"{self.owner} (since {since:%Y-%m-%d %H:%M:%S} UTC, last sign of life "
            f"{now - self.alive_at:.0f} s ago)"
        )


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(owner: str) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def holder_of(events: list[Row]) -> Holder | None:
    """The confirmed, unreleased claim among a run's events (at most one by the protocol)."""
    released = {e["token"] for e in events if e["event"] == "release"}
    won = {e["token"]: e for e in events if e["event"] == "won" and e["token"] not in released}
    if not won:
        return None
    token, first = max(won.items(), key=lambda item: item[1]["at"])
    alive = max(e["at"] for e in events if e["token"] == token)
    return Holder(token, first["owner"], first["at"], alive)


def pending_claims(events: list[Row], now: float) -> list[Row]:
    """Claims not yet won nor released, young enough to belong to a live claimant."""
    settled = {e["token"] for e in events if e["event"] in ("won", "release")}
    return [
        e for e in events if e["event"] == "claim" and e["token"] not in settled and now - e["at"] < CLAIM_TTL
    ]


class RunLock:
    """The lock of one run id (see module docstring); use :meth:`hold` around the run."""

    def __init__(
        self,
        store: TableStore,
        run_id: str,
        *,
        stale_after: dt.timedelta = dt.timedelta(minutes=10),
        heartbeat: float = 60.0,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.stale_after = stale_after
        self.heartbeat_seconds = heartbeat
        self.token = uuid.uuid4().hex
        self.owner = _owner()
        self.lost: str | None = None  # why the lock was lost, set by the heartbeat thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ events
    def _events(self, version: int | None) -> list[Row]:
        if version is None or version < 0:
            return []
        # This run's lock events: a handful (without Spark on delta-rs).
        return self.store.read_rows(LOCKS_TABLE, version, {"run_id": self.run_id})

    def _append(self, events: list[tuple[str, str]], tag: str | None = None) -> None:
        now = time.time()
        rows = [(self.run_id, token, event, self.owner, now) for token, event in events]
        self.store.append(LocalRows(rows, LOCK_SCHEMA), LOCKS_TABLE, tag=tag)

    def _where(self) -> str:
        return f"table {LOCKS_TABLE} at {self.store.location(LOCKS_TABLE)}"

    # ------------------------------------------------------------------ protocol
    def acquire(self, force: bool = False) -> None:
        """Claim the run, or stop with :class:`RunLockedError` naming the holder."""
        read = self.store.version(LOCKS_TABLE) if self.store.exists(LOCKS_TABLE) else -1
        seen = self._events(read)
        now = time.time()
        holder = holder_of(seen)
        events = [(self.token, "claim")]
        if holder is not None:
            silent = now - holder.alive_at
            stale_after = self.stale_after.total_seconds()
            if _process_gone(holder.owner):
                log.warning(
                    "run %s: its holder %s has exited without releasing it: taken over",
                    self.run_id,
                    holder.owner,
                )
            elif not force:
                raise RunLockedError(
                    f"run '{self.run_id}' is already running in {holder.describe(now)}; its lock is in "
                    f"{self._where()}. Wait for it to end, or take it over with --force once it has been "
                    f"silent for {stale_after / 60:g} minutes"
                )
            elif silent < stale_after:
                raise RunLockedError(
                    f"run '{self.run_id}' is held by {holder.describe(now)}: --force takes over only after "
                    f"{stale_after / 60:g} minutes of silence (lock in {self._where()})"
                )
            else:
                log.warning("run %s: taken over from %s with --force", self.run_id, holder.owner)
            events.append((holder.token, "release"))
        elif pending_claims(seen, now) and not force:
            raise RunLockedError(
                f"run '{self.run_id}' is being started by another process right now; its lock is in {self._where()}"
            )
        tag = f"lock:{self.token}"
        self._append(events, tag=tag)
        claimed = self.store.tagged_version(LOCKS_TABLE, tag)
        before = {e["token"] for e in seen}
        rivals = [e for e in self._events(claimed - 1) if e["event"] == "claim" and e["token"] not in before]
        if rivals:
            self._append([(self.token, "release")])
            raise RunLockedError(
                f"run '{self.run_id}' was started by {rivals[0]['owner']} at the same moment and is theirs; "
                f"its lock is in {self._where()}"
            )
        self._append([(self.token, "won")])
        log.info("run %s: lock held by %s (%s)", self.run_id, self.owner, self._where())

    def check(self) -> None:
        """Stop the run (RunLockedError) if the lock was taken over."""
        if self.lost is not None:
            raise RunLockedError(self.lost)

    def beat(self) -> None:
        """Append a sign of life, unless the lock is no longer ours."""
        holder = holder_of(self._events(self.store.version(LOCKS_TABLE)))
        if holder is None or holder.token != self.token:
            by = f" by {holder.owner}" if holder is not None else ""
            self.lost = (
                f"run '{self.run_id}' was taken over{by} (--force): this process stops ({self._where()})"
            )
            return
        self._append([(self.token, "alive")])

    def _beating(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.beat()
            except Exception as error:  # a missed beat only ages the lock; the run goes on
                log.warning("run %s: lock heartbeat failed: %s", self.run_id, error)
            if self.lost is not None:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost is None:
            self._append([(self.token, "release")])
            log.info("run %s: lock released", self.run_id)

    @contextmanager
    def hold(self, force: bool = False) -> Iterator[RunLock]:
        """Hold the lock for the ``with`` block, with heartbeats; released at the end."""
        self.acquire(force)
        self._thread = threading.Thread(target=self._beating, name=f"run-lock-{self.run_id}", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self.release()
