"""E-mail normalisation and classification, offline (no DNS, no Spark)."""

from __future__ import annotations

import pytest

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts import reasons as R
from contact_spark.contacts.emails import EmailResult, is_role, normalize_email
from contact_spark.contacts.normalize import email_rules

RULES = email_rules(ContactSettings())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mario.rossi1@gmail.com", EmailResult("mario.rossi1@gmail.com", "gmail.com", "public", False)),
        ("MARIO.ROSSI1@GMAIL.COM", EmailResult("mario.rossi1@gmail.com", "gmail.com", "public", False)),
        ("  luca.ricci@LIBERO.IT ", EmailResult("luca.ricci@libero.it", "libero.it", "public", False)),
        ("luca@studiorossi.it", EmailResult("luca@studiorossi.it", "studiorossi.it", "corporate", False)),
        ("info@studiorossi.it", EmailResult("info@studiorossi.it", "studiorossi.it", "corporate", True)),
        ("NoReply@acme.com", EmailResult("noreply@acme.com", "acme.com", "corporate", True)),
        ("x@mailinator.com", EmailResult("x@mailinator.com", "mailinator.com", "disposable", False)),
        ("x@sub.yopmail.com", EmailResult("x@sub.yopmail.com", "sub.yopmail.com", "disposable", False)),
        # One letter swapped from gmail.com (and also on the disposable blocklist).
        ("x@gmial.com", EmailResult("x@gmial.com", "gmial.com", "typo", False)),
    ],
)
def test_normalised_and_classified(raw: str, expected: EmailResult) -> None:
    assert normalize_email(raw, RULES) == expected


def test_local_part_case_is_kept_when_configured() -> None:
    rules = RULES._replace(lowercase_local_part=False)
    assert normalize_email("Mario.Rossi@GMAIL.com", rules).value == "Mario.Rossi@gmail.com"


@pytest.mark.parametrize(
    ("local", "role"),
    [
        ("info", True),
        ("info.milano", True),
        ("no-reply", True),
        ("admin+x", True),
        ("mario.info", False),
        ("informatica", False),
    ],
)
def test_role_accounts(local: str, role: bool) -> None:
    assert is_role(local, RULES.role_local_parts) is role


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, R.NULL_VALUE),
        ("", R.EMPTY_VALUE),
        ("   ", R.EMPTY_VALUE),
        ("@@", R.EMAIL_MULTIPLE_AT),
        ("mario@@gmail.com", R.EMAIL_MULTIPLE_AT),
        ("mario at gmail.com", R.EMAIL_MISSING_AT),
        ("mario rossi@gmail.com", R.EMAIL_CONTAINS_SPACE),
        ("😀@example.com", R.EMAIL_NON_ASCII_LOCAL_PART),
        ("mario..rossi@libero.it", R.EMAIL_INVALID_SYNTAX),
        ("@gmail.com", R.EMAIL_INVALID_LOCAL_PART),
        ("a@b", R.EMAIL_INVALID_DOMAIN),
    ],
)
def test_bad_input_gets_a_reason_code_and_never_raises(raw: str | None, code: str) -> None:
    assert normalize_email(raw, RULES) == EmailResult(None, error=code)
