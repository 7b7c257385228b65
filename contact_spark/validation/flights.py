"""Campaign calendars: a planned contact outside its campaign's flight is a violation.

Read from the config alone (``campaigns.<NAME>.flight``), not from the solver's arrays: each
campaign with a flight gives a column condition on the plan row's campaign, channel and
month, so the check is one filter over the plan (no join, nothing collected).
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.validation.frames import violation_rows


def outside_flight(config: AppConfig) -> Column | None:
    """True for a row whose (campaign, channel, month) lies outside the campaign's flight
    (on the channel's own range when it has one); None when no campaign has a flight."""
    conditions: list[Column] = []
    for name, campaign in config.campaigns.items():
        flight = campaign.flight
        if flight is None:
            continue
        month = F.col("month").cast("date")
        for channel in config.channel_names:
            run = flight.channels.get(channel, flight)
            inside = month.between(F.lit(run.start), F.lit(run.to))
            conditions.append(
                (F.col("campaign") == name) & (F.col("channel") == channel) & ~F.coalesce(inside, F.lit(True))
            )
    return reduce(lambda a, b: a | b, conditions) if conditions else None


def check_flights(plan: DataFrame, config: AppConfig) -> list[DataFrame]:
    """One ERROR row (rule ``outside_flight``, kind ``flight``) per plan row outside its flight;
    a null month is the horizon check's (:mod:`.rows`)."""
    outside = outside_flight(config)
    if outside is None:
        return []
    detail = F.concat(
        F.col("campaign"),
        F.lit("/"),
        F.col("channel"),
        F.lit(" planned in "),
        F.date_format(F.col("month").cast("date"), "yyyy-MM"),
        F.lit(", outside the campaign's flight"),
    )
    return [violation_rows(plan.filter(outside), "outside_flight", "flight", F.col("month"), detail)]
