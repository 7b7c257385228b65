"""Phone numbers to E.164 with the ``phonenumbers`` metadata: pure Python, no Spark.

Used row by row inside a pandas UDF (see :mod:`contact_spark.contacts.normalize`)
and directly in tests. Never raises on bad input: the result carries a reason code.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from contact_spark.contacts import reasons as R

NUMBER_TYPES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

_PARSE_ERRORS: dict[int, str] = {
    NumberParseException.INVALID_COUNTRY_CODE: R.PHONE_INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: R.PHONE_NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: R.PHONE_TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: R.PHONE_TOO_SHORT,
    NumberParseException.TOO_LONG: R.PHONE_TOO_LONG,
}

_LENGTH_ERRORS: dict[int, str] = {
    ValidationResult.TOO_SHORT: R.PHONE_TOO_SHORT,
    ValidationResult.TOO_LONG: R.PHONE_TOO_LONG,
    ValidationResult.INVALID_LENGTH: R.PHONE_INVALID_LENGTH,
    ValidationResult.INVALID_COUNTRY_CODE: R.PHONE_INVALID_COUNTRY_CODE,
}

# E.164 allows at most 15 digits; anything with more digits typed is not one number.
MAX_DIGITS = 17
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


class PhoneResult(NamedTuple):
    """A normalised phone, or the reason it could not be one (``error`` not None)."""

    value: str | None
    number_type: str | None = None
    region: str | None = None
    valid: bool | None = None
    error: str | None = None


def _rejected(code: str) -> PhoneResult:
    return PhoneResult(None, error=code)


@lru_cache(maxsize=200_000)
def normalize_phone(raw: str | None, default_region: str = "IT") -> PhoneResult:
    """Parse ``raw`` as typed (any separators, 00/+ prefixes) into E.164.

    ``valid`` is False for a number of possible length that its numbering plan does
    not assign (kept and scored low, like a number that "does not exist"); numbers
    that cannot even be parsed, or have an impossible length, are rejected.
    """
    if raw is None:
        return _rejected(R.NULL_VALUE)
    text = str(raw).translate(_INVISIBLE).strip()
    if not text:
        return _rejected(R.EMPTY_VALUE)
    if sum(ch.isdigit() for ch in text) > MAX_DIGITS:
        return _rejected(R.PHONE_TOO_LONG)
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        return _rejected(_PARSE_ERRORS.get(exc.error_type, R.PHONE_NOT_A_NUMBER))
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return _rejected(_LENGTH_ERRORS.get(possible, R.PHONE_INVALID_LENGTH))
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # The region costs a metadata match per region sharing the country code: found once
    # here (``is_valid_number`` is ``is_valid_number_for_region`` of the same region).
    region = phonenumbers.region_code_for_number(number)
    return PhoneResult(
        value=e164,
        number_type=NUMBER_TYPES.get(phonenumbers.number_type(number), "unknown"),
        # An unassigned number has no region; its country code still names one.
        # (A parsed number always has a country code; 0, like none, names no region: "ZZ".)
        region=region or phonenumbers.region_code_for_country_code(number.country_code or 0),
        valid=region is not None and phonenumbers.is_valid_number_for_region(number, region),
    )
