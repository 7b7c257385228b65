"""Importing the shipped example of a CRM's export (conf/examples/crm_export/) into the input tables.

Three semicolon-separated CSV files and a Parquet file, each with a few deliberately bad rows:
every row read is written or quarantined with its row number and a reason code, the counts
reconcile, the tables pass the input contract and ``load_inputs`` reads them; importing again
gives the same tables and the same quarantine, never duplicates.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from spark_conf import LEAN, temporary_conf

from contact_spark.config import load_config
from contact_spark.config.imports import load_import_mapping
from contact_spark.config.models import StorageSettings
from contact_spark.contacts.clean import check_contacts, normalize_contacts
from contact_spark.contract import CONTACT_HISTORY, CONTACTS, PROPENSITIES, customers_spec, validate_input
from contact_spark.inputs import load_inputs
from contact_spark.io.import_rows import QUARANTINE_SCHEMA
from contact_spark.io.importer import QUARANTINE_TABLE, SUMMARY_TABLE, ImportResult, import_inputs
from contact_spark.io.tables import TableStore

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "conf" / "examples" / "import_crm_export.yaml"
EXPORT = MAPPING.parent / "crm_export"
CHANNELS = ["DEM", "SMS", "TLS"]
RUN_ID = "crm-export"

# table → (read, written, {reason: rows})
COUNTS = {
    "customers": (
        32,
        25,
        {
            "MALFORMED_ROW": 1,
            "MISSING_REQUIRED": 1,
            "BAD_DATE": 1,
            "BAD_BOOLEAN": 1,
            "DUPLICATE_ROW": 1,
            "DUPLICATE_KEY": 2,
        },
    ),
    "contacts": (46, 44, {"MISSING_REQUIRED": 1, "BAD_TIMESTAMP": 1}),
    "contact_history": (22, 20, {"BAD_DATE": 1, "MISSING_REQUIRED": 1}),
    "propensities": (
        153,
        148,
        {"OUT_OF_RANGE": 1, "DUPLICATE_KEY": 2, "DUPLICATE_ROW": 1, "MISSING_REQUIRED": 1},
    ),
}
# (table, file, data row number (header not counted), reason, detail), in that order.
QUARANTINE = [
    (
        "contact_history",
        "contact_history.csv",
        5,
        "BAD_DATE",
        "contact_date (CONTACT_DT) '****/**/15' is not a date in pattern dd/MM/yyyy",
    ),
    ("contact_history", "contact_history.csv", 14, "MISSING_REQUIRED", "campaign (CAMPAIGN_CODE) is empty"),
    ("contacts", "contacts.csv", 10, "MISSING_REQUIRED", "customer_id (CUST_ID) is empty"),
    (
        "contacts",
        "contacts.csv",
        21,
        "BAD_TIMESTAMP",
        "created_at (CREATED_ON) '****-**-** ***00' is not a timestamp in pattern dd/MM/yyyy HH:mm",
    ),
    ("customers", "customers.csv", 6, "MISSING_REQUIRED", "customer_id (CUST_ID) is empty"),
    (
        "customers",
        "customers.csv",
        11,
        "BAD_DATE",
        "birth_date (BIRTH_DT(dd/mm/yyyy)) '**/**/**80' is not a date in pattern dd/MM/yyyy",
    ),
    (
        "customers",
        "customers.csv",
        15,
        "BAD_BOOLEAN",
        "privacy_consent (PRIVACY_MKT(Y/N)) 'maybe' is not a boolean (true: Y; false: N)",
    ),
    ("customers", "customers.csv", 19, "DUPLICATE_ROW", "same values as row 5"),
    (
        "customers",
        "customers.csv",
        22,
        "DUPLICATE_KEY",
        "customer_id shared by 2 rows with different values: none is imported",
    ),
    (
        "customers",
        "customers.csv",
        23,
        "DUPLICATE_KEY",
        "customer_id shared by 2 rows with different values: none is imported",
    ),
    ("customers", "customers.csv", 27, "MALFORMED_ROW", "the line's fields do not match the header"),
    (
        "propensities",
        "propensities.parquet",
        6,
        "DUPLICATE_KEY",
        "customer_id, campaign, channel shared by 2 rows with different values: none is imported",
    ),
    ("propensities", "propensities.parquet", 17, "OUT_OF_RANGE", "propensity 1.2 is outside [0, 1]"),
    (
        "propensities",
        "propensities.parquet",
        151,
        "DUPLICATE_KEY",
        "customer_id, campaign, channel shared by 2 rows with different values: none is imported",
    ),
    ("propensities", "propensities.parquet", 152, "DUPLICATE_ROW", "same values as row 7"),
    ("propensities", "propensities.parquet", 153, "MISSING_REQUIRED", "customer_id (CUST_ID) is empty"),
]


def _import(spark: SparkSession, store: TableStore) -> ImportResult:
    with temporary_conf(spark, LEAN):
        return import_inputs(
            spark, store, load_import_mapping(MAPPING), CHANNELS, mapping_path=str(MAPPING), run_id=RUN_ID
        )


def _rows(df: DataFrame) -> list[Row]:
    return sorted(df.collect(), key=lambda r: tuple("" if v is None else str(v) for v in r))


@pytest.fixture(scope="module")
def imported(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TableStore, ImportResult]:
    lakehouse = tmp_path_factory.mktemp("import") / "lakehouse"
    store = TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="deltalake"))
    return store, _import(spark, store)


def test_every_row_read_is_written_or_quarantined_and_the_counts_reconcile(
    imported: tuple[TableStore, ImportResult],
) -> None:
    store, result = imported
    assert {t.table: (t.read, t.written, dict(t.reasons)) for t in result.tables} == COUNTS
    summary = {r["table_name"]: r for r in store.read_run(SUMMARY_TABLE, RUN_ID).collect()}
    for table, (read, written, reasons) in COUNTS.items():
        row = summary[table]
        assert (row["rows_read"], row["rows_written"], row["rows_quarantined"]) == (
            read,
            written,
            sum(reasons.values()),
        )
        assert row["rows_read"] == row["rows_written"] + row["rows_quarantined"]
        assert store.read(table).count() == written
    assert summary["customers"]["source"] == "csv customers.csv"
    assert summary["propensities"]["source"] == "parquet propensities.parquet"
    assert [" ".join(line.split()) for line in result.summary().splitlines()[:3]] == [
        "import crm-export (read = written + quarantined):",
        "customers 32 read 25 written 7 quarantined from csv customers.csv",
        "BAD_BOOLEAN 1, BAD_DATE 1, DUPLICATE_KEY 2, DUPLICATE_ROW 1, MALFORMED_ROW 1, MISSING_REQUIRED 1",
    ]


def test_each_bad_row_is_quarantined_with_its_row_number_and_reason(
    imported: tuple[TableStore, ImportResult],
) -> None:
    store, _ = imported
    rows = store.read_run(QUARANTINE_TABLE, RUN_ID).orderBy("table_name", "source_row").collect()
    assert [
        (r["table_name"], r["source_file"], r["source_row"], r["reason_code"], r["detail"]) for r in rows
    ] == QUARANTINE
    assert {r["source"] for r in rows if r["table_name"] == "contacts"} == {"csv contacts.csv"}
    columns = [(f.name, f.dataType) for f in store.schema(QUARANTINE_TABLE).fields]
    assert columns == [(f.name, f.dataType) for f in StructType.fromDDL(QUARANTINE_SCHEMA).fields]
    assert all(r["source_key"] is None for r in rows)  # files: the row number tells the row


def test_no_phone_number_or_address_of_the_export_reaches_the_quarantine(
    imported: tuple[TableStore, ImportResult],
) -> None:
    store, _ = imported
    with (EXPORT / "contacts.csv").open(encoding="utf-8") as file:
        values = [row["CONTACT"] for row in csv.DictReader(file, delimiter=";")]
    digits = {re.sub(r"\D", "", v) for v in values if "@" not in v}
    text = " ".join(str(v) for r in store.read(QUARANTINE_TABLE).collect() for v in r)
    assert not any(v in text for v in values)
    assert not any(d in re.sub(r"\D", "", text) for d in digits if len(d) >= 6)
    assert "@" not in text


def test_the_imported_tables_follow_the_contract_and_load_inputs_reads_them(
    spark: SparkSession, imported: tuple[TableStore, ImportResult]
) -> None:
    store, _ = imported
    for table, spec in (
        ("customers", customers_spec(CHANNELS)),
        ("contacts", CONTACTS),
        ("contact_history", CONTACT_HISTORY),
        ("propensities", PROPENSITIES),
    ):
        validate_input(store.read(table), spec)
    config = load_config(overrides={"storage.base_path": store.storage.base_path})
    inputs = load_inputs(store, config)
    customers = {r["customer_id"]: r for r in inputs.customers.collect()}
    assert len(customers) == 25 and "C028" not in customers and "C026" not in customers
    assert customers["C003"].asDict() == {
        "customer_id": "C003",
        "household_id": "H002",
        "segment": "MASS",  # upper(trim('Mass '))
        "churn_risk": False,
        "outbound": False,
        "privacy_consent": True,
        "optout_dem": True,
        "optout_sms": False,
        "optout_tls": False,  # a constant of the mapping
        "birth_date": dt.date(1971, 4, 10),  # an extra column, kept for rules
        "region": "ISLANDS",
    }
    assert customers["C013"]["privacy_consent"] is None  # empty in the export: no consent (fail-closed)
    first = (
        inputs.contacts.filter(F.col("customer_id") == "C001")
        .select(
            "contact_type",
            "source",
            F.date_format("created_at", "yyyy-MM-dd HH:mm:ss").alias("created_at"),  # UTC, the session's zone
            "last_confirmed_at",
        )
        .orderBy("contact_type")
        .collect()
    )
    assert [tuple(r) for r in first] == [
        ("email", "CALL_CENTER", "2019-08-04 09:13:00", dt.date(2026, 4, 6)),
        ("phone", "WEB", "2019-08-04 09:13:00", dt.date(2026, 4, 6)),
    ]
    assert inputs.contact_history.filter(F.col("campaign") == "CROSS_SELLING").count() == 13
    # The contacts stage's checks take the imported rows: only the FAX row is not a phone or an e-mail.
    with temporary_conf(spark, LEAN):
        checked = inputs.contacts.transform(normalize_contacts, config.contacts).transform(
            check_contacts, inputs.customers
        )
        reasons = [r["reason_code"] for r in checked.filter(F.col("reason_code").isNotNull()).collect()]
    assert reasons == ["UNKNOWN_CONTACT_TYPE"]


def test_importing_again_gives_the_same_tables_and_quarantine_never_duplicates(
    spark: SparkSession, imported: tuple[TableStore, ImportResult]
) -> None:
    store, first = imported
    tables = ("customers", "contacts", "contact_history", "propensities", QUARANTINE_TABLE, SUMMARY_TABLE)
    before = {t: _rows(store.read(t)) for t in tables}
    again = _import(spark, store)
    assert again == first
    assert {t: _rows(store.read(t)) for t in tables} == before
    assert store.read(QUARANTINE_TABLE).count() == len(QUARANTINE)
