"""The import mapping: where each input table comes from and how its columns map to the contract.

A small YAML file (``conf/examples/import_crm_export.yaml``) read into strict typed models:
per input table (``customers``, ``contacts``, ``contact_history``, ``propensities``; each
optional, at least one) a ``source`` (CSV, Parquet, JDBC or a catalog table) and the mapping
of the contract's columns from the source's: a source column, or a Spark SQL expression
checked against the allow-list of rule predicates (:mod:`contact_spark.config.predicates`),
with a target type, a datetime pattern and boolean spellings, plus constant columns.

Pure data: nothing here reads a source or knows the contract's columns (the contract is in
a later layer). :func:`contact_spark.io.import_plan.check_mapping` checks the column names
against the contract, before Spark starts; the source's own column names are checked when
it is read. JDBC credentials are never in the file: it names the environment variables
that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from contact_spark.config.base import StrictModel
from contact_spark.config.predicates import PredicateError, check_predicate
from contact_spark.config.yaml_loader import read_yaml_mapping
from contact_spark.errors import ConfigError

INPUT_TABLE_NAMES = ("customers", "contacts", "contact_history", "propensities")
# The types a mapped column can be converted to; the contract's type is the default.
TargetType = Literal["string", "boolean", "date", "timestamp", "double", "long"]
DEFAULT_TRUE = ("true", "t", "yes", "y", "1")
DEFAULT_FALSE = ("false", "f", "no", "n", "0")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_JAVA_CLASS = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$")
_FORMATS = ("csv", "parquet", "jdbc", "table")
# A URL with a scheme (s3://, abfss://, dbfs:/, file:/) is used as given, not resolved.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def _non_blank(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is empty: give one")
    return value


class CsvSource(StrictModel):
    """CSV files: one record per line, every field read as text, then converted by the mapping."""

    format: Literal["csv"]
    path: str = Field(description="a file or a folder of files; relative to the mapping file")
    header: bool = True
    delimiter: str = ","
    encoding: str = "UTF-8"
    quote: str = '"'

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _non_blank(value, "path")

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"'{value}' must be exactly one character, e.g. ';' (a tab is \"\\t\")")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        return _non_blank(value, "encoding")


class ParquetSource(StrictModel):
    """Parquet files, typed by their own schema."""

    format: Literal["parquet"]
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _non_blank(value, "path")


class KeyedSource(StrictModel):
    """A source without files: its rows are told apart by ``key`` (source columns)."""

    key: list[str] = Field(min_length=1)

    @field_validator("key")
    @classmethod
    def _key(cls, value: list[str]) -> list[str]:
        for name in value:
            _non_blank(name, "a key column")
        if len(set(value)) != len(value):
            raise ValueError("a key column is listed twice")
        return value


class JdbcPartitioning(StrictModel):
    """Read a large table in ``partitions`` parallel queries, split on a numeric column's range."""

    column: str
    lower: int
    upper: int
    partitions: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _range(self) -> JdbcPartitioning:
        _non_blank(self.column, "column")
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


class JdbcSource(KeyedSource):
    """A database table or query read through Spark's JDBC reader (the driver's jar on the classpath)."""

    format: Literal["jdbc"]
    url: str
    driver: str
    dbtable: str | None = None
    query: str | None = None
    user_env: str | None = Field(None, description="environment variable holding the user")
    password_env: str | None = Field(None, description="environment variable holding the password")
    fetchsize: int | None = Field(None, gt=0)
    partitioning: JdbcPartitioning | None = Field(
        None, description="parallel reads of a dbtable (rows outside the range are read too)"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith("jdbc:"):
            raise ValueError(
                f"'{value[:60]}' is not a JDBC URL: it starts with jdbc:, e.g. jdbc:sqlite:/data/crm.db"
            )
        if re.search(r"password\s*=", value, re.IGNORECASE):
            raise ValueError(
                "the URL carries a password: remove it and name the environment variable that holds "
                "it with password_env (a mapping file must never contain a secret)"
            )
        return value

    @field_validator("driver")
    @classmethod
    def _driver(cls, value: str) -> str:
        if not _JAVA_CLASS.match(value):
            raise ValueError(f"'{value}' is not a Java class name, e.g. org.sqlite.JDBC")
        return value

    @field_validator("user_env", "password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(
                f"'{value}' is not an environment variable name (letters, digits, '_'): "
                "give the variable's name, never the secret itself"
            )
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> JdbcSource:
        if (self.dbtable is None) == (self.query is None):
            raise ValueError("give exactly one of dbtable (a table name) and query (a SELECT)")
        if self.partitioning is not None and self.query is not None:
            # Spark's JDBC reader refuses partitionColumn with query.
            raise ValueError(
                "partitioning applies to a dbtable, not to a query: write the query as dbtable: (SELECT …) t"
            )
        return self


class TableSource(KeyedSource):
    """A table of the Spark catalog (Unity Catalog, Hive metastore) or a temporary view."""

    format: Literal["table"]
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError(f"'{value}' is not a table name: [catalog.][schema.]table")
        return value


Source = Annotated[CsvSource | ParquetSource | JdbcSource | TableSource, Field(discriminator="format")]


class ColumnMapping(StrictModel):
    """Where one target column comes from, and how its text is read."""

    column: str | None = Field(None, description="a source column, by its exact name")
    expr: str | None = Field(None, description="a Spark SQL expression of source columns")
    type: TargetType | None = Field(None, description="target type (default: the contract's)")
    pattern: str | None = Field(
        None, description="Spark datetime pattern of a date/timestamp, e.g. dd/MM/yyyy"
    )
    true_values: list[str] | None = None
    false_values: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> ColumnMapping:
        if (self.column is None) == (self.expr is None):
            raise ValueError("give exactly one of column (a source column) and expr (an expression)")
        if self.column is not None:
            _non_blank(self.column, "column")
        if self.expr is not None:
            try:
                check_predicate(self.expr)
            except PredicateError as exc:
                raise ValueError(f"expression refused: {exc}") from None
        if self.pattern is not None:
            _non_blank(self.pattern, "pattern")
            if self.type not in (None, "date", "timestamp"):
                raise ValueError(f"pattern applies to a date or a timestamp, not to type {self.type}")
        if self.true_values is not None or self.false_values is not None:
            if self.type not in (None, "boolean"):
                raise ValueError(f"true_values/false_values apply to a boolean, not to type {self.type}")
            trues = {v.strip().lower() for v in self.booleans[0]}
            falses = {v.strip().lower() for v in self.booleans[1]}
            if not trues or not falses or "" in trues | falses:
                raise ValueError(
                    "true_values and false_values must each list at least one non-empty spelling"
                )
            if trues & falses:
                raise ValueError(f"{sorted(trues & falses)} is both a true and a false value")
        return self

    @property
    def booleans(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The spellings of true and false (given, or the defaults), as written."""
        trues = tuple(self.true_values) if self.true_values is not None else DEFAULT_TRUE
        falses = tuple(self.false_values) if self.false_values is not None else DEFAULT_FALSE
        return trues, falses

    @property
    def label(self) -> str:
        """The source, as a message names it."""
        return self.column if self.column is not None else f"expr {self.expr}"


Constant = bool | int | float | str | None


class TableImport(StrictModel):
    """One input table: its source, the contract columns' mapping and constant columns."""

    source: Source
    columns: dict[str, ColumnMapping] = Field(default_factory=dict)
    constants: dict[str, Constant] = Field(default_factory=dict)
    extra_columns: dict[str, ColumnMapping] = Field(
        default_factory=dict, description="customers only: more columns kept for rule predicates"
    )

    @field_validator("columns", "extra_columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # ``customer_id: CUST_ID`` is short for ``customer_id: {column: CUST_ID}``.
        if isinstance(value, Mapping):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("extra_columns")
    @classmethod
    def _extra_names(cls, value: dict[str, ColumnMapping]) -> dict[str, ColumnMapping]:
        for name in value:
            if not _IDENTIFIER.match(name):
                raise ValueError(
                    f"'{name}' is not a column name: letters, digits and '_' (rule predicates read it)"
                )
        return value

    @model_validator(mode="after")
    def _once(self) -> TableImport:
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            raise ValueError(f"column {both[0]} is both mapped and a constant: keep one")
        return self

    @property
    def key(self) -> list[str]:
        """The source columns naming a row of a source without files (JDBC, table), else []."""
        return list(self.source.key) if isinstance(self.source, KeyedSource) else []


class ImportMapping(StrictModel):
    """The import mapping file: at least one input table."""

    customers: TableImport | None = None
    contacts: TableImport | None = None
    contact_history: TableImport | None = None
    propensities: TableImport | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> ImportMapping:
        if not self.tables:
            raise ValueError(f"map at least one input table: {', '.join(INPUT_TABLE_NAMES)}")
        return self

    @property
    def tables(self) -> dict[str, TableImport]:
        """The mapped tables, in the contract's order."""
        found = {name: getattr(self, name) for name in INPUT_TABLE_NAMES}
        return {name: table for name, table in found.items() if table is not None}


def _describe(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    # The source's union adds the chosen member's tag after "source": drop it.
    loc = [p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "source" and p in _FORMATS)]
    where = ".".join(loc) or "<root>"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        if len(loc) == 1:
            message = f"unknown input table (the input tables are {', '.join(INPUT_TABLE_NAMES)})"
        else:
            message = "unknown key (check the spelling; docs/import.md lists the keys)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        message = "format must be one of csv, parquet, jdbc, table"
    return f"{where}: {message}"


def _resolve(path: str, base: Path) -> str:
    if _URI.match(path) or Path(path).is_absolute():
        return path
    return str((base / path).resolve())


def mapping_from_dict(
    data: Mapping[str, Any], source: str = "<dict>", base_dir: str | Path = "."
) -> ImportMapping:
    """Validate a parsed mapping; relative file paths are resolved against ``base_dir``."""
    try:
        mapping = ImportMapping.model_validate(data)
    except ValidationError as exc:
        # One line: the first problem (a user fixes one key at a time; pydantic lists every union member).
        problems = [_describe(e) for e in exc.errors()]
        raise ConfigError(source, list(dict.fromkeys(problems))[:3]) from None
    base = Path(base_dir)
    updates: dict[str, TableImport] = {}
    for name, table in mapping.tables.items():
        if isinstance(table.source, CsvSource | ParquetSource):
            resolved = table.source.model_copy(update={"path": _resolve(table.source.path, base)})
            updates[name] = table.model_copy(update={"source": resolved})
    return mapping.model_copy(update=updates)


def load_import_mapping(path: str | Path) -> ImportMapping:
    """Read and validate an import mapping file (YAML); errors name the file and the key."""
    file = Path(path)
    data = read_yaml_mapping(file, "the top level must map input tables to their import")
    return mapping_from_dict(data, source=str(file), base_dir=file.resolve().parent)
