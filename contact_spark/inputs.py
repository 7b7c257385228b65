"""The run's input tables: demo generation and the checked read that every stage starts from."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from contact_spark.config.models import AppConfig
from contact_spark.contract import (
    CONTACT_HISTORY,
    CONTACTS,
    PROPENSITIES,
    customers_spec,
    validate_input,
)
from contact_spark.data.generator import generate_demo_data
from contact_spark.io.catalog import INPUT_TABLES
from contact_spark.io.runs import Inputs
from contact_spark.io.tables import TableStore
from contact_spark.realtime.snapshot import REALTIME_TABLE

log = logging.getLogger(__name__)


def write_demo_data(spark: SparkSession, store: TableStore, config: AppConfig) -> dict[str, str]:
    """Generate the demo customer base and overwrite the four input tables with it."""
    data = generate_demo_data(spark, config)
    written = {}
    for name in INPUT_TABLES:
        store.overwrite(getattr(data, name), name)
        written[name] = store.location(name)
        log.info("wrote input table %s", name)
    return written


def load_inputs(store: TableStore, config: AppConfig) -> Inputs:
    """Read and check the input tables; a contract breach stops here, before any work."""
    specs = {
        "customers": customers_spec(config.channel_names),
        "contacts": CONTACTS,
        "contact_history": CONTACT_HISTORY,
        "propensities": PROPENSITIES,
    }
    frames = {name: validate_input(store.read(name), spec) for name, spec in specs.items()}
    if store.exists(REALTIME_TABLE):
        # Contacts confirmed through the real-time check count as history (docs/realtime.md).
        from contact_spark.realtime.history import with_realtime_contacts

        frames["contact_history"] = with_realtime_contacts(
            frames["contact_history"], store.read(REALTIME_TABLE)
        )
    return Inputs(**frames)
