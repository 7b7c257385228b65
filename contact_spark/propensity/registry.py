"""Saved, versioned propensity models: ``<root>/<campaign>/<channel>/<version>/``.

A version is a content hash of what determines the model — the pair, the model kind,
the propensity settings, the feature columns, the time split and a fingerprint of the
training and validation examples — so retraining on the same data gives the same version
(a rerun replaces it) and any change gives a new one. Each version directory holds the
Spark ML ``model/``, an isotonic ``calibrator/`` when used, and ``metadata/`` (one JSON
line: version, features, calibrator parameters, metrics). ``propensity_metrics`` rows of a
run name the version and path of every selected model, so a plan's ``run_id`` leads to
the models that produced its scores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.regression import IsotonicRegressionModel
from pyspark.sql import SparkSession

from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.propensity.training import BASE_RATE, Calibrator, Candidate, Evaluation


class ModelRegistryError(ContactSparkError):
    """A saved propensity model is missing or unreadable."""


def model_root(config: AppConfig) -> str:
    """Where models are saved: ``propensity.model_path`` or ``<storage.base_path>/_models/propensity``."""
    if config.propensity.model_path:
        return config.propensity.model_path.rstrip("/")
    base = config.storage.base_path
    if "://" in base:
        return f"{base.rstrip('/')}/_models/propensity"
    return str(Path(base).expanduser().resolve() / "_models" / "propensity")


def model_version(payload: dict[str, Any]) -> str:
    """``v`` + 16 hex digits of the SHA-256 of the payload (JSON, sorted keys)."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"v{digest[:16]}"


def model_path(root: str, campaign: str, channel: str, version: str) -> str:
    """The directory of one version of a pair's model."""
    return f"{root}/{campaign}/{channel}/{version}"


def save_model(spark: SparkSession, candidate: Candidate, path: str, metadata: dict[str, Any]) -> None:
    """Write the candidate's model, calibrator and metadata under ``path`` (replacing a rerun's)."""
    if candidate.model is not None:
        candidate.model.write().overwrite().save(f"{path}/model")
    if candidate.calibrator.isotonic is not None:
        candidate.calibrator.isotonic.write().overwrite().save(f"{path}/calibrator")
    document = {
        **metadata,
        "kind": candidate.kind,
        "rate": candidate.rate,
        "calibrator": candidate.calibrator.params(),
    }
    line = json.dumps(document, sort_keys=True, default=str)
    spark.createDataFrame([(line,)], "value string").coalesce(1).write.mode("overwrite").text(
        f"{path}/metadata"
    )


def load_metadata(spark: SparkSession, path: str) -> dict[str, Any]:
    """The metadata JSON of a saved version."""
    try:
        row = spark.read.text(f"{path}/metadata").first()
    except Exception as exc:  # any read failure means the same to the user: no usable model
        raise ModelRegistryError(f"no propensity model at {path}: {str(exc).splitlines()[0][:200]}") from None
    if row is None:
        raise ModelRegistryError(f"propensity model metadata at {path}/metadata is empty")
    return dict(json.loads(row[0]))


def load_model(spark: SparkSession, path: str) -> Candidate:
    """A saved version as a candidate that can score a feature frame."""
    meta = load_metadata(spark, path)
    params = meta.get("calibrator", {})
    kind = params.get("kind", "none")
    calibrator = Calibrator(kind)
    if kind == "platt":
        calibrator = Calibrator("platt", float(params["a"]), float(params["b"]))
    elif kind == "isotonic":
        calibrator = Calibrator("isotonic", isotonic=IsotonicRegressionModel.load(f"{path}/calibrator"))
    model = None if meta["kind"] == BASE_RATE else PipelineModel.load(f"{path}/model")
    return Candidate(meta["kind"], model, calibrator, Evaluation(), rate=float(meta.get("rate", 0.0)))
