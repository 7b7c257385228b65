"""Reading an import's source (CSV, Parquet, JDBC, catalog table), each row with its lineage.

Every row read carries where it came from, so a quarantined row can be found in the source:

* ``_source_file``, ``_source_row`` — files: the file's name and the record's 1-based number
  in it (the header not counted). Parquet has it (``_metadata.row_index``); for CSV it is
  counted from the file split each record was read from (:func:`with_file_rows`), the same
  on every read of the same files;
* ``_source_key`` — JDBC and catalog tables: the values of the source key the mapping names;
* ``_malformed`` — a CSV line whose fields do not match the header (too few or too many).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from contact_spark.config.imports import CsvSource, JdbcSource, ParquetSource, TableImport, TableSource
from contact_spark.errors import ContactSparkError

LINEAGE = ("_source_file", "_source_row", "_source_key", "_malformed")
_CORRUPT = "_corrupt_record"


@dataclass(frozen=True)
class SourceFrame:
    """A source's rows (its own columns plus :data:`LINEAGE`), its columns and a description."""

    df: DataFrame
    columns: list[str]
    description: str


def quoted(name: str) -> str:
    """A column name as Spark reads it literally (dots, spaces, parentheses and all)."""
    return "`" + name.replace("`", "``") + "`"


def with_file_rows(df: DataFrame) -> DataFrame:
    """Number the records of each file 1, 2, … in file order, from ``_path`` and ``_block``.

    A file split (``_block``: its start offset) is read whole, in order, by one task, so a
    record's position in its split is its ``monotonically_increasing_id`` minus the split's
    first; the splits before it in the same file give the offset. No single task sorts a
    whole file, and the numbers do not depend on how splits are packed into tasks.
    """
    split = Window.partitionBy("_path", "_block")
    rows = df.withColumn("_id", F.monotonically_increasing_id()).withColumn(
        "_in_split", F.col("_id") - F.min("_id").over(split)
    )
    earlier = Window.partitionBy("_path").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    offsets = (
        df.groupBy("_path", "_block")
        .agg(F.count(F.lit(1)).alias("_n"))
        .select("_path", "_block", F.coalesce(F.sum("_n").over(earlier), F.lit(0)).alias("_offset"))
    )
    return (
        rows.join(F.broadcast(offsets), ["_path", "_block"])
        .withColumn("_source_row", F.col("_offset") + F.col("_in_split") + 1)
        .drop("_id", "_in_split", "_offset", "_path", "_block")
    )


def _files(df: DataFrame) -> DataFrame:
    return df.select(
        "*",
        F.col("_metadata.file_path").alias("_path"),
        F.col("_metadata.file_name").alias("_source_file"),
        F.col("_metadata.file_block_start").alias("_block"),
    )


def _no_key(df: DataFrame) -> DataFrame:
    return df.withColumn("_source_key", F.lit(None).cast("array<string>"))


def _read_csv(spark: SparkSession, table: str, source: CsvSource) -> tuple[DataFrame, list[str]]:
    options = {
        "header": str(source.header).lower(),
        "sep": source.delimiter,
        "encoding": source.encoding,
        "quote": source.quote,
    }
    # Every field as text, converted by the mapping: a bad value is quarantined, never
    # guessed. Names from the header (a byte-order mark stripped from the first).
    header = spark.read.options(**options).csv(source.path).columns
    if not header:
        raise ContactSparkError(f"{table}.source: {describe(source)} is empty (not even a header line)")
    names = [name.lstrip("\ufeff") for name in header]
    schema = T.StructType(
        [T.StructField(n, T.StringType()) for n in names] + [T.StructField(_CORRUPT, T.StringType())]
    )
    raw = (
        spark.read.schema(schema)
        # Without column pruning: a line with too few or too many fields is told apart only
        # when every field is parsed, not just the mapped ones.
        .options(**options, mode="PERMISSIVE", columnNameOfCorruptRecord=_CORRUPT, columnPruning="false")
        .csv(source.path)
    )
    # The corrupt record is the raw line (a phone or an address, maybe): only its presence is kept.
    df = with_file_rows(_files(raw)).withColumn("_malformed", F.col(_CORRUPT).isNotNull()).drop(_CORRUPT)
    return _no_key(df), names


def _read_parquet(spark: SparkSession, source: ParquetSource) -> tuple[DataFrame, list[str]]:
    raw = spark.read.parquet(source.path)
    names = list(raw.columns)
    df = _files(raw).withColumn("_source_row", F.col("_metadata.row_index") + 1).drop("_path", "_block")
    return _no_key(df.withColumn("_malformed", F.lit(False))), names


def _env(name: str | None, table: str, what: str, env: Mapping[str, str]) -> str | None:
    if name is None:
        return None
    value = env.get(name)
    if value is None:
        raise ContactSparkError(
            f"{table}.source.{what}: environment variable {name} is not set: export it before the import"
        )
    return value


def _read_jdbc(spark: SparkSession, table: str, source: JdbcSource, env: Mapping[str, str]) -> DataFrame:
    reader = spark.read.format("jdbc").option("url", source.url).option("driver", source.driver)
    reader = (
        reader.option("dbtable", source.dbtable) if source.dbtable else reader.option("query", source.query)
    )
    for option, name, what in (
        ("user", source.user_env, "user_env"),
        ("password", source.password_env, "password_env"),
    ):
        value = _env(name, table, what, env)
        if value is not None:
            reader = reader.option(option, value)
    if source.fetchsize:
        reader = reader.option("fetchsize", str(source.fetchsize))
    if source.partitioning is not None:
        split = source.partitioning
        reader = (
            reader.option("partitionColumn", split.column)
            .option("lowerBound", str(split.lower))
            .option("upperBound", str(split.upper))
            .option("numPartitions", str(split.partitions))
        )
    return reader.load()


def describe(source: CsvSource | ParquetSource | JdbcSource | TableSource) -> str:
    """The source in a message or a table row: its kind and file, table or query (no URL, no secret)."""
    if isinstance(source, CsvSource | ParquetSource):
        return f"{source.format} {os.path.basename(source.path.rstrip('/')) or source.path}"
    if isinstance(source, JdbcSource):
        return f"jdbc table {source.dbtable}" if source.dbtable else "jdbc query"
    return f"table {source.name}"


def read_source(
    spark: SparkSession, table: str, mapping: TableImport, env: Mapping[str, str] | None = None
) -> SourceFrame:
    """Read the source of one input table; a source that cannot be read is one line naming it."""
    source = mapping.source
    description = describe(source)
    try:
        if isinstance(source, CsvSource):
            df, names = _read_csv(spark, table, source)
        elif isinstance(source, ParquetSource):
            df, names = _read_parquet(spark, source)
        else:
            raw = (
                _read_jdbc(spark, table, source, os.environ if env is None else env)
                if isinstance(source, JdbcSource)
                else spark.read.table(source.name)
            )
            names = list(raw.columns)
            lower = {n.lower(): n for n in names}
            key = [lower.get(k.lower(), k) for k in mapping.key]
            if any(k not in names for k in key):
                missing = next(k for k in mapping.key if k.lower() not in lower)
                raise ContactSparkError(
                    f"{table}.source.key: source column '{missing}' is not in {description} "
                    f"(its columns: {', '.join(names)})"
                )
            df = raw.select(
                "*",
                F.lit(None).cast("string").alias("_source_file"),
                F.lit(None).cast("long").alias("_source_row"),
                F.array(*[F.col(quoted(k)).cast("string") for k in key]).alias("_source_key"),
                F.lit(False).alias("_malformed"),
            )
    except ContactSparkError:
        raise
    except Exception as exc:  # the user's source: missing file, bad URL, unknown table, wrong driver
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ContactSparkError(f"{table}.source: cannot read {description}: {first}") from exc
    return SourceFrame(df, names, description)
