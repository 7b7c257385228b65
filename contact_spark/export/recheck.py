"""Consent re-checked at export time, against the input tables as they are now.

A run plans on the input versions it pinned when it started; a month is sent weeks or
months later. Meanwhile a customer may have withdrawn consent, opted out of a channel or
lost the contact. So every plan row of the exported months is checked again against the
*latest* ``customers`` and ``contacts`` tables and the run's latest ``best_contacts``, and
gets the contact to use or the first reason it may not be sent (fail-closed: a null
consent or opt-out is a no, a customer or contact that cannot be found is a no).

Plain ``DataFrame -> DataFrame`` functions; :func:`read_current` reads the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from contact_spark.config.contacts import ContactSettings
from contact_spark.config.models import AppConfig
from contact_spark.contacts.normalize import normalizer
from contact_spark.contract import CONTACTS, customers_spec, validate_input
from contact_spark.eligibility.engine import (
    CHANNEL_OPT_OUT,
    CHANNEL_OPT_OUT_UNKNOWN,
    DUPLICATE_CUSTOMER_ID,
    NO_PRIVACY_CONSENT,
    PRIVACY_CONSENT_UNKNOWN,
    no_valid_contact,
)
from contact_spark.errors import MissingColumnError
from contact_spark.io.tables import TableStore, check_run_id

# Reasons a planned contact is not exported, in the order they are checked (the first wins).
CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"  # no longer in the customers table
CONTACT_REMOVED = "CONTACT_REMOVED"  # no raw row of the customer in contacts gives the best contact
REASONS = (
    CUSTOMER_NOT_FOUND,
    DUPLICATE_CUSTOMER_ID,
    NO_PRIVACY_CONSENT,
    PRIVACY_CONSENT_UNKNOWN,
    CHANNEL_OPT_OUT,
    CHANNEL_OPT_OUT_UNKNOWN,
    "NO_VALID_<KIND>",  # no best contact of the run for the channel's kind (EMAIL, MOBILE, PHONE)
    CONTACT_REMOVED,
)

# The tables read as they are now; their versions go into the manifest.
CURRENT_TABLES = ("customers", "contacts", "best_contacts")
BEST_COLUMNS = ("customer_id", "channel", "contact_id", "value", "contact_kind", "score")
CHECKED_COLUMNS = (
    "customer_id",
    "month",
    "campaign",
    "channel",
    "expected_value",
    "contact_id",
    "contact",
    "contact_kind",
    "reason_code",
)


@dataclass(frozen=True)
class CurrentInputs:
    """The tables consent is re-checked against, each read at the version in ``versions``."""

    customers: DataFrame
    contacts: DataFrame
    best_contacts: DataFrame  # the run's rows
    versions: dict[str, int]


def _columns(df: DataFrame, table: str, columns: tuple[str, ...]) -> DataFrame:
    for column in columns:
        if column not in df.columns:
            raise MissingColumnError(table, column, df.columns)
    return df.select(*columns)


def read_current(store: TableStore, config: AppConfig, run_id: str) -> CurrentInputs:
    """The latest ``customers`` and ``contacts`` (checked against the input contract) and the
    run's latest ``best_contacts``; one snapshot each (its version)."""
    run_id = check_run_id(run_id)
    versions = {table: store.version(table) for table in CURRENT_TABLES}
    customers = validate_input(
        store.read("customers", versions["customers"]), customers_spec(config.channel_names)
    )
    contacts = validate_input(store.read("contacts", versions["contacts"]), CONTACTS)

    best = store.read("best_contacts", versions["best_contacts"]).filter(F.col("run_id") == run_id)
    return CurrentInputs(
        customers=customers,
        contacts=contacts,
        best_contacts=_columns(best, "best_contacts", BEST_COLUMNS),
        versions=versions,
    )


def customer_flags(customers: DataFrame, channels: list[str]) -> DataFrame:
    """One row per customer id: how many rows carry it, its consent and its opt-outs.

    A duplicated id is refused whatever its rows say, so the minimum (deterministic) is as
    good as any of them; nulls stay null (a null is a no further on).
    """
    optouts = [f"optout_{channel.lower()}" for channel in channels]
    return (
        customers.filter(F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("_copies"),
            F.min("privacy_consent").alias("_consent"),
            *[F.min(column).alias(f"_{column}") for column in optouts],
        )
    )


def _channel_optout(channels: list[str]) -> Column:
    """The row's channel's opt-out flag (null for a channel without a column: opted out)."""
    expr: Column | None = None
    for channel in channels:
        value = F.col(f"_optout_{channel.lower()}")
        match = F.col("channel") == channel
        expr = F.when(match, value) if expr is None else expr.when(match, value)
    assert expr is not None  # a config has at least one channel
    return expr


def one_best_contact(best_contacts: DataFrame) -> DataFrame:
    """One contact per customer × channel: the best score, then the smallest contact id."""
    order = Window.partitionBy("customer_id", "channel").orderBy(
        F.col("score").desc_nulls_last(), F.col("contact_id").asc()
    )
    return (
        best_contacts.withColumn("_rank", F.row_number().over(order))
        .filter(F.col("_rank") == 1)
        .select("customer_id", "channel", "contact_id", F.col("value").alias("contact"), "contact_kind")
    )


def contacts_in_source(best: DataFrame, contacts: DataFrame, settings: ContactSettings) -> DataFrame:
    """``(customer_id, contact_id)`` of the best contacts still on their customer in the
    contacts table: a raw row of the same kind that normalises to the same value.

    Matched by value, not by raw row id: a row whose confirmation date changed, or that is
    written another way (``347 123 4567`` for ``+393471234567``), is the same contact; a row
    deleted, or edited to another number under the same id, is not. Only the raw rows of the
    given customers go through the normaliser (phonenumbers and email-validator are the
    costly part).
    """
    wanted = best.select(
        "customer_id",
        "contact_id",
        "contact",
        F.when(F.col("contact_kind") == "email", F.lit("email")).otherwise(F.lit("phone")).alias("_kind"),
    )
    raw = contacts.join(best.select("customer_id").distinct(), "customer_id", "left_semi").select(
        "customer_id", F.lower(F.trim(F.col("contact_type"))).alias("_kind"), F.col("value").alias("_raw")
    )
    present = (
        raw.withColumn("_norm", normalizer(settings)(F.col("_kind"), F.col("_raw")))
        .filter(F.col("_norm.error").isNull())
        .select("customer_id", "_kind", F.col("_norm.value").alias("contact"))
        .distinct()
    )
    return (
        wanted.join(present, ["customer_id", "_kind", "contact"])
        .select("customer_id", "contact_id")
        .distinct()
        .withColumn("_in_source", F.lit(True))
    )


def recheck(plan_rows: DataFrame, current: CurrentInputs, config: AppConfig) -> DataFrame:
    """Plan rows (``customer_id, month, campaign, channel, expected_value``) with the contact
    to use and ``reason_code``: null when the row may be sent, else the first reason.

    The contact is the run's latest best contact for the channel (the one the plan named,
    unless the contacts stage ran again for the run since).
    """
    channels = config.channel_names
    planned = plan_rows.select("customer_id", "month", "campaign", "channel", "expected_value")
    customers_planned = planned.select("customer_id").distinct()
    best = one_best_contact(current.best_contacts).join(customers_planned, "customer_id", "left_semi")
    present = contacts_in_source(best, current.contacts, config.contacts)
    flags = customer_flags(current.customers, channels)
    rows = (
        planned.join(flags, "customer_id", "left")
        .join(best, ["customer_id", "channel"], "left")
        .join(present, ["customer_id", "contact_id"], "left")
        .withColumn("_optout", _channel_optout(channels))
    )
    missing_contact = F.create_map(
        *[
            x
            for ch, c in config.channels.items()
            for x in (F.lit(ch), F.lit(no_valid_contact(c.contact_kind)))
        ]
    )
    checks = [
        (F.col("_copies").isNull(), F.lit(CUSTOMER_NOT_FOUND)),
        (F.col("_copies") > 1, F.lit(DUPLICATE_CUSTOMER_ID)),
        (F.col("_consent") == F.lit(False), F.lit(NO_PRIVACY_CONSENT)),
        (F.col("_consent").isNull(), F.lit(PRIVACY_CONSENT_UNKNOWN)),
        (F.col("_optout") == F.lit(True), F.lit(CHANNEL_OPT_OUT)),
        (F.col("_optout").isNull(), F.lit(CHANNEL_OPT_OUT_UNKNOWN)),
        (F.col("contact_id").isNull(), F.element_at(missing_contact, F.col("channel"))),
        (F.col("_in_source").isNull(), F.lit(CONTACT_REMOVED)),
    ]
    first_reason = F.coalesce(*[F.when(condition, code) for condition, code in checks])
    # The gate once more on its own (never null), so that no slip in the list above can open
    # it: only one customer row, consent true, opt-out false and a contact in the source.
    allowed = (
        F.col("_copies").eqNullSafe(1)
        & F.col("_consent").eqNullSafe(True)
        & F.col("_optout").eqNullSafe(False)
        & F.col("_in_source").eqNullSafe(True)
    )
    reason = F.when(~allowed, F.coalesce(first_reason, F.lit(PRIVACY_CONSENT_UNKNOWN)))
    return rows.withColumn("reason_code", reason).select(*CHECKED_COLUMNS)
