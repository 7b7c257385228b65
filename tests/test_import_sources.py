"""The import mapping's reader options as the import reads a source (``io.import_sources``)
and converts it (``io.import_rows.convert``): a CSV without a header, in Latin-1, with its
own delimiter and quote; a column's target ``type``; a JDBC ``query`` with a ``fetchsize``.
The shipped example (tests/test_import.py) runs every other key of docs/import.md."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from spark_conf import JDBC_JARS

from contact_spark.config.imports import mapping_from_dict
from contact_spark.io.import_plan import check_mapping
from contact_spark.io.import_rows import convert
from contact_spark.io.import_sources import read_source


def test_a_csv_is_read_with_its_header_encoding_delimiter_and_quote(
    spark: SparkSession, tmp_path: Path
) -> None:
    """No header line: the columns are ``_c0``, ``_c1``, … and the first line is record 1.
    Latin-1 (ü, ò), ``|`` between fields and ``'`` around a field holding a ``|``. The extra
    column ``birth_year`` is converted to ``type: long``; ``city``, without a type, keeps
    the source's text."""
    path = tmp_path / "customers.csv"
    path.write_bytes("C1|MASS|'Bolzano|Bozen'|1970\nC2|VIP|Forlì|1985\n".encode("latin-1"))
    mapping = mapping_from_dict(
        {
            "customers": {
                "source": {
                    "format": "csv",
                    "path": str(path),
                    "header": False,
                    "delimiter": "|",
                    "quote": "'",
                    "encoding": "ISO-8859-1",
                },
                "columns": {"customer_id": "_c0", "segment": "_c1"},
                "constants": {
                    "household_id": None,
                    "churn_risk": False,
                    "outbound": False,
                    "privacy_consent": True,
                    "optout_dem": False,
                },
                "extra_columns": {"city": "_c2", "birth_year": {"column": "_c3", "type": "long"}},
            }
        }
    )
    source = read_source(spark, "customers", mapping.tables["customers"])
    assert source.columns == ["_c0", "_c1", "_c2", "_c3"]
    plan = check_mapping(mapping, ["DEM"], "mapping.yaml")["customers"]
    converted = convert(source.df, plan)
    assert dict(converted.dtypes)["birth_year"] == "bigint"
    rows = converted.orderBy("_source_row").collect()
    assert [(r["_source_row"], r["customer_id"], r["segment"], r["city"], r["birth_year"]) for r in rows] == [
        (1, "C1", "MASS", "Bolzano|Bozen", 1970),
        (2, "C2", "VIP", "Forlì", 1985),
    ]
    assert [r["_problems"] for r in rows] == [[], []]


def test_a_jdbc_query_is_read_with_its_fetch_size(spark: SparkSession, tmp_path: Path) -> None:
    """``query`` instead of ``dbtable``: only the rows it selects; ``fetchsize: 1`` (rows per
    round trip, a driver hint) still reads every one of them. Rows are named by ``key``."""
    if not any(JDBC_JARS.glob("sqlite-jdbc-*.jar")):
        pytest.fail(f"no SQLite JDBC driver in {JDBC_JARS}: run 'make jdbc-jars' (make test does)")
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE scores (id INTEGER, customer TEXT, score REAL)")
        connection.executemany(
            "INSERT INTO scores VALUES (?, ?, ?)", [(1, "C1", 0.2), (2, "C2", 0.7), (3, "C3", 0.9)]
        )
    mapping = mapping_from_dict(
        {
            "propensities": {
                "source": {
                    "format": "jdbc",
                    "url": f"jdbc:sqlite:{db}",
                    "driver": "org.sqlite.JDBC",
                    "query": "SELECT id, customer, score FROM scores WHERE score > 0.5",
                    "fetchsize": 1,
                    "key": ["id"],
                },
                "columns": {"customer_id": "customer", "propensity": "score"},
                "constants": {"campaign": "CROSS_SELLING", "channel": "DEM"},
            }
        }
    )
    source = read_source(spark, "propensities", mapping.tables["propensities"])
    rows = sorted((r["customer"], r["score"], r["_source_key"]) for r in source.df.collect())
    assert rows == [("C2", 0.7, ["2"]), ("C3", 0.9, ["3"])]
    assert source.description == "jdbc query"
