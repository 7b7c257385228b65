"""The Spark session: the active one on a cluster, a tuned local one elsewhere."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from pyspark import SparkConf
from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Tuned for a small machine (2 cores, 24 GB): few shuffle partitions, Arrow for pandas UDFs.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "6g",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.python.worker.reuse": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN",
}

# Set on every session, local or cluster: correctness, not tuning.
REQUIRED_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    # delta-rs reads INT64 microsecond timestamps; INT96 is legacy.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def _master_already_set() -> bool:
    """True under spark-submit or a notebook, where the launcher decides the master."""
    if os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    return SparkConf().contains("spark.master")


def get_spark(
    app_name: str = "contact_spark",
    *,
    local_cores: int | str = "*",
    ui: bool = True,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Return the active session if there is one, else build one.

    On a cluster (spark-submit, Databricks) the master and resources come from the
    launcher and are never overridden here. In local mode the session gets
    ``LOCAL_DEFAULTS``; ``extra_conf`` wins over both.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, REQUIRED_CONF)
        return active
    builder = SparkSession.builder.appName(app_name)
    if _master_already_set():
        conf: dict[str, str] = dict(REQUIRED_CONF)
    else:
        builder = builder.master(f"local[{local_cores}]")
        # Python workers must run the driver's interpreter (the venv with pandas, scipy...).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        conf = dict(LOCAL_DEFAULTS)
        conf["spark.ui.enabled"] = "true" if ui else "false"
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


class SessionConfError(RuntimeError):
    """A setting the results depend on could not be applied to the Spark session."""


def _apply_runtime_conf(spark: SparkSession, conf: Mapping[str, str]) -> None:
    """Set ``REQUIRED_CONF`` on an existing session, or stop: these settings are correctness
    (month boundaries in UTC, timestamps delta-rs can read), so running without them would
    silently give other results."""
    for key, value in conf.items():
        try:
            spark.conf.set(key, value)
            actual = spark.conf.get(key)
        except Exception as error:
            raise SessionConfError(
                f"could not set {key}={value} on the Spark session ({error}); contact_spark needs it "
                f"for correct results: set it in the cluster's Spark config"
            ) from error
        if actual != value:
            raise SessionConfError(
                f"the Spark session keeps {key}={actual}; contact_spark needs {key}={value} "
                f"for correct results: set it in the cluster's Spark config"
            )


def has_delta_extension(spark: SparkSession) -> bool:
    """True when native Delta (the Delta Spark jars) is usable in this session."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        # Spark Connect (Databricks serverless, shared clusters): Delta is built in there.
        return True
    try:
        # Jars given by spark.jars / --packages live in Spark's context class loader, not in
        # the system one that a one-argument Class.forName would search.
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName("io.delta.tables.DeltaTable", False, loader)
    except Exception:
        return False
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return "DeltaSparkSessionExtension" in extensions or bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def available_cores(spark: SparkSession) -> int:
    """Task slots of the application: N of a ``local[N]`` master, else the default parallelism
    (a cluster's total executor cores unless ``spark.default.parallelism`` is set)."""
    return cores_of_master(spark.sparkContext.master or "", int(spark.sparkContext.defaultParallelism))


def cores_of_master(master: str, default_parallelism: int) -> int:
    """Cores of a local master URL (``local``, ``local[N]``, ``local[*]``, ``local[N,F]``);
    ``default_parallelism`` for any other master."""
    if master == "local":
        return 1
    if master.startswith("local["):
        count = master[len("local[") :].split("]")[0].split(",")[0].strip()
        return (os.cpu_count() or 1) if count == "*" else max(1, int(count))
    return max(1, default_parallelism)
