"""Rows the table layer writes: run ids, and the few rows the driver builds itself.

A leaf of the table layer, shared by both Delta backends (``delta_rs``, ``delta_spark``)
and by :mod:`contact_spark.io.tables`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from contact_spark.errors import CommitConflictError, RunConflictError

log = logging.getLogger(__name__)

RUN_ID_COLUMN = "run_id"
COMMIT_ATTEMPTS = 8  # a commit that keeps losing races to other writers gives up after this
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """Validate a run id: it becomes a partition directory, so keep it path-safe."""
    if not RUN_ID_PATTERN.match(run_id or ""):
        raise RunConflictError(
            f"run_id '{run_id}' is not valid: use letters, digits, '_', '.' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return run_id


@dataclass(frozen=True)
class LocalRows:
    """A few rows built on the driver (iteration records, timings, summaries) and their schema.

    The table layer accepts them wherever it accepts a DataFrame. The delta-rs backend
    writes them with pyarrow, without a Spark job (each would cost about 0.7 s, dozens of
    times a run); the native Delta backend turns them into a DataFrame.
    """

    rows: list[tuple[Any, ...]]
    schema: StructType

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]], schema: StructType | str) -> LocalRows:
        """Rows and a schema given as a StructType or a DDL string (``"a int, b string"``)."""
        struct = StructType.fromDDL(schema) if isinstance(schema, str) else schema
        if not isinstance(struct, StructType):  # fromDDL reads "int" as a bare type, not a row
            raise ValueError(f"schema '{schema}' is not a list of columns such as 'a int, b string'")
        return cls([tuple(r) for r in rows], struct)

    @property
    def columns(self) -> list[str]:
        return self.schema.fieldNames()

    def to_arrow(self) -> Any:
        import pyarrow as pa

        arrow = to_arrow_schema(self.schema, timezone="UTC")
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(arrow)
        return pa.table(
            [pa.array(list(values), type=field.type) for values, field in zip(columns, arrow, strict=True)],
            schema=arrow,
        )

    def to_frame(self, spark: SparkSession) -> DataFrame:
        return spark.createDataFrame(self.rows, self.schema)


Rows = DataFrame | LocalRows


def after_lost_race(table: str, location: str, what: str, attempt: int, error: Exception) -> None:
    """A commit lost a race with another writer: wait (jittered backoff) before the next
    attempt, or give up with a one-line :class:`CommitConflictError` after the last one."""
    if attempt >= COMMIT_ATTEMPTS:
        raise CommitConflictError(
            f"table '{table}' at {location}: the {what} commit lost {attempt} race(s) with other "
            "writers of the table; run it again"
        ) from error
    log.info("table %s: commit attempt %d lost a race, retrying", table, attempt)
    time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
