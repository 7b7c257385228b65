"""Phone normalisation with the real phonenumbers metadata (no Spark)."""

from __future__ import annotations

import pytest

from contact_spark.contacts import reasons as R
from contact_spark.contacts.phones import PhoneResult, normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["3471234567", "+39 347 123 4567", "00393471234567", "347.123.4567", "347-1234567", " 347/1234567 "],
)
def test_every_shape_of_one_italian_mobile_gives_the_same_e164(raw: str) -> None:
    """The seven shapes the demo generator types all mean +39 347 123 4567."""
    assert normalize_phone(raw, "IT") == PhoneResult("+393471234567", "mobile", "IT", True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02 12345678", PhoneResult("+390212345678", "fixed_line", "IT", True)),
        ("800 123456", PhoneResult("+39800123456", "toll_free", "IT", True)),
        ("899123456", PhoneResult("+39899123456", "premium_rate", "IT", True)),
        ("+7-916-778-44-33", PhoneResult("+79167784433", "mobile", "RU", True)),
        ("+7 495 311 88 13", PhoneResult("+74953118813", "fixed_line", "RU", True)),
        # Possible length, but the plan assigns nothing there: kept, not valid.
        ("000 0000000", PhoneResult("+390000000000", "unknown", "IT", False)),
        ("+7 200 190 07 19", PhoneResult("+72001900719", "unknown", "RU", False)),
    ],
)
def test_number_type_and_numbering_plan_validity(raw: str, expected: PhoneResult) -> None:
    assert normalize_phone(raw, "IT") == expected


def test_default_region_applies_to_numbers_without_country_code() -> None:
    assert normalize_phone("030 1234567", "DE").value == "+49301234567"
    assert normalize_phone("030 1234567", "DE").region == "DE"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, R.NULL_VALUE),
        ("", R.EMPTY_VALUE),
        ("   \t ", R.EMPTY_VALUE),
        ("\u200b", R.EMPTY_VALUE),
        ("😀", R.PHONE_NOT_A_NUMBER),
        ("347😀1234567", R.PHONE_NOT_A_NUMBER),
        ("n/a", R.PHONE_NOT_A_NUMBER),
        ("123456789012345678901234567890", R.PHONE_TOO_LONG),
        ("3471234567347123456712345", R.PHONE_TOO_LONG),
        ("12", R.PHONE_TOO_SHORT),
        ("+999 1234567", R.PHONE_INVALID_COUNTRY_CODE),
    ],
)
def test_bad_input_gets_a_reason_code_and_never_raises(raw: str | None, code: str) -> None:
    assert normalize_phone(raw, "IT") == PhoneResult(None, error=code)
