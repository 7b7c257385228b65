"""Importing from a database through Spark's JDBC reader (SQLite, a real database file) and from a
catalog table: a quarantined row is named by its source key, masked when it is an address.

The SQLite driver is the jar `make jdbc-jars` fetches (org.xerial:sqlite-jdbc), on the test
session's classpath (tests/spark_conf.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from spark_conf import JDBC_JARS, LEAN, temporary_conf

from contact_spark.config.imports import mapping_from_dict
from contact_spark.config.models import StorageSettings
from contact_spark.errors import ContactSparkError
from contact_spark.io.importer import QUARANTINE_TABLE, SUMMARY_TABLE, import_inputs
from contact_spark.io.tables import TableStore

CHANNELS = ["DEM", "SMS", "TLS"]
CREDENTIALS = {"CRM_DB_USER": "planner", "CRM_DB_PASSWORD": "never-in-the-mapping"}
SCORES = [
    # SCORE_ID, CUST, CAMPAIGN, CHANNEL, P
    (1, "C001", "CROSS_SELLING", "SMS", 0.25),
    (2, "C001", "SOLUTION", "SMS", 0.5),
    (3, "C002", "CROSS_SELLING", "SMS", -0.1),  # not a probability
    (4, None, "SOLUTION", "DEM", 0.2),  # no customer
    (5, "C003", "SOLUTION", "TLS", 0.3),  # C003 × SOLUTION × TLS scored twice, differently
    (6, "C003", "SOLUTION", "TLS", 0.4),
]


def _database(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE SCORES (SCORE_ID INTEGER PRIMARY KEY, CUST TEXT, CAMPAIGN TEXT, CHANNEL TEXT, P REAL)"
        )
        db.executemany("INSERT INTO SCORES VALUES (?, ?, ?, ?, ?)", SCORES)
    return f"jdbc:sqlite:{path}"


def _mapping(url: str) -> dict[str, Any]:
    return {
        "customers": {
            "source": {"format": "table", "name": "crm_customers", "key": ["EMAIL"]},
            "columns": {
                "customer_id": "ID",
                "privacy_consent": {"column": "CONSENT", "true_values": ["Y"], "false_values": ["N"]},
            },
            "constants": {
                "household_id": None,
                "segment": "MASS",
                "churn_risk": False,
                "outbound": False,
                "optout_dem": False,
                "optout_sms": False,
                "optout_tls": True,
            },
        },
        "propensities": {
            "source": {
                "format": "jdbc",
                "url": url,
                "driver": "org.sqlite.JDBC",
                "dbtable": "SCORES",
                "user_env": "CRM_DB_USER",
                "password_env": "CRM_DB_PASSWORD",
                # Two parallel queries, split on the id (what a large table needs).
                "partitioning": {"column": "SCORE_ID", "lower": 1, "upper": 7, "partitions": 2},
                "key": ["SCORE_ID"],
            },
            "columns": {
                "customer_id": "CUST",
                "campaign": "CAMPAIGN",
                "channel": "CHANNEL",
                "propensity": "P",
            },
        },
    }


@pytest.fixture
def crm_customers(spark: SparkSession) -> None:
    """A catalog table (here a temporary view) of the CRM's customers, keyed by their address."""
    spark.createDataFrame(
        [
            ("C001", "ada@example.com", "Y"),
            ("C002", "bruno.neri@example.org", "perhaps"),
            ("C003", "carla@example.net", "N"),
        ],
        "ID string, EMAIL string, CONSENT string",
    ).createOrReplaceTempView("crm_customers")


def test_a_database_table_and_a_catalog_table_are_imported_by_their_key(
    spark: SparkSession, tmp_path: Path, crm_customers: None
) -> None:
    if not any(JDBC_JARS.glob("sqlite-jdbc-*.jar")):
        pytest.fail(f"no SQLite JDBC driver in {JDBC_JARS}: run 'make jdbc-jars' (make test does)")
    url = _database(tmp_path / "crm.db")
    # Native Delta (the session has it): the file-source tests write through delta-rs.
    store = TableStore(spark, StorageSettings(base_path=str(tmp_path / "lakehouse"), backend="spark"))
    mapping = mapping_from_dict(_mapping(url))
    with temporary_conf(spark, LEAN):
        result = import_inputs(spark, store, mapping, CHANNELS, run_id="crm-db", env=CREDENTIALS)

    assert [(t.table, t.source, t.read, t.written, dict(t.reasons)) for t in result.tables] == [
        ("customers", "table crm_customers", 3, 2, {"BAD_BOOLEAN": 1}),
        (
            "propensities",
            "jdbc table SCORES",
            6,
            2,
            {"OUT_OF_RANGE": 1, "MISSING_REQUIRED": 1, "DUPLICATE_KEY": 2},
        ),
    ]
    quarantine = store.read_run(QUARANTINE_TABLE, "crm-db").orderBy("table_name", "source_key").collect()
    assert [
        (r["table_name"], r["source_file"], r["source_row"], r["source_key"], r["reason_code"], r["detail"])
        for r in quarantine
    ] == [
        (
            "customers",
            None,
            None,
            "EMAIL=b***@example.org",  # the key is an address: masked
            "BAD_BOOLEAN",
            "privacy_consent (CONSENT) 'perhaps' is not a boolean (true: Y; false: N)",
        ),
        ("propensities", None, None, "SCORE_ID=3", "OUT_OF_RANGE", "propensity -0.1 is outside [0, 1]"),
        ("propensities", None, None, "SCORE_ID=4", "MISSING_REQUIRED", "customer_id (CUST) is empty"),
        (
            "propensities",
            None,
            None,
            "SCORE_ID=5",
            "DUPLICATE_KEY",
            "customer_id, campaign, channel shared by 2 rows with different values: none is imported",
        ),
        (
            "propensities",
            None,
            None,
            "SCORE_ID=6",
            "DUPLICATE_KEY",
            "customer_id, campaign, channel shared by 2 rows with different values: none is imported",
        ),
    ]
    scores = sorted(tuple(r) for r in store.read("propensities").collect())
    assert scores == [("C001", "CROSS_SELLING", "SMS", 0.25), ("C001", "SOLUTION", "SMS", 0.5)]
    consent = dict(
        tuple(r) for r in store.read("customers").select("customer_id", "privacy_consent").collect()
    )
    assert consent == {"C001": True, "C003": False}
    assert store.read_run(SUMMARY_TABLE, "crm-db").count() == 2


def test_a_credential_missing_from_the_environment_is_one_line_naming_the_variable(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = TableStore(spark, StorageSettings(base_path=str(tmp_path / "lakehouse"), backend="deltalake"))
    mapping = mapping_from_dict({"propensities": _mapping("jdbc:sqlite:/nowhere/crm.db")["propensities"]})
    with pytest.raises(ContactSparkError) as info:
        import_inputs(spark, store, mapping, CHANNELS, env={"CRM_DB_USER": "planner"})
    assert str(info.value) == (
        "propensities.source.password_env: environment variable CRM_DB_PASSWORD is not set: "
        "export it before the import"
    )
    assert not store.exists("propensities")
