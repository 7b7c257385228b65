"""The state a real-time check reads: Delta tables loaded once, without Spark, indexed per customer.

:meth:`Snapshot.load` reads, with delta-rs (``deltalake``) into Arrow:

* ``customers`` — consent, churn, outbound and the channel opt-outs (the latest table);
* ``eligibility``, ``best_contacts`` and ``plan`` of one run (partition ``run_id``): the
  eligibility names the contact by ``contact_id``, ``best_contacts`` gives its value;
* ``contact_history`` and ``realtime_contacts`` (contacts confirmed through :func:`confirm`);
* ``contactability`` and ``contacts_clean`` of the run, for contact profiles only
  (:mod:`contact_spark.realtime.contacts`): when they are missing, checks still work.

Each table is sorted by ``customer_id`` and kept columnar; a sorted array of the distinct
ids gives a customer's row range by binary search. A customer's state (a few dozen rows)
is built on first use and cached (LRU, the last 1,000 customers), so a check touches one customer's rows only.
Contacts confirmed by this process are kept beside the tables and survive the cache and
:meth:`Snapshot.reload`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from contact_spark.config.models import AppConfig
from contact_spark.io.history import normalise_history_arrow
from contact_spark.io.months import month_number
from contact_spark.realtime.capacity import CapacityIndex
from contact_spark.realtime.contacts import ContactIndex, load_contact_tables
from contact_spark.realtime.delta import CustomerRows, base_location, open_table, read_table
from contact_spark.realtime.models import (
    CHANNEL_OPT_OUT,
    CHANNEL_OPT_OUT_UNKNOWN,
    CHURN_RISK,
    CHURN_RISK_UNKNOWN,
    DUPLICATE_CUSTOMER_ID,
    NO_PRIVACY_CONSENT,
    OUTBOUND,
    OUTBOUND_UNKNOWN,
    PRIVACY_CONSENT_UNKNOWN,
    UNKNOWN_CUSTOMER,
    Reason,
    SnapshotError,
)
from contact_spark.realtime.policy import Cell, EventKey, PolicyIndex
from contact_spark.realtime.triggers import TRIGGER_EVENTS_TABLE, TriggerIndex

REALTIME_TABLE = "realtime_contacts"
# The contract columns of contact_history first: load_inputs unions exactly those.
REALTIME_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("contact_date", pa.date32()),
        ("campaign", pa.string()),
        ("channel", pa.string()),
        ("contact", pa.string()),
        ("outcome", pa.string()),
        ("confirmed_at", pa.timestamp("us", tz="UTC")),
        ("check_id", pa.string()),
        ("plan_run_id", pa.string()),
        ("forced", pa.bool_()),
    ]
)
# Customer states cached (an interaction checks several offers of one customer). Kept small
# on purpose: a full garbage collection walks every cached state (~5 µs of CPU each, so
# 10,000 states would be a 50 ms pause), and building a state takes ~0.2 ms anyway.
DEFAULT_CACHE_SIZE = 1_000


def _month_numbers(when: pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`month_number` of every date or timestamp (UTC) of an Arrow column."""
    return pc.add(pc.multiply(pc.year(when), 12), pc.subtract(pc.month(when), 1)).cast(pa.int32())


def _months(table: pa.Table, date_column: str, extra: Sequence[str] = ()) -> pa.Table:
    """``customer_id, m, campaign, channel`` (+ extra) with ``m`` the absolute month number."""
    keep = pc.and_(
        pc.and_(pc.is_valid(table["customer_id"]), pc.is_valid(table[date_column])),
        pc.and_(pc.is_valid(table["campaign"]), pc.is_valid(table["channel"])),
    )
    table = table.filter(keep)
    columns = {
        "customer_id": table["customer_id"],
        "m": _month_numbers(table[date_column]),
        "campaign": table["campaign"],
        "channel": table["channel"],
    }
    columns.update({c: table[c] for c in extra})
    return pa.table(columns)


def _no_trigger_events() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([], pa.string()),
            "event_type": pa.array([], pa.string()),
            "m": pa.array([], pa.int32()),
        }
    )


@dataclass
class CustomerState:
    """One customer, ready for checks: consent reasons, eligibility, contacts and plan."""

    customer_reasons: list[Reason]
    channel_reasons: dict[str, list[Reason]]
    eligibility: dict[Cell, tuple[bool, tuple[str, ...], str | None]]
    actual: dict[EventKey, int]  # history + confirmed real-time contacts
    planned: frozenset[EventKey]
    events: dict[EventKey, int] = field(default_factory=dict)  # max(planned, actual) per key
    trigger_events: list[tuple[str, int]] = field(default_factory=list)  # applied (type, month)

    def __post_init__(self) -> None:
        keys = set(self.actual) | set(self.planned)
        self.events = {k: max(int(k in self.planned), self.actual.get(k, 0)) for k in keys}


def _flag_reason(
    values: list[Any], bad: bool, code: str, unknown: str, rule: str, what: str
) -> Reason | None:
    """Fail-closed: a null in any copy of the customer is ``unknown``, a ``bad`` value is ``code``."""
    if any(v is None for v in values):
        return Reason(code=unknown, rule=rule, detail=f"{what} is null (null counts against contact)")
    if any(bool(v) == bad for v in values):
        return Reason(code=code, rule=rule, detail=f"{what} is {str(bad).lower()}")
    return None


def consent_reasons(
    rows: list[dict[str, Any]], channels: Sequence[str]
) -> tuple[list[Reason], dict[str, list[Reason]]]:
    """Customer-level and per-channel reasons against contact, from the customers rows."""
    if not rows:
        missing = Reason(
            code=UNKNOWN_CUSTOMER, rule="unknown_customer", detail="customer_id not in the customers table"
        )
        return [missing], {}
    out: list[Reason] = []
    if len(rows) > 1:
        out.append(
            Reason(
                code=DUPLICATE_CUSTOMER_ID,
                rule="duplicate_customer_id",
                detail=f"customer_id appears {len(rows)} times in customers",
            )
        )
    checks = (
        (
            "privacy_consent",
            False,
            NO_PRIVACY_CONSENT,
            PRIVACY_CONSENT_UNKNOWN,
            "privacy_consent",
            "privacy consent",
        ),
        ("churn_risk", True, CHURN_RISK, CHURN_RISK_UNKNOWN, "churn_risk", "churn risk"),
        ("outbound", True, OUTBOUND, OUTBOUND_UNKNOWN, "outbound", "outbound"),
    )
    for column, bad, code, unknown, rule, what in checks:
        reason = _flag_reason([r.get(column) for r in rows], bad, code, unknown, rule, what)
        if reason is not None:
            out.append(reason)
    per_channel: dict[str, list[Reason]] = {}
    for channel in channels:
        column = f"optout_{channel.lower()}"
        reason = _flag_reason(
            [r.get(column) for r in rows],
            True,
            CHANNEL_OPT_OUT,
            CHANNEL_OPT_OUT_UNKNOWN,
            "channel_opt_out",
            column,
        )
        if reason is not None:
            per_channel[channel] = [reason]
    return out, per_channel


class Snapshot:
    """Everything a check needs for one run, loaded from Delta; thread-safe."""

    def __init__(
        self,
        config: AppConfig,
        run_id: str,
        base: str,
        tables: dict[str, pa.Table],
        versions: dict[str, int | None],
        cache_size: int = DEFAULT_CACHE_SIZE,
        contacts_unavailable: str | None = None,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.base = base
        self.versions = versions
        self.loaded_at = dt.datetime.now(dt.timezone.utc)
        self.campaigns = frozenset(config.campaign_names)
        self.channels = tuple(config.channel_names)
        self.first_month = month_number(config.run.first_month)
        self.horizon = config.run.horizon_months
        self.policy = PolicyIndex(config.policy, config.campaign_names, config.channel_names)
        self.capacity = CapacityIndex(config)
        self.triggers = TriggerIndex(config)
        self.kinds = {name: ch.contact_kind for name, ch in config.channels.items()}
        self._customers = CustomerRows(tables["customers"])
        self._eligibility = CustomerRows(tables["eligibility"])
        self._best = CustomerRows(tables["best_contacts"])
        self._history = CustomerRows(tables["history"])
        self._plan = CustomerRows(tables["plan"])
        self._realtime = CustomerRows(tables["realtime"])
        self._trigger_events = CustomerRows(tables["trigger_events"])
        # Contact profiles (realtime/contacts.py); their tables may be missing, checks work anyway.
        self.contacts = ContactIndex(run_id, tables, self._best, self._customers, contacts_unavailable)
        usage: dict[EventKey, int] = {}
        for name in ("plan", "realtime"):
            counted = (
                tables[name].group_by(["m", "campaign", "channel"]).aggregate([("customer_id", "count")])
            )
            for row in counted.to_pylist():
                key = (row["m"], row["campaign"], row["channel"])
                usage[key] = usage.get(key, 0) + row["customer_id_count"]
        self.usage = usage
        self.confirmed_ids: set[str] = {c for c in tables["realtime"]["check_id"].to_pylist() if c}
        self._confirmed: dict[str, list[EventKey]] = {}  # confirmed by this process since loading
        self.journal: list[dict[str, Any]] = []  # the rows this process wrote (replayed on reload)
        self._states: OrderedDict[str, CustomerState] = OrderedDict()
        self._cache_size = cache_size
        self.lock = threading.RLock()  # the in-memory state
        self.write_lock = threading.Lock()  # one confirmation at a time

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        config: AppConfig,
        run_id: str,
        base_path: str | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Snapshot:
        """Read the tables of ``run_id`` under ``base_path`` (default ``storage.base_path``)."""
        base = base_location(config, base_path)
        opt_outs = [f"optout_{c.lower()}" for c in config.channel_names]
        customers_dt = open_table(base, "customers")
        customers = read_table(
            customers_dt,
            "customers",
            ["customer_id"],
            optional=["privacy_consent", "churn_risk", "outbound", *opt_outs],
        )
        eligibility_dt = open_table(base, "eligibility")
        eligibility = read_table(
            eligibility_dt,
            "eligibility",
            ["customer_id", "campaign", "channel", "eligible", "reasons"],
            run_id,
            optional=["contact_id"],
        )
        if eligibility.num_rows == 0:
            raise SnapshotError(
                f"table 'eligibility' has no rows for run '{run_id}': run the eligibility stage of that run first"
            )
        # Eligibility names each cell's contact by its key; the raw value to use is the run's
        # best contact of that key (only best_contacts, contacts_clean and the plan hold raw values).
        best_dt = open_table(base, "best_contacts")
        best = read_table(best_dt, "best_contacts", ["customer_id", "channel", "contact_id", "value"], run_id)
        history_dt = open_table(base, "contact_history")
        history = _months(
            normalise_history_arrow(
                read_table(history_dt, "contact_history", ["customer_id", "contact_date", "campaign", "channel"]),
                config.campaign_names,
                config.channel_names,
            ),
            "contact_date",
        )
        plan_dt = open_table(base, "plan")
        plan = _months(
            read_table(plan_dt, "plan", ["customer_id", "month", "campaign", "channel"], run_id), "month"
        )
        realtime_dt = open_table(base, REALTIME_TABLE, required=False)
        if realtime_dt is not None:
            raw = read_table(
                realtime_dt,
                REALTIME_TABLE,
                ["customer_id", "contact_date", "campaign", "channel", "check_id"],
            )
            realtime = _months(raw, "contact_date", extra=["check_id"])
        else:
            realtime = pa.table(
                {
                    "customer_id": pa.array([], pa.string()),
                    "m": pa.array([], pa.int32()),
                    "campaign": pa.array([], pa.string()),
                    "channel": pa.array([], pa.string()),
                    "check_id": pa.array([], pa.string()),
                }
            )
        # The run's applied trigger events (a trigger run writes them): their effects hold
        # in real time as in the plan.
        trigger_dt = open_table(base, TRIGGER_EVENTS_TABLE, required=False)
        trigger_events = _no_trigger_events()
        if trigger_dt is not None:
            raw = read_table(
                trigger_dt,
                TRIGGER_EVENTS_TABLE,
                ["customer_id", "event_type", "event_time", "status"],
                run_id,
            )
            raw = raw.filter(
                pc.and_(
                    pc.equal(raw["status"], "applied"),
                    pc.and_(pc.is_valid(raw["event_type"]), pc.is_valid(raw["event_time"])),
                )
            )
            trigger_events = pa.table(
                {
                    "customer_id": raw["customer_id"],
                    "event_type": raw["event_type"],
                    "m": _month_numbers(raw["event_time"]),
                }
            )
        versions = {
            "customers": customers_dt.version(),
            "eligibility": eligibility_dt.version(),
            "best_contacts": best_dt.version(),
            "contact_history": history_dt.version(),
            "plan": plan_dt.version(),
            REALTIME_TABLE: realtime_dt.version() if realtime_dt is not None else None,
            TRIGGER_EVENTS_TABLE: trigger_dt.version() if trigger_dt is not None else None,
        }
        tables = {
            "customers": customers,
            "eligibility": eligibility,
            "best_contacts": best,
            "history": history,
            "plan": plan,
            "realtime": realtime,
            "trigger_events": trigger_events,
        }
        contact_tables, contact_versions, contacts_unavailable = load_contact_tables(base, run_id)
        tables.update(contact_tables)
        versions.update(contact_versions)
        return cls(config, run_id, base, tables, versions, cache_size, contacts_unavailable)

    def current_versions(self) -> dict[str, int | None]:
        """The tables' Delta versions now (None: the table does not exist)."""
        out: dict[str, int | None] = {}
        for name in self.versions:
            table = open_table(self.base, name, required=False)
            out[name] = table.version() if table is not None else None
        return out

    def is_stale(self) -> bool:
        """Whether any table changed since loading (a new run's rows, new history, ...)."""
        return self.current_versions() != self.versions

    def reload(self) -> Snapshot:
        """A fresh snapshot of the same run; contacts this process confirmed are kept."""
        fresh = Snapshot.load(self.config, self.run_id, self.base, self._cache_size)
        with self.write_lock, self.lock:  # no confirmation half done
            fresh.replay(self.journal)
        return fresh

    def replay(self, journal: list[dict[str, Any]]) -> None:
        """Take over the contacts another snapshot of this process confirmed."""
        for row in journal:
            self.journal.append(row)
            if row["check_id"] not in self.confirmed_ids:
                # Written after this snapshot read the table: count it by hand.
                self.add_confirmed(row)

    # ---------------------------------------------------------------- customers
    @property
    def customer_count(self) -> int:
        return len(self._customers)

    def in_horizon(self, month: int) -> bool:
        return 0 <= month - self.first_month < self.horizon

    def state(self, customer_id: str) -> CustomerState:
        """The customer's state (built from its rows on first use, then cached)."""
        with self.lock:
            state = self._states.get(customer_id)
            if state is not None:
                self._states.move_to_end(customer_id)
                return state
            state = self._build(customer_id)
            self._states[customer_id] = state
            if len(self._states) > self._cache_size:
                self._states.popitem(last=False)
            return state

    def _build(self, customer_id: str) -> CustomerState:
        customer_reasons, channel_reasons = consent_reasons(self._customers.rows(customer_id), self.channels)
        eligibility: dict[Cell, tuple[bool, tuple[str, ...], str | None]] = {}
        values = {(r["channel"], r["contact_id"]): r["value"] for r in self._best.rows(customer_id)}
        for row in self._eligibility.rows(customer_id):
            cell = (row["campaign"], row["channel"])
            ok, reasons, contact = eligibility.get(cell, (True, (), None))
            # Duplicated candidates: fail-closed, every reason, the first contact given.
            ok = ok and bool(row["eligible"])
            reasons = tuple(dict.fromkeys([*reasons, *(row["reasons"] or [])]))
            eligibility[cell] = (ok, reasons, contact or values.get((row["channel"], row.get("contact_id"))))
        actual: dict[EventKey, int] = {}
        for table in (self._history, self._realtime):
            for row in table.rows(customer_id):
                key = (row["m"], row["campaign"], row["channel"])
                actual[key] = actual.get(key, 0) + 1
        for key in self._confirmed.get(customer_id, ()):
            actual[key] = actual.get(key, 0) + 1
        planned = frozenset((r["m"], r["campaign"], r["channel"]) for r in self._plan.rows(customer_id))
        triggers = [(r["event_type"], r["m"]) for r in self._trigger_events.rows(customer_id)]
        return CustomerState(
            customer_reasons, channel_reasons, eligibility, actual, planned, trigger_events=triggers
        )

    def add_confirmed(self, row: dict[str, Any]) -> None:
        """Count a contact confirmed in real time (already written to ``realtime_contacts``)."""
        key = (month_number(row["contact_date"]), row["campaign"], row["channel"])
        with self.lock:
            self._confirmed.setdefault(row["customer_id"], []).append(key)
            self.confirmed_ids.add(row["check_id"])
            self.usage[key] = self.usage.get(key, 0) + 1
            self._states.pop(row["customer_id"], None)  # rebuilt with the new contact on next use
