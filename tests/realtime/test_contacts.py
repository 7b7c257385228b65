"""Contact profiles in real time (seed 004, HF Labs "Best contact"): score, rank, ranked contacts, masked.

The run's contact tables are written by hand with delta-rs (no Spark): the profile copies
them, so every pinned number below is a number of these rows. The customers and their
scores are the seed's: Ivanov 725, Petrov 615, Smirnova 615, Stepanov 33, ranked 1, 2, 2, 4
(ties share a rank); Petrov's five phones are the seed's table, in its order — personal
number, wife's number (she owns it), not answering, an agent's landline, a number that does
not exist.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from fastapi.testclient import TestClient

from contact_spark.realtime import (
    ContactProfile,
    ContactsUnavailableError,
    RankedContact,
    Snapshot,
    SnapshotHolder,
    UnknownCustomerError,
    check,
    contact_profile,
)
from contact_spark.realtime.api import create_app

from .world import RUN_ID, customer_row, make_config, write_contact_tables, write_world

ROOT = Path(__file__).resolve().parents[2]
JAN = dt.date(2027, 1, 12)


def clean(
    cid: str,
    key: str,
    value: str,
    score: int,
    rank: int,
    *,
    kind: str | None = None,
    owner: bool = True,
    valid: bool = True,
    ranks: dict[str, int] | None = None,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A ``contacts_clean`` row; ``kind`` is the phone type or the e-mail domain class."""
    is_email = "@" in value
    return {
        "customer_id": cid,
        "contact_id": key,
        "contact_type": "email" if is_email else "phone",
        "value": value,
        "phone_type": None if is_email else kind,
        "email_domain_class": kind if is_email else None,
        "valid": valid,
        "score": score,
        "owner": owner,
        "rank": rank,
        **{f"rank_{k}": (ranks or {}).get(k) for k in ("email", "mobile", "phone")},
        "reason_codes": list(reasons),
    }


COLUMNS = ("customer_id", "household_id", "score", "rank", "household_best", "usable_contacts")
# Ivanov and Stepanov share household H1: Ivanov, more contactable, is its best member.
CONTACTABILITY = [
    dict(zip(COLUMNS, row, strict=True))
    for row in (
        ("C1", "H1", 725, 1, True, 2),
        ("C2", "H2", 615, 2, True, 4),
        ("C3", "H3", 615, 2, True, 1),
        ("C4", "H1", 33, 4, False, 1),
    )
]
PHONE_RANKS = {"mobile": 1, "phone": 1}
CLEAN = [
    clean("C1", "K11", "+79161112233", 900, 1, kind="mobile", ranks=PHONE_RANKS),
    clean("C1", "K12", "egor.ivanov@yandex.ru", 800, 1, kind="public", ranks={"email": 1}),
    # Petrov: written in reverse so that the answer's order is the profile's doing.
    clean(
        "C2", "K27", "info@petrov-consulting.ru", 210, 2, kind="corporate", reasons=("EMAIL_ROLE_ACCOUNT",)
    ),
    clean("C2", "K26", "vasily.petrov@gmail.com", 700, 1, kind="public", ranks={"email": 1}),
    clean("C2", "K25", "+79111900719", 60, 5, kind="unknown", valid=False, reasons=("PHONE_NOT_VALID",)),
    clean("C2", "K24", "+74953118813", 350, 4, kind="fixed_line", ranks={"phone": 3}),
    clean("C2", "K23", "+79031150312", 400, 3, kind="mobile", ranks={"mobile": 2, "phone": 2}),
    clean(
        "C2",
        "K22",
        "+79211871312",
        450,
        2,
        kind="mobile",
        owner=False,
        reasons=("SHARED_CONTACT", "NOT_OWNER"),
    ),
    clean("C2", "K21", "+79167784433", 880, 1, kind="mobile", ranks=PHONE_RANKS),
    clean("C3", "K31", "+79211871312", 900, 1, kind="mobile", ranks=PHONE_RANKS, reasons=("SHARED_CONTACT",)),
    clean("C4", "K41", "anton@stepanov.example", 120, 1, kind="corporate", ranks={"email": 1}),
]
BEST = [
    *[("C1", ch, "K11") for ch in ("SMS", "TLS")],
    ("C1", "DEM", "K12"),
    *[("C2", ch, "K21") for ch in ("SMS", "TLS")],
    ("C2", "DEM", "K26"),
    *[("C3", ch, "K31") for ch in ("SMS", "TLS")],
    ("C4", "DEM", "K41"),
]


def write_run(base: Path) -> None:
    """Customers C1..C5 (C5 came after the run's contacts stage), the run's tables."""
    customers = [customer_row(f"C{i}") for i in range(1, 6)]
    write_world(base, customers, [], [])
    write_contact_tables(base, CONTACTABILITY, CLEAN, BEST)


@pytest.fixture
def snapshot(tmp_path: Path) -> Snapshot:
    base = tmp_path / "lakehouse"
    write_run(base)
    return Snapshot.load(make_config(base), RUN_ID)


def test_the_seeds_customer_gets_score_rank_and_ranked_masked_contacts(snapshot: Snapshot) -> None:
    """Petrov: 615, rank 2 of 4 (tied with Smirnova); phones and e-mails each by rank.

    The wife's number is his second phone but, not his (``owner`` false), has no kind rank:
    no channel may use it; the agent's landline is usable for calls (``phone``) only; the
    number that does not exist is last. The personal mobile is the SMS and call-centre
    contact, the gmail address the e-mail one.
    """

    def ranked(key: str, masked: str, score: int, rank: int, **fields: Any) -> RankedContact:
        row = next(r for r in CLEAN if r["contact_id"] == key)
        defaults: dict[str, Any] = {
            "contact_type": row["contact_type"],
            "owner": True,
            "valid": True,
            "phone_type": row["phone_type"],
            "email_domain_class": row["email_domain_class"],
            "reason_codes": [],
            "best_for": [],
            "kind_ranks": {},
        }
        return RankedContact(
            contact_id=key, masked_value=masked, score=score, rank=rank, **{**defaults, **fields}
        )

    assert contact_profile(snapshot, "C2") == ContactProfile(
        run_id=RUN_ID,
        customer_id="C2",
        household_id="H2",
        contactability_score=615,
        rank=2,
        ranked_customers=4,
        household_best=True,
        usable_contacts=4,
        contacts={
            "email": [
                ranked("K26", "v***@gmail.com", 700, 1, kind_ranks={"email": 1}, best_for=["DEM"]),
                ranked("K27", "i***@petrov-consulting.ru", 210, 2, reason_codes=["EMAIL_ROLE_ACCOUNT"]),
            ],
            "phone": [
                ranked("K21", "+7********33", 880, 1, kind_ranks=PHONE_RANKS, best_for=["SMS", "TLS"]),
                ranked(
                    "K22", "+7********12", 450, 2, owner=False, reason_codes=["SHARED_CONTACT", "NOT_OWNER"]
                ),
                ranked("K23", "+7********12", 400, 3, kind_ranks={"mobile": 2, "phone": 2}),
                ranked("K24", "+7********13", 350, 4, kind_ranks={"phone": 3}),
                ranked("K25", "+7********19", 60, 5, valid=False, reason_codes=["PHONE_NOT_VALID"]),
            ],
        },
    )
    profiles = [contact_profile(snapshot, cid) for cid in ("C1", "C2", "C3", "C4")]
    ranks = [(p.customer_id, p.contactability_score, p.rank, p.household_best) for p in profiles]
    assert ranks == [("C1", 725, 1, True), ("C2", 615, 2, True), ("C3", 615, 2, True), ("C4", 33, 4, False)]


def raw_fragments(value: str) -> list[str]:
    """What must never appear: the value, an e-mail's local part, a phone's digits after its country code."""
    if "@" in value:
        return [value, value.split("@")[0]]
    digits = re.sub(r"\D", "", value)
    return [value, digits, digits[1:], digits[-7:]]


def test_a_profile_carries_no_raw_phone_or_email(snapshot: Snapshot) -> None:
    """Every customer's answer, as the HTTP and CLI serve it (JSON), holds masks only.

    The last 7 digits are checked too: a mask keeps at most the country code and 2 digits.
    """
    for cid in ("C1", "C2", "C3", "C4"):
        answer = contact_profile(snapshot, cid).model_dump_json()
        for row in CLEAN:
            for fragment in raw_fragments(row["value"]):
                assert fragment not in answer, (cid, fragment)
    masked = [c.masked_value for cs in contact_profile(snapshot, "C1").contacts.values() for c in cs]
    assert masked == ["e***@yandex.ru", "+7********33"]


def test_an_unknown_customer_is_a_clear_one_line_error(snapshot: Snapshot) -> None:
    with pytest.raises(UnknownCustomerError) as unknown:
        contact_profile(snapshot, "C9")
    assert str(unknown.value) == f"customer 'C9' is not in the contactability of run '{RUN_ID}'"
    with pytest.raises(UnknownCustomerError) as late:
        contact_profile(snapshot, "C5")
    assert str(late.value) == f"customer 'C5' is in customers but not in the contactability of run '{RUN_ID}'"


def test_without_the_contact_tables_checks_work_and_a_profile_names_the_table(tmp_path: Path) -> None:
    """The check does not read contactability or contacts_clean: their absence only stops profiles.

    A refresh picks the tables up once the contacts stage has written them.
    """
    base = tmp_path / "lakehouse"
    write_world(base, [customer_row("C2")], [], [])
    snap = Snapshot.load(make_config(base), RUN_ID)
    assert check(snap, "C2", "CROSS_SELLING", "DEM", JAN).allowed
    assert snap.versions["contactability"] is None and snap.versions["contacts_clean"] is None
    hint = f"run the contacts stage (jobs/clean_contacts.py) of run '{RUN_ID}' for contact profiles"
    with pytest.raises(ContactsUnavailableError) as missing:
        contact_profile(snap, "C2")
    assert str(missing.value) == f"table 'contactability' not found at {base / 'contactability'}: {hint}"

    write_contact_tables(base, CONTACTABILITY, CLEAN, BEST, run_id="other-run")
    snap = snap.reload()
    with pytest.raises(ContactsUnavailableError) as other_run:
        contact_profile(snap, "C2")
    assert str(other_run.value) == f"table 'contactability' has no rows for run '{RUN_ID}': {hint}"

    write_run(base)
    assert snap.is_stale()
    snap = snap.reload()
    assert contact_profile(snap, "C2").rank == 2
    assert check(snap, "C2", "CROSS_SELLING", "DEM", JAN).allowed

    broken = pa.table({"run_id": [RUN_ID], "customer_id": ["C2"], "contact_id": ["K21"]})
    write_deltalake(str(base / "contacts_clean"), broken, mode="overwrite", schema_mode="overwrite")
    snap = snap.reload()
    with pytest.raises(ContactsUnavailableError) as no_column:
        contact_profile(snap, "C2")
    assert str(no_column.value) == f"table 'contacts_clean' is missing column 'contact_type': {hint}"


def test_http_answers_the_profile_404_for_an_unknown_customer_400_without_tables(tmp_path: Path) -> None:
    base = tmp_path / "lakehouse"
    write_run(base)
    client = TestClient(create_app(SnapshotHolder(Snapshot.load(make_config(base), RUN_ID))))
    ok = client.get("/customers/C2/contacts")
    assert ok.status_code == 200
    body = ok.json()
    assert (body["contactability_score"], body["rank"], body["ranked_customers"]) == (615, 2, 4)
    assert [(c["contact_id"], c["masked_value"], c["best_for"]) for c in body["contacts"]["phone"]] == [
        ("K21", "+7********33", ["SMS", "TLS"]),
        ("K22", "+7********12", []),
        ("K23", "+7********12", []),
        ("K24", "+7********13", []),
        ("K25", "+7********19", []),
    ]
    for row in CLEAN:
        for fragment in raw_fragments(row["value"]):
            assert fragment not in ok.text

    unknown = client.get("/customers/C9/contacts")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": f"customer 'C9' is not in the contactability of run '{RUN_ID}'"}
    too_long = client.get(f"/customers/{'C' * 300}/contacts")
    assert too_long.status_code == 422 and set(too_long.json()) == {"error"}

    bare = tmp_path / "bare"
    write_world(bare, [customer_row("C2")], [], [])
    client = TestClient(create_app(SnapshotHolder(Snapshot.load(make_config(bare), RUN_ID))))
    missing = client.get("/customers/C2/contacts")
    assert missing.status_code == 400
    assert missing.json()["error"].startswith(
        f"table 'contactability' not found at {bare / 'contactability'}"
    )
    checked = client.post("/check", json={"customer_id": "C2", "campaign": "CROSS_SELLING", "channel": "DEM"})
    assert checked.status_code == 200


def test_cli_prints_the_profile_as_json_and_exits_2_for_an_unknown_customer(tmp_path: Path) -> None:
    base = tmp_path / "lakehouse"
    write_run(base)
    common = ["--base-path", str(base), "--run-id", RUN_ID]

    def contacts(customer_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "jobs/realtime.py", "contacts", *common, "--customer-id", customer_id],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    found = contacts("C4")
    assert found.returncode == 0, found.stderr
    profile = ContactProfile.model_validate_json(found.stdout)
    assert (profile.contactability_score, profile.rank, profile.ranked_customers) == (33, 4, 4)
    assert [c.masked_value for c in profile.contacts["email"]] == ["a***@stepanov.example"]
    assert "anton@" not in found.stdout + found.stderr
    unknown = contacts("C9")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == [
        f"error: customer 'C9' is not in the contactability of run '{RUN_ID}'"
    ]


def test_profiles_of_the_demo_run_agree_with_the_tables_its_contacts_stage_wrote(demo_run: Any) -> None:
    """The tables above are written by hand; here the real contacts stage wrote them (the
    shared 200-customer demo run, native Delta): every ranked customer's profile has the
    score, rank and contact count of its ``contactability`` row, its contacts in rank order
    with every ``contacts_clean`` key of the customer, and each channel's best contact."""
    store, run_id = demo_run.store, demo_run.run_id
    snapshot = Snapshot.load(demo_run.config, run_id)
    ability = {r["customer_id"]: r for r in store.read_run("contactability", run_id).collect()}
    keys: dict[str, set[str]] = {}
    for r in store.read_run("contacts_clean", run_id).select("customer_id", "contact_id").collect():
        keys.setdefault(r["customer_id"], set()).add(r["contact_id"])
    best = {(r["customer_id"], r["channel"]): r["contact_id"] for r in store.read_run("best_contacts", run_id).collect()}
    assert len(ability) > 100
    for cid, row in ability.items():
        profile = contact_profile(snapshot, cid)
        assert (profile.contactability_score, profile.rank, profile.usable_contacts) == (
            row["score"],
            row["rank"],
            row["usable_contacts"],
        )
        assert profile.ranked_customers == len(ability)
        listed = [c for contacts in profile.contacts.values() for c in contacts]
        assert {c.contact_id for c in listed} == keys.get(cid, set())
        for contacts in profile.contacts.values():
            assert [c.rank for c in contacts] == sorted(c.rank for c in contacts)
        assert {(cid, ch): c.contact_id for c in listed for ch in c.best_for} == {
            k: v for k, v in best.items() if k[0] == cid
        }
