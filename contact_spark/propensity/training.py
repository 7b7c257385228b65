"""Training, calibration, validation and selection of one model per campaign × channel.

The split is by time: examples of the ``validation_months`` months just before the plan
validate, the earlier ones train. Each candidate (logistic regression on standardised
features, gradient-boosted trees) is fitted on the training months, its raw
probabilities on the validation months calibrate it (Platt scaling by default), and the
candidate with the best calibrated validation log-loss (or AUC) is chosen.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    GBTClassificationModel,
    GBTClassifier,
    LogisticRegression,
    LogisticRegressionModel,
)
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import IsotonicRegression, IsotonicRegressionModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.io.columns import one_row
from contact_spark.io.months import add_months
from contact_spark.propensity.features import FeatureColumns

if TYPE_CHECKING:  # settings import the config package, which imports these settings
    from contact_spark.config.propensity import PropensitySettings

BASE_RATE = "base_rate"
EPS = 1e-6


@dataclass(frozen=True)
class TimeSplit:
    """Training months ``[train_start, validation_start)``, validation ``[validation_start, plan_start)``."""

    train_start: dt.date | None
    validation_start: dt.date
    plan_start: dt.date

    @classmethod
    def for_plan(
        cls, plan_start: dt.date, settings: PropensitySettings, first_history_month: dt.date | None
    ) -> TimeSplit:
        """The split before ``plan_start``; incomplete lookback windows dropped when configured."""
        validation_start = add_months(plan_start, -settings.validation_months)
        train_start = (
            add_months(validation_start, -settings.training_months) if settings.training_months else None
        )
        if settings.drop_incomplete_windows and first_history_month is not None:
            complete = add_months(first_history_month, settings.features.lookback_months)
            train_start = complete if train_start is None else max(train_start, complete)
        return cls(train_start, validation_start, plan_start)

    def train(self, examples: DataFrame) -> DataFrame:
        """Examples of the training months only."""
        keep = F.col("month") < F.lit(self.validation_start)
        if self.train_start is not None:
            keep = keep & (F.col("month") >= F.lit(self.train_start))
        return examples.filter(keep)

    def validation(self, examples: DataFrame) -> DataFrame:
        """Examples of the validation months only (never seen by training)."""
        start = self.validation_start
        if self.train_start is not None:
            start = max(start, self.train_start)
        return examples.filter((F.col("month") >= F.lit(start)) & (F.col("month") < F.lit(self.plan_start)))


@dataclass
class Calibrator:
    """Maps a model's raw probability to a calibrated one."""

    kind: str
    a: float = 1.0
    b: float = 0.0
    isotonic: IsotonicRegressionModel | None = None

    def apply(self, df: DataFrame, raw: str = "p_raw", out: str = "propensity") -> DataFrame:
        """``df`` with column ``out``, the calibrated probability of column ``raw``."""
        if self.kind == "platt":
            logit = _logit(F.col(raw))
            return df.withColumn(out, 1.0 / (1.0 + F.exp(-(F.lit(self.a) * logit + F.lit(self.b)))))
        if self.kind == "isotonic" and self.isotonic is not None:
            model = self.isotonic.copy().setFeaturesCol(raw).setPredictionCol(out)
            return model.transform(df)
        return df.withColumn(out, F.col(raw))

    def params(self) -> dict[str, Any]:
        """What the model registry stores about the calibrator."""
        if self.kind == "platt":
            return {"kind": "platt", "a": self.a, "b": self.b}
        if self.kind == "isotonic" and self.isotonic is not None:
            return {
                "kind": "isotonic",
                "boundaries": [float(x) for x in self.isotonic.boundaries.toArray()],
                "predictions": [float(x) for x in self.isotonic.predictions.toArray()],
            }
        return {"kind": self.kind}


def _logit(p: Column) -> Column:
    clipped = F.least(F.greatest(p, F.lit(EPS)), F.lit(1 - EPS))
    return F.log(clipped / (1 - clipped))


def fit_calibrator(predictions: DataFrame, kind: str, seed: int) -> Calibrator:
    """Fit the calibrator on ``predictions`` (``p_raw``, ``label``) of the validation months."""
    if kind == "platt":
        framed = predictions.select(F.array(_logit(F.col("p_raw"))).alias("x"), "label")
        from pyspark.ml.functions import array_to_vector

        framed = framed.select(array_to_vector(F.col("x")).alias("features"), "label")
        model = LogisticRegression(maxIter=100, regParam=0.0, standardization=False).fit(framed)
        return Calibrator("platt", float(model.coefficients[0]), float(model.intercept))
    if kind == "isotonic":
        model = IsotonicRegression(featuresCol="p_raw", labelCol="label", isotonic=True).fit(predictions)
        return Calibrator("isotonic", isotonic=model)
    return Calibrator("none")


def build_pipeline(kind: str, columns: FeatureColumns, settings: PropensitySettings, seed: int) -> Pipeline:
    """The Spark ML pipeline of a candidate: encode, assemble, (scale,) classify."""
    stages: list[Any] = []
    encoded = []
    if columns.categorical:
        indexed = [f"{c}__idx" for c in columns.categorical]
        encoded = [f"{c}__ohe" for c in columns.categorical]
        stages.append(
            StringIndexer(
                inputCols=list(columns.categorical),
                outputCols=indexed,
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            )
        )
        stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
    stages.append(
        VectorAssembler(
            inputCols=[*columns.numeric_all, *encoded], outputCol="assembled", handleInvalid="keep"
        )
    )
    if kind == "logistic_regression":
        lr = settings.logistic_regression
        # Standardised first, so coefficients compare features on one scale (docs/propensity.md).
        stages.append(StandardScaler(inputCol="assembled", outputCol="features", withMean=True, withStd=True))
        stages.append(
            LogisticRegression(
                featuresCol="features",
                labelCol="label",
                maxIter=lr.max_iter,
                regParam=lr.reg_param,
                elasticNetParam=lr.elastic_net,
                standardization=False,
            )
        )
    elif kind == "gbt":
        g = settings.gbt
        stages.append(
            GBTClassifier(
                featuresCol="assembled",
                labelCol="label",
                maxIter=g.max_iter,
                maxDepth=g.max_depth,
                stepSize=g.step_size,
                subsamplingRate=g.subsampling_rate,
                seed=seed,
            )
        )
    else:
        raise ValueError(f"unknown model kind '{kind}'")
    return Pipeline(stages=stages)


def raw_probability(model: PipelineModel, df: DataFrame, keep: list[str]) -> DataFrame:
    """``keep`` columns plus ``p_raw``, the model's probability of the positive class."""
    scored = model.transform(df)
    return scored.select(*keep, vector_to_array(F.col("probability"))[1].alias("p_raw"))


def feature_weights(model: PipelineModel, sample: DataFrame) -> list[tuple[str, float]]:
    """(feature name, weight): standardised coefficient (LR) or importance (GBT), by vector index."""
    schema = model.transform(sample).schema  # analysis only: no Spark job
    attrs = schema["assembled"].metadata.get("ml_attr", {}).get("attrs", {})
    names: dict[int, str] = {}
    for group in attrs.values():
        for attr in group:
            names[int(attr["idx"])] = str(attr["name"])
    last = model.stages[-1]
    if isinstance(last, LogisticRegressionModel):
        values = [float(x) for x in last.coefficients.toArray()]
    elif isinstance(last, GBTClassificationModel):
        values = [float(x) for x in last.featureImportances.toArray()]
    else:  # build_pipeline ends every pipeline in one of the two
        raise TypeError(f"no feature weights for a {type(last).__name__}")
    return [(names.get(i, f"f{i}"), v) for i, v in enumerate(values)]


@dataclass
class Evaluation:
    """Validation metrics of calibrated probabilities and their calibration table."""

    rows: int = 0
    positives: int = 0
    auc: float | None = None
    log_loss: float | None = None
    brier: float | None = None
    base_log_loss: float | None = None
    calibration: list[tuple[int, int, float, float, float]] = field(default_factory=list)


def evaluate(predictions: DataFrame, base_rate: float, bins: int) -> Evaluation:
    """AUC, log-loss, Brier score, the base-rate log-loss and a calibration table.

    ``predictions`` has ``label`` and ``propensity``. Bins are equal-frequency (approximate
    quantiles of the propensity): one row per bin ``(bin, rows, mean_predicted, observed_rate, upper)``.
    """
    p = F.least(F.greatest(F.col("propensity"), F.lit(EPS)), F.lit(1 - EPS))
    y = F.col("label")
    q = min(max(base_rate, EPS), 1 - EPS)
    stats = one_row(
        predictions.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(y).alias("positives"),
            F.avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss"),
            F.avg((F.col("propensity") - y) ** 2).alias("brier"),
            F.avg(-(y * F.lit(math.log(q)) + (1 - y) * F.lit(math.log(1 - q)))).alias("base_log_loss"),
        )
    )
    out = Evaluation(
        rows=int(stats["rows"] or 0),
        positives=int(stats["positives"] or 0),
        log_loss=stats["log_loss"],
        brier=stats["brier"],
        base_log_loss=stats["base_log_loss"],
    )
    if out.rows == 0:
        return out
    if 0 < out.positives < out.rows:
        out.auc = BinaryClassificationEvaluator(
            rawPredictionCol="propensity", labelCol="label", metricName="areaUnderROC"
        ).evaluate(predictions)
    edges = sorted(set(predictions.approxQuantile("propensity", [i / bins for i in range(1, bins)], 0.001)))
    bucket = F.lit(len(edges))
    for i, edge in reversed(list(enumerate(edges))):
        bucket = F.when(F.col("propensity") <= F.lit(edge), F.lit(i)).otherwise(bucket)
    table = (
        predictions.groupBy(bucket.alias("bin"))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.avg("propensity").alias("mean_predicted"),
            F.avg("label").alias("observed_rate"),
            F.max("propensity").alias("upper"),
        )
        .orderBy("bin")
        .collect()
    )
    out.calibration = [
        (
            int(r["bin"]),
            int(r["rows"]),
            float(r["mean_predicted"]),
            float(r["observed_rate"]),
            float(r["upper"]),
        )
        for r in table
    ]
    return out


@dataclass
class Candidate:
    """One fitted candidate of a pair with its calibrator and validation metrics."""

    kind: str
    model: PipelineModel | None
    calibrator: Calibrator
    evaluation: Evaluation
    weights: list[tuple[str, float]] = field(default_factory=list)
    rate: float = 0.0  # base-rate candidates only

    def score(self, frame: DataFrame, keep: list[str]) -> DataFrame:
        """``keep`` plus the calibrated ``propensity`` (clipped to [0, 1])."""
        if self.model is None:
            return frame.select(*keep, F.lit(self.rate).alias("propensity"))
        raw = raw_probability(self.model, frame, keep)
        calibrated = self.calibrator.apply(raw)
        return calibrated.select(
            *keep, F.least(F.greatest(F.col("propensity"), F.lit(0.0)), F.lit(1.0)).alias("propensity")
        )


def base_rate_candidate(train: tuple[int, int], validation: DataFrame) -> Candidate:
    """The fallback when a pair has too few positives: its training rate for every customer."""
    rows, positives = train
    rate = positives / rows if rows else 0.0
    q = min(max(rate, EPS), 1 - EPS)
    y = F.col("label")
    # A constant score: one aggregate gives every metric, AUC is 0.5 and there is one bin.
    stats = one_row(validation.agg(F.count(F.lit(1)).alias("rows"), F.sum(y).alias("positives")))
    n, k = int(stats["rows"] or 0), int(stats["positives"] or 0)
    evaluation = Evaluation(rows=n, positives=k)
    if n:
        log_loss = -(k * math.log(q) + (n - k) * math.log(1 - q)) / n
        evaluation.log_loss = evaluation.base_log_loss = log_loss
        evaluation.brier = (k * (1 - rate) ** 2 + (n - k) * rate**2) / n
        evaluation.auc = 0.5 if 0 < k < n else None
        evaluation.calibration = [(0, n, rate, k / n, rate)]
    return Candidate(BASE_RATE, None, Calibrator("none"), evaluation, rate=rate)


def fit_candidate(
    kind: str,
    train: DataFrame,
    validation: DataFrame,
    columns: FeatureColumns,
    settings: PropensitySettings,
    base_rate: float,
    seed: int,
) -> Candidate:
    """Fit ``kind`` on the training months, calibrate and evaluate it on the validation months."""
    model = build_pipeline(kind, columns, settings, seed).fit(train)
    raw = raw_probability(model, validation, ["label"]).localCheckpoint()
    calibrator = fit_calibrator(raw, settings.calibration, seed)
    evaluation = evaluate(calibrator.apply(raw), base_rate, settings.calibration_bins)
    return Candidate(kind, model, calibrator, evaluation, feature_weights(model, train.limit(0)))


def better(a: Candidate, b: Candidate, metric: str) -> bool:
    """True when ``a`` beats ``b`` on the selection metric (missing values lose)."""
    if metric == "auc":
        return (a.evaluation.auc or -1.0) > (b.evaluation.auc or -1.0)
    inf = float("inf")
    return (a.evaluation.log_loss if a.evaluation.log_loss is not None else inf) < (
        b.evaluation.log_loss if b.evaluation.log_loss is not None else inf
    )


def select(candidates: list[Candidate], metric: str) -> Candidate:
    """The best candidate; on a tie the earlier in the configured order."""
    best = candidates[0]
    for candidate in candidates[1:]:
        if better(candidate, best, metric):
            best = candidate
    return best
