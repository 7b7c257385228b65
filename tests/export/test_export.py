"""The plan export (contact_spark/export, jobs/export_plan.py) as a specification, on a tiny
hand-built world: four customers, their raw contacts through the real contacts stage, and a
hand-written plan of two months. Delta tables on disk (delta-rs), the session's Spark.

* one CSV and one Parquet list per channel × month, exact rows, the dialler order;
* the manifest: checksums that recompute, row counts, versions, no contact in it;
* consent re-checked against the inputs as they are now (consent withdrawn, a null
  opt-out, a removed contact: exactly those rows dropped, with their reason);
* a rerun: the same bytes, the same manifest, no duplicate ``export_rejected`` row.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from contact_spark.config import AppConfig, load_config
from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import StorageSettings
from contact_spark.errors import ConfigError, ContactSparkError
from contact_spark.export.files import FILE_COLUMNS
from contact_spark.export.run import EXPORT_REJECTED_TABLE, ExportResult, export_plan, send_window
from contact_spark.io.tables import LocalRows, TableStore

RUN = "export-test"
JAN, FEB = dt.date(2027, 1, 1), dt.date(2027, 2, 1)
D = dt.date
ROOT = Path(__file__).resolve().parents[2]

CUSTOMERS_SCHEMA = (
    "customer_id string, household_id string, segment string, churn_risk boolean, outbound boolean, "
    "privacy_consent boolean, optout_dem boolean, optout_sms boolean, optout_tls boolean"
)
# customer_id, household_id, segment, churn_risk, outbound, consent, optout DEM, SMS, TLS
CUSTOMERS = [
    (c, f"H{c}", "MASS", False, False, True, False, False, False) for c in ("C1", "C2", "C3", "C4", "C5")
]
CONTACTS_SCHEMA = (
    "contact_id string, customer_id string, contact_type string, value string, source string, "
    "created_at date, last_confirmed_at date"
)
CONTACTS = [
    ("E1a", "C1", "email", "Anna.Bianchi@GMAIL.com", "CRM", D(2020, 1, 1), None),
    ("E1b", "C1", "EMAIL", " anna.bianchi@gmail.com", "WEB", D(2021, 1, 1), None),  # the same address
    (None, "C1", "phone", "347 123 4567", "CRM", D(2020, 1, 1), None),  # an id derived from the row
    ("E2", "C2", "email", "bruno.verdi@gmail.com", "CRM", D(2020, 1, 1), None),
    ("P2", "C2", "phone", "+39 335 111 2233", "CRM", D(2020, 1, 1), None),
    ("E3", "C3", "email", "carla.neri@gmail.com", "CRM", D(2020, 1, 1), None),
    ("P3", "C3", "phone", "328-987-6543", "WEB", D(2020, 1, 1), None),
    ("E4", "C4", "email", "dario.rossi@gmail.com", "CRM", D(2020, 1, 1), None),
    ("P4", "C4", "phone", "340 123 4500", "CRM", D(2020, 1, 1), None),
    ("P5", "C5", "phone", "+393331234567", "CRM", D(2020, 1, 1), None),
]
# What the contacts stage made of them for the run (E.164, lower-case address): one e-mail
# and one phone per customer, usable for every channel of its kind.
EMAIL = {
    "C1": "anna.bianchi@gmail.com",
    "C2": "bruno.verdi@gmail.com",
    "C3": "carla.neri@gmail.com",
    "C4": "dario.rossi@gmail.com",
}
PHONE = {
    "C1": "+393471234567",
    "C2": "+393351112233",
    "C3": "+393289876543",
    "C4": "+393401234500",
    "C5": "+393331234567",
}
BEST_SCHEMA = (
    "run_id string, customer_id string, channel string, contact_id string, value string, "
    "contact_kind string, score int"
)
BEST = [
    (RUN, customer, channel, f"{'E' if kind == 'email' else 'P'}{customer[1:]}", value, kind, 800)
    for channel, kind, values in (("DEM", "email", EMAIL), ("SMS", "mobile", PHONE), ("TLS", "phone", PHONE))
    for customer, value in values.items()
]
PLAN_SCHEMA = (
    "run_id string, customer_id string, month date, campaign string, channel string, contact string, "
    "expected_value double"
)
# customer, month, campaign, channel, expected value
PLAN = [
    ("C1", JAN, "CROSS_SELLING", "TLS", 30.0),
    ("C2", JAN, "SOLUTION", "TLS", 30.0),  # the same value as C1's call: C1 first (customer id)
    ("C3", JAN, "CROSS_SELLING", "TLS", 45.5),
    ("C1", JAN, "SOLUTION", "DEM", 2.0),
    ("C4", JAN, "CROSS_SELLING", "DEM", 3.25),
    ("C2", JAN, "CROSS_SELLING", "SMS", 1.5),
    ("C5", JAN, "SOLUTION", "SMS", 0.75),
    ("C1", FEB, "CROSS_SELLING", "DEM", 2.5),
    ("C3", FEB, "SOLUTION", "SMS", 4.0),
]


@dataclass(frozen=True)
class World:
    store: TableStore
    config: AppConfig


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The input tables, the run's best contacts and its plan, on Delta."""
    base = tmp_path_factory.mktemp("export") / "lakehouse"
    config = load_config(
        overrides={
            "storage.base_path": str(base),
            "export.windows": {"TLS": {"first_day": 5, "last_day": 31}},
        }
    )
    store = TableStore(spark, StorageSettings(base_path=str(base), backend="deltalake"))
    store.overwrite(LocalRows.of(CUSTOMERS, CUSTOMERS_SCHEMA), "customers")
    store.overwrite(LocalRows.of(CONTACTS, CONTACTS_SCHEMA), "contacts")
    store.replace_run(LocalRows.of(BEST, BEST_SCHEMA), "best_contacts", RUN)
    plan = [
        (RUN, c, m, campaign, h, (EMAIL if h == "DEM" else PHONE)[c], ev) for c, m, campaign, h, ev in PLAN
    ]
    store.replace_run(LocalRows.of(plan, PLAN_SCHEMA), "plan", RUN)
    return World(store, config)


@contextmanager
def inputs_changed(world: World, customers: list[tuple], contacts: list[tuple]) -> Iterator[None]:
    """New versions of the input tables, as after planning; the originals restored after."""
    world.store.overwrite(LocalRows.of(customers, CUSTOMERS_SCHEMA), "customers")
    world.store.overwrite(LocalRows.of(contacts, CONTACTS_SCHEMA), "contacts")
    try:
        yield
    finally:
        world.store.overwrite(LocalRows.of(CUSTOMERS, CUSTOMERS_SCHEMA), "customers")
        world.store.overwrite(LocalRows.of(CONTACTS, CONTACTS_SCHEMA), "contacts")


def export(spark: SparkSession, world: World, out: Path, month: dt.date | None = None) -> ExportResult:
    return export_plan(spark, world.store, world.config, RUN, out, month)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rejected(world: World) -> list[tuple]:
    rows = world.store.read_run(EXPORT_REJECTED_TABLE, RUN).collect()
    return sorted((r["month"], r["customer_id"], r["campaign"], r["channel"], r["reason_code"]) for r in rows)


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_list_per_channel_and_month_the_dialler_by_expected_value(
    spark: SparkSession, world: World, tmp_path: Path
) -> None:
    result = export(spark, world, tmp_path)

    assert [m.month for m in result.months] == [JAN, FEB]
    jan, feb = (tmp_path / RUN / "2027-01", tmp_path / RUN / "2027-02")
    assert sorted(p.name for p in jan.iterdir()) == [
        "DEM_2027-01.csv",
        "DEM_2027-01.parquet",
        "SMS_2027-01.csv",
        "SMS_2027-01.parquet",
        "TLS_2027-01.csv",
        "TLS_2027-01.parquet",
        "manifest.json",
    ]
    assert sorted(p.name for p in (tmp_path / RUN).iterdir()) == ["2027-01", "2027-02"]  # nothing left aside
    counts = {p.stem: len(read_csv(p)) for folder in (jan, feb) for p in sorted(folder.glob("*.csv"))}
    assert counts == {
        "DEM_2027-01": 2,
        "SMS_2027-01": 2,
        "TLS_2027-01": 3,
        "DEM_2027-02": 1,
        "SMS_2027-02": 1,
        "TLS_2027-02": 0,  # an empty list still has its file: the dialler learns there is nothing
    }
    # The dialler's list: expected value descending, a tie broken by the customer id.
    calls = read_csv(jan / "TLS_2027-01.csv")
    assert [
        (r["priority"], r["customer_id"], r["contact"], r["campaign"], r["expected_value"]) for r in calls
    ] == [
        ("1", "C3", PHONE["C3"], "CROSS_SELLING", "45.5"),
        ("2", "C1", PHONE["C1"], "CROSS_SELLING", "30.0"),
        ("3", "C2", PHONE["C2"], "SOLUTION", "30.0"),
    ]
    # Campaign attributes from the config; the TLS window from export.windows, others all month.
    first = calls[0]
    assert list(first) == [name for name, _ in FILE_COLUMNS]
    assert first["campaign_description"] == world.config.campaigns["CROSS_SELLING"].description
    assert (first["success_value"], first["channel"], first["contact_kind"], first["run_id"]) == (
        "120.0",
        "TLS",
        "phone",
        RUN,
    )
    assert (first["month"], first["send_from"], first["send_to"]) == (
        "2027-01-01",
        "2027-01-05",
        "2027-01-31",
    )
    mails = read_csv(jan / "DEM_2027-01.csv")
    assert [
        (r["customer_id"], r["contact"], r["contact_id"], r["send_from"], r["send_to"]) for r in mails
    ] == [
        ("C4", EMAIL["C4"], "E4", "2027-01-01", "2027-01-31"),
        ("C1", EMAIL["C1"], "E1", "2027-01-01", "2027-01-31"),
    ]
    # The Parquet file holds the same rows in the same order.
    parquet = pq.read_table(jan / "TLS_2027-01.parquet").to_pylist()
    assert [(r["priority"], r["customer_id"], r["contact"], r["send_from"]) for r in parquet] == [
        (1, "C3", PHONE["C3"], D(2027, 1, 5)),
        (2, "C1", PHONE["C1"], D(2027, 1, 5)),
        (3, "C2", PHONE["C2"], D(2027, 1, 5)),
    ]
    assert pq.read_table(feb / "TLS_2027-02.parquet").num_rows == 0

    manifest = json.loads((jan / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == result.months[0].manifest
    assert (manifest["run_id"], manifest["month"], manifest["config_hash"]) == (
        RUN,
        "2027-01",
        config_hash(world.config),
    )
    assert manifest["plan"] == {"table": "plan", "version": world.store.version("plan")}
    assert manifest["inputs"] == {
        t: world.store.version(t) for t in ("best_contacts", "contacts", "customers")
    }
    assert manifest["consent_recheck"] == {
        "planned": 7,
        "exported": 7,
        "rejected": 0,
        "rejected_by_reason": {},
        "rejected_table": "export_rejected",
    }
    assert manifest["channels"]["TLS"]["send_from"] == "2027-01-05"
    assert len(manifest["files"]) == 6
    for entry in manifest["files"]:  # every checksum and row count recomputes
        path = jan / entry["name"]
        assert entry["sha256"] == sha256(path) and entry["bytes"] == path.stat().st_size
        rows = len(read_csv(path)) if entry["format"] == "csv" else pq.read_table(path).num_rows
        assert entry["rows"] == rows
    # Execution files carry the contacts; the manifests never do.
    text = "".join((folder / "manifest.json").read_text(encoding="utf-8") for folder in (jan, feb))
    for contact in [*EMAIL.values(), *PHONE.values(), *(row[3].strip() for row in CONTACTS)]:
        assert contact not in text and contact[-7:] not in text
    assert rejected(world) == []


def test_consent_rechecked_against_the_current_inputs_and_a_rerun_replaces_the_month(
    spark: SparkSession, world: World, tmp_path: Path
) -> None:
    # After planning: C2 withdraws consent; C4's e-mail opt-out becomes unknown (null); C3's
    # mobile is edited in the source (same id, another number); C5 leaves the customers
    # table. C1's contacts stay: one of its two raw rows of the same address is deleted (the
    # other remains), and its phone is confirmed again and written another way (its derived
    # row id changes, the number does not).
    customers = [
        (*row[:5], False, *row[6:])
        if row[0] == "C2"
        else (*row[:6], None, *row[7:])
        if row[0] == "C4"
        else row
        for row in CUSTOMERS
        if row[0] != "C5"
    ]
    contacts = [
        (*row[:3], "328-987-0000", *row[4:])
        if row[0] == "P3"
        else (None, "C1", "phone", "+39 347 1234567", "CRM", D(2020, 1, 1), D(2026, 12, 15))
        if row[0] is None
        else row
        for row in CONTACTS
        if row[0] != "E1a"
    ]
    with inputs_changed(world, customers, contacts):
        first = export(spark, world, tmp_path)
        exported = files_under(tmp_path)
        again = export(spark, world, tmp_path)
        # A rerun: the same bytes, the same manifests, no duplicate rejected row.
        assert files_under(tmp_path) == exported
        assert [m.manifest for m in again.months] == [m.manifest for m in first.months]
        assert sorted(p.name for p in (tmp_path / RUN).iterdir()) == ["2027-01", "2027-02"]

    jan, feb = (tmp_path / RUN / "2027-01", tmp_path / RUN / "2027-02")
    assert [r["customer_id"] for r in read_csv(jan / "TLS_2027-01.csv")] == ["C1"]
    assert [r["priority"] for r in read_csv(jan / "TLS_2027-01.csv")] == ["1"]
    assert [(r["customer_id"], r["contact"]) for r in read_csv(jan / "DEM_2027-01.csv")] == [
        ("C1", EMAIL["C1"])
    ]
    assert read_csv(jan / "SMS_2027-01.csv") == []
    assert read_csv(feb / "SMS_2027-02.csv") == []
    # Exactly the changed customers' rows, each with its reason: C2's two January contacts
    # for its withdrawn consent, and nothing else of C2.
    assert rejected(world) == [
        (JAN, "C2", "CROSS_SELLING", "SMS", "NO_PRIVACY_CONSENT"),
        (JAN, "C2", "SOLUTION", "TLS", "NO_PRIVACY_CONSENT"),
        (JAN, "C3", "CROSS_SELLING", "TLS", "CONTACT_REMOVED"),
        (JAN, "C4", "CROSS_SELLING", "DEM", "CHANNEL_OPT_OUT_UNKNOWN"),
        (JAN, "C5", "SOLUTION", "SMS", "CUSTOMER_NOT_FOUND"),
        (FEB, "C3", "SOLUTION", "SMS", "CONTACT_REMOVED"),
    ]
    manifest = first.months[0].manifest
    assert manifest["consent_recheck"]["rejected_by_reason"] == {
        "CHANNEL_OPT_OUT_UNKNOWN": 1,
        "CONTACT_REMOVED": 1,
        "CUSTOMER_NOT_FOUND": 1,
        "NO_PRIVACY_CONSENT": 2,
    }
    assert (manifest["consent_recheck"]["planned"], manifest["consent_recheck"]["exported"]) == (7, 2)
    assert manifest["channels"]["TLS"] == {
        "planned": 3,
        "exported": 1,
        "rejected": 2,
        "rejected_by_reason": {"CONTACT_REMOVED": 1, "NO_PRIVACY_CONSENT": 1},
        "send_from": "2027-01-05",
        "send_to": "2027-01-31",
    }
    assert manifest["inputs"]["customers"] == world.store.version("customers") - 1  # the changed version

    # The inputs restored: exporting January again replaces January only.
    export(spark, world, tmp_path, JAN)
    assert [r["customer_id"] for r in read_csv(jan / "TLS_2027-01.csv")] == ["C3", "C1", "C2"]
    assert rejected(world) == [(FEB, "C3", "SOLUTION", "SMS", "CONTACT_REMOVED")]
    assert files_under(feb) == {
        p.relative_to(Path(RUN, "2027-02")): b for p, b in exported.items() if p.parts[1] == "2027-02"
    }


def test_a_month_outside_the_horizon_or_a_plan_of_another_config_stops_with_one_line(
    spark: SparkSession, world: World, tmp_path: Path
) -> None:
    with pytest.raises(
        ContactSparkError, match=r"--month 2028-01 is not a month of the plan horizon \(2027-01 to 2027-12\)"
    ):
        export(spark, world, tmp_path, dt.date(2028, 1, 1))
    other = load_config(
        overrides={
            "storage.base_path": world.config.storage.base_path,
            "channels": {"DEM": {"cost": 0.02, "contact_kind": "email"}},
            "policy.rules": [],
            "capacities.rules": [],
            "capacities.spread": [],
        }
    )
    with pytest.raises(
        ContactSparkError,
        match="plan of run 'export-test' has channel 'SMS' that the config does not have",
    ):
        export_plan(spark, world.store, other, RUN, tmp_path)
    assert not (tmp_path / RUN).exists()


def test_send_windows_are_checked_at_config_load() -> None:
    with pytest.raises(ConfigError, match=r"export.windows.FAX: unknown channel \(known: DEM, SMS, TLS\)"):
        load_config(overrides={"export.windows": {"FAX": {}}})
    with pytest.raises(ConfigError, match="first_day 20 is after last_day 10"):
        load_config(overrides={"export.windows": {"SMS": {"first_day": 20, "last_day": 10}}})
    with pytest.raises(ConfigError, match=r"export.windows.SMS.last_dy: unknown key"):
        load_config(overrides={"export.windows": {"SMS": {"last_dy": 10}}})
    # Windows do not change what is planned: the run id stays.
    windowed = load_config(overrides={"export.windows": {"TLS": {"first_day": 5}}})
    assert config_hash(windowed) == config_hash(load_config())


def test_the_job_refuses_a_bad_month_in_one_line_before_spark() -> None:
    done = subprocess.run(
        [sys.executable, "jobs/export_plan.py", "--month", "2027-13"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --month '2027-13' is not a month: use YYYY-MM, e.g. 2027-01"


def test_a_send_window_is_cut_to_the_month_it_is_sent_in() -> None:
    """``export.windows``: TLS from the 5th to the 30th, SMS on the 31st only; February 2027
    has 28 days, so both end on the 28th (a day past the month's end is its last day); DEM,
    with no window, sends all month. January keeps the days as written."""
    config = load_config(
        overrides={"export.windows": {"TLS": {"first_day": 5, "last_day": 30}, "SMS": {"first_day": 31}}}
    )
    feb, jan = dt.date(2027, 2, 1), dt.date(2027, 1, 1)
    assert send_window(config, "TLS", feb) == (dt.date(2027, 2, 5), dt.date(2027, 2, 28))
    assert send_window(config, "SMS", feb) == (dt.date(2027, 2, 28), dt.date(2027, 2, 28))
    assert send_window(config, "DEM", feb) == (feb, dt.date(2027, 2, 28))
    assert send_window(config, "TLS", jan) == (dt.date(2027, 1, 5), dt.date(2027, 1, 30))
    assert send_window(config, "SMS", jan) == (dt.date(2027, 1, 31), dt.date(2027, 1, 31))
