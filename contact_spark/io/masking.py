"""Masked phones and addresses for logs, reports and the rejected table.

``+39 347 123 4567`` → ``+39 *** *** **67``; ``mario.rossi@gmail.com`` → ``m***@gmail.com``.
A masked phone shows at most its country code and its last 2 digits, and always hides at
least 6 digits, so it never narrows a number down to fewer than 10⁶ candidates; a masked
address shows the first character of the local part and the domain. Pure functions for
Python code and the same functions as Spark Column functions (vectorised pandas UDFs), so
a raw value never needs to leave its column unmasked. :func:`mask_value` masks a value of
unknown kind (a field an import could not parse) before a message quotes it.

A leaf of the io layer (pure functions and Spark columns only), so that the input import,
which runs before any stage, uses the same masks as the contacts stage and the report.
"""

from __future__ import annotations

import pandas as pd
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from pyspark.sql import Column
from pyspark.sql.types import StringType

from contact_spark.io.udf import series_udf

# Return types are objects, not DDL strings: DDL needs a session at import time.
# Characters shown as typed: they carry the shape of a number, not its identity.
_SEPARATORS = set("+ -./()")
TAIL_DIGITS = 2
MIN_HIDDEN_DIGITS = 6
# Country calling codes are prefix-free: at most one of a number's first 1-3 digits is one.
_COUNTRY_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def _country_code(text: str, digits: str) -> str:
    """The country calling code of a number written with a leading ``+``, else ``""``."""
    if not text.startswith("+"):
        return ""
    return next((digits[:k] for k in (1, 2, 3) if digits[:k] in _COUNTRY_CODES), "")


def mask_phone(value: str | None) -> str | None:
    """Show at most the country code and the last 2 digits; at least 6 digits stay hidden.

    The country code (only for a number written with ``+``) is shown when at least 6
    national digits remain to hide; the tail shrinks (2, 1, then 0 digits) so that 6 digits
    are always hidden. A value of 1 to 5 digits becomes ``******``: its length would narrow
    it down. Any other character (letters, emoji) becomes ``*``; separators stay so the
    shape remains readable.
    """
    if value is None:
        return None
    text = value.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    n = len(digits)
    if 0 < n < MIN_HIDDEN_DIGITS:
        return "*" * MIN_HIDDEN_DIGITS
    code = _country_code(text, digits)
    head = len(code) if n - len(code) >= MIN_HIDDEN_DIGITS else 0
    tail = max(0, min(TAIL_DIGITS, n - head - MIN_HIDDEN_DIGITS))
    out, seen = [], 0
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= head or seen > n - tail else "*")
        else:
            out.append(ch if ch in _SEPARATORS else "*")
    return "".join(out)


def mask_email(value: str | None) -> str | None:
    """Keep the first character of the local part and the domain: ``m***@gmail.com``.

    Without an ``@`` the whole text is treated as a local part; a one-character local
    part becomes ``*``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return ""
    local, at, domain = text.rpartition("@")
    if not at:
        local, domain = text, ""
    if len(local) <= 1:
        masked = "*" if local else ""
    else:
        masked = f"{local[0]}***"
    return f"{masked}{at}{domain}"


def mask_contact(value: str | None, contact_type: str | None) -> str | None:
    """Mask by type; an unknown type is masked as an e-mail when it has an ``@``."""
    kind = (contact_type or "").strip().lower()
    if kind == "email" or (kind != "phone" and value is not None and "@" in value):
        return mask_email(value)
    return mask_phone(value)


# A quoted value longer than this is cut: a message stays short.
MAX_QUOTED = 40


def mask_value(value: str | None) -> str | None:
    """A value of unknown kind, for a message: what could be an address or a number is masked.

    Any ``@`` masks it as an e-mail, 6 digits or more as a phone (a date or an amount with as
    many digits too: they cannot be told apart from a number typed in the wrong field);
    anything else is kept, white space collapsed, at most :data:`MAX_QUOTED` characters.
    """
    if value is None:
        return None
    text = " ".join(value.split())
    if "@" in text:
        text = mask_email(text) or ""
    elif sum(ch.isdigit() for ch in text) >= MIN_HIDDEN_DIGITS:
        text = mask_phone(text) or ""
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def _mask_phones(values: pd.Series) -> pd.Series:
    return values.map(mask_phone, na_action="ignore")


def _mask_emails(values: pd.Series) -> pd.Series:
    return values.map(mask_email, na_action="ignore")


def _mask_contacts(values: pd.Series, types: pd.Series) -> pd.Series:
    return pd.Series(
        [None if v is None else mask_contact(v, t) for v, t in zip(values, types, strict=True)],
        dtype=object,
    )


_mask_phone_udf = series_udf(_mask_phones, StringType())
_mask_email_udf = series_udf(_mask_emails, StringType())
_mask_contact_udf = series_udf(_mask_contacts, StringType())


def mask_phone_col(col: Column) -> Column:
    """Column version of :func:`mask_phone`."""
    return _mask_phone_udf(col)


def mask_email_col(col: Column) -> Column:
    """Column version of :func:`mask_email`."""
    return _mask_email_udf(col)


def mask_contact_col(value: Column, contact_type: Column) -> Column:
    """Column version of :func:`mask_contact`."""
    return _mask_contact_udf(value, contact_type)
