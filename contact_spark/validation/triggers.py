"""Independent checks of trigger effects: triggered campaigns only while their event is
active, nothing in scope while a suppressing event is active.

The events checked are those a trigger run applied to the plan (``trigger_events`` rows
with status ``applied``); their effects are recomputed here from the config, without the
planner's overlay code.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.validation.frames import in_scope


def _active(events: DataFrame, months: int) -> Column:
    start = F.trunc(F.col("event_time").cast("date"), "month")
    return (F.col("month") >= start) & (F.col("month") < F.add_months(start, months))


def check_triggers(
    spark: SparkSession, config: AppConfig, plan: DataFrame, applied: DataFrame
) -> list[DataFrame]:
    """Violation frames (customer_id, rule, kind, month, detail) of the trigger effects.

    ``applied``: (customer_id, event_type, event_time) of the events applied to the plan.
    """
    frames: list[DataFrame] = []
    contacts = plan.select("customer_id", "month", "campaign", "channel")
    columns: list[Column | str] = [
        "customer_id",
        F.col("rule"),
        F.lit("trigger").alias("kind"),
        F.col("month").cast("date").alias("month"),
        F.col("detail"),
    ]
    for campaign in config.trigger_campaigns:
        openers = [
            (event, effect) for event, effect in config.triggers.events.items() if effect.campaign == campaign
        ]
        candidates = contacts.filter(F.col("campaign") == campaign)
        joined = candidates.join(applied, "customer_id", "left")
        opens = reduce(
            lambda acc, pair: (
                acc
                | (
                    (F.col("event_type") == pair[0])
                    & F.col("channel").isin(list(pair[1].propensity))
                    & _active(joined, pair[1].months)
                )
            ),
            openers,
            F.lit(False),
        )
        covered = (
            joined.groupBy("customer_id", "month", "campaign", "channel")
            .agg(F.max(F.coalesce(opens, F.lit(False)).cast("int")).alias("_open"))
            .filter(F.col("_open") == 0)
        )
        frames.append(
            covered.select(
                "customer_id",
                F.lit(f"trigger_window:{campaign}").alias("rule"),
                "month",
                F.concat(
                    F.lit(f"{campaign}/"),
                    F.col("channel"),
                    F.lit(" planned outside the months an applied event opens it"),
                ).alias("detail"),
            ).select(*columns)
        )
    for event, effect in config.triggers.events.items():
        if effect.suppress is None:
            continue
        hits = (
            contacts.filter(in_scope(effect.suppress.resolve(config)))
            .join(applied.filter(F.col("event_type") == event), "customer_id")
            .filter(_active(contacts, effect.months))
            .select("customer_id", "month", "campaign", "channel")
            .distinct()
        )
        frames.append(
            hits.select(
                "customer_id",
                F.lit(f"trigger_suppress:{event}").alias("rule"),
                "month",
                F.concat(
                    F.col("campaign"),
                    F.lit("/"),
                    F.col("channel"),
                    F.lit(f" planned while a {event} suppresses it"),
                ).alias("detail"),
            ).select(*columns)
        )
    del spark
    return frames
