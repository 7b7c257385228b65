"""E-mail addresses: trimmed, syntax-checked offline, classified. Pure Python, no Spark.

``email-validator`` checks the syntax with no DNS look-up (``check_deliverability=False``);
the domain is lower-cased, classified public / corporate / disposable / typo, and
role accounts (info@, noreply@ …) are flagged. Never raises on bad input: the result
carries a reason code.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email

from contact_spark.contacts import reasons as R

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


class EmailRules(NamedTuple):
    """What classification needs, hashable so results can be cached per value."""

    public_domains: frozenset[str]
    role_local_parts: frozenset[str]
    extra_disposable: frozenset[str] = frozenset()
    lowercase_local_part: bool = True
    allow_smtputf8: bool = False
    detect_typos: bool = True

    @classmethod
    def of(
        cls,
        public_domains: Iterable[str],
        role_local_parts: Iterable[str],
        extra_disposable: Iterable[str] = (),
        lowercase_local_part: bool = True,
        allow_smtputf8: bool = False,
        detect_typos: bool = True,
    ) -> EmailRules:
        return cls(
            frozenset(d.lower() for d in public_domains),
            frozenset(r.lower() for r in role_local_parts),
            frozenset(d.lower() for d in extra_disposable),
            lowercase_local_part,
            allow_smtputf8,
            detect_typos,
        )


class EmailResult(NamedTuple):
    """A normalised address, or the reason it could not be one (``error`` not None)."""

    value: str | None
    domain: str | None = None
    domain_class: str | None = None
    role: bool | None = None
    error: str | None = None


def _rejected(code: str) -> EmailResult:
    return EmailResult(None, error=code)


@lru_cache(maxsize=1)
def _blocklist() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


def is_disposable(domain: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when the domain, or a parent of it, is a known throw-away mail domain."""
    blocked = _blocklist()
    parts = domain.lower().split(".")
    for i in range(len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in blocked or candidate in extra:
            return True
    return False


def is_role(local_part: str, roles: frozenset[str]) -> bool:
    """True for role mailboxes: ``info``, ``info.milano``, ``no-reply+x`` (not ``mario.info``)."""
    local = local_part.lower().split("+", 1)[0]
    if local in roles:
        return True
    for sep in "._-":
        head = local.split(sep, 1)[0]
        if head != local and head in roles:
            return True
    return False


def _one_edit_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


@lru_cache(maxsize=50_000)
def classify_domain(domain: str, rules: EmailRules) -> str:
    """public, typo (one edit away from a public domain), disposable or corporate.

    Typos are checked before the blocklist because typo-squatted domains (gmial.com)
    are listed there too, and "typo" says better what went wrong.
    """
    if domain in rules.public_domains:
        return "public"
    if rules.detect_typos and any(_one_edit_apart(domain, p) for p in rules.public_domains):
        return "typo"
    if is_disposable(domain, rules.extra_disposable):
        return "disposable"
    return "corporate"


def _syntax_code(message: str) -> str:
    # email-validator has one exception type; its message says which part is wrong.
    if "after the @-sign" in message or "domain" in message.lower():
        return R.EMAIL_INVALID_DOMAIN
    if "before the @-sign" in message:
        return R.EMAIL_INVALID_LOCAL_PART
    return R.EMAIL_INVALID_SYNTAX


@lru_cache(maxsize=200_000)
def normalize_email(raw: str | None, rules: EmailRules) -> EmailResult:
    """Trim, validate offline and classify one address."""
    if raw is None:
        return _rejected(R.NULL_VALUE)
    text = str(raw).translate(_INVISIBLE).strip()
    if not text:
        return _rejected(R.EMPTY_VALUE)
    ats = text.count("@")
    if ats == 0:
        return _rejected(R.EMAIL_MISSING_AT)
    if ats > 1:
        return _rejected(R.EMAIL_MULTIPLE_AT)
    if any(ch.isspace() for ch in text):
        return _rejected(R.EMAIL_CONTAINS_SPACE)
    local = text.split("@", 1)[0]
    if not rules.allow_smtputf8 and not local.isascii():
        return _rejected(R.EMAIL_NON_ASCII_LOCAL_PART)
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=rules.allow_smtputf8)
    except EmailNotValidError as exc:
        return _rejected(_syntax_code(str(exc)))
    domain = checked.domain.lower()
    local = checked.local_part.lower() if rules.lowercase_local_part else checked.local_part
    return EmailResult(
        value=f"{local}@{domain}",
        domain=domain,
        domain_class=classify_domain(domain, rules),
        role=is_role(local, rules.role_local_parts),
    )
