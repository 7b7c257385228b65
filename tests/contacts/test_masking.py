"""Masking of phones and addresses: pure functions and their Column versions."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from pyspark.sql import SparkSession

from contact_spark.contacts.masking import mask_contact_col, mask_email, mask_phone


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+39 347 123 4567", "+39 *** *** **67"),  # the country code and the last 2 digits
        ("+390231234530", "+39********30"),  # issue 24: was +39023*****30, 7 of 12 digits shown
        ("+1 650-253-0000", "+1 ***-***-**00"),
        ("+3912345678", "+39******78"),  # 8 national digits: 6 hidden
        ("+683 7290", "+*** ***0"),  # Niue: 4 national digits, the country code hidden too
        ("3471234567", "********67"),  # no '+': no country code to show
        ("0039 347 123 4567", "**** *** *** **67"),
        ("1234567", "******7"),  # the tail shrinks so that 6 digits stay hidden
        ("3471234567347123456712345", "***********************45"),
        ("12345", "******"),  # its length would tell too much
        ("21 234", "******"),
        ("n/a", "*/*"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone(raw: str | None, masked: str | None) -> None:
    assert mask_phone(raw) == masked


# Regions with national numbers of every length, down to Niue's and Tokelau's 4 digits.
REGIONS = (
    "IT",
    "DE",
    "GB",
    "US",
    "FR",
    "IE",
    "SM",
    "VA",
    "LI",
    "NU",
    "TK",
    "SH",
    "CK",
    "FK",
    "NR",
    "AD",
    "MC",
)
FORMATS = (PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL)


def real_numbers() -> list[str]:
    """phonenumbers' example number of every type of each region, in E.164, international and national form."""
    found = set()
    for region in REGIONS:
        for kind in PhoneNumberType.values():
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.update(phonenumbers.format_number(number, f) for f in FORMATS)
    return sorted(found)


def test_the_real_numbers_include_short_national_numbers() -> None:
    national = {len(re.sub(r"\D", "", n)) for n in real_numbers() if not n.startswith("+")}
    assert min(national) == 4 and max(national) >= 11
    assert [r for r in REGIONS if phonenumbers.example_number(r) is None] == []  # every region gives numbers


@pytest.mark.parametrize("raw", real_numbers())
def test_no_masked_phone_narrows_the_number_down_to_fewer_than_a_million(raw: str) -> None:
    masked = mask_phone(raw) or ""
    digits, shown = re.sub(r"\D", "", raw), re.sub(r"\D", "", masked)
    # Every hidden digit is one '*' (a number of under 6 digits is six '*'): 10^6 candidates at least.
    assert masked.count("*") >= 6
    assert masked.count("*") == len(digits) - len(shown) or (shown == "" and masked == "******")
    # What is shown: the country code (only after a '+') and at most the last 2 digits.
    code = str(phonenumbers.parse(raw, "IT").country_code) if raw.startswith("+") else ""
    head = code if masked.startswith(f"+{code}") and code else ""
    assert shown.startswith(head) and len(shown) - len(head) <= 2
    assert digits.endswith(shown[len(head) :])


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("mario.rossi@gmail.com", "m***@gmail.com"),  # the first letter and the domain
        ("  mario@gmail.com ", "m***@gmail.com"),
        ("ab@x.it", "a***@x.it"),
        ("mario@@gmail.com", "m***@gmail.com"),
        ("mario at gmail.com", "m***"),
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
    assert got == ["+39 *** *** **67", "m***@gmail.com", "a***@x.it", None]
