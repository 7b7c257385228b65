"""A customer's contactability and ranked contacts, masked: HF Labs' "Best contact" answered in real time.

The contacts stage writes, per run, each customer's contactability (score 0–1000, rank in
the base, household_best) and every clean contact with its score and ranks
(docs/best_contact.md). :func:`contact_profile` answers them for one customer from the
snapshot, without Spark: :func:`load_contact_tables` reads the run's ``contactability``
and ``contacts_clean`` rows with delta-rs when the snapshot loads, and the run's
``best_contacts``, which the snapshot already holds for the check, says which channel
uses which contact.

**Missing tables.** A check does not need these two tables, so their absence does not
stop the snapshot: checks keep working and only a profile fails, with
:class:`ContactsUnavailableError` naming the table and the run (HTTP 400, CLI exit 2).

**Privacy.** The raw value is read (the mask is made from it, per customer, when a
profile is built: masking the whole table at load would cost seconds) but a profile
carries the masked value only (``contact_spark.io.masking``), and this module logs nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa
from pydantic import BaseModel

from contact_spark.contacts.masking import mask_contact
from contact_spark.realtime.delta import CustomerRows, open_table, read_table, table_location
from contact_spark.realtime.models import ContactsUnavailableError, SnapshotError, UnknownCustomerError

CONTACTABILITY_TABLE = "contactability"
CONTACTS_CLEAN_TABLE = "contacts_clean"
# contacts_clean has one rank column per contact kind a channel can use: rank_<kind>.
CONTACT_KINDS = ("email", "mobile", "phone")
CONTACTABILITY_COLUMNS = ("customer_id", "household_id", "score", "rank", "household_best", "usable_contacts")
CLEAN_COLUMNS = (
    "customer_id",
    "contact_id",
    "contact_type",
    "value",
    "score",
    "rank",
    "owner",
    "reason_codes",
)
CLEAN_OPTIONAL = ("valid", "phone_type", "email_domain_class", *(f"rank_{k}" for k in CONTACT_KINDS))


class RankedContact(BaseModel):
    """One of the customer's clean contacts; its value masked, never raw."""

    contact_id: str  # the contact's key in every run table (a pseudonym, not the value)
    contact_type: str  # phone | email
    masked_value: str
    score: int  # 0-1000, after the non-owner demotion
    rank: int  # among the customer's contacts of this type, usable or not (1 = best)
    kind_ranks: dict[str, int]  # rank among the contacts usable for a contact kind; absent: not usable
    owner: bool
    valid: bool | None
    phone_type: str | None
    email_domain_class: str | None
    reason_codes: list[str]
    best_for: list[str]  # the channels whose best contact it is, sorted


class ContactProfile(BaseModel):
    """How contactable a customer is, and through which contacts (docs/realtime.md)."""

    run_id: str
    customer_id: str
    household_id: str | None
    contactability_score: int  # 0-1000
    rank: int  # 1 + the customers of the run with a higher score (ties share a rank)
    ranked_customers: int  # the customers the run ranked: "rank 12 of 20,000"
    household_best: bool
    usable_contacts: int
    contacts: dict[str, list[RankedContact]]  # contact type -> its contacts by rank


def load_contact_tables(
    base: str, run_id: str
) -> tuple[dict[str, pa.Table], dict[str, int | None], str | None]:
    """The run's contactability and contacts_clean rows, their Delta versions, and why they cannot serve.

    The third value is None when both tables are usable, else a one-line reason naming the
    table and the run; the snapshot loads either way.
    """
    opened = {
        name: open_table(base, name, required=False) for name in (CONTACTABILITY_TABLE, CONTACTS_CLEAN_TABLE)
    }
    versions = {name: (table.version() if table is not None else None) for name, table in opened.items()}
    hint = f"run the contacts stage (jobs/clean_contacts.py) of run '{run_id}' for contact profiles"
    for name, table in opened.items():
        if table is None:
            return {}, versions, f"table '{name}' not found at {table_location(base, name)}: {hint}"
    try:
        tables = {
            CONTACTABILITY_TABLE: read_table(
                opened[CONTACTABILITY_TABLE], CONTACTABILITY_TABLE, CONTACTABILITY_COLUMNS, run_id
            ),
            CONTACTS_CLEAN_TABLE: read_table(
                opened[CONTACTS_CLEAN_TABLE],
                CONTACTS_CLEAN_TABLE,
                CLEAN_COLUMNS,
                run_id,
                optional=CLEAN_OPTIONAL,
            ),
        }
    except SnapshotError as exc:
        return {}, versions, f"{exc}: {hint}"
    # contacts_clean may hold no row of a run whose customers have no contact at all;
    # contactability has a row for every customer the stage saw.
    if tables[CONTACTABILITY_TABLE].num_rows == 0:
        return {}, versions, f"table '{CONTACTABILITY_TABLE}' has no rows for run '{run_id}': {hint}"
    return tables, versions, None


def _ranked_contact(row: dict[str, Any], best_for: list[str]) -> RankedContact:
    kind_ranks = {k: row[f"rank_{k}"] for k in CONTACT_KINDS if row.get(f"rank_{k}") is not None}
    return RankedContact(
        contact_id=row["contact_id"],
        contact_type=row["contact_type"],
        masked_value=mask_contact(row["value"], row["contact_type"]) or "",
        score=row["score"],
        rank=row["rank"],
        kind_ranks=kind_ranks,
        owner=bool(row["owner"]),
        valid=row.get("valid"),
        phone_type=row.get("phone_type"),
        email_domain_class=row.get("email_domain_class"),
        reason_codes=list(row["reason_codes"] or []),
        best_for=sorted(best_for),
    )


class ContactIndex:
    """The run's contactability and clean contacts per customer; read-only, so thread-safe."""

    def __init__(
        self,
        run_id: str,
        tables: dict[str, pa.Table],
        best: CustomerRows,
        customers: CustomerRows,
        unavailable: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.unavailable = unavailable
        self._best = best
        self._customers = customers
        empty = pa.table({"customer_id": pa.array([], pa.string())})
        self._contactability = CustomerRows(tables.get(CONTACTABILITY_TABLE, empty))
        self._clean = CustomerRows(tables.get(CONTACTS_CLEAN_TABLE, empty))

    @property
    def ranked_customers(self) -> int:
        return len(self._contactability)

    def profile(self, customer_id: str) -> ContactProfile:
        """The customer's profile; :class:`UnknownCustomerError` when the run did not rank them."""
        if self.unavailable is not None:
            raise ContactsUnavailableError(self.unavailable)
        rows = self._contactability.rows(customer_id)
        if not rows:
            where = "is in customers but" if self._customers.rows(customer_id) else "is"
            raise UnknownCustomerError(
                f"customer {customer_id!r} {where} not in the contactability of run '{self.run_id}'"
            )
        # One row per customer (the stage groups by customer_id); the first, should there be more.
        customer = rows[0]
        best_for: dict[str, list[str]] = {}
        for row in self._best.rows(customer_id):
            best_for.setdefault(row["contact_id"], []).append(row["channel"])
        contacts: dict[str, list[RankedContact]] = {}
        # By type, then rank; the contact key breaks a tie, as in the stage.
        for row in sorted(
            self._clean.rows(customer_id), key=lambda r: (r["contact_type"], r["rank"], r["contact_id"])
        ):
            contact = _ranked_contact(row, best_for.get(row["contact_id"], []))
            contacts.setdefault(contact.contact_type, []).append(contact)
        return ContactProfile(
            run_id=self.run_id,
            customer_id=customer_id,
            household_id=customer["household_id"],
            contactability_score=customer["score"],
            rank=customer["rank"],
            ranked_customers=self.ranked_customers,
            household_best=bool(customer["household_best"]),
            usable_contacts=customer["usable_contacts"],
            contacts=contacts,
        )


class HasContacts(Protocol):
    """What :func:`contact_profile` reads: a :class:`~contact_spark.realtime.snapshot.Snapshot`."""

    @property
    def contacts(self) -> ContactIndex: ...


def contact_profile(snapshot: HasContacts, customer_id: str) -> ContactProfile:
    """The customer's contactability score and rank and ranked contacts (masked), from the snapshot's run.

    Raises :class:`UnknownCustomerError` for a customer the run did not rank and
    :class:`ContactsUnavailableError` when the run's contact tables are missing.
    """
    return snapshot.contacts.profile(customer_id)
