"""Delta tables through delta-rs (the ``deltalake`` package), for local mode without the
Delta Spark jars.

Spark still does the heavy work: it writes Parquet files in parallel into a staging
folder of the table, and reads the table's files back in parallel; delta-rs only commits
the file actions to ``_delta_log``. The few rows the driver builds itself
(:class:`~contact_spark.io.rows.LocalRows`) are written with pyarrow instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from contact_spark.errors import CommitConflictError, MissingTableError, RunConflictError
from contact_spark.io.rows import COMMIT_ATTEMPTS, RUN_ID_COLUMN, LocalRows, Rows, after_lost_race

log = logging.getLogger(__name__)

STAGING_DIR = "_staging"
# Reads of a table's history under a stream of commits before giving up (each takes ms).
HISTORY_ATTEMPTS = 20


def _remove_staging(staging: Path) -> None:
    """Remove a write's staging folder, and ``_staging`` when it is left empty.

    Never fails a write: it runs after the commit, and a concurrent writer may remove or
    refill ``_staging`` at the same moment.
    """
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()  # only succeeds when empty


@dataclass
class _StagedFiles:
    staging: Path
    actions: list[Any]


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

    def read_rows(self, table: str, version: int, equal: dict[str, str]) -> list[Row]:
        """``TableStore.read_rows`` without Spark: pyarrow reads the version's files."""
        from deltalake import DeltaTable

        dt = DeltaTable(self.location(table), version=version)
        filters = [(column, "=", value) for column, value in equal.items()]
        arrow = dt.to_pyarrow_table(filters=filters or None)
        return [Row(**record) for record in arrow.to_pylist()]

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
        tag: str | None = None,
    ) -> int:
        """Stage ``df`` and commit it; returns the committed version.

        A commit that loses a race is retried against the new version of the log when
        retrying is safe: appends, whole-table overwrites and the replacement of one run's
        partition (each run owns its partition, so a concurrent commit of another run is no
        real conflict). A merge (``remove_all``) is never retried: the rows it read are gone.
        """
        from deltalake.exceptions import CommitFailedError, DeltaError

        schema = self._schema(df)
        staged = self._stage(df, table, partition_by)
        committed = False
        try:
            for attempt in range(1, COMMIT_ATTEMPTS + 1):
                created = self.exists(table)
                try:
                    version = self._commit_staged(
                        staged, table, schema, mode, partition_by, partition_filters, remove_all, app_txn, tag
                    )
                    committed = True
                    return version
                except DeltaError as error:
                    # A lost race: a commit of the same version, or the table created by
                    # another writer between our check and our create. Anything else is real.
                    raced = isinstance(error, CommitFailedError) or (not created and self.exists(table))
                    if not raced:
                        raise
                    # A merge is never retried: the rows it read may be gone.
                    after_lost_race(
                        table, self.location(table), mode, COMMIT_ATTEMPTS if remove_all else attempt, error
                    )
            raise AssertionError("unreachable")
        finally:
            if not committed:
                # Files the log never references would only confuse a later reader.
                root = Path(self.location(table))
                for action in staged.actions:
                    (root / action.path).unlink(missing_ok=True)
            _remove_staging(staged.staging)

    def _commit_staged(
        self,
        staged: _StagedFiles,
        table: str,
        schema: Any,
        mode: str,
        partition_by: list[str],
        partition_filters: list[tuple[str, str, str]] | None,
        remove_all: bool,
        app_txn: tuple[str, int] | None,
        tag: str | None,
    ) -> int:
        import pyarrow as pa
        from deltalake import DeltaTable
        from deltalake.transaction import (
            CommitProperties,
            RemoveAction,
            Transaction,
            create_table_with_add_actions,
        )

        commit = CommitProperties(
            app_transactions=[Transaction(app_txn[0], app_txn[1])] if app_txn else None,
            # Spark reads commitInfo.userMetadata as its history's userMetadata column.
            custom_metadata={"userMetadata": tag} if tag else None,
        )
        if not self.exists(table):
            create_table_with_add_actions(
                self.location(table),
                schema,
                staged.actions,
                mode="error",
                partition_by=partition_by or None,
                commit_properties=commit,
            )
            return 0
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
        return int(dt.version())  # the table object is at the version it committed

    def _partition_columns(self, table: str) -> list[str]:
        return list(self._dt(table).metadata().partition_columns) if self.exists(table) else []

    def overwrite(self, df: Rows, table: str, partition_by: list[str], tag: str | None = None) -> None:
        if self.exists(table) and self._partition_columns(table) != partition_by:
            # A change of partitioning cannot be committed as one overwrite by delta-rs.
            shutil.rmtree(self.location(table))
        self._commit(df, table, "overwrite", partition_by, tag=tag)

    def append(
        self, df: Rows, table: str, app_id: str | None, txn_version: int | None, tag: str | None = None
    ) -> bool:
        app_txn = (app_id, txn_version) if app_id is not None and txn_version is not None else None
        if app_txn and self.exists(table):
            done = self._dt(table).transaction_version(app_id)
            if done is not None and done >= txn_version:
                log.info("skip append to %s: transaction %s/%s already committed", table, *app_txn)
                return False
        partition_by = self._partition_columns(table)
        self._commit(df, table, "append", partition_by, app_txn=app_txn, tag=tag)
        return True

    def replace_run(self, df: Rows, table: str, run_id: str, tag: str | None = None) -> None:
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
            tag=tag,
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

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first, each with its true ``version``.

        delta-rs numbers the commits it lists down from the version the table object was
        loaded at, but lists the log as it is when asked: a commit landing in between shifts
        every number by one (seen: a run lock's claim at version 1 reported as 0, so two
        claimants both won). A listing is kept only when the table did not move meanwhile.
        """
        for _ in range(HISTORY_ATTEMPTS):
            dt = self._dt(table)
            loaded = dt.version()
            commits: list[dict[str, Any]] = dt.history(limit)
            if self._dt(table).version() == loaded:
                return commits
        raise CommitConflictError(
            f"table '{table}' at {self.location(table)}: its history could not be read while "
            f"{HISTORY_ATTEMPTS} other commits landed; run it again"
        )

    def version(self, table: str) -> int:
        return int(self._dt(table).version())


def _as_pyarrow_schema(schema: Any) -> Any:
    import pyarrow as pa

    return schema if isinstance(schema, pa.Schema) else pa.schema(schema)
