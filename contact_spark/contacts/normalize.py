"""One normaliser for both kinds of contact, pure and as a vectorised pandas UDF.

phonenumbers and email-validator work one value at a time in Python, so Spark hands
them Arrow batches (``pandas_udf``) and every worker caches results per distinct value
(``lru_cache`` in :mod:`phones` and :mod:`emails`): a number repeated across the base
or the contact history is parsed once per worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import types as T

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts import reasons as R
from contact_spark.contacts.emails import EmailRules, normalize_email
from contact_spark.contacts.phones import normalize_phone
from contact_spark.io.udf import series_udf

NORMALIZED_SCHEMA = T.StructType(
    [
        T.StructField("value", T.StringType()),
        T.StructField("phone_type", T.StringType()),
        T.StructField("phone_region", T.StringType()),
        T.StructField("valid", T.BooleanType()),
        T.StructField("email_domain", T.StringType()),
        T.StructField("email_domain_class", T.StringType()),
        T.StructField("email_role", T.BooleanType()),
        T.StructField("error", T.StringType()),
    ]
)


class Normalized(NamedTuple):
    """The fields of :data:`NORMALIZED_SCHEMA`, in order."""

    value: str | None = None
    phone_type: str | None = None
    phone_region: str | None = None
    valid: bool | None = None
    email_domain: str | None = None
    email_domain_class: str | None = None
    email_role: bool | None = None
    error: str | None = None


def email_rules(settings: ContactSettings) -> EmailRules:
    e = settings.email
    return EmailRules.of(
        e.public_domains,
        e.role_local_parts,
        e.extra_disposable_domains,
        e.lowercase_local_part,
        e.allow_smtputf8,
        e.detect_typos,
    )


def normalize_contact(kind: str | None, raw: str | None, region: str, rules: EmailRules) -> Normalized:
    """Normalise ``raw`` as a ``phone`` or ``email``; any other kind is an error code."""
    try:
        if kind == "phone":
            p = normalize_phone(raw, region)
            return Normalized(p.value, p.number_type, p.region, p.valid, error=p.error)
        if kind == "email":
            e = normalize_email(raw, rules)
            valid = None if e.error else True
            return Normalized(
                e.value,
                valid=valid,
                email_domain=e.domain,
                email_domain_class=e.domain_class,
                email_role=e.role,
                error=e.error,
            )
        return Normalized(error=R.UNKNOWN_CONTACT_TYPE)
    except Exception:
        # A library bug on one odd value must quarantine that row, not stop the job.
        return Normalized(error=R.NORMALIZER_ERROR)


def normalizer(settings: ContactSettings) -> Callable[[Column, Column], Column]:
    """A Column function ``(kind, raw value) -> struct`` (:data:`NORMALIZED_SCHEMA`).

    ``kind`` must already be trimmed and lower-cased.
    """
    region = settings.default_region
    rules = email_rules(settings)
    names = list(Normalized._fields)

    def _normalize(kinds: pd.Series, values: pd.Series) -> pd.DataFrame:
        rows = [
            normalize_contact(k, None if v is None or v is pd.NA else v, region, rules)
            for k, v in zip(kinds, values, strict=True)
        ]
        out = pd.DataFrame.from_records(rows, columns=names)
        # Arrow needs object columns for nullable booleans.
        for col in ("valid", "email_role"):
            out[col] = out[col].astype(object)
        return out

    # A pure function, but marked non-deterministic so that the optimizer never moves it:
    # a filter on its result was pushed below the history lookup's anti-join, and every
    # history contact was parsed instead of only those the lookup did not know.
    return series_udf(_normalize, NORMALIZED_SCHEMA).asNondeterministic()
