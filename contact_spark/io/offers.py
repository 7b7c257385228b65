"""Spark columns of the per-offer numbers of the config, for every stage that reads contacts.

The cost of a contact depends on its campaign and channel (``campaigns.<C>.channel_costs``,
else ``channels.<H>.cost``), and a capacity may sum a numeric offer attribute (``margin``,
``success_value``). The planning stage, the validator, the greedy baseline and the
re-plans all turn contact rows into these numbers; they do it with these two functions, so
that none of them falls back to the channel's cost where an offer sets its own.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig


def contact_cost(config: AppConfig, campaign: str = "campaign", channel: str = "channel") -> Column:
    """Cost of the row's contact (null for a campaign or channel outside the config)."""
    # Campaign and channel names are upper-case identifiers: "/" cannot occur in either.
    pairs = [
        x
        for c in config.campaign_names
        for h in config.channel_names
        for x in (F.lit(f"{c}/{h}"), F.lit(float(config.contact_cost(c, h))))
    ]
    key = F.concat_ws("/", F.col(campaign), F.col(channel))
    return F.element_at(F.create_map(*pairs), key).cast("double")


def offer_attribute(config: AppConfig, name: str, campaign: str = "campaign") -> Column:
    """The row's campaign's value of the numeric offer attribute ``name`` (null where the
    campaign has none; the config only lets a capacity sum it over campaigns that have it)."""
    values = config.offer_values(name) or {}
    if not values:
        return F.lit(None).cast("double")
    pairs = [x for c, v in values.items() for x in (F.lit(c), F.lit(float(v)))]
    return F.element_at(F.create_map(*pairs), F.col(campaign)).cast("double")
