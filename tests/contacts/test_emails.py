"""E-mail normalisation and classification, offline (no DNS, no Spark)."""

from __future__ import annotations

import pytest

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts import reasons as R
from contact_spark.contacts.emails import EmailResult, EmailRules, is_role, normalize_email
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


@pytest.mark.parametrize(
    ("setting", "raw", "default", "configured"),
    [
        # The list replaces the default one: gmail.com is no longer public.
        ({"public_domains": ["studio.it"]}, "x@studio.it", "corporate", "public"),
        ({"public_domains": ["studio.it"]}, "x@gmail.com", "public", "corporate"),
        ({"extra_disposable_domains": ["acme-mail.it"]}, "x@acme-mail.it", "corporate", "disposable"),
        ({"detect_typos": False}, "x@yahooo.it", "typo", "corporate"),
        ({"allow_smtputf8": True}, "mário@acme.it", R.EMAIL_NON_ASCII_LOCAL_PART, "corporate"),
        ({"role_local_parts": ["ciao"]}, "ciao@acme.it", "personal", "role"),
        ({"role_local_parts": ["ciao"]}, "info@acme.it", "role", "personal"),
    ],
)
def test_each_email_setting_changes_the_classification(
    setting: dict[str, object], raw: str, default: str, configured: str
) -> None:
    """Every ``contacts.email`` setting, one at a time: what the address is classed as with
    the defaults and with the setting (an error code when it is refused)."""

    def classed(rules: EmailRules) -> str:
        result = normalize_email(raw, rules)
        if result.error:
            return result.error
        if "role_local_parts" in setting:
            return "role" if result.role else "personal"
        return str(result.domain_class)

    configured_rules = email_rules(ContactSettings.model_validate({"email": setting}))
    assert (classed(RULES), classed(configured_rules)) == (default, configured)
