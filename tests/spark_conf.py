"""Spark settings of the tests: native Delta from the fetched jars, lean settings for tiny inputs."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

DELTA_JARS = Path(__file__).resolve().parent.parent / ".cache" / "delta-jars"
JDBC_JARS = Path(__file__).resolve().parent.parent / ".cache" / "jdbc-jars"


def delta_conf() -> dict[str, str]:
    """Spark settings that load native Delta from the jars `make delta-jars` fetched.

    One JVM holds one SparkContext, so the table-layer tests cannot start a second session
    with Delta: the shared session has it, and the delta-rs backend is chosen explicitly
    (``backend: deltalake``) wherever a test wants it.
    """
    jars = sorted(DELTA_JARS.glob("*.jar"))
    if not any(j.name.startswith("delta-spark_") for j in jars):
        raise pytest.UsageError(
            f"no Delta Spark jars in {DELTA_JARS}: run 'make delta-jars' (make test does)"
        )
    return {
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Delta rebuilds a table's state from its log in 50 partitions by default: 50 tasks
        # per commit and read on 2 cores, for logs of a few lines.
        "spark.databricks.delta.snapshotPartitions": "2",
    }


def with_jdbc_drivers(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with the JDBC drivers `make jdbc-jars` fetched (SQLite) added to ``spark.jars``.

    Jars must be on the session's classpath when its JVM starts, so the one session of the
    tests carries them. Without them only the import's JDBC test fails, saying to fetch them
    (`make test` does): the rest of the suite does not need them.
    """
    jars = [str(j) for j in sorted(JDBC_JARS.glob("*.jar"))]
    if not jars:
        return conf
    return {**conf, "spark.jars": ",".join(filter(None, [conf.get("spark.jars", ""), *jars]))}


# The suite's queries read a few hundred rows, so compiling each query's generated Java
# (Janino) costs the JVM more CPU than running it: expressions are interpreted instead, with
# the same results. Parallel GC: no concurrent G1 threads competing for the 2 cores.
# Measured on tests/adaptive/test_replan.py: 103 s -> 89 s interpreted, 83 s with parallel
# GC and fewer shuffle partitions too. Every Spark the tests start gets it: the shared
# session, and through PYSPARK_SUBMIT_ARGS (set in conftest.py) every job and lock holder
# run as a subprocess; the standalone cluster's spark-submit passes it as --conf.
TINY_INPUTS = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN -XX:+UseParallelGC",
}


def submit_args(conf: dict[str, str]) -> str:
    """``conf`` as the ``PYSPARK_SUBMIT_ARGS`` pyspark appends to the spark-submit that
    starts a local session's JVM (it comes last there, so it wins)."""
    return " ".join(f"--conf {shlex.quote(f'{k}={v}')}" for k, v in conf.items()) + " pyspark-shell"


# One shuffle partition and no adaptive re-planning or broadcast jobs: a tiny input's
# queries run in fewer, shorter Spark jobs.
LEAN = {
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
}


@contextmanager
def temporary_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[SparkSession]:
    """Set ``conf`` on the shared session, restoring the previous values afterwards."""
    before = {k: spark.conf.get(k) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield spark
    finally:
        for k, v in before.items():
            spark.conf.set(k, v)
