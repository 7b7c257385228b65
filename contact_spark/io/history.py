"""Contact history as every stage reads it: names matched to the config, odd rows reported.

Exports name campaigns and channels their own way (``cross_selling``, `` Sms``). Before,
a history row whose names differed from the config's only in case was silently ignored by
the fatigue rules, so a customer contacted last month by ``dem`` could be contacted again
by ``DEM`` against the policy. Now names are matched ignoring case and surrounding
spaces, in Spark (``normalise_history``, for the plan, the validator, the baseline and the
decisions) and in Arrow (``normalise_history_arrow``, for the real-time check), so every
check counts the same contacts.

Rows that still match nothing are reported in ``inputs_rejected`` (``history_rejections``):
a campaign or channel that is not in the config (such contacts count for no rule), or a
contact dated on or after the plan's first month (not history: it counts for no rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UNKNOWN_HISTORY_CAMPAIGN = "UNKNOWN_HISTORY_CAMPAIGN"
UNKNOWN_HISTORY_CHANNEL = "UNKNOWN_HISTORY_CHANNEL"
HISTORY_NOT_IN_THE_PAST = "HISTORY_NOT_IN_THE_PAST"


def _key(name: str) -> str:
    return name.strip().upper()


def matched_name(column: Column, names: Sequence[str]) -> Column:
    """``column`` as the configured name it equals ignoring case and surrounding spaces;
    unchanged when it matches none."""
    key = F.upper(F.trim(column))
    out = None
    for name in names:
        hit = key == F.lit(_key(name))
        out = F.when(hit, F.lit(name)) if out is None else out.when(hit, F.lit(name))
    return column if out is None else out.otherwise(column)


def normalise_history(history: DataFrame, campaigns: Sequence[str], channels: Sequence[str]) -> DataFrame:
    """Contact history with campaign and channel names matched to the configured ones."""
    return history.withColumn("campaign", matched_name(F.col("campaign"), campaigns)).withColumn(
        "channel", matched_name(F.col("channel"), channels)
    )


def normalise_history_arrow(history: pa.Table, campaigns: Sequence[str], channels: Sequence[str]) -> pa.Table:
    """The same matching on an Arrow table (the real-time check reads through delta-rs)."""
    for column, names in (("campaign", campaigns), ("channel", channels)):
        values = history[column]
        keys = pc.utf8_upper(pc.utf8_trim_whitespace(values))
        position = pc.index_in(keys, value_set=pa.array([_key(n) for n in names], pa.string()))
        matched = pc.take(pa.array(list(names), pa.string()), position)
        history = history.set_column(
            history.schema.get_field_index(column), column, pc.coalesce(matched, values)
        )
    return history


def history_rejections(
    history: DataFrame,
    campaigns: Sequence[str],
    channels: Sequence[str],
    first_month: dt.date,
    run_id: str,
) -> DataFrame:
    """Normalised history rows no rule can count, in the ``inputs_rejected`` layout."""
    reason = (
        F.when(~F.col("campaign").isin(*campaigns), F.lit(UNKNOWN_HISTORY_CAMPAIGN))
        .when(~F.col("channel").isin(*channels), F.lit(UNKNOWN_HISTORY_CHANNEL))
        .when(F.to_date("contact_date") >= F.lit(first_month), F.lit(HISTORY_NOT_IN_THE_PAST))
    )
    detail = F.when(
        F.col("reason_code") == HISTORY_NOT_IN_THE_PAST,
        F.lit(f"contact dated on or after the plan's first month {first_month:%Y-%m}: counts for no rule"),
    ).otherwise(F.lit("campaign/channel not in the config: the contact counts for no rule"))
    return (
        history.withColumn("reason_code", reason)
        .filter(F.col("reason_code").isNotNull())
        .select(
            F.lit(run_id).alias("run_id"),
            F.lit("contact_history").alias("table_name"),
            F.concat_ws(
                "|",
                F.coalesce("customer_id", F.lit("<null>")),
                F.coalesce(F.col("contact_date").cast("string"), F.lit("<null>")),
                F.coalesce("campaign", F.lit("<null>")),
                F.coalesce("channel", F.lit("<null>")),
            ).alias("row_ref"),
            "reason_code",
            detail.alias("detail"),
        )
    )
