"""Temporary Spark SQL settings for the tests of tiny inputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

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
