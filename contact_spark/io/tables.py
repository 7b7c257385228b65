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

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

from contact_spark.config.models import StorageSettings
from contact_spark.errors import MissingTableError, RunConflictError
from contact_spark.spark import has_delta_extension

log = logging.getLogger(__name__)

RUN_ID_COLUMN = "run_id"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TABLE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,127}$")
STAGING_DIR = "_staging"


def check_run_id(run_id: str) -> str:
    """Validate a run id: it becomes a partition directory, so keep it path-safe."""
    if not RUN_ID_PATTERN.match(run_id or ""):
        raise RunConflictError(
            f"run_id '{run_id}' is not valid: use letters, digits, '_', '.' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return run_id


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
    def overwrite(self, df: Rows, table: str, partition_by: list[str]) -> None: ...
    def append(self, df: Rows, table: str, app_id: str | None, txn_version: int | None) -> bool: ...
    def replace_run(self, df: Rows, table: str, run_id: str) -> None: ...
    def merge(self, df: DataFrame, table: str, keys: list[str]) -> None: ...
    def history(self, table: str) -> list[dict[str, Any]]: ...
    def version(self, table: str) -> int: ...


@dataclass
class _StagedFiles:
    staging: Path
    actions: list[Any]


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
        if isinstance(schema, str):
            schema = StructType.fromDDL(schema)
        return cls([tuple(r) for r in rows], schema)

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


def _write_local(rows: LocalRows, staging: Path, partition_by: list[str]) -> None:
    """Local rows as Parquet files laid out like Spark's (``col=value`` directories, the
    partition columns left out of the files), with Spark's timestamp encoding."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    table = rows.to_arrow()
    staging.mkdir(parents=True)
    if not partition_by:
        pq.write_table(table, staging / "part-00000.parquet", coerce_timestamps="us", compression="zstd")
        return
    ds.write_dataset(
        table,
        staging,
        format="parquet",
        partitioning=partition_by,
        partitioning_flavor="hive",
        basename_template="part-{i}.parquet",
        file_options=ds.ParquetFileFormat().make_write_options(coerce_timestamps="us", compression="zstd"),
    )


class DeltaRsBackend:
    """Delta tables on a local (or mounted) file system through delta-rs."""

    name = "deltalake"

    def __init__(self, spark: SparkSession, base_path: str) -> None:
        self.spark = spark
        self.base = Path(base_path).expanduser().resolve()

    def location(self, table: str) -> str:
        return str(self.base / table)

    def _dt(self, table: str) -> Any:
        from deltalake import DeltaTable

        path = self.location(table)
        if not DeltaTable.is_deltatable(path):
            raise MissingTableError(table, path)
        return DeltaTable(path)

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.location(table))

    def read(self, table: str, version: int | None) -> DataFrame:
        dt = self._dt(table)
        if version is not None:
            dt.load_as_version(version)
        arrow_schema = dt.schema().to_arrow()
        schema = from_arrow_schema(_as_pyarrow_schema(arrow_schema), prefer_timestamp_ntz=False)
        files = dt.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        partition_columns = dt.metadata().partition_columns
        reader = self.spark.read.schema(schema)
        if partition_columns:
            reader = reader.option("basePath", self.location(table))
        df = reader.parquet(*files)
        return df.select(*schema.fieldNames())

    def _stage(self, df: Rows, table: str, partition_by: list[str]) -> _StagedFiles:
        """Write ``df`` as Parquet (Spark, in parallel; local rows with pyarrow), then move
        the files into the table."""
        import pyarrow.parquet as pq
        from deltalake.transaction import AddAction

        root = Path(self.location(table))
        write_id = uuid.uuid4().hex[:12]
        staging = root / STAGING_DIR / write_id
        if isinstance(df, LocalRows):
            _write_local(df, staging, partition_by)
        else:
            writer = df.write.mode("errorifexists")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.parquet(str(staging))
        actions = []
        now_ms = int(time.time() * 1000)
        for file in sorted(staging.rglob("*.parquet")):
            relative_dir = file.parent.relative_to(staging)
            target_dir = root / relative_dir
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"{write_id}-{file.name}"
            shutil.move(str(file), target)
            partition_values = dict(part.split("=", 1) for part in relative_dir.parts if "=" in part)
            rows = pq.read_metadata(target).num_rows
            actions.append(
                AddAction(
                    path=str(target.relative_to(root)),
                    size=target.stat().st_size,
                    partition_values=partition_values,
                    modification_time=now_ms,
                    data_change=True,
                    stats=json.dumps({"numRecords": rows}),
                )
            )
        return _StagedFiles(staging=staging, actions=actions)

    def _schema(self, df: Rows) -> Any:
        import pyarrow as pa
        from deltalake import Schema

        arrow = to_arrow_schema(df.schema, timezone="UTC")
        # Nullability is enforced by the input contract, not by the storage layer.
        return Schema.from_arrow(pa.schema([f.with_nullable(True) for f in arrow]))

    def _commit(
        self,
        df: Rows,
        table: str,
        mode: str,
        partition_by: list[str],
        partition_filters: list[tuple[str, str, str]] | None = None,
        remove_all: bool = False,
        app_txn: tuple[str, int] | None = None,
    ) -> None:
        import pyarrow as pa
        from deltalake import DeltaTable
        from deltalake.transaction import (
            CommitProperties,
            RemoveAction,
            Transaction,
            create_table_with_add_actions,
        )

        schema = self._schema(df)
        staged = self._stage(df, table, partition_by)
        committed = False
        commit = CommitProperties(app_transactions=[Transaction(app_txn[0], app_txn[1])] if app_txn else None)
        try:
            if not self.exists(table):
                create_table_with_add_actions(
                    self.location(table),
                    schema,
                    staged.actions,
                    mode="error",
                    partition_by=partition_by or None,
                    commit_properties=commit,
                )
                committed = True
                return
            dt = DeltaTable(self.location(table))
            actions: list[Any] = list(staged.actions)
            if remove_all:
                now_ms = int(time.time() * 1000)
                current = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
                for path, size in zip(current["path"], current["size_bytes"], strict=True):
                    actions.append(RemoveAction(path, True, now_ms, size))
            dt.create_write_transaction(
                actions,
                mode,
                schema,
                partition_by=partition_by or None,
                partition_filters=partition_filters,
                commit_properties=commit,
            )
            committed = True
        finally:
            if not committed:
                # Files the log never references would only confuse a later reader.
                root = Path(self.location(table))
                for action in staged.actions:
                    (root / action.path).unlink(missing_ok=True)
            shutil.rmtree(staged.staging, ignore_errors=True)
            parent = staged.staging.parent
            if parent.exists() and not any(parent.iterdir()):
                parent.rmdir()

    def _partition_columns(self, table: str) -> list[str]:
        return list(self._dt(table).metadata().partition_columns) if self.exists(table) else []

    def overwrite(self, df: Rows, table: str, partition_by: list[str]) -> None:
        if self.exists(table) and self._partition_columns(table) != partition_by:
            # A change of partitioning cannot be committed as one overwrite by delta-rs.
            shutil.rmtree(self.location(table))
        self._commit(df, table, "overwrite", partition_by)

    def append(self, df: Rows, table: str, app_id: str | None, txn_version: int | None) -> bool:
        app_txn = (app_id, txn_version) if app_id is not None and txn_version is not None else None
        if app_txn and self.exists(table):
            done = self._dt(table).transaction_version(app_id)
            if done is not None and done >= txn_version:
                log.info("skip append to %s: transaction %s/%s already committed", table, *app_txn)
                return False
        partition_by = self._partition_columns(table)
        self._commit(df, table, "append", partition_by, app_txn=app_txn)
        return True

    def replace_run(self, df: Rows, table: str, run_id: str) -> None:
        if self.exists(table) and self._partition_columns(table) != [RUN_ID_COLUMN]:
            raise RunConflictError(
                f"table '{table}' at {self.location(table)} is not partitioned by run_id; "
                "drop it or write it with overwrite"
            )
        self._commit(
            df,
            table,
            "overwrite",
            [RUN_ID_COLUMN],
            partition_filters=[(RUN_ID_COLUMN, "=", run_id)],
        )

    def merge(self, df: DataFrame, table: str, keys: list[str]) -> None:
        if not self.exists(table):
            self._commit(df, table, "overwrite", [])
            return
        target = self.read(table, None)
        kept = target.join(df.select(*keys).distinct(), on=keys, how="left_anti")
        merged = kept.unionByName(df.select(*target.columns))
        # New files are written (reading the old ones) before the old ones are removed.
        self._commit(merged, table, "append", self._partition_columns(table), remove_all=True)

    def history(self, table: str) -> list[dict[str, Any]]:
        return self._dt(table).history()

    def version(self, table: str) -> int:
        return int(self._dt(table).version())


def _as_pyarrow_schema(schema: Any) -> Any:
    import pyarrow as pa

    return schema if isinstance(schema, pa.Schema) else pa.schema(schema)


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

    def overwrite(self, df: DataFrame, table: str, partition_by: list[str]) -> None:
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        self._save(writer, table)

    def append(self, df: DataFrame, table: str, app_id: str | None, txn_version: int | None) -> bool:
        writer = df.write.format("delta").mode("append")
        if app_id is None or txn_version is None:
            self._save(writer, table)
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

    def replace_run(self, df: DataFrame, table: str, run_id: str) -> None:
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
                df.writeTo(self.location(table)).overwrite(F.col(RUN_ID_COLUMN) == run_id)
                return
        writer = (
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{RUN_ID_COLUMN} = '{run_id}'")
            .partitionBy(RUN_ID_COLUMN)
        )
        self._save(writer, table)

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

    def history(self, table: str) -> list[dict[str, Any]]:
        rows = self._delta_table(table).history().collect()  # one row per commit, not per customer
        return [row.asDict(recursive=True) for row in rows]

    def version(self, table: str) -> int:
        return int(self._delta_table(table).history(1).collect()[0]["version"])


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

    def _rows(self, df: Rows) -> Rows:
        """Local rows stay local for delta-rs; the native Delta backend writes DataFrames."""
        if isinstance(df, LocalRows) and not isinstance(self.backend, DeltaRsBackend):
            return df.to_frame(self.spark)
        return df

    def overwrite(self, df: Rows, table: str, partition_by: list[str] | None = None) -> None:
        """Replace the whole table with ``df`` (schema included)."""
        self.backend.overwrite(self._rows(df), _check_table_name(table), list(partition_by or []))

    def append(
        self,
        df: Rows,
        table: str,
        app_id: str | None = None,
        txn_version: int | None = None,
    ) -> bool:
        """Append rows. With ``app_id``/``txn_version`` a repeated transaction is skipped.

        Returns False when the transaction had already been committed.
        """
        return self.backend.append(self._rows(df), _check_table_name(table), app_id, txn_version)

    def replace_run(self, df: Rows, table: str, run_id: str) -> None:
        """Atomically replace the rows of ``run_id`` with ``df`` (all rows must be of that run)."""
        check_run_id(run_id)
        _single_run(df, table, run_id)
        self.backend.replace_run(self._rows(df), _check_table_name(table), run_id)

    def merge(self, df: Rows, table: str, keys: list[str]) -> None:
        """Upsert: rows of ``df`` replace target rows with the same keys, others are inserted."""
        if isinstance(df, LocalRows):
            df = df.to_frame(self.spark)
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise ValueError(f"merge into '{table}': key columns {missing} not in the new rows")
        self.backend.merge(df, _check_table_name(table), list(keys))

    def read_run(self, table: str, run_id: str) -> DataFrame:
        """The rows of one run of a run-scoped table."""
        return self.read(table).filter(F.col(RUN_ID_COLUMN) == check_run_id(run_id))

    def history(self, table: str) -> list[dict[str, Any]]:
        """Delta commit history, newest first."""
        return self.backend.history(_check_table_name(table))

    def version(self, table: str) -> int:
        """Current Delta version of a table."""
        return self.backend.version(_check_table_name(table))

    def schema(self, table: str) -> StructType:
        return self.read(table).schema
