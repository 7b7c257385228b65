"""An import mapping checked against the input contract: one plan per target column.

:func:`check_mapping` runs before Spark starts (pure Python): every contract column named in
the mapping exists, every required one is mapped or a constant, each column's type, pattern
and constant fit the contract. A mistake is one :class:`~contact_spark.errors.ConfigError`
naming the mapping file, the table and the column. The source's column names are checked
later, against the source's schema (:func:`check_source_columns`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pyspark.sql import types as T

from contact_spark.config.imports import ColumnMapping, Constant, ImportMapping, TableImport
from contact_spark.config.predicates import predicate_columns
from contact_spark.contract import INPUT_TABLES, ColumnSpec, TableSpec, customers_spec
from contact_spark.errors import ConfigError, InputContractError

# The target types a contract column accepts, the first being the default.
_KINDS: tuple[tuple[type[T.DataType], tuple[str, ...]], ...] = (
    (T.StringType, ("string",)),
    (T.BooleanType, ("boolean",)),
    (T.TimestampType, ("timestamp", "date")),
    (T.DateType, ("date",)),
    (T.DoubleType, ("double", "long")),
    (T.LongType, ("long",)),
)
ALL_KINDS = ("string", "boolean", "date", "timestamp", "double", "long")
# A Spark datetime pattern with one of these letters has a time of day: a timestamp.
_TIME_LETTERS = re.compile(r"[HhKkmsSaAnNVzZXxO]")


@dataclass(frozen=True)
class ColumnPlan:
    """One target column: where it comes from and what it must hold."""

    name: str
    mapping: ColumnMapping | None  # None: a constant
    constant: Constant
    kinds: tuple[str, ...]  # the target types allowed; the first is the default
    nullable: bool = True
    bounds: tuple[float, float] | None = None

    @property
    def kind(self) -> str | None:
        """The target type when the mapping decides it; None: the source's type decides
        (between a date and a timestamp, or for a column of the user's own)."""
        mapping = self.mapping
        if mapping is not None and mapping.type is not None:
            return mapping.type
        if mapping is not None and mapping.pattern is not None and "date" in self.kinds:
            return "timestamp" if _TIME_LETTERS.search(_unquoted(mapping.pattern)) else "date"
        if mapping is not None and mapping.true_values is not None and "boolean" in self.kinds:
            return "boolean"
        if len(self.kinds) == 1 or self.kinds == ("double", "long"):
            return self.kinds[0]
        return None

    @property
    def label(self) -> str:
        return self.mapping.label if self.mapping is not None else "constant"


@dataclass(frozen=True)
class TablePlan:
    """One input table's import: the contract, the columns in the contract's order, the key."""

    table: str
    spec: TableSpec
    source: TableImport
    columns: tuple[ColumnPlan, ...]

    @property
    def key(self) -> tuple[str, ...]:
        """The contract's key, when every key column is imported (else rows are not keyed)."""
        names = {c.name for c in self.columns}
        return self.spec.key if self.spec.key and set(self.spec.key) <= names else ()


def _unquoted(pattern: str) -> str:
    """A datetime pattern without its quoted literals ('T', 'at')."""
    return re.sub(r"'[^']*'", "", pattern)


def _kinds(spec: ColumnSpec) -> tuple[str, ...]:
    for data_type, kinds in _KINDS:
        if data_type in spec.types:
            return kinds
    return ("string",)


def _constant_problem(value: Constant, kind: str | None, nullable: bool) -> str | None:
    if value is None:
        return None if nullable else "null is not allowed: the column is required to hold a value"
    if kind == "boolean" and not isinstance(value, bool):
        return "give true or false"
    if kind in ("double", "long") and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "give a number"
    if kind == "long" and not isinstance(value, int):
        return "give a whole number"
    if kind == "string" and not isinstance(value, str):
        return "give a text (quote it: '...')"
    if kind in ("date", "timestamp", None):
        if isinstance(value, dt.date):
            return None
        try:
            dt.datetime.fromisoformat(str(value))
        except ValueError:
            return "give an ISO date or timestamp, e.g. 2027-01-01"
    return None


def _plan_table(table: str, spec: TableSpec, source: TableImport, fail: list[str]) -> tuple[ColumnPlan, ...]:
    contract = {c.name: c for c in spec.columns}
    known = ", ".join(contract)
    hint = " (a column of your own goes under extra_columns)" if table == "customers" else ""
    for group, names in (("columns", source.columns), ("constants", source.constants)):
        for name in names:
            if name not in contract:
                fail.append(f"{table}.{group}.{name}: not a column of the {table} contract ({known}){hint}")
    if source.extra_columns and table != "customers":
        fail.append(f"{table}.extra_columns: only customers keeps columns of its own; remove it")
    for name in source.extra_columns:
        if name in contract:
            fail.append(f"customers.extra_columns.{name}: a contract column: map it under customers.columns")
    plans: list[ColumnPlan] = []
    for column in spec.columns:
        mapping = source.columns.get(column.name)
        if mapping is None and column.name not in source.constants:
            if column.required:
                fail.append(
                    f"{table}.columns.{column.name}: required by the contract but neither mapped nor "
                    f"a constant: map it under {table}.columns or give it under {table}.constants"
                )
            continue
        plan = ColumnPlan(
            column.name,
            mapping,
            source.constants.get(column.name),
            _kinds(column),
            column.nullable,
            column.bounds,
        )
        where = f"{table}.{'columns' if mapping is not None else 'constants'}.{column.name}"
        if mapping is not None and mapping.type is not None and mapping.type not in plan.kinds:
            fail.append(f"{where}: type {mapping.type} does not fit the contract's {column.type_names}")
        elif mapping is not None and mapping.pattern is not None and plan.kind not in ("date", "timestamp"):
            fail.append(
                f"{where}: a pattern applies to dates and timestamps, the column is {column.type_names}"
            )
        elif mapping is not None and mapping.true_values is not None and plan.kind != "boolean":
            fail.append(
                f"{where}: true_values/false_values apply to a boolean, the column is {column.type_names}"
            )
        elif mapping is None:
            problem = _constant_problem(plan.constant, plan.kind, plan.nullable)
            if problem:
                fail.append(f"{where}: {plan.constant!r} does not fit {column.type_names}: {problem}")
        plans.append(plan)
    for name, mapping in source.extra_columns.items():
        plans.append(ColumnPlan(name, mapping, None, ALL_KINDS))
    return tuple(plans)


def check_mapping(mapping: ImportMapping, channels: list[str], path: str) -> dict[str, TablePlan]:
    """The plan of every mapped table; a mistake is a ConfigError naming ``path``, table and column.

    ``channels`` are the configured channels: the customers contract has one opt-out column each.
    """
    specs = {**INPUT_TABLES, "customers": customers_spec(channels)}
    fail: list[str] = []
    plans = {}
    for table, source in mapping.tables.items():
        columns = _plan_table(table, specs[table], source, fail)
        plans[table] = TablePlan(table, specs[table], source, columns)
    if fail:
        raise ConfigError(path, fail[:1])
    return plans


def check_source_columns(plan: TablePlan, columns: list[str], source: str) -> None:
    """Every source column the mapping reads (and the source key) is in the source's ``columns``."""
    present = {c.lower() for c in columns}  # Spark resolves names without regard to case

    def missing(name: str, where: str) -> None:
        if name.lower() not in present:
            shown = ", ".join(columns[:30]) + (", …" if len(columns) > 30 else "")
            raise InputContractError(
                f"{plan.table}.{where}: source column '{name}' is not in {source} (its columns: {shown})"
            )

    for key in plan.source.key:
        missing(key, "source.key")
    for column in plan.columns:
        if column.mapping is None:
            continue
        group = "columns" if column.name in plan.source.columns else "extra_columns"
        if column.mapping.column is not None:
            missing(column.mapping.column, f"{group}.{column.name}")
        else:
            for name in predicate_columns(column.mapping.expr or ""):
                missing(name, f"{group}.{column.name}")
