"""Customer segments: k-means (or bisecting k-means) on behaviour and value features.

Behaviour over the ``segments.history_months`` months before the plan — contacts,
responses, conversions, response rate, months since the last contact, usable contacts —
and the configured value columns (e.g. ``annual_value``, ``tenure_months``), standardised.
Labels are ``B1`` … ``Bk`` in descending mean of the first value column, so B1 is the most
valuable segment whatever the clustering's internal numbering. The label is joined onto
the customers as ``behaviour_segment``, where include/exclude rules can use it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.ml import Pipeline
from pyspark.ml.clustering import BisectingKMeans, KMeans
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.contract import BOOLEAN, NUMBER
from contact_spark.errors import ColumnTypeError, ContactSparkError, MissingColumnError
from contact_spark.io.months import add_months, month_index

SEGMENT_COLUMN = "behaviour_segment"
BEHAVIOUR_FEATURES = (
    "contacts",
    "responses",
    "conversions",
    "response_rate",
    "months_since_contact",
    "usable_contacts",
)


@dataclass(frozen=True)
class Segments:
    """Per-customer labels and the profile (mean of every feature) of each segment."""

    labels: DataFrame  # run_id, customer_id, behaviour_segment
    profiles: DataFrame  # run_id, behaviour_segment, customers, feature, mean


def behaviour_features(
    customers: DataFrame,
    history: DataFrame,
    contactability: DataFrame,
    config: AppConfig,
) -> DataFrame:
    """One row per customer: behaviour over the window before the plan and the value columns."""
    settings = config.segments
    fields = {f.name: f.dataType for f in customers.schema.fields}
    for name in settings.value_columns:
        if name not in fields:
            raise MissingColumnError("customers", name, sorted(fields))
        if not isinstance(fields[name], NUMBER + BOOLEAN):
            raise ColumnTypeError("customers", name, "number or boolean", fields[name].simpleString())
    plan_start: dt.date = config.run.first_month
    start = add_months(plan_start, -settings.history_months)
    day = F.col("contact_date").cast("date")
    window = history.filter((day >= F.lit(start)) & (day < F.lit(plan_start)))
    outcome = F.col("outcome")
    per_customer = window.groupBy("customer_id").agg(
        F.count(F.lit(1)).cast("double").alias("contacts"),
        F.sum(outcome.isin("converted", "responded").cast("double")).alias("responses"),
        F.sum((outcome == "converted").cast("double")).alias("conversions"),
        F.min(-month_index(plan_start)(day)).cast("double").alias("months_since_contact"),
    )
    usable = contactability.groupBy("customer_id").agg(
        F.max(F.col("usable_contacts").cast("double")).alias("usable_contacts")
    )
    base = customers.dropDuplicates(["customer_id"]).select(
        "customer_id",
        *[F.coalesce(F.col(c).cast("double"), F.lit(0.0)).alias(c) for c in settings.value_columns],
    )
    framed = base.join(per_customer, "customer_id", "left").join(usable, "customer_id", "left")
    return framed.select(
        "customer_id",
        F.coalesce("contacts", F.lit(0.0)).alias("contacts"),
        F.coalesce("responses", F.lit(0.0)).alias("responses"),
        F.coalesce("conversions", F.lit(0.0)).alias("conversions"),
        F.coalesce(F.col("responses") / F.col("contacts"), F.lit(0.0)).alias("response_rate"),
        F.coalesce("months_since_contact", F.lit(float(settings.history_months + 1))).alias(
            "months_since_contact"
        ),
        F.coalesce("usable_contacts", F.lit(0.0)).alias("usable_contacts"),
        *settings.value_columns,
    )


def cluster_customers(
    spark: SparkSession,
    config: AppConfig,
    customers: DataFrame,
    history: DataFrame,
    contactability: DataFrame,
    run_id: str,
) -> Segments:
    """Cluster the customers and label the clusters B1 … Bk by value."""
    settings = config.segments
    features = [*BEHAVIOUR_FEATURES, *settings.value_columns]
    frame = behaviour_features(customers, history, contactability, config).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    algorithm = (
        KMeans(k=settings.k, maxIter=settings.max_iter, seed=config.run.seed)
        if settings.algorithm == "kmeans"
        else BisectingKMeans(k=settings.k, maxIter=settings.max_iter, seed=config.run.seed)
    )
    # Bisecting k-means splits a cluster by nudging its centre by 1e-4 of the centre's norm:
    # the centre of a mean-centred base is 0, so it never split and every customer got B1.
    # Distances do not depend on the centring: bisecting gets the features scaled, uncentred.
    centred = settings.algorithm == "kmeans"
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=features, outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features", withMean=centred, withStd=True),
            algorithm.setFeaturesCol("features").setPredictionCol("cluster"),
        ]
    )
    clustered = pipeline.fit(frame).transform(frame).drop("raw", "features")
    clustered = clustered.persist(StorageLevel.MEMORY_AND_DISK)
    frame.unpersist()
    means = (
        clustered.groupBy("cluster")
        .agg(F.count(F.lit(1)).alias("customers"), *[F.avg(c).alias(c) for c in features])
        .collect()
    )
    # Ordered by value (first value column, or contacts when none): B1 is the most valuable.
    key = settings.value_columns[0] if settings.value_columns else "contacts"
    ordered = sorted(means, key=lambda r: (-(r[key] or 0.0), r["cluster"]))
    names = {r["cluster"]: f"B{i + 1}" for i, r in enumerate(ordered)}
    mapping = F.create_map(*[x for cluster, name in names.items() for x in (F.lit(cluster), F.lit(name))])
    labels = clustered.select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        F.element_at(mapping, F.col("cluster")).alias(SEGMENT_COLUMN),
    )
    profile_rows = [
        (run_id, names[r["cluster"]], int(r["customers"]), feature, float(r[feature] or 0.0))
        for r in ordered
        for feature in features
    ]
    profiles = spark.createDataFrame(
        profile_rows,
        f"run_id string, {SEGMENT_COLUMN} string, customers long, feature string, mean double",
    )
    return Segments(labels, profiles)


def with_segments(customers: DataFrame, labels: DataFrame) -> DataFrame:
    """The customers with their ``behaviour_segment`` (null for a customer not clustered)."""
    if SEGMENT_COLUMN in customers.columns:
        raise ContactSparkError(
            f"table 'customers' already has column '{SEGMENT_COLUMN}': rename it or set segments.enabled: false"
        )
    return customers.join(labels.select("customer_id", SEGMENT_COLUMN), "customer_id", "left")
