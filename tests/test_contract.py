"""The input contract: a missing column or a wrong type names the table and column."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from contact_spark.contract import CONTACTS, PROPENSITIES, contract_markdown, customers_spec, validate_input
from contact_spark.errors import ColumnTypeError, MissingColumnError


def test_missing_column_names_table_and_column(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("C1", "CROSS_SELLING", "DEM")], "customer_id string, campaign string, channel string"
    )
    with pytest.raises(
        MissingColumnError, match="table 'propensities' is missing required column 'propensity'"
    ):
        validate_input(df, PROPENSITIES)


def test_wrong_type_names_expected_and_actual(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("C1", "CROSS_SELLING", "DEM", "0.3")],
        "customer_id string, campaign string, channel string, propensity string",
    )
    with pytest.raises(ColumnTypeError) as err:
        validate_input(df, PROPENSITIES)
    assert err.value.table == "propensities"
    assert err.value.column == "propensity"
    assert err.value.actual == "string"


def test_optional_columns_may_be_absent_and_extra_columns_are_kept(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("C1", "phone", "347 1234567", "CRM", None, None, "x")],
        "customer_id string, contact_type string, value string, source string, "
        "created_at timestamp, last_confirmed_at date, note string",
    )
    assert validate_input(df, CONTACTS) is df


def test_customers_need_one_optout_column_per_channel(spark: SparkSession) -> None:
    spec = customers_spec(["DEM", "PUSH"])
    names = [c.name for c in spec.columns]
    assert "optout_push" in names
    assert "optout_sms" not in names


def test_the_contract_is_documented_from_code() -> None:
    text = contract_markdown(["DEM", "SMS", "TLS"])
    for table in ("customers", "contacts", "contact_history", "propensities"):
        assert f"## `{table}`" in text
    assert (
        "| `privacy_consent` | boolean | yes | yes | Marketing (privacy) consent. Null means no consent. |"
        in text
    )
