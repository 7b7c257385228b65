"""The import's engine: source rows → contract rows, each bad row with a reason (DataFrame → DataFrame).

:func:`convert` maps and converts every target column of a :class:`TablePlan` and lists each
row's problems; :func:`classify` adds the duplicates (of the contract's key) and the row's
reason; :func:`quarantine_rows` turns the bad rows into ``import_quarantine`` rows. No I/O
here: :mod:`contact_spark.io.importer` reads the sources and writes the tables.

A row's problems are ``array<struct<code, text, raw>>``: ``raw`` is the offending source value,
which the text quotes only once masked (:func:`contact_spark.io.masking.mask_value`), on the
quarantined rows alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from contact_spark.config.imports import ColumnMapping
from contact_spark.io.import_plan import ColumnPlan, TablePlan
from contact_spark.io.import_sources import LINEAGE, quoted
from contact_spark.io.masking import mask_value

MALFORMED_ROW = "MALFORMED_ROW"  # a CSV line whose fields do not match the header
MISSING_REQUIRED = "MISSING_REQUIRED"  # a column the contract requires is empty
BAD_BOOLEAN = "BAD_BOOLEAN"
BAD_DATE = "BAD_DATE"
BAD_TIMESTAMP = "BAD_TIMESTAMP"
BAD_NUMBER = "BAD_NUMBER"
BAD_INTEGER = "BAD_INTEGER"
OUT_OF_RANGE = "OUT_OF_RANGE"  # a number outside the contract's range (a propensity outside [0, 1])
DUPLICATE_ROW = "DUPLICATE_ROW"  # same key and same values as an earlier row: the earlier one is imported
DUPLICATE_KEY = "DUPLICATE_KEY"  # same key, different values: none of them is imported
REASONS = (
    MALFORMED_ROW,
    MISSING_REQUIRED,
    BAD_BOOLEAN,
    BAD_DATE,
    BAD_TIMESTAMP,
    BAD_NUMBER,
    BAD_INTEGER,
    OUT_OF_RANGE,
    DUPLICATE_ROW,
    DUPLICATE_KEY,
)
_BAD = {
    "boolean": BAD_BOOLEAN,
    "date": BAD_DATE,
    "timestamp": BAD_TIMESTAMP,
    "double": BAD_NUMBER,
    "long": BAD_INTEGER,
}
VALUE = "\x00"  # where a problem's text quotes its (masked) raw value
DETAIL_LENGTH = 300
PROBLEMS = "_problems"
REASON = "_reason"

QUARANTINE_SCHEMA = (
    "run_id string, table_name string, source string, source_file string, source_row long, "
    "source_key string, reason_code string, detail string"
)


@contextmanager
def lenient(spark: SparkSession) -> Iterator[None]:
    """Build expressions with ANSI mode off: a user's expression that fails on a value
    (a cast, a division by zero) gives null rather than failing the whole import.

    Spark fixes an expression's evaluation mode when the DataFrame is analysed, which
    classic PySpark does at once, so the setting only needs to hold while it is built.
    """
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "false")
    try:
        yield
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before or "true")


def _problem(code: str, text: str | Column, raw: Column | None = None) -> Column:
    return F.struct(
        F.lit(code).alias("code"),
        (F.lit(text) if isinstance(text, str) else text).alias("text"),
        (raw.cast("string") if raw is not None else F.lit(None).cast("string")).alias("raw"),
    )


def _kind(plan: ColumnPlan, dtype: T.DataType) -> str:
    """The target type: the plan's, else the one of ``plan.kinds`` the source's type suggests."""
    if plan.kind is not None:
        return plan.kind
    if isinstance(dtype, T.DateType):
        suggested = "date"
    elif isinstance(dtype, T.TimestampType | T.TimestampNTZType):
        suggested = "timestamp"
    elif isinstance(dtype, T.BooleanType):
        suggested = "boolean"
    elif isinstance(dtype, T.IntegralType):
        suggested = "long"
    elif isinstance(dtype, T.NumericType):
        suggested = "double"
    else:
        suggested = plan.kinds[0]
    return suggested if suggested in plan.kinds else plan.kinds[0]


def _converted(raw: Column, dtype: T.DataType, kind: str, mapping: ColumnMapping) -> Column:
    """``raw`` as ``kind``; null for a blank value and for one that does not convert."""
    text = F.trim(raw.cast("string"))
    blank = text.isNull() | (text == "")
    if kind == "string":
        return F.when(~blank, raw.cast("string"))
    if kind == "boolean":
        if isinstance(dtype, T.BooleanType):
            return raw
        trues, falses = ([v.strip().lower() for v in values] for values in mapping.booleans)
        lower = F.lower(text)
        return F.when(lower.isin(trues), F.lit(True)).when(lower.isin(falses), F.lit(False))
    if kind in ("date", "timestamp") and isinstance(dtype, T.DateType | T.TimestampType | T.TimestampNTZType):
        return F.to_date(raw) if kind == "date" else raw.cast("timestamp")
    if kind == "date":
        return F.try_to_date(text, mapping.pattern) if mapping.pattern else text.try_cast("date")
    if kind == "timestamp":
        return (
            F.try_to_timestamp(text, F.lit(mapping.pattern))
            if mapping.pattern
            else text.try_cast("timestamp")
        )
    source = raw if isinstance(dtype, T.NumericType) else text
    return source.try_cast(kind)


def _what(kind: str, mapping: ColumnMapping) -> str:
    if kind == "boolean":
        trues, falses = mapping.booleans
        return f"a boolean (true: {'/'.join(trues)}; false: {'/'.join(falses)})"
    if kind in ("date", "timestamp"):
        return f"a {kind} in pattern {mapping.pattern}" if mapping.pattern else f"an ISO {kind}"
    return "a number" if kind == "double" else "a whole number"


def _constant(value: Any, kind: str | None) -> Column:
    if kind is None:  # a date or a timestamp, as the constant is written
        is_time = isinstance(value, dt.datetime) or (
            isinstance(value, str) and ("T" in value or ":" in value)
        )
        kind = "timestamp" if is_time else "date"
    if isinstance(value, dt.date):
        value = value.isoformat()
    return F.lit(value).cast(kind)


def convert(df: DataFrame, plan: TablePlan) -> DataFrame:
    """The lineage columns, every target column converted, and the row's problems (in order:
    a malformed line, then each column's emptiness, conversion and range)."""
    spark = df.sparkSession
    selected: list[Column] = [F.col(c) for c in LINEAGE]
    problems: list[Column] = [
        F.when(F.col("_malformed"), _problem(MALFORMED_ROW, "the line's fields do not match the header"))
    ]
    with lenient(spark):
        for column in plan.columns:
            if column.mapping is None:
                selected.append(_constant(column.constant, column.kind).alias(column.name))
                continue
            mapping = column.mapping
            raw = F.col(quoted(mapping.column)) if mapping.column is not None else F.expr(mapping.expr or "")
            dtype = df.select(raw).schema.fields[0].dataType
            kind = _kind(column, dtype)
            value = _converted(raw, dtype, kind, mapping)
            text = F.trim(raw.cast("string"))
            blank = text.isNull() | (text == "")
            label = mapping.label if len(mapping.label) <= 40 else mapping.label[:39] + "…"
            named = f"{column.name} ({label})"
            if not column.nullable:
                problems.append(F.when(blank, _problem(MISSING_REQUIRED, f"{named} is empty")))
            if kind != "string":
                bad = f"{named} '{VALUE}' is not {_what(kind, mapping)}"
                problems.append(F.when(~blank & value.isNull(), _problem(_BAD[kind], bad, raw)))
            if column.bounds is not None:
                low, high = column.bounds
                outside = value.isNotNull() & ~value.between(low, high)
                text_range = f"{column.name} {VALUE} is outside [{low:g}, {high:g}]"
                problems.append(F.when(outside, _problem(OUT_OF_RANGE, text_range, value)))
            selected.append(value.alias(column.name))
        return df.select(*selected, F.filter(F.array(*problems), lambda p: p.isNotNull()).alias(PROBLEMS))


def classify(df: DataFrame, plan: TablePlan) -> DataFrame:
    """Add the duplicates of the contract's key to the problems, and ``_reason`` (the first
    problem's code, null for a row to import).

    Among rows without other problems, a keyed row with the same values as an earlier one
    (in source order) is a ``DUPLICATE_ROW``: the earlier one is imported. Rows sharing a key
    with different values are each a ``DUPLICATE_KEY``: none is imported, as the import
    cannot tell which is right (two consents for one customer).
    """
    key = plan.key
    if key:
        targets = [c.name for c in plan.columns]
        ok = F.size(PROBLEMS) == 0
        order = [F.col("_source_file"), F.col("_source_row"), F.col("_source_key")]
        same = Window.partitionBy(*targets).orderBy(*order)
        keyed = F.lit(True)
        for name in key:
            keyed = keyed & F.col(name).isNotNull()
        valid = (
            df.filter(ok)
            .withColumn("_copy", F.row_number().over(same))
            .withColumn("_first_row", F.first("_source_row").over(same))
            .withColumn("_first_key", F.concat_ws(", ", F.first("_source_key").over(same)))
            .withColumn(
                "_variants",
                F.sum(F.when(F.col("_copy") == 1, 1).otherwise(0)).over(Window.partitionBy(*key)),
            )
        )
        same_as = F.when(
            F.col("_first_row").isNotNull(),
            F.concat(F.lit("same values as row "), F.col("_first_row").cast("string")),
        ).otherwise(F.lit(f"same values as the row keyed {VALUE}"))
        shared = F.concat(
            F.lit(f"{', '.join(key)} shared by "),
            F.col("_variants").cast("string"),
            F.lit(" rows with different values: none is imported"),
        )
        found = F.array(
            F.when(keyed & (F.col("_copy") > 1), _problem(DUPLICATE_ROW, same_as, F.col("_first_key"))),
            F.when(keyed & (F.col("_copy") == 1) & (F.col("_variants") > 1), _problem(DUPLICATE_KEY, shared)),
        )
        valid = valid.withColumn(PROBLEMS, F.filter(found, lambda p: p.isNotNull())).drop(
            "_copy", "_first_row", "_first_key", "_variants"
        )
        df = valid.unionByName(df.filter(~ok))
    # get: null past the end (an empty array) where [0] fails in ANSI mode.
    return df.withColumn(REASON, F.get(F.col(PROBLEMS), 0).getField("code"))


def _detail(problems: Sequence[Any] | None) -> str | None:
    """The problems' texts, each quoting its raw value masked; at most DETAIL_LENGTH characters."""
    if not problems:
        return None
    parts = []
    for problem in problems:
        shown = mask_value(problem["raw"]) if problem["raw"] is not None else "null"
        parts.append(str(problem["text"]).replace(VALUE, shown or ""))
    text = "; ".join(parts)
    return text if len(text) <= DETAIL_LENGTH else text[: DETAIL_LENGTH - 1] + "…"


def _key_text(names: Sequence[str] | None, values: Sequence[str | None] | None) -> str | None:
    """``NAME=value, …`` with every value masked (a key may be an address)."""
    if names is None or values is None:
        return None
    return ", ".join(
        f"{n}={mask_value(v) if v is not None else 'null'}" for n, v in zip(names, values, strict=True)
    )


# Wrapped in lambdas: Spark would read the functions' type hints as a pandas UDF's.
_detail_udf = F.udf(lambda problems: _detail(problems), T.StringType())
_key_udf = F.udf(lambda names, values: _key_text(names, values), T.StringType())


def quarantine_rows(classified: DataFrame, plan: TablePlan, source: str, run_id: str) -> DataFrame:
    """The ``import_quarantine`` rows of a classified table: one per row with a reason."""
    names = (
        F.array(*[F.lit(k) for k in plan.source.key])
        if plan.source.key
        else F.lit(None).cast("array<string>")
    )
    return classified.filter(F.col(REASON).isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        F.lit(plan.table).alias("table_name"),
        F.lit(source).alias("source"),
        F.col("_source_file").alias("source_file"),
        F.col("_source_row").alias("source_row"),
        _key_udf(names, F.col("_source_key")).alias("source_key"),
        F.col(REASON).alias("reason_code"),
        _detail_udf(F.col(PROBLEMS)).alias("detail"),
    )


def good_rows(classified: DataFrame, plan: TablePlan) -> DataFrame:
    """The rows to import: the target columns of the rows without a reason."""
    return classified.filter(F.col(REASON).isNull()).select(*[c.name for c in plan.columns])
