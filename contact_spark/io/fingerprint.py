"""Order-independent fingerprints of tables, computed by Spark (nothing is collected).

A fingerprint is the row count and the sum of a 64-bit hash of every row, so two tables
with the same rows in any order and partitioning have the same fingerprint. Doubles are
rounded first (``decimals``) so that a sum computed in another order, which differs in
the last bits, does not change the fingerprint. Used to pin the demo plan (behaviour
unchanged across refactors) and by ``bench/plan_hash.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType


def _canonical(df: DataFrame, column: str, decimals: int) -> Column:
    """A column as it enters the row hash: floating point rounded, null made explicit."""
    kind = df.schema[column].dataType
    value = F.round(F.col(column), decimals) if isinstance(kind, (DoubleType, FloatType)) else F.col(column)
    return F.coalesce(value.cast("string"), F.lit("\u2205"))


def table_fingerprint(df: DataFrame, columns: Sequence[str] | None = None, decimals: int = 6) -> str:
    """``"<rows>:<sha256 prefix>"`` of ``columns`` (default all) of ``df``, order-independent."""
    cols = list(columns) if columns is not None else df.columns
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"fingerprint: columns {missing} are not in the table (it has {df.columns})")
    row_hash = F.xxhash64(*[_canonical(df, c, decimals) for c in cols]).cast("decimal(38,0)")
    row = df.agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash).alias("s")).first()
    n, s = (0, 0) if row is None else (int(row["n"]), int(row["s"] or 0))
    digest = hashlib.sha256(f"{','.join(cols)}|{n}|{s}".encode()).hexdigest()[:16]
    return f"{n}:{digest}"
