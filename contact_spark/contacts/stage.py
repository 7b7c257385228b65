"""The contacts stage: clean, score, rank and write the four contact tables for a run.

Entry point: :func:`run_contacts_stage`. Tables (run-scoped, replaced on rerun):
``contacts_clean``, ``contacts_rejected``, ``best_contacts``, ``contactability``.
"""

from __future__ import annotations

import logging
from typing import Protocol

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.contacts.clean import (
    attach_history,
    attach_holders,
    check_contacts,
    history_signals,
    merge_duplicates,
    normalize_contacts,
    rejected_rows,
    with_contact_id,
)
from contact_spark.contacts.ranking import (
    assign_owner,
    best_contacts,
    customer_contactability,
    household_best,
    rank_base,
    rank_contacts,
    reason_codes,
)
from contact_spark.contacts.scoring import score_contacts
from contact_spark.io.tables import RUN_ID_COLUMN, TableStore

log = logging.getLogger(__name__)

CLEAN_COLUMNS = (
    "customer_id",
    "household_id",
    "contact_id",
    "contact_ids",
    "contact_type",
    "value",
    "sources",
    "n_records",
    "created_at",
    "last_confirmed_at",
    "phone_type",
    "phone_region",
    "email_domain",
    "email_domain_class",
    "email_role",
    "valid",
    "customers_sharing",
    "holders",
    "n_converted",
    "n_responded",
    "n_no_response",
    "n_not_reached",
    "n_bounced",
    "last_reached_at",
    "last_bounced",
    "base_score",
    "score",
    "owner",
    "rank",
    "rank_email",
    "rank_mobile",
    "rank_phone",
    "reason_codes",
)
REJECTED_COLUMNS = ("customer_id", "contact_id", "contact_type", "source", "masked_value", "reason_code")
BEST_COLUMNS = ("customer_id", "channel", "contact_id", "value", "contact_kind", "score")
CONTACTABILITY_COLUMNS = ("customer_id", "household_id", "score", "rank", "household_best", "usable_contacts")
TABLES = ("contacts_clean", "contacts_rejected", "best_contacts", "contactability")


class ContactInputs(Protocol):
    """What the stage reads: ``pipeline.Inputs`` (or anything with these three frames)."""

    @property
    def customers(self) -> DataFrame: ...
    @property
    def contacts(self) -> DataFrame: ...
    @property
    def contact_history(self) -> DataFrame: ...


def _with_run(df: DataFrame, run_id: str, columns: tuple[str, ...]) -> DataFrame:
    return df.select(F.lit(run_id).alias(RUN_ID_COLUMN), *columns)


def build_clean_contacts(checked: DataFrame, history: DataFrame, config: AppConfig) -> DataFrame:
    """Checked raw rows → merged, scored, owned, ranked and flagged clean contacts."""
    settings = config.contacts
    channel_kinds = {ch: c.contact_kind for ch, c in config.channels.items()}
    # The checked rows double as a lookup: history contacts written like a contact are
    # not parsed again (phonenumbers is the stage's largest cost).
    # Scores are as of the plan's first month: a contact dated later (bad data, or a
    # real-time confirmation within the plan) says nothing about the contact before it.
    past = history.filter(F.to_date("contact_date") < F.lit(config.run.first_month))
    signals = history_signals(past, settings, channel_kinds, normalized=checked)
    return (
        checked.transform(merge_duplicates)
        .transform(attach_history, signals)
        .transform(attach_holders, settings)
        .transform(score_contacts, settings, config.run.first_month)
        .transform(assign_owner, settings)
        .transform(rank_contacts, settings)
        .transform(reason_codes, settings)
    )


def run_contacts_stage(
    spark: SparkSession, store: TableStore, config: AppConfig, inputs: ContactInputs, run_id: str
) -> dict[str, str]:
    """Write ``contacts_clean``, ``contacts_rejected``, ``best_contacts``, ``contactability``.

    Returns table name → location. Scores are as of ``run.first_month``, so a rerun on
    the same inputs writes the same rows. Logs carry counts only, never a contact.
    """
    settings = config.contacts
    channel_kinds = {ch: c.contact_kind for ch, c in config.channels.items()}
    checked = (
        inputs.contacts.transform(with_contact_id)
        .transform(normalize_contacts, settings)
        .transform(check_contacts, inputs.customers)
        # Parsed once: both the rejected and the clean table are built from these rows.
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    written: dict[str, str] = {}
    try:
        rejected = _with_run(rejected_rows(checked), run_id, REJECTED_COLUMNS)
        store.replace_run(rejected, "contacts_rejected", run_id)
        written["contacts_rejected"] = store.location("contacts_rejected")

        clean = _with_run(
            build_clean_contacts(checked, inputs.contact_history, config), run_id, CLEAN_COLUMNS
        )
        store.replace_run(clean, "contacts_clean", run_id)
        written["contacts_clean"] = store.location("contacts_clean")
    finally:
        checked.unpersist()

    # Read back from Delta rather than recompute the parsing and the windows.
    stored = store.read_run("contacts_clean", run_id)
    best = _with_run(best_contacts(stored, channel_kinds), run_id, BEST_COLUMNS)
    store.replace_run(best, "best_contacts", run_id)
    written["best_contacts"] = store.location("best_contacts")

    kinds = sorted(set(channel_kinds.values()))
    contactability = (
        customer_contactability(stored, inputs.customers, settings, kinds)
        .transform(rank_base)
        .transform(household_best)
    )
    store.replace_run(_with_run(contactability, run_id, CONTACTABILITY_COLUMNS), "contactability", run_id)
    written["contactability"] = store.location("contactability")
    log.info("contacts stage: wrote %s for run %s", ", ".join(sorted(written)), run_id)
    return written
