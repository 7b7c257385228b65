"""Seeded random draws as Spark columns: a hash of (seed, a salt naming the draw, row
keys), so the output does not depend on the number of partitions or executors."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

HASH_BITS = 53


def uniform(seed: int, salt: str, *keys: Column) -> Column:
    """A deterministic uniform draw in [0, 1) from a hash of the seed, salt and keys."""
    h = F.xxhash64(F.lit(seed), F.lit(salt), *keys)
    return (F.abs(h) % F.lit(1 << HASH_BITS)).cast("double") / float(1 << HASH_BITS)


def pick(u: Column, choices: list[tuple[str, float]]) -> Column:
    """Map a uniform draw to a categorical value with the given probabilities."""
    total = sum(p for _, p in choices)
    expr = None
    cumulative = 0.0
    for value, p in choices[:-1]:
        cumulative += p / total
        expr = (
            F.when(u < cumulative, F.lit(value)) if expr is None else expr.when(u < cumulative, F.lit(value))
        )
    last = F.lit(choices[-1][0])
    return last if expr is None else expr.otherwise(last)


def digits(seed: int, salt: str, key: Column, n: int) -> Column:
    """``n`` pseudo-random decimal digits as a string (leading zeros kept)."""
    value = F.abs(F.xxhash64(F.lit(seed), F.lit(salt), key)) % F.lit(10**n)
    return F.lpad(value.cast("string"), n, "0")
