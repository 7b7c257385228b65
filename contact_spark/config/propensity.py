"""Configuration of learned propensities and customer segments (docs/propensity.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from contact_spark.config.base import StrictModel
from contact_spark.config.contacts import OUTCOMES

COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ModelKind = Literal["logistic_regression", "gbt"]
MODEL_KINDS: tuple[ModelKind, ...] = ("logistic_regression", "gbt")


def _check_columns(value: list[str] | None) -> list[str] | None:
    for name in value or []:
        if not COLUMN_NAME.match(name):
            raise ValueError(f"'{name}' is not a column name: use letters, digits and _ (e.g. tenure_months)")
    return value


class LogisticSettings(StrictModel):
    """Spark ML logistic regression on standardised features."""

    max_iter: int = Field(50, ge=1, le=1000)
    reg_param: float = Field(0.01, ge=0, description="L2 (or elastic-net) regularisation strength.")
    elastic_net: float = Field(0.0, ge=0, le=1, description="0 = ridge, 1 = lasso.")


class GbtSettings(StrictModel):
    """Spark ML gradient-boosted trees."""

    max_iter: int = Field(20, ge=1, le=500, description="Number of trees.")
    max_depth: int = Field(3, ge=1, le=10)
    step_size: float = Field(0.1, gt=0, le=1)
    subsampling_rate: float = Field(0.8, gt=0, le=1)


class FeatureSettings(StrictModel):
    """Which customer columns become features; history features are always built."""

    numeric_columns: list[str] | None = Field(
        None, description="Numeric or boolean customer columns; null = every one except the ids."
    )
    categorical_columns: list[str] | None = Field(
        None,
        description="String customer columns one-hot encoded; null = every string column with at most "
        "max_categories distinct values (ids excluded).",
    )
    exclude_columns: list[str] = Field(default_factory=list, description="Never used as features.")
    max_categories: int = Field(20, ge=2, le=1000)
    lookback_months: int = Field(3, ge=1, le=36, description="Window of the past-contact counts.")

    _names = field_validator("numeric_columns", "categorical_columns", "exclude_columns")(_check_columns)


class PropensitySettings(StrictModel):
    """Where propensities come from: the input table, or models trained on the contact history."""

    source: Literal["table", "model"] = Field(
        "table", description="table: the propensities input table; model: learned by the propensity stage."
    )
    models: list[ModelKind] = Field(
        default_factory=lambda: list(MODEL_KINDS),
        description="Candidate models per campaign × channel; the best on the validation months wins.",
    )
    selection_metric: Literal["log_loss", "auc"] = "log_loss"
    calibration: Literal["platt", "isotonic", "none"] = Field(
        "platt", description="Fitted on the validation months' predictions of the chosen model."
    )
    validation_months: int = Field(3, ge=1, le=24, description="The latest history months validate.")
    training_months: int | None = Field(
        None, ge=1, le=120, description="History months before the validation ones used to train; null = all."
    )
    drop_incomplete_windows: bool = Field(
        True,
        description="Leave out examples whose lookback window starts before the first history month.",
    )
    positive_outcomes: list[str] = Field(default_factory=lambda: ["converted"])
    ignored_outcomes: list[str] = Field(
        default_factory=lambda: ["bounced"], description="Contacts that never arrived: not examples."
    )
    min_positives: int = Field(
        5,
        ge=1,
        description="Fewer positives in training or validation: the pair's score is its training rate.",
    )
    calibration_bins: int = Field(10, ge=2, le=100)
    features: FeatureSettings = FeatureSettings()
    logistic_regression: LogisticSettings = LogisticSettings()
    gbt: GbtSettings = GbtSettings()
    model_path: str | None = Field(
        None, description="Where models are saved; null = <storage.base_path>/_models/propensity."
    )

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                f"give at least one model, e.g. [logistic_regression] (known: {', '.join(MODEL_KINDS)})"
            )
        if len(set(value)) != len(value):
            raise ValueError("a model is listed twice: list each of logistic_regression, gbt at most once")
        return value

    @model_validator(mode="after")
    def _outcomes(self) -> PropensitySettings:
        for key, names in (
            ("positive_outcomes", self.positive_outcomes),
            ("ignored_outcomes", self.ignored_outcomes),
        ):
            for name in names:
                if name not in OUTCOMES:
                    raise ValueError(f"{key}: unknown outcome '{name}' (known: {', '.join(OUTCOMES)})")
        if not self.positive_outcomes:
            raise ValueError(
                "positive_outcomes is empty: give the outcomes that count as success, e.g. [converted]"
            )
        both = set(self.positive_outcomes) & set(self.ignored_outcomes)
        if both:
            raise ValueError(f"outcome '{sorted(both)[0]}' is both positive and ignored: keep it in one list")
        return self


class SegmentSettings(StrictModel):
    """Customer segments by clustering behaviour and value features (docs/propensity.md).

    The label (``B1`` … ``Bk``, B1 the highest mean of the first value column) is joined onto
    the customers as column ``behaviour_segment`` before eligibility.
    """

    enabled: bool = False
    algorithm: Literal["kmeans", "bisecting_kmeans"] = "kmeans"
    k: int = Field(4, ge=2, le=50, description="Number of segments.")
    max_iter: int = Field(20, ge=1, le=500)
    value_columns: list[str] = Field(
        default_factory=lambda: ["annual_value", "tenure_months"],
        description="Numeric customer columns describing value; a missing one is an error.",
    )
    history_months: int = Field(12, ge=1, le=120, description="Window of the behaviour features.")

    _names = field_validator("value_columns")(_check_columns)
