"""Masked phones and addresses: the helpers live in :mod:`contact_spark.io.masking`.

They moved down to the io layer so that the input import (``io.importer``), which runs
before any stage, masks the values it quotes in its quarantine with the same functions;
this module keeps the contacts stage's imports working.
"""

from __future__ import annotations

from contact_spark.io.masking import (
    MIN_HIDDEN_DIGITS,
    TAIL_DIGITS,
    mask_contact,
    mask_contact_col,
    mask_email,
    mask_email_col,
    mask_phone,
    mask_phone_col,
    mask_value,
)

__all__ = [
    "MIN_HIDDEN_DIGITS",
    "TAIL_DIGITS",
    "mask_contact",
    "mask_contact_col",
    "mask_email",
    "mask_email_col",
    "mask_phone",
    "mask_phone_col",
    "mask_value",
]
