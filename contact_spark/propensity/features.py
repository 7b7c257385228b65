"""Feature frames for propensity models: customer attributes, contactability, past contacts.

One row per example: a past contact of a campaign × channel at month ``m`` (training and
validation), or a customer × campaign × channel at the plan's first month (scoring).
History features of a row at month ``m`` only count contacts of months strictly before
``m`` — never the month itself, never a later one — so no outcome of the future leaks in.
Contact *scores* are not used: they are computed from the outcomes of the whole history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.contract import BOOLEAN, NUMBER, STRING
from contact_spark.errors import ColumnTypeError, MissingColumnError
from contact_spark.io.columns import one_row
from contact_spark.io.months import months_apart

if TYPE_CHECKING:  # settings import the config package, which imports these settings
    from contact_spark.config.propensity import FeatureSettings, PropensitySettings

ID_COLUMNS = ("customer_id", "household_id")
KEY_COLUMNS = ("customer_id", "month", "campaign", "channel")
# Built from contact_history over the lookback window before the example's month.
HISTORY_FEATURES = (
    "hist_contacts",
    "hist_contacts_campaign",
    "hist_contacts_pair",
    "hist_contacts_last_month",
    "hist_positives",
    "hist_positives_campaign",
    "hist_responses",
    "hist_failed",
    "hist_months_since_contact",
)
# From the run's contacts stage: reachability on the channel, not the outcome-based score.
CONTACT_FEATURES = ("channel_contact", "usable_contacts")
RESPONSE_OUTCOMES = ("converted", "responded")
FAILED_OUTCOMES = ("bounced", "not_reached")


@dataclass(frozen=True)
class FeatureColumns:
    """The feature columns of a frame, in the order the vector assembler uses."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def numeric_all(self) -> tuple[str, ...]:
        """Customer numeric columns, then history and contact features."""
        return (*self.numeric, *HISTORY_FEATURES, *CONTACT_FEATURES)


def resolve_feature_columns(
    customers: DataFrame, settings: FeatureSettings, reserved: tuple[str, ...] = ()
) -> FeatureColumns:
    """The customer columns used as features: the configured ones, or detected by type.

    ``reserved`` columns (e.g. the behaviour segment) are never features. A configured
    column that is missing or has the wrong type raises naming it.
    """
    fields = {f.name: f.dataType for f in customers.schema.fields}
    skip = set(ID_COLUMNS) | set(settings.exclude_columns) | set(reserved)
    if settings.numeric_columns is not None:
        numeric = list(settings.numeric_columns)
        for name in numeric:
            if name not in fields:
                raise MissingColumnError("customers", name, sorted(fields))
            if not isinstance(fields[name], NUMBER + BOOLEAN):
                raise ColumnTypeError("customers", name, "number or boolean", fields[name].simpleString())
    else:
        numeric = [n for n, t in fields.items() if n not in skip and isinstance(t, NUMBER + BOOLEAN)]
    if settings.categorical_columns is not None:
        categorical = list(settings.categorical_columns)
        for name in categorical:
            if name not in fields:
                raise MissingColumnError("customers", name, sorted(fields))
            if not isinstance(fields[name], STRING):
                raise ColumnTypeError("customers", name, "string", fields[name].simpleString())
    else:
        strings = [n for n, t in fields.items() if n not in skip and isinstance(t, STRING)]
        categorical = []
        if strings:
            # One small aggregate: approximate distinct counts of the string columns.
            counts = one_row(customers.agg(*[F.approx_count_distinct(c).alias(c) for c in strings]))
            categorical = [c for c in strings if 0 < counts[c] <= settings.max_categories]
    return FeatureColumns(tuple(numeric), tuple(categorical))


def monthly_history(history: DataFrame, settings: PropensitySettings) -> DataFrame:
    """Past contacts per customer × month × campaign × channel, with outcome counts."""
    outcome = F.col("outcome")
    return (
        history.withColumn("month", F.trunc(F.col("contact_date").cast("date"), "month"))
        .groupBy("customer_id", "month", "campaign", "channel")
        .agg(
            F.count(F.lit(1)).alias("contacts"),
            F.sum(F.coalesce(outcome.isin(*settings.positive_outcomes), F.lit(False)).cast("int")).alias(
                "positives"
            ),
            F.sum(F.coalesce(outcome.isin(*RESPONSE_OUTCOMES), F.lit(False)).cast("int")).alias("responses"),
            F.sum(F.coalesce(outcome.isin(*FAILED_OUTCOMES), F.lit(False)).cast("int")).alias("failed"),
        )
    )


def training_examples(history: DataFrame, settings: PropensitySettings) -> DataFrame:
    """One row per past contact that arrived: ``customer_id, month, campaign, channel, label``."""
    outcome = F.col("outcome")
    kept = history.filter(~F.coalesce(outcome.isin(*settings.ignored_outcomes), F.lit(False)))
    return kept.select(
        "customer_id",
        F.trunc(F.col("contact_date").cast("date"), "month").alias("month"),
        "campaign",
        "channel",
        F.coalesce(outcome.isin(*settings.positive_outcomes), F.lit(False)).cast("double").alias("label"),
    )


def scoring_rows(customers: DataFrame, pairs: DataFrame, month: dt.date) -> DataFrame:
    """Every customer × campaign × channel at the plan's first month (label null)."""
    return (
        customers.select("customer_id")
        .dropDuplicates(["customer_id"])
        .crossJoin(F.broadcast(pairs))
        .select(
            "customer_id",
            F.lit(month).alias("month"),
            "campaign",
            "channel",
            F.lit(None).cast("double").alias("label"),
        )
    )


def history_features(rows: DataFrame, monthly: DataFrame, lookback_months: int) -> DataFrame:
    """``rows`` (``KEY_COLUMNS`` + label) with the history features of months before each row's month."""
    keys = rows.select(*KEY_COLUMNS).dropDuplicates()
    # Renamed columns: ``rows`` and ``monthly`` may come from the same history frame, and a
    # self-join on shared column references would silently match nothing.
    m = monthly.select(
        F.col("customer_id").alias("h_customer_id"),
        F.col("month").alias("h_month"),
        F.col("campaign").alias("h_campaign"),
        F.col("channel").alias("h_channel"),
        "contacts",
        "positives",
        "responses",
        "failed",
    )
    # Strictly before the row's month and within the lookback window: no leakage of the future.
    window = (F.col("h_month") < F.col("month")) & (
        F.col("h_month") >= F.add_months(F.col("month"), -lookback_months)
    )
    same_campaign = F.col("h_campaign") == F.col("campaign")
    same_pair = same_campaign & (F.col("h_channel") == F.col("channel"))
    last_month = F.col("h_month") == F.add_months(F.col("month"), -1)

    def total(column: str, condition: Column | None = None) -> Column:
        value = F.col(column) if condition is None else F.when(condition, F.col(column))
        return F.coalesce(F.sum(value), F.lit(0)).cast("double")

    joined = keys.join(m, on=(F.col("customer_id") == F.col("h_customer_id")) & window, how="left")
    aggregated = joined.groupBy(*KEY_COLUMNS).agg(
        total("contacts").alias("hist_contacts"),
        total("contacts", same_campaign).alias("hist_contacts_campaign"),
        total("contacts", same_pair).alias("hist_contacts_pair"),
        total("contacts", last_month).alias("hist_contacts_last_month"),
        total("positives").alias("hist_positives"),
        total("positives", same_campaign).alias("hist_positives_campaign"),
        total("responses").alias("hist_responses"),
        total("failed").alias("hist_failed"),
        F.coalesce(
            F.min(months_apart(F.col("month"), F.col("h_month"))).cast("double"),
            F.lit(float(lookback_months + 1)),
        )
        .cast("double")
        .alias("hist_months_since_contact"),
    )
    return rows.join(aggregated, list(KEY_COLUMNS), "left")


def contact_features(best_contacts: DataFrame, contactability: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(customer × channel → channel_contact, customer → usable_contacts) from the contacts stage."""
    per_channel = (
        best_contacts.select("customer_id", "channel")
        .dropDuplicates()
        .withColumn("channel_contact", F.lit(1.0))
    )
    per_customer = contactability.groupBy("customer_id").agg(
        F.max(F.col("usable_contacts").cast("double")).alias("usable_contacts")
    )
    return per_channel, per_customer


def feature_frame(
    rows: DataFrame,
    monthly: DataFrame,
    customers: DataFrame,
    columns: FeatureColumns,
    contacts: tuple[DataFrame, DataFrame],
    lookback_months: int,
) -> DataFrame:
    """Every feature column for ``rows``: booleans become 0/1, null numbers 0, a null category '__null__'."""
    per_channel, per_customer = contacts
    attributes = customers.dropDuplicates(["customer_id"]).select(
        "customer_id",
        *[F.col(c).cast("double").alias(c) for c in columns.numeric],
        *[F.coalesce(F.col(c).cast("string"), F.lit("__null__")).alias(c) for c in columns.categorical],
    )
    framed = (
        history_features(rows, monthly, lookback_months)
        .join(attributes, "customer_id", "left")
        .join(per_channel, ["customer_id", "channel"], "left")
        .join(per_customer, "customer_id", "left")
    )
    # A null attribute counts as 0 (no imputation model to version; documented).
    return framed.fillna(0.0, subset=[*columns.numeric, *CONTACT_FEATURES])
