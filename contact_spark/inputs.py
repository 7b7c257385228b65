"""The run's input tables: demo generation and the checked read that every stage starts from."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from pyspark.sql import SparkSession

from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.contract import (
    CONTACT_HISTORY,
    CONTACTS,
    PROPENSITIES,
    customers_spec,
    validate_input,
)
from contact_spark.data.generator import generate_demo_data
from contact_spark.errors import InputContractError
from contact_spark.io.catalog import INPUT_TABLES
from contact_spark.io.history import normalise_history
from contact_spark.io.run_inputs import latest_commits_tagged
from contact_spark.io.runs import Inputs
from contact_spark.io.tables import TableStore
from contact_spark.realtime.snapshot import REALTIME_TABLE

log = logging.getLogger(__name__)


# Every table a run's inputs are read from, so every one a run pins (``io.run_inputs``).
PINNED_TABLES = (*INPUT_TABLES, REALTIME_TABLE)


def write_demo_data(spark: SparkSession, store: TableStore, config: AppConfig) -> dict[str, int]:
    """Generate the demo customer base into the four input tables; returns the versions written.

    The versions are the ones *this* write committed (found by the commit's tag), so a
    concurrent ``--generate`` of another run cannot make this run read its data. When the
    tables' last commits are already this configuration's generated data (a rerun), they
    are kept: same data, same versions, so a crashed run can resume.
    """
    prefix = f"demo:{config_hash(config)[:16]}:"
    kept = latest_commits_tagged(store, INPUT_TABLES, prefix)
    if kept is not None:
        log.info("input tables already hold this configuration's demo data: kept")
        return kept
    data = generate_demo_data(spark, config)
    tag = f"{prefix}{uuid.uuid4().hex}"
    for name in INPUT_TABLES:
        store.overwrite(getattr(data, name), name, tag=tag)
        log.info("wrote input table %s", name)
    return {name: store.tagged_version(name, tag) for name in INPUT_TABLES}


def load_inputs(store: TableStore, config: AppConfig, versions: Mapping[str, int] | None = None) -> Inputs:
    """Read and check the input tables (as of ``versions`` when given, see
    ``io.run_inputs``); a contract breach stops here, before any work."""
    versions = versions or {}
    specs = {
        "customers": customers_spec(config.channel_names),
        "contacts": CONTACTS,
        "contact_history": CONTACT_HISTORY,
        "propensities": PROPENSITIES,
    }
    frames = {
        name: validate_input(store.read(name, version=versions.get(name)), spec)
        for name, spec in specs.items()
    }
    if frames["customers"].limit(1).count() == 0:
        raise InputContractError("input table 'customers' has no rows: there is nobody to plan for")
    # Names as in the config, ignoring case and spaces: every rule counts these contacts.
    frames["contact_history"] = normalise_history(
        frames["contact_history"], config.campaign_names, config.channel_names
    )
    if store.exists(REALTIME_TABLE):
        # Contacts confirmed through the real-time check count as history (docs/realtime.md).
        from contact_spark.realtime.history import with_realtime_contacts

        frames["contact_history"] = with_realtime_contacts(
            frames["contact_history"], store.read(REALTIME_TABLE, version=versions.get(REALTIME_TABLE))
        )
    return Inputs(**frames)
