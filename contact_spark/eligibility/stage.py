"""The eligibility stage: read inputs and best contacts, write eligibility tables."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from contact_spark.config.models import AppConfig
from contact_spark.eligibility.engine import BEST_CONTACT_COLUMNS, compute_eligibility, eligibility_funnel
from contact_spark.errors import MissingColumnError
from contact_spark.io.catalog import ELIGIBILITY_TABLES
from contact_spark.io.history import history_rejections
from contact_spark.io.runs import refuse_raw_contact_column
from contact_spark.io.tables import TableStore

log = logging.getLogger(__name__)


def best_contacts_for_run(store: TableStore, run_id: str) -> DataFrame:
    """The run's best contacts, checked for the columns eligibility needs: their keys and
    scores, never the raw phone or address (``value``)."""
    df = store.read_run("best_contacts", run_id)
    for column in BEST_CONTACT_COLUMNS:
        if column not in df.columns:
            raise MissingColumnError("best_contacts", column, df.columns)
    return df.select(*BEST_CONTACT_COLUMNS)


def run_eligibility_stage(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    customers: DataFrame,
    propensities: DataFrame,
    run_id: str,
    best_contacts: DataFrame | None = None,
    contact_history: DataFrame | None = None,
) -> dict[str, str]:
    """Compute and write ``eligibility``, ``eligibility_funnel`` and ``inputs_rejected`` for the run.

    ``contact_history`` (the input table, names normalised) adds its rows no rule can count
    to ``inputs_rejected``.
    """
    refuse_raw_contact_column(store, "eligibility")
    contacts = best_contacts if best_contacts is not None else best_contacts_for_run(store, run_id)
    household_best = None
    if config.contacts.household.suppress_other_members:
        household_best = store.read_run("contactability", run_id).select("customer_id", "household_best")
    result = compute_eligibility(spark, config, customers, contacts, propensities, run_id, household_best)
    store.replace_run(result.eligibility, "eligibility", run_id)
    # The funnel and rejections are read back from the written table: one pass over candidates.
    written = store.read_run("eligibility", run_id)

    store.replace_run(eligibility_funnel(written, run_id), "eligibility_funnel", run_id)
    rejected = result.rejected
    if contact_history is not None:
        rejected = rejected.unionByName(
            history_rejections(
                contact_history, config.campaign_names, config.channel_names, config.run.first_month, run_id
            )
        )
    store.replace_run(rejected, "inputs_rejected", run_id)
    for table in ELIGIBILITY_TABLES:
        log.info("eligibility: wrote %s", table)
    return {table: store.location(table) for table in ELIGIBILITY_TABLES}
