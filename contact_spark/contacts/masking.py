"""Masked phones and addresses for logs, reports and the rejected table.

``+39 347 123 4567`` → ``+39 347 *** **67``; ``mario.rossi@gmail.com`` → ``m***i@gmail.com``.
Pure functions for Python code and the same functions as Spark Column functions
(vectorised pandas UDFs), so a raw value never needs to leave its column unmasked.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

# Return types are objects, not DDL strings: DDL needs a session at import time.
# Characters shown as typed: they carry the shape of a number, not its identity.
_SEPARATORS = set("+ -./()")
MAX_HEAD_DIGITS = 5
TAIL_DIGITS = 2


def mask_phone(value: str | None) -> str | None:
    """Hide the middle digits of a phone: at most 5 leading and 2 trailing digits stay.

    The head shrinks with the number (``n - 7`` digits) so that at least 5 digits are
    always hidden; with fewer than 7 digits all are hidden. Any other character (letters,
    emoji) becomes ``*``; separators stay so the shape remains readable.
    """
    if value is None:
        return None
    text = value.strip()
    n = sum(ch.isdigit() for ch in text)
    head = min(MAX_HEAD_DIGITS, max(0, n - 7))
    tail = TAIL_DIGITS if n >= 7 else 0
    out, seen = [], 0
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= head or seen > n - tail else "*")
        else:
            out.append(ch if ch in _SEPARATORS else "*")
    return "".join(out)


def mask_email(value: str | None) -> str | None:
    """Keep the first and last character of the local part and the domain: ``m***o@gmail.com``.

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
        masked = f"{local[0]}***{local[-1]}"
    return f"{masked}{at}{domain}"


def mask_contact(value: str | None, contact_type: str | None) -> str | None:
    """Mask by type; an unknown type is masked as an e-mail when it has an ``@``."""
    kind = (contact_type or "").strip().lower()
    if kind == "email" or (kind != "phone" and value is not None and "@" in value):
        return mask_email(value)
    return mask_phone(value)


@pandas_udf(StringType())  # type: ignore[call-overload]
def _mask_phone_udf(values: pd.Series) -> pd.Series:
    return values.map(mask_phone, na_action="ignore")


@pandas_udf(StringType())  # type: ignore[call-overload]
def _mask_email_udf(values: pd.Series) -> pd.Series:
    return values.map(mask_email, na_action="ignore")


@pandas_udf(StringType())  # type: ignore[call-overload]
def _mask_contact_udf(values: pd.Series, types: pd.Series) -> pd.Series:
    return pd.Series(
        [None if v is None else mask_contact(v, t) for v, t in zip(values, types, strict=True)],
        dtype=object,
    )


def mask_phone_col(col: Column) -> Column:
    """Column version of :func:`mask_phone`."""
    return _mask_phone_udf(col)


def mask_email_col(col: Column) -> Column:
    """Column version of :func:`mask_email`."""
    return _mask_email_udf(col)


def mask_contact_col(value: Column, contact_type: Column) -> Column:
    """Column version of :func:`mask_contact`."""
    return _mask_contact_udf(value, contact_type)
