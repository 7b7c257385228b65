"""pandas UDFs with a type the type checker can read.

pyspark types ``pandas_udf`` against pandas' own stubs, which are not installed here
(pandas-stubs tracks pandas 3; pandas is ``Any`` to mypy), so no overload matches a function of
``pd.Series`` and the decorator reads as untyped. :func:`series_udf` makes that one untyped call
and gives the UDF the type it has (columns in, a column out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import DataType

if TYPE_CHECKING:
    from pyspark.sql._typing import UserDefinedFunctionLike  # a stub-only Protocol

_pandas_udf: Any = pandas_udf


def series_udf(function: Callable[..., Any], return_type: DataType | str) -> UserDefinedFunctionLike:
    """A pandas UDF of ``function`` (Series in, Series or DataFrame out, per Arrow batch): the
    same as decorating ``function`` with ``@pandas_udf(return_type)``."""
    udf: UserDefinedFunctionLike = _pandas_udf(function, return_type)
    return udf
