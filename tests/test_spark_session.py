"""How many cores the planning stage sizes its customer batches for."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from pyspark.sql import SparkSession

from contact_spark.spark import (
    REQUIRED_CONF,
    SessionConfError,
    _apply_runtime_conf,
    available_cores,
    cores_of_master,
)


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
    # tests/conftest.py builds the session with get_spark(local_cores=2).
    assert spark.sparkContext.master == "local[2]"
    assert available_cores(spark) == 2


class RefusingConf:
    """A session's ``conf`` that refuses or ignores every setting."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse

    def set(self, key: str, value: str) -> None:
        if self.refuse:
            raise RuntimeError("CANNOT_MODIFY_CONFIG")

    def get(self, key: str) -> str:
        return "America/New_York"


@pytest.mark.parametrize("refuse", [True, False])
def test_a_session_without_the_utc_time_zone_is_an_error(refuse: bool) -> None:
    session = SimpleNamespace(conf=RefusingConf(refuse))
    with pytest.raises(SessionConfError, match=r"spark\.sql\.session\.timeZone=UTC"):
        _apply_runtime_conf(session, REQUIRED_CONF)  # type: ignore[arg-type]


def test_the_active_session_gets_the_required_settings(spark: SparkSession) -> None:
    _apply_runtime_conf(spark, REQUIRED_CONF)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
