"""The Delta table layer: every job reads and writes tables only through this module.

Two backends behind one API:

* ``SparkDeltaBackend`` – native ``format("delta")`` / ``DeltaTable`` when the Delta
  Spark extension is loaded (Databricks, spark-submit with ``--packages
  io.delta:delta-spark_4.2_2.13:<version>``, or the jars ``make delta-jars`` fetches, as in
  the tests). Unity Catalog names are supported.
* ``DeltaRsBackend`` – the ``deltalake`` (delta-rs) package, for local mode without the
  Delta jars. Spark still does the heavy work: it
  writes Parquet files in parallel into the table directory and reads them back
  in parallel; delta-rs only commits the file actions to ``_delta_log``. No row
  of a DataFrame travels through the driver. The few rows the driver builds itself
  (:class:`LocalRows`: price iterations, stage timings, summaries) are written with
  pyarrow instead, without the cost of a Spark job.

Both write the same Delta format; a table written by one is read by the other.

Run-scoped tables are partitioned by ``run_id``; :meth:`TableStore.replace_run`
atomically replaces that run's partition, so rerunning a run never duplicates rows.
"""

import logging
import re
from typing import Any, Protocol

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from contact_spark.config.models import StorageSettings
from contact_spark.errors import RunConflictError
from contact_spark.io.delta_rs import STAGING_DIR, DeltaRsBackend
from contact_spark.io.delta_spark import SparkDeltaBackend
from contact_spark.io.rows import RUN_ID_COLUMN, LocalRows, Rows, check_run_id
from contact_spark.spark import has_delta_extension

log = logging.getLogger(__name__)

__all__ = ["RUN_ID_COLUMN", "STAGING_DIR", "LocalRows", "Rows", "TableStore", "check_run_id"]

TABLE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


def _check_table_name(name: str) -> str:
    if not TABLE_NAME_PATTERN.match(name):
        raise ValueError(f"table name '{name}' must be lower-case letters, digits and '_'")
    return name


def _single_run(df: DataFrame | LocalRows, table: str, run_id: str) -> None:
    if RUN_ID_COLUMN not in df.columns:
        raise RunConflictError(f"rows for table '{table}' have no '{RUN_ID_COLUMN}' column")
    if isinstance(df, LocalRows):
        position = df.columns.index(RUN_ID_COLUMN)
        if any(row[position] != run_id for row in df.rows):
            raise RunConflictError(f"rows written to table '{table}' for run '{run_id}' carry another run_id")
        return
    # A cheap aggregate: only a count reaches the driver.
    foreign = df.filter(F.col(RUN_ID_COLUMN).isNull() | (F.col(RUN_ID_COLUMN) != run_id)).limit(1)
    if foreign.count():
        raise RunConflictError(f"rows written to table '{table}' for run '{run_id}' carry another run_id")


class Backend(Protocol):
    """What a storage backend must do; see :class:`TableStore` for the semantics."""

    name: str

    def location(self, table: str) -> str: ...
    def exists(self, table: str) -> bool: ...
    def read(self, table: str, version: int | None) -> DataFrame: ...
    def overwrite(self, df: Rows, table: str, partition_by: list[str], tag: str | None = None) -> None: ...
    def append(
        self, df: Rows, table: str, app_id: str | None, txn_version: int | None, tag: str | None = None
    ) -> bool: ...
    def replace_run(self, df: Rows, table: str, run_id: str, tag: str | None = None) -> None: ...
    def merge(self, df: DataFrame, table: str, keys: list[str]) -> None: ...
    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]: ...
    def version(self, table: str) -> int: ...


class TableStore:
    """Read and write the product's Delta tables by logical name (``customers``, ``plan``…)."""

    def __init__(self, spark: SparkSession, storage: StorageSettings | None = None) -> None:
        storage = storage or StorageSettings()
        self.spark = spark
        self.storage = storage
        use_spark = storage.backend == "spark" or (storage.backend == "auto" and has_delta_extension(spark))
        if storage.backend == "spark" and not has_delta_extension(spark):
            raise RuntimeError(
                "storage.backend is 'spark' but the Delta Spark extension is not loaded: "
                "start Spark with --packages io.delta:delta-spark_4.2_2.13:<version> and "
                "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension, or use 'auto'"
            )
        self.backend: Backend = (
            SparkDeltaBackend(spark, storage.base_path, storage.catalog, storage.database)
            if use_spark
            else DeltaRsBackend(spark, storage.base_path)
        )

    def location(self, table: str) -> str:
        """Path or catalog name of a table."""
        return self.backend.location(_check_table_name(table))

    def exists(self, table: str) -> bool:
        return self.backend.exists(_check_table_name(table))

    def read(self, table: str, version: int | None = None) -> DataFrame:
        """Read a table (optionally as of a Delta version); MissingTableError if absent."""
        return self.backend.read(_check_table_name(table), version)

    def overwrite(
        self, df: Rows, table: str, partition_by: list[str] | None = None, *, tag: str | None = None
    ) -> None:
        """Replace the whole table with ``df`` (schema included).

        ``tag`` is stored as the commit's ``userMetadata``: :meth:`tagged_version` finds the
        version this write committed, even when other writers committed after it.
        """
        self.backend.overwrite(df, _check_table_name(table), list(partition_by or []), tag)

    def append(
        self,
        df: Rows,
        table: str,
        app_id: str | None = None,
        txn_version: int | None = None,
        *,
        tag: str | None = None,
    ) -> bool:
        """Append rows. With ``app_id``/``txn_version`` a repeated transaction is skipped.

        Returns False when the transaction had already been committed.
        """
        return self.backend.append(df, _check_table_name(table), app_id, txn_version, tag)

    def replace_run(self, df: Rows, table: str, run_id: str, *, tag: str | None = None) -> None:
        """Atomically replace the rows of ``run_id`` with ``df`` (all rows must be of that run).

        A commit that races with other runs' commits to the table is retried (each run owns
        its partition); one that keeps losing ends with :class:`CommitConflictError`.
        """
        check_run_id(run_id)
        _single_run(df, table, run_id)
        self.backend.replace_run(df, _check_table_name(table), run_id, tag)

    def merge(self, df: Rows, table: str, keys: list[str]) -> None:
        """Upsert: rows of ``df`` replace target rows with the same keys, others are inserted."""
        if isinstance(df, LocalRows):
            df = df.to_frame(self.spark)
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise ValueError(f"merge into '{table}': key columns {missing} not in the new rows")
        self.backend.merge(df, _check_table_name(table), list(keys))

    def read_rows(self, table: str, version: int, equal: dict[str, str]) -> list[Row]:
        """The few rows of ``table`` at ``version`` whose columns equal ``equal``, on the driver.

        On delta-rs this reads the files with pyarrow, without Spark: a process that only
        needs a handful of rows (the run lock's events) starts no JVM. On native Delta it is
        a Spark read. Only for small results: every row reaches the caller.
        """
        _check_table_name(table)
        if isinstance(self.backend, DeltaRsBackend):
            return self.backend.read_rows(table, version, equal)
        rows = self.read(table, version)
        for column, value in equal.items():
            rows = rows.filter(F.col(column) == value)
        return rows.collect()

    def read_run(self, table: str, run_id: str) -> DataFrame:
        """The rows of one run of a run-scoped table."""
        return self.read(table).filter(F.col(RUN_ID_COLUMN) == check_run_id(run_id))

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Delta commit history, newest first (the last ``limit`` commits when given)."""
        return self.backend.history(_check_table_name(table), limit)

    def tagged_version(self, table: str, tag: str, search: int = 1000) -> int:
        """The version committed by the write tagged ``tag`` (among the last ``search``)."""
        for commit in self.history(table, search):
            if commit.get("userMetadata") == tag:
                return int(commit["version"])
        raise LookupError(f"table '{table}': no commit tagged '{tag}' among its last {search} commits")

    def version(self, table: str) -> int:
        """Current Delta version of a table."""
        return self.backend.version(_check_table_name(table))

    def schema(self, table: str) -> StructType:
        return self.read(table).schema
