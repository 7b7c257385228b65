"""Native Delta through the Delta Spark extension: table paths or Unity Catalog names."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.errors import MissingTableError, RunConflictError
from contact_spark.io.rows import COMMIT_ATTEMPTS, RUN_ID_COLUMN, LocalRows, Rows, after_lost_race

log = logging.getLogger(__name__)


class SparkDeltaBackend:
    """Native Delta through the Delta Spark extension; paths or Unity Catalog names."""

    name = "spark"

    def __init__(
        self, spark: SparkSession, base_path: str, catalog: str | None, database: str | None
    ) -> None:
        self.spark = spark
        self.base_path = base_path
        self.namespace = ".".join(p for p in (catalog, database) if p) or None

    def location(self, table: str) -> str:
        if self.namespace:
            return f"{self.namespace}.{table}"
        return str(Path(self.base_path).expanduser().resolve() / table)

    def _delta_table(self, table: str) -> Any:
        from delta.tables import DeltaTable

        if not self.exists(table):
            raise MissingTableError(table, self.location(table))
        if self.namespace:
            return DeltaTable.forName(self.spark, self.location(table))
        return DeltaTable.forPath(self.spark, self.location(table))

    def exists(self, table: str) -> bool:
        from delta.tables import DeltaTable

        if self.namespace:
            return bool(self.spark.catalog.tableExists(self.location(table)))
        return bool(DeltaTable.isDeltaTable(self.spark, self.location(table)))

    def read(self, table: str, version: int | None) -> DataFrame:
        if not self.exists(table):
            raise MissingTableError(table, self.location(table))
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if self.namespace:
            return reader.table(self.location(table))
        return reader.load(self.location(table))

    def _save(self, writer: Any, table: str) -> None:
        if self.namespace:
            writer.saveAsTable(self.location(table))
        else:
            writer.save(self.location(table))

    def _retrying(self, table: str, what: str, write: Callable[[], None]) -> None:
        """Run a write, again when it lost a race that Delta's conflict check reports.

        Every write this is used for may be retried: appends, whole-table overwrites and
        the replacement of one run's partition (each run owns its partition).
        """
        races = native_races()
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                write()
                return
            except races as error:
                after_lost_race(table, self.location(table), what, attempt, error)

    def _frame(self, df: Rows) -> DataFrame:
        """Native Delta writes DataFrames: local rows become one here."""
        return df.to_frame(self.spark) if isinstance(df, LocalRows) else df

    def overwrite(self, df: Rows, table: str, partition_by: list[str], tag: str | None = None) -> None:
        df = self._frame(df)
        writer = _tagged(df.write.format("delta").mode("overwrite").option("overwriteSchema", "true"), tag)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        self._retrying(table, "overwrite", lambda: self._save(writer, table))

    def append(
        self, df: Rows, table: str, app_id: str | None, txn_version: int | None, tag: str | None = None
    ) -> bool:
        df = self._frame(df)
        writer = _tagged(df.write.format("delta").mode("append"), tag)
        if app_id is None or txn_version is None:
            self._retrying(table, "append", lambda: self._save(writer, table))
            return True
        # Delta skips a write whose (txnAppId, txnVersion) it has already committed, silently:
        # the skip shows only as no new commit. (A concurrent writer committing in between
        # would hide a skip; the pipeline's runs do not share a table's writers.)
        before = self.version(table) if self.exists(table) else None
        self._save(writer.option("txnAppId", app_id).option("txnVersion", txn_version), table)
        if before is not None and self.version(table) == before:
            log.info("skip append to %s: transaction %s/%s already committed", table, app_id, txn_version)
            return False
        return True

    def replace_run(self, df: Rows, table: str, run_id: str, tag: str | None = None) -> None:
        df = self._frame(df)
        if self.exists(table):
            partition_columns = list(self._delta_table(table).detail().collect()[0]["partitionColumns"])
            if partition_columns != [RUN_ID_COLUMN]:
                raise RunConflictError(
                    f"table '{table}' at {self.location(table)} is not partitioned by run_id; "
                    "drop it or write it with overwrite"
                )
            if self.namespace:
                # saveAsTable in overwrite mode replaces a catalog table whole (REPLACE TABLE AS
                # SELECT) and fails with replaceWhere; the v2 writer overwrites only the run.
                v2 = df.writeTo(self.location(table))
                v2 = v2.option("userMetadata", tag) if tag else v2
                self._retrying(table, "replace_run", lambda: v2.overwrite(F.col(RUN_ID_COLUMN) == run_id))
                return
        writer = _tagged(
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{RUN_ID_COLUMN} = '{run_id}'")
            .partitionBy(RUN_ID_COLUMN),
            tag,
        )
        self._retrying(table, "replace_run", lambda: self._save(writer, table))

    def merge(self, df: DataFrame, table: str, keys: list[str]) -> None:
        if not self.exists(table):
            self.overwrite(df, table, [])
            return
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        (
            self._delta_table(table)
            .alias("t")
            .merge(df.alias("s"), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        history = self._delta_table(table).history(limit) if limit else self._delta_table(table).history()
        rows = history.collect()  # one row per commit, not per customer
        return [row.asDict(recursive=True) for row in rows]

    def version(self, table: str) -> int:
        return int(self._delta_table(table).history(1).collect()[0]["version"])


def _tagged(writer: Any, tag: str | None) -> Any:
    """The writer with ``tag`` as the commit's ``userMetadata`` (found again in the history)."""
    return writer.option("userMetadata", tag) if tag else writer


def native_races() -> tuple[type[Exception], ...]:
    """The exceptions with which native Delta reports a commit that lost a race."""
    from delta.exceptions import base

    return (
        base.ConcurrentAppendException,
        base.ConcurrentDeleteDeleteException,
        base.ConcurrentDeleteReadException,
        base.ConcurrentTransactionException,
        base.ConcurrentWriteException,
        base.DeltaConcurrentModificationException,
        base.MetadataChangedException,
        base.ProtocolChangedException,
    )
