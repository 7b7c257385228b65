"""Import the user's own data (CSV, Parquet, JDBC, catalog tables) into the input contract's tables.

:func:`import_inputs` reads each mapped table's source (:mod:`.import_sources`), converts and
checks every row (:mod:`.import_rows`), writes the good rows to the contract table through the
table layer (the whole table replaced: re-importing gives the same table, never duplicates)
and the bad ones, each with a reason code, to ``import_quarantine``; ``import_summary`` holds
the counts per table, which reconcile: read = written + quarantined. Both are partitioned by
the import's run id and replaced when the same import runs again. See docs/import.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from contact_spark.config.imports import ImportMapping
from contact_spark.contract import validate_input
from contact_spark.io.import_plan import TablePlan, check_mapping, check_source_columns
from contact_spark.io.import_rows import REASON, classify, convert, good_rows, quarantine_rows
from contact_spark.io.import_sources import read_source
from contact_spark.io.rows import LocalRows, check_run_id
from contact_spark.io.tables import TableStore

log = logging.getLogger(__name__)

QUARANTINE_TABLE = "import_quarantine"
SUMMARY_TABLE = "import_summary"
SUMMARY_SCHEMA = "run_id string, table_name string, source string, rows_read long, rows_written long, rows_quarantined long"


@dataclass(frozen=True)
class TableCounts:
    """One input table's import: rows read, written, quarantined (by reason)."""

    table: str
    source: str
    read: int
    written: int
    reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return sum(self.reasons.values())


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote, per table, under its run id."""

    run_id: str
    tables: tuple[TableCounts, ...]

    def summary(self) -> str:
        """A few lines for the job's output: counts and reason codes per table, no value."""
        lines = [f"import {self.run_id} (read = written + quarantined):"]
        for t in self.tables:
            lines.append(
                f"  {t.table:<16} {t.read:>9,} read {t.written:>9,} written {t.quarantined:>7,} quarantined"
                f"  from {t.source}"
            )
            if t.reasons:
                lines.append("      " + ", ".join(f"{code} {n}" for code, n in sorted(t.reasons.items())))
        return "\n".join(lines)


def default_import_id(mapping: ImportMapping) -> str:
    """A run id derived from the mapping: importing with the same mapping again replaces the
    same quarantine and summary rows (the sources' new contents included)."""
    digest = hashlib.sha256(mapping.model_dump_json().encode("utf-8")).hexdigest()
    return f"import-{digest[:10]}"


def _import_table(
    spark: SparkSession,
    store: TableStore,
    plan: TablePlan,
    run_id: str,
    env: Mapping[str, str] | None,
) -> tuple[TableCounts, DataFrame, DataFrame]:
    """Convert and classify one table, write its good rows; returns its counts, its
    quarantine rows and the persisted classified rows (to unpersist once those are written)."""
    source = read_source(spark, plan.table, plan.source, env)
    check_source_columns(plan, source.columns, source.description)
    # Kept for the count, the table write and the quarantine write: the source is read once.
    classified = classify(convert(source.df, plan), plan).persist(StorageLevel.MEMORY_AND_DISK)
    by_reason = {row[REASON]: int(row["count"]) for row in classified.groupBy(REASON).count().collect()}
    written = by_reason.pop(None, 0)
    counts = TableCounts(
        plan.table, source.description, written + sum(by_reason.values()), written, by_reason
    )
    store.overwrite(validate_input(good_rows(classified, plan), plan.spec), plan.table)
    stored = store.read(plan.table).count()
    if stored != written:  # the counts are the written table's, or the import is wrong
        raise RuntimeError(f"import of {plan.table}: {written} rows to write but the table holds {stored}")
    log.info(
        "imported %s: %d read, %d written, %d quarantined",
        plan.table,
        counts.read,
        written,
        counts.quarantined,
    )
    return counts, quarantine_rows(classified, plan, source.description, run_id), classified


def import_inputs(
    spark: SparkSession,
    store: TableStore,
    mapping: ImportMapping,
    channels: list[str],
    *,
    mapping_path: str = "<mapping>",
    run_id: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ImportResult:
    """Import every table of ``mapping`` into its contract table; quarantine and summarise.

    ``channels`` are the configured channels (one opt-out column each on customers), ``env``
    the environment the JDBC credentials are read from (default ``os.environ``). The mapping
    is checked against the contract before any source is read; a mistake is one line naming
    ``mapping_path``, the table and the column.
    """
    plans = check_mapping(mapping, channels, mapping_path)
    run_id = check_run_id(run_id or default_import_id(mapping))
    counts: list[TableCounts] = []
    quarantines: list[DataFrame] = []
    persisted: list[DataFrame] = []
    try:
        for plan in plans.values():
            table_counts, quarantine, classified = _import_table(spark, store, plan, run_id, env)
            counts.append(table_counts)
            quarantines.append(quarantine)
            persisted.append(classified)
        rows = quarantines[0]
        for more in quarantines[1:]:
            rows = rows.unionByName(more)
        # Kept: the table layer checks the rows' run id before it writes them, and the
        # masking (a Python UDF) then runs once.
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(rows)
        store.replace_run(rows, QUARANTINE_TABLE, run_id)
    finally:
        for frame in persisted:
            frame.unpersist()
    summary = LocalRows.of(
        [(run_id, c.table, c.source, c.read, c.written, c.quarantined) for c in counts], SUMMARY_SCHEMA
    )
    store.replace_run(summary, SUMMARY_TABLE, run_id)
    return ImportResult(run_id, tuple(counts))
