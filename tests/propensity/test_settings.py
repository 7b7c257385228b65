"""Every ``propensity`` and ``segments`` setting as the stage's functions read it, on tiny
inputs: the time split, the labels, the feature columns, the calibration and its table,
the model selection, the candidates' hyper-parameters, where models are saved, and the
segments' algorithm, value columns and window (docs/propensity.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pyspark.sql import SparkSession

from contact_spark.config import load_config
from contact_spark.config.propensity import FeatureSettings, PropensitySettings
from contact_spark.propensity.features import FeatureColumns, resolve_feature_columns, training_examples
from contact_spark.propensity.registry import model_root
from contact_spark.propensity.segments import SEGMENT_COLUMN, cluster_customers
from contact_spark.propensity.training import (
    Calibrator,
    Candidate,
    Evaluation,
    TimeSplit,
    build_pipeline,
    evaluate,
    fit_calibrator,
    select,
)

PLAN = dt.date(2027, 1, 1)
HISTORY_FROM = dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    ("settings", "train_start", "validation_start"),
    [
        # Defaults: 3 validation months; the first 3 months (the lookback) are incomplete.
        ({}, dt.date(2026, 4, 1), dt.date(2026, 10, 1)),
        ({"validation_months": 1}, dt.date(2026, 4, 1), dt.date(2026, 12, 1)),
        ({"training_months": 4}, dt.date(2026, 6, 1), dt.date(2026, 10, 1)),
        ({"drop_incomplete_windows": False}, None, dt.date(2026, 10, 1)),
        ({"features": {"lookback_months": 6}}, dt.date(2026, 7, 1), dt.date(2026, 10, 1)),
    ],
)
def test_the_time_split_follows_the_settings(
    settings: dict[str, Any], train_start: dt.date | None, validation_start: dt.date
) -> None:
    """History from January 2026, the plan from January 2027: the validation months end at
    the plan; training starts after the first lookback window (when incomplete windows are
    dropped) and at most ``training_months`` before validation."""
    split = TimeSplit.for_plan(PLAN, PropensitySettings.model_validate(settings), HISTORY_FROM)
    assert (split.train_start, split.validation_start) == (train_start, validation_start)


def test_positive_and_ignored_outcomes_make_the_labels(spark: SparkSession) -> None:
    """Default: converted is 1, a bounced contact is no example. Configured: a response counts
    as a success too and a contact not reached is no example either."""
    history = spark.createDataFrame(
        [
            ("C", dt.date(2026, 5, 3), "X", "DEM", outcome)
            for outcome in ("converted", "responded", "no_response", "not_reached", "bounced")
        ],
        "customer_id string, contact_date date, campaign string, channel string, outcome string",
    )

    def labels(settings: PropensitySettings) -> list[float]:
        return sorted(r["label"] for r in training_examples(history, settings).collect())

    assert labels(PropensitySettings()) == [0.0, 0.0, 0.0, 1.0]
    configured = PropensitySettings(
        positive_outcomes=["converted", "responded"], ignored_outcomes=["bounced", "not_reached"]
    )
    assert labels(configured) == [0.0, 1.0, 1.0]


def test_feature_columns_are_detected_or_taken_as_configured(spark: SparkSession) -> None:
    """Detected: every number or boolean, and every string with at most ``max_categories``
    values (region has 2, segment 3), ids and ``exclude_columns`` left out. Configured: the
    lists as written."""
    customers = spark.createDataFrame(
        [
            (f"C{i}", "H", i, 10.0 * i, i % 2 == 0, ["MASS", "VIP", "SME"][i % 3], ["N", "S"][i % 2])
            for i in range(6)
        ],
        "customer_id string, household_id string, tenure_months int, annual_value double, "
        "has_gas boolean, segment string, region string",
    )
    detected = resolve_feature_columns(customers, FeatureSettings())
    assert detected == FeatureColumns(("tenure_months", "annual_value", "has_gas"), ("segment", "region"))
    narrowed = resolve_feature_columns(
        customers, FeatureSettings(max_categories=2, exclude_columns=["annual_value"])
    )
    assert narrowed == FeatureColumns(("tenure_months", "has_gas"), ("region",))
    chosen = resolve_feature_columns(
        customers, FeatureSettings(numeric_columns=["annual_value"], categorical_columns=["segment"])
    )
    assert chosen == FeatureColumns(("annual_value",), ("segment",))


def test_calibration_kinds_and_the_calibration_table(spark: SparkSession) -> None:
    """Six validation predictions 0.1 … 0.8 with outcomes 0 1 0 1 1 1. Isotonic calibration
    pools the out-of-order pair (0.2 → 1, 0.3 → 0) into 0.5: 0, 0.5, 0.5, 1, 1, 1; ``none``
    keeps the model's probability. Two calibration bins split at the median 0.3: three
    predictions averaging 0.2 of which one converted, three averaging 0.6, all converted."""
    predictions = spark.createDataFrame(
        [(0.1, 0.0), (0.2, 1.0), (0.3, 0.0), (0.4, 1.0), (0.6, 1.0), (0.8, 1.0)], "p_raw double, label double"
    )
    isotonic = fit_calibrator(predictions, "isotonic", 42).apply(predictions)
    assert [r["propensity"] for r in isotonic.orderBy("p_raw").collect()] == [0.0, 0.5, 0.5, 1.0, 1.0, 1.0]
    none = fit_calibrator(predictions, "none", 42)
    assert none.kind == "none"
    raw = none.apply(predictions)
    table = evaluate(raw, 4 / 6, 2).calibration
    assert [(b, n, round(mean, 9), round(rate, 9), upper) for b, n, mean, rate, upper in table] == [
        (0, 3, 0.2, round(1 / 3, 9), 0.3),
        (1, 3, 0.6, 1.0, 0.8),
    ]


def test_the_selection_metric_chooses_the_candidate() -> None:
    """Logistic regression has the lower log-loss, GBT the higher AUC."""

    def candidate(kind: str, auc: float, log_loss: float) -> Candidate:
        return Candidate(kind, None, Calibrator("none"), Evaluation(rows=10, auc=auc, log_loss=log_loss))

    candidates = [candidate("logistic_regression", 0.70, 0.30), candidate("gbt", 0.80, 0.35)]
    assert select(candidates, "log_loss").kind == "logistic_regression"
    assert select(candidates, "auc").kind == "gbt"


def test_the_candidates_take_their_hyper_parameters_from_the_settings() -> None:
    """The last stage of each candidate's pipeline is the estimator with the configured values."""
    settings = PropensitySettings.model_validate(
        {
            "logistic_regression": {"max_iter": 7, "reg_param": 0.5, "elastic_net": 1.0},
            "gbt": {"max_iter": 3, "max_depth": 2, "step_size": 0.3, "subsampling_rate": 0.5},
        }
    )
    columns = FeatureColumns(("tenure_months",), ())
    lr = build_pipeline("logistic_regression", columns, settings, 42).getStages()[-1]
    assert (lr.getMaxIter(), lr.getRegParam(), lr.getElasticNetParam()) == (7, 0.5, 1.0)
    gbt = build_pipeline("gbt", columns, settings, 42).getStages()[-1]
    assert (gbt.getMaxIter(), gbt.getMaxDepth(), gbt.getStepSize(), gbt.getSubsamplingRate()) == (
        3,
        2,
        0.3,
        0.5,
    )


def test_models_are_saved_under_the_configured_path(tmp_path: Any) -> None:
    base = tmp_path / "lakehouse"
    assert model_root(load_config(overrides={"storage.base_path": str(base)})) == str(
        base.resolve() / "_models" / "propensity"
    )
    assert model_root(load_config(overrides={"propensity.model_path": "s3://models/propensity/"})) == (
        "s3://models/propensity"
    )


def test_segments_follow_their_algorithm_value_columns_and_window(spark: SparkSession) -> None:
    """Six customers, annual value 100-120 or 1000-1200, each contacted once in December
    2026 and twice in June: bisecting k-means with k = 2 on annual_value alone (no tenure)
    puts the three valuable ones in B1; a one-month window counts December's contact only.
    Before, bisecting k-means never split the standardised (mean 0) base: every customer
    was B1, whatever the data (Spark nudges a centre by 1e-4 of its norm, 0 here)."""
    config = load_config(
        overrides={
            "segments.enabled": True,
            "segments.algorithm": "bisecting_kmeans",
            "segments.k": 2,
            "segments.value_columns": ["annual_value"],
            "segments.history_months": 1,
        }
    )
    values = {"C1": 100.0, "C2": 110.0, "C3": 120.0, "C4": 1000.0, "C5": 1100.0, "C6": 1200.0}
    customers = spark.createDataFrame(list(values.items()), "customer_id string, annual_value double")
    history = spark.createDataFrame(
        [
            (c, day, "CROSS_SELLING", "DEM", "x", "no_response")
            for c in values
            for day in (dt.date(2026, 12, 5), dt.date(2026, 6, 5), dt.date(2026, 6, 20))
        ],
        "customer_id string, contact_date date, campaign string, channel string, contact string, outcome string",
    )
    usable = spark.createDataFrame([(c, 1) for c in values], "customer_id string, usable_contacts int")
    segments = cluster_customers(spark, config, customers, history, usable, "seg")
    labels = {r["customer_id"]: r[SEGMENT_COLUMN] for r in segments.labels.collect()}
    assert labels == {"C1": "B2", "C2": "B2", "C3": "B2", "C4": "B1", "C5": "B1", "C6": "B1"}
    profile = {(r[SEGMENT_COLUMN], r["feature"]): r["mean"] for r in segments.profiles.collect()}
    assert {f for _, f in profile} == {
        "contacts",
        "responses",
        "conversions",
        "response_rate",
        "months_since_contact",
        "usable_contacts",
        "annual_value",
    }
    assert (profile[("B1", "annual_value")], profile[("B2", "annual_value")]) == (1100.0, 110.0)
    assert profile[("B1", "contacts")] == profile[("B2", "contacts")] == 1.0
