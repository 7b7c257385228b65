"""Raw contacts → normalised, checked rows; duplicates merged; history signals per contact.

Every function is a plain ``DataFrame -> DataFrame`` transformation, chained with
``df.transform(f, *args)``. Every raw row ends in exactly one of two places: the
merged clean contacts or the rejected rows (with the first failing reason code).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.config.contacts import OUTCOMES, ContactSettings
from contact_spark.contacts import reasons as R
from contact_spark.contacts.masking import mask_contact_col
from contact_spark.contacts.normalize import normalizer

UNKNOWN_SOURCE = "UNKNOWN"
REACHED_OUTCOMES = ("converted", "responded", "no_response")
_NULL_TOKEN = "\u0000"


def _key_part(col: Column) -> Column:
    return F.coalesce(col.cast("string"), F.lit(_NULL_TOKEN))


def with_contact_id(df: DataFrame) -> DataFrame:
    """Give every raw row a ``contact_id``: the given one, else a hash of the whole row.

    Identical raw rows get the same derived id; they merge into one clean contact anyway.
    """
    derived = F.concat(
        F.lit("R"),
        F.substring(
            F.sha2(
                F.concat_ws(
                    "|",
                    *[
                        _key_part(F.col(c))
                        for c in (
                            "customer_id",
                            "contact_type",
                            "value",
                            "source",
                            "created_at",
                            "last_confirmed_at",
                        )
                    ],
                ),
                256,
            ),
            1,
            16,
        ),
    )
    given = F.col("contact_id") if "contact_id" in df.columns else F.lit(None).cast("string")
    blank = given.isNull() | (F.trim(given) == "")
    return df.withColumn("contact_id", F.when(blank, derived).otherwise(given))


def normalize_contacts(df: DataFrame, settings: ContactSettings) -> DataFrame:
    """Add ``kind`` (trimmed lower-case type) and ``norm`` (the normaliser's struct)."""
    kind = F.lower(F.trim(F.col("contact_type")))
    return df.withColumn("kind", kind).withColumn("norm", normalizer(settings)(F.col("kind"), F.col("value")))


def check_contacts(df: DataFrame, customers: DataFrame) -> DataFrame:
    """Attach ``household_id`` and the first failing ``reason_code`` (null when clean)."""
    # groupBy, not dropDuplicates: a duplicated customer_id must not pick a household at random.
    known = customers.groupBy("customer_id").agg(
        F.min("household_id").alias("household_id"), F.lit(True).alias("_known")
    )
    joined = df.join(known, on="customer_id", how="left")
    reason = (
        F.when(
            F.col("customer_id").isNull() | (F.trim(F.col("customer_id")) == ""), F.lit(R.MISSING_CUSTOMER_ID)
        )
        .when(F.col("norm.error").isNotNull(), F.col("norm.error"))
        .when(F.col("_known").isNull(), F.lit(R.UNKNOWN_CUSTOMER))
    )
    return joined.withColumn("reason_code", reason).drop("_known")


def rejected_rows(df: DataFrame) -> DataFrame:
    """The rows with a reason code: identity of the raw row, masked value, reason."""
    return df.filter(F.col("reason_code").isNotNull()).select(
        "customer_id",
        "contact_id",
        "contact_type",
        "source",
        mask_contact_col(F.col("value"), F.col("contact_type")).alias("masked_value"),
        "reason_code",
    )


def merge_duplicates(df: DataFrame) -> DataFrame:
    """One row per customer × kind × normalised value, sources and ids merged.

    The smallest raw ``contact_id`` names the merged contact, so it is stable across
    reruns; every merged raw id is kept in ``contact_ids``.
    """
    source = F.upper(F.trim(F.col("source")))
    source = F.when(source.isNull() | (source == ""), F.lit(UNKNOWN_SOURCE)).otherwise(source)
    clean = df.filter(F.col("reason_code").isNull()).select(
        "customer_id",
        "household_id",
        F.col("kind").alias("contact_type"),
        F.col("norm.value").alias("value"),
        "contact_id",
        source.alias("source"),
        F.col("created_at").cast("timestamp").alias("created_at"),
        F.col("last_confirmed_at").cast("timestamp").alias("last_confirmed_at"),
        *[
            F.col(f"norm.{name}").alias(name)
            for name in (
                "phone_type",
                "phone_region",
                "valid",
                "email_domain",
                "email_domain_class",
                "email_role",
            )
        ],
    )
    return clean.groupBy("customer_id", "contact_type", "value").agg(
        F.min("household_id").alias("household_id"),
        F.min("contact_id").alias("contact_id"),
        F.array_sort(F.collect_set("contact_id")).alias("contact_ids"),
        F.array_sort(F.collect_set("source")).alias("sources"),
        F.count(F.lit(1)).cast("int").alias("n_records"),
        F.min("created_at").alias("created_at"),
        F.max("last_confirmed_at").alias("last_confirmed_at"),
        # The next fields depend on the normalised value only: equal on every merged row.
        F.max("phone_type").alias("phone_type"),
        F.max("phone_region").alias("phone_region"),
        F.max("valid").alias("valid"),
        F.max("email_domain").alias("email_domain"),
        F.max("email_domain_class").alias("email_domain_class"),
        F.max("email_role").alias("email_role"),
    )


def history_signals(
    history: DataFrame,
    settings: ContactSettings,
    channel_kinds: Mapping[str, str],
    normalized: DataFrame | None = None,
) -> DataFrame:
    """Past contacts per customer × kind × normalised value: counts by outcome, dates.

    The contact used is normalised like the contacts (so ``347-1234567`` in the history
    matches ``+393471234567``). Its kind comes from the channel's ``contact_kind``;
    for a channel not in the config, an ``@`` means e-mail. Outcomes outside the
    contract are ignored.

    ``normalized`` (rows with ``kind``, raw ``value`` and ``norm``, e.g. the contacts
    already checked) is a lookup: a history contact written exactly like one of them
    takes its result, and only the others go through phonenumbers / email-validator.
    Normalisation is a pure function of (kind, raw value), so the result is the same.
    """
    kind_map = F.create_map(
        *[
            x
            for ch, k in sorted(channel_kinds.items())
            for x in (F.lit(ch), F.lit("email" if k == "email" else "phone"))
        ]
    )
    guessed = F.when(F.col("contact").contains("@"), F.lit("email")).otherwise(F.lit("phone"))
    outcome = F.lower(F.trim(F.col("outcome")))
    rows = history.select(
        "customer_id",
        F.to_date("contact_date").alias("day"),
        F.coalesce(F.element_at(kind_map, F.col("channel")), guessed).alias("kind"),
        "contact",
        outcome.alias("outcome"),
    ).filter(F.col("contact").isNotNull() & F.col("outcome").isin(*OUTCOMES))
    normalize = normalizer(settings)
    if normalized is None:
        rows = rows.withColumn("norm", normalize(F.col("kind"), F.col("contact")))
    else:
        # Split, not CASE WHEN: Spark would run the Python UDF on every row anyway.
        lookup = normalized.select("kind", F.col("value").alias("contact"), "norm").dropDuplicates(
            ["kind", "contact"]
        )
        known = rows.join(lookup, ["kind", "contact"])
        unknown = rows.join(lookup, ["kind", "contact"], "left_anti").withColumn(
            "norm", normalize(F.col("kind"), F.col("contact"))
        )
        rows = known.unionByName(unknown)
    rows = rows.filter(F.col("norm.error").isNull())

    def count(name: str) -> Column:
        return F.count(F.when(F.col("outcome") == name, 1)).cast("int").alias(f"n_{name}")

    def last(cond: Column) -> Column:
        return F.max(F.when(cond, F.col("day")))

    return rows.groupBy(
        "customer_id", F.col("kind").alias("contact_type"), F.col("norm.value").alias("value")
    ).agg(
        *[count(o) for o in OUTCOMES],
        last(F.col("outcome").isin(*REACHED_OUTCOMES)).alias("last_reached_at"),
        # A bounce on the latest contacted day: the address or number is likely dead now.
        (last(F.lit(True)) == last(F.col("outcome") == "bounced")).alias("last_bounced"),
    )


def attach_history(contacts: DataFrame, signals: DataFrame) -> DataFrame:
    """Left-join history signals; a contact never used gets zero counts."""
    joined = contacts.join(signals, on=["customer_id", "contact_type", "value"], how="left")
    return joined.fillna(0, subset=[f"n_{o}" for o in OUTCOMES]).withColumn(
        "last_bounced", F.coalesce(F.col("last_bounced"), F.lit(False))
    )


def attach_holders(contacts: DataFrame, settings: ContactSettings) -> DataFrame:
    """``holders``: how many customers (households, when they share) hold the same value."""
    from pyspark.sql import Window

    w = Window.partitionBy("contact_type", "value")
    unit = F.col("customer_id")
    if settings.shared.household_shares:
        unit = F.coalesce(
            F.concat(F.lit("H:"), F.col("household_id")), F.concat(F.lit("C:"), F.col("customer_id"))
        )
    return contacts.withColumn("customers_sharing", F.count(F.lit(1)).over(w).cast("int")).withColumn(
        "holders", F.size(F.collect_set(unit).over(w)).cast("int")
    )
