"""Contacts confirmed in real time, as contact history for the next batch run (Spark side).

``load_inputs`` unions the ``realtime_contacts`` table into ``contact_history`` so every stage
(best-contact scoring, planning, validation, re-plan) counts them. A confirmed contact that
later also arrives in ``contact_history`` from the operational systems is counted once: the
dedupe key is ``(customer_id, campaign, channel, day of contact_date)`` and the history row
(the system of record) wins.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contact_spark.contract import CONTACT_HISTORY

DEDUPE_KEY = ("customer_id", "campaign", "channel", "_day")


def with_realtime_contacts(history: DataFrame, realtime: DataFrame) -> DataFrame:
    """``history`` plus the confirmed contacts it does not already hold, in its own schema."""
    columns = [c.name for c in CONTACT_HISTORY.columns if c.name in history.columns]
    types = dict(history.dtypes)
    known = history.select(
        "customer_id", "campaign", "channel", F.to_date(F.col("contact_date")).alias("_day")
    ).distinct()
    fresh = (
        realtime.withColumn("_day", F.to_date(F.col("contact_date")))
        .join(known, list(DEDUPE_KEY), "left_anti")
        .select(*[F.col(c).cast(types[c]).alias(c) for c in columns])
    )
    return history.unionByName(fresh, allowMissingColumns=True)
