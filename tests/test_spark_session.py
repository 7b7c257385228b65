"""How many cores the planning stage sizes its customer batches for."""

from __future__ import annotations

import os

import pytest
from pyspark.sql import SparkSession

from contact_spark.spark import available_cores, cores_of_master


@pytest.mark.parametrize(
    ("master", "expected"),
    [
        ("local", 1),
        ("local[2]", 2),
        ("local[16]", 16),
        ("local[3, 4]", 3),  # local[N, maxFailures]
        ("local[*]", os.cpu_count()),
        ("spark://head:7077", 24),  # a cluster: its default parallelism
        ("yarn", 24),
        ("local-cluster[2, 1, 1024]", 24),  # not local[N]: the parallelism Spark reports
    ],
)
def test_cores_of_a_master_url(master: str, expected: int) -> None:
    assert cores_of_master(master, 24) == expected


def test_the_test_session_reports_its_local_cores(spark: SparkSession) -> None:
    assert available_cores(spark) == cores_of_master(spark.sparkContext.master, 0) >= 1
