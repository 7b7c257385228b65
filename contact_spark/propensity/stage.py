"""The propensity stage: train, choose, calibrate, save and score one model per campaign × channel.

Writes four run-scoped tables:

* ``propensity_scores`` — the propensities input contract (``customer_id, campaign, channel,
  propensity``) plus ``model`` and ``model_version``;
* ``propensity_metrics`` — one row per candidate model and pair: time split, rows,
  positives, AUC, log-loss (and of the base rate), Brier score, selected, version, path;
* ``propensity_calibration`` — the calibration table of each candidate on the validation months;
* ``propensity_features`` — each candidate's feature weights (standardised LR coefficient
  or GBT importance).

With ``propensity.source: model`` the eligibility stage reads ``propensity_scores`` of the run
instead of the ``propensities`` input table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.contract import PROPENSITIES, validate_input
from contact_spark.errors import ContactSparkError
from contact_spark.io.catalog import PROPENSITY_TABLES, SEGMENT_TABLES
from contact_spark.io.columns import one_row
from contact_spark.io.runs import require_run
from contact_spark.io.tables import TableStore
from contact_spark.propensity.features import (
    FeatureColumns,
    contact_features,
    feature_frame,
    monthly_history,
    resolve_feature_columns,
    scoring_rows,
    training_examples,
)
from contact_spark.propensity.registry import model_path, model_root, model_version, save_model
from contact_spark.propensity.segments import SEGMENT_COLUMN, cluster_customers, with_segments
from contact_spark.propensity.training import (
    BASE_RATE,
    Candidate,
    TimeSplit,
    base_rate_candidate,
    fit_candidate,
    select,
)

log = logging.getLogger(__name__)

KEEP = ["customer_id", "campaign", "channel"]

METRICS_SCHEMA = (
    "run_id string, campaign string, channel string, model string, selected boolean, "
    "model_version string, path string, calibration string, train_start date, validation_start date, "
    "plan_start date, train_last_month date, validation_first_month date, train_rows long, "
    "train_positives long, validation_rows long, validation_positives long, auc double, "
    "log_loss double, base_log_loss double, brier double"
)
CALIBRATION_SCHEMA = (
    "run_id string, campaign string, channel string, model string, bin int, rows long, "
    "mean_predicted double, observed_rate double, upper double"
)
FEATURES_SCHEMA = (
    "run_id string, campaign string, channel string, model string, feature string, weight double"
)


class PropensityTrainingError(ContactSparkError):
    """The contact history cannot train propensity models (e.g. no example in a split)."""


@dataclass
class PairModel:
    """The candidates of one campaign × channel and the one chosen."""

    campaign: str
    channel: str
    candidates: list[Candidate]
    selected: Candidate
    version: str
    path: str
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    months: dict[str, object] = field(default_factory=dict)


@dataclass
class PropensityResult:
    """What training produced: scores (the input contract) and the per-model tables."""

    scores: DataFrame
    metrics: DataFrame
    calibration: DataFrame
    features: DataFrame
    pairs: list[PairModel]
    split: TimeSplit
    frame: DataFrame  # the persisted feature frame; unpersist once the scores are written


def train_propensities(
    spark: SparkSession,
    config: AppConfig,
    customers: DataFrame,
    history: DataFrame,
    best_contacts: DataFrame,
    contactability: DataFrame,
    run_id: str,
) -> PropensityResult:
    """Train and score every campaign × channel; models are saved in the registry."""
    settings = config.propensity
    seed = config.run.seed
    plan_start = config.run.first_month
    monthly = monthly_history(history, settings).persist(StorageLevel.MEMORY_AND_DISK)
    first = one_row(monthly.agg(F.min("month")))[0]
    split = TimeSplit.for_plan(plan_start, settings, first)
    reserved = (SEGMENT_COLUMN,)
    columns = resolve_feature_columns(customers, settings.features, reserved)
    log.info(
        "propensity: split train [%s, %s) validation [%s, %s); features %s + %s",
        split.train_start,
        split.validation_start,
        split.validation_start,
        plan_start,
        ", ".join(columns.numeric_all),
        ", ".join(columns.categorical),
    )
    pairs = spark.createDataFrame(
        [(c, h) for c in config.campaign_names for h in config.channel_names],
        "campaign string, channel string",
    )
    examples = training_examples(history, settings).join(F.broadcast(pairs), ["campaign", "channel"])
    train_rows = split.train(examples).withColumn("part", F.lit("train"))
    validation_rows = split.validation(examples).withColumn("part", F.lit("validation"))
    scoring = scoring_rows(customers, pairs, plan_start).withColumn("part", F.lit("score"))
    rows = train_rows.unionByName(validation_rows).unionByName(scoring)
    contacts = contact_features(best_contacts, contactability)
    frame = feature_frame(rows, monthly, customers, columns, contacts, settings.features.lookback_months)
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    stats = _split_stats(frame, columns)
    if not any(part == "train" and row["rows"] for (_, _, part), row in stats.items()):
        frame.unpersist()
        monthly.unpersist()
        raise PropensityTrainingError(
            f"table 'contact_history' has no usable contact in the training months "
            f"[{split.train_start or 'start'}, {split.validation_start}): give more history, lower "
            "propensity.validation_months or use propensity.source: table"
        )
    try:
        models = [
            _train_pair(spark, config, frame, columns, split, stats, campaign, channel, seed)
            for campaign in config.campaign_names
            for channel in config.channel_names
        ]
        scores = _scores(frame, models)
    finally:
        monthly.unpersist()
    return PropensityResult(
        scores=scores,
        metrics=_metrics_frame(spark, models, split, run_id, settings.calibration),
        calibration=_calibration_frame(spark, models, run_id),
        features=_features_frame(spark, models, run_id),
        pairs=models,
        split=split,
        frame=frame,
    )


def _split_stats(frame: DataFrame, columns: FeatureColumns) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Rows, positives, first/last month and a content fingerprint per pair and part (one job)."""
    fingerprint = F.xxhash64("customer_id", "month", "label", *columns.numeric_all, *columns.categorical)
    rows = (
        frame.filter(F.col("part") != "score")
        .groupBy("campaign", "channel", "part")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum("label").alias("positives"),
            F.min("month").alias("first_month"),
            F.max("month").alias("last_month"),
            F.sum(fingerprint.cast("decimal(38,0)")).cast("string").alias("fingerprint"),
        )
        .collect()
    )
    return {(r["campaign"], r["channel"], r["part"]): r.asDict() for r in rows}


def _train_pair(
    spark: SparkSession,
    config: AppConfig,
    frame: DataFrame,
    columns: FeatureColumns,
    split: TimeSplit,
    stats: dict[tuple[str, str, str], dict[str, Any]],
    campaign: str,
    channel: str,
    seed: int,
) -> PairModel:
    settings = config.propensity
    pair = (F.col("campaign") == campaign) & (F.col("channel") == channel)
    train_stats = stats.get((campaign, channel, "train"), {})
    validation_stats = stats.get((campaign, channel, "validation"), {})
    counts = {
        "train": (int(train_stats.get("rows") or 0), int(train_stats.get("positives") or 0)),
        "validation": (int(validation_stats.get("rows") or 0), int(validation_stats.get("positives") or 0)),
    }
    months = {
        "train_last": train_stats.get("last_month"),
        "validation_first": validation_stats.get("first_month"),
    }
    (n_train, p_train), (n_val, p_val) = counts["train"], counts["validation"]
    # A few partitions: the per-pair frames are small and MLlib runs one job per iteration.
    train = frame.filter(pair & (F.col("part") == "train")).coalesce(2).persist(StorageLevel.MEMORY_AND_DISK)
    validation = (
        frame.filter(pair & (F.col("part") == "validation")).coalesce(2).persist(StorageLevel.MEMORY_AND_DISK)
    )
    rate = p_train / n_train if n_train else 0.0
    learnable = min(p_train, p_val) >= settings.min_positives and n_train - p_train > 0 and n_val - p_val > 0
    try:
        if learnable:
            candidates = [
                fit_candidate(kind, train, validation, columns, settings, rate, seed)
                for kind in settings.models
            ]
        else:
            log.warning(
                "propensity %s/%s: %d training and %d validation positives (< %d): base rate %.4f",
                campaign,
                channel,
                p_train,
                p_val,
                settings.min_positives,
                rate,
            )
            candidates = [base_rate_candidate((n_train, p_train), validation)]
    finally:
        train.unpersist()
        validation.unpersist()
    selected = select(candidates, settings.selection_metric)
    payload = {
        "campaign": campaign,
        "channel": channel,
        "kind": selected.kind,
        "settings": settings.model_dump(mode="json", exclude={"source", "model_path"}),
        "seed": seed,
        "features": [*columns.numeric_all, *columns.categorical],
        "split": [str(split.train_start), str(split.validation_start), str(split.plan_start)],
        "data": [
            stats.get((campaign, channel, part), {}).get("fingerprint") for part in ("train", "validation")
        ],
        "counts": counts,
    }
    version = model_version(payload)
    path = model_path(model_root(config), campaign, channel, version)
    evaluation = selected.evaluation
    save_model(
        spark,
        selected,
        path,
        {
            "version": version,
            "campaign": campaign,
            "channel": channel,
            "features": payload["features"],
            "categorical": list(columns.categorical),
            "numeric": list(columns.numeric),
            "lookback_months": settings.features.lookback_months,
            "split": payload["split"],
            "counts": counts,
            "auc": evaluation.auc,
            "log_loss": evaluation.log_loss,
        },
    )
    log.info(
        "propensity %s/%s: %s chosen (auc %s, log-loss %s) version %s",
        campaign,
        channel,
        selected.kind,
        evaluation.auc,
        evaluation.log_loss,
        version,
    )
    return PairModel(campaign, channel, candidates, selected, version, path, counts, months)


def _scores(frame: DataFrame, models: list[PairModel]) -> DataFrame:
    scoring = frame.filter(F.col("part") == "score")
    parts = []
    for m in models:
        pair = scoring.filter((F.col("campaign") == m.campaign) & (F.col("channel") == m.channel))
        parts.append(
            m.selected.score(pair, KEEP).select(
                *KEEP,
                F.col("propensity").cast("double").alias("propensity"),
                F.lit(m.selected.kind).alias("model"),
                F.lit(m.version).alias("model_version"),
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _metrics_frame(
    spark: SparkSession, models: list[PairModel], split: TimeSplit, run_id: str, calibration: str
) -> DataFrame:
    rows = []
    for m in models:
        for c in m.candidates:
            chosen = c is m.selected
            e = c.evaluation
            rows.append(
                (
                    run_id,
                    m.campaign,
                    m.channel,
                    c.kind,
                    chosen,
                    m.version if chosen else None,
                    m.path if chosen else None,
                    calibration if c.kind != BASE_RATE else "none",
                    split.train_start,
                    split.validation_start,
                    split.plan_start,
                    m.months.get("train_last"),
                    m.months.get("validation_first"),
                    m.counts["train"][0],
                    m.counts["train"][1],
                    m.counts["validation"][0],
                    m.counts["validation"][1],
                    e.auc,
                    e.log_loss,
                    e.base_log_loss,
                    e.brier,
                )
            )
    return spark.createDataFrame(rows, METRICS_SCHEMA)


def _calibration_frame(spark: SparkSession, models: list[PairModel], run_id: str) -> DataFrame:
    rows = [
        (run_id, m.campaign, m.channel, c.kind, b, n, mean, observed, upper)
        for m in models
        for c in m.candidates
        for b, n, mean, observed, upper in c.evaluation.calibration
    ]
    return spark.createDataFrame(rows, CALIBRATION_SCHEMA)


def _features_frame(spark: SparkSession, models: list[PairModel], run_id: str) -> DataFrame:
    rows = [
        (run_id, m.campaign, m.channel, c.kind, name, weight)
        for m in models
        for c in m.candidates
        for name, weight in c.weights
    ]
    return spark.createDataFrame(rows, FEATURES_SCHEMA)


def run_propensity_stage(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    customers: DataFrame,
    history: DataFrame,
    run_id: str,
) -> dict[str, str]:
    """Train, score and write the propensity tables of the run (a rerun replaces its rows)."""
    best = store.read_run("best_contacts", run_id)
    contactability = store.read_run("contactability", run_id)
    result = train_propensities(spark, config, customers, history, best, contactability, run_id)
    try:
        return write_propensity_tables(store, result, run_id)
    finally:
        result.frame.unpersist()


def write_propensity_tables(store: TableStore, result: PropensityResult, run_id: str) -> dict[str, str]:
    """Write the four propensity tables of the run (replacing a rerun's rows)."""
    scores = result.scores.select(F.lit(run_id).alias("run_id"), *result.scores.columns)
    store.replace_run(scores, "propensity_scores", run_id)
    store.replace_run(result.metrics, "propensity_metrics", run_id)
    store.replace_run(result.calibration, "propensity_calibration", run_id)
    store.replace_run(result.features, "propensity_features", run_id)
    return {table: store.location(table) for table in PROPENSITY_TABLES}


def learned_propensities(store: TableStore, run_id: str) -> DataFrame:
    """The run's learned scores in exactly the propensities input contract."""
    scores = store.read_run("propensity_scores", run_id).select(
        "customer_id", "campaign", "channel", "propensity"
    )
    return validate_input(scores, PROPENSITIES)


def run_segments_stage(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    customers: DataFrame,
    history: DataFrame,
    run_id: str,
) -> dict[str, str]:
    """Cluster the customers and write ``customer_segments`` and ``segment_profiles`` of the run."""
    contactability = store.read_run("contactability", run_id)
    segments = cluster_customers(spark, config, customers, history, contactability, run_id)
    store.replace_run(segments.labels, "customer_segments", run_id)
    store.replace_run(segments.profiles, "segment_profiles", run_id)
    return {table: store.location(table) for table in SEGMENT_TABLES}


def eligibility_inputs(
    store: TableStore, config: AppConfig, run_id: str, customers: DataFrame, propensities: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """The customers (with ``behaviour_segment`` when segments are on) and the propensities to use.

    ``propensity.source: model`` replaces the input table by the run's learned scores.
    """

    if config.segments.enabled:
        require_run(store, "customer_segments", run_id, "segments")
        customers = with_segments(customers, store.read_run("customer_segments", run_id))
    if config.propensity.source == "model":
        require_run(store, "propensity_scores", run_id, "propensity")
        propensities = learned_propensities(store, run_id)
    return customers, propensities
