"""Named exceptions raised at the boundaries, before heavy work starts.

Every message names what the user has to look at (file, table, column, rule, row)
so that a job can print it on one line and exit non-zero instead of a stack trace.
"""

from __future__ import annotations


class ContactSparkError(Exception):
    """Base class for every error caused by the user's input or configuration."""


class ConfigError(ContactSparkError, ValueError):
    """A configuration file is missing, unreadable or invalid."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        joined = "; ".join(problems)
        super().__init__(f"invalid config {source}: {joined}")


class InputContractError(ContactSparkError):
    """An input table does not follow the documented input contract."""


class MissingTableError(InputContractError):
    """An input table does not exist where the configuration says it is."""

    def __init__(self, table: str, location: str) -> None:
        self.table = table
        self.location = location
        super().__init__(f"table '{table}' not found at {location}")


class MissingColumnError(InputContractError):
    """A required column is absent from an input table."""

    def __init__(self, table: str, column: str, available: list[str] | None = None) -> None:
        self.table = table
        self.column = column
        hint = f" (columns present: {', '.join(available)})" if available else ""
        super().__init__(f"table '{table}' is missing required column '{column}'{hint}")


class ColumnTypeError(InputContractError):
    """A column has a type the input contract does not accept."""

    def __init__(self, table: str, column: str, expected: str, actual: str) -> None:
        self.table = table
        self.column = column
        self.expected = expected
        self.actual = actual
        super().__init__(f"table '{table}' column '{column}' has type {actual}, expected {expected}")


class RunConflictError(ContactSparkError):
    """A write would mix rows of different runs or duplicate a run."""


class CommitConflictError(ContactSparkError):
    """A Delta commit kept losing races with other writers of the same table."""


class RunLockedError(ContactSparkError):
    """Another process holds the run (same run id), or took it over."""
