"""Masking of phones and addresses: pure functions and their Column versions."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from contact_spark.contacts.masking import mask_contact_col, mask_email, mask_phone


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+39 347 123 4567", "+39 347 *** **67"),  # 12 digits: 5 shown first, 2 last
        ("3471234567", "347*****67"),  # 10 digits: the head shrinks to keep 5 hidden
        ("3471234567347123456712345", "34712******************45"),
        ("12345", "*****"),
        ("n/a", "*/*"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone(raw: str | None, masked: str | None) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("mario.rossi@gmail.com", "m***i@gmail.com"),
        ("  mario@gmail.com ", "m***o@gmail.com"),
        ("mario@@gmail.com", "m***@@gmail.com"),
        ("mario at gmail.com", "m***m"),
        ("😀@example.com", "*@example.com"),
        (None, None),
    ],
)
def test_mask_email(raw: str | None, masked: str | None) -> None:
    assert mask_email(raw) == masked


def test_column_version_masks_by_type(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            ("+39 347 123 4567", "phone"),
            ("mario.rossi@gmail.com", "email"),
            ("a.b@x.it", "fax"),
            (None, "phone"),
        ],
        "value string, contact_type string",
    ).coalesce(1)  # one task, one Python worker to start
    got = [r[0] for r in df.select(mask_contact_col(df.value, df.contact_type)).collect()]
    assert got == ["+39 347 *** **67", "m***i@gmail.com", "a***b@x.it", None]
