"""Types shared by every stage of a run: the checked input frames, the stage-order check.

A leaf of the run machinery (it imports only the table layer), so that features,
``contact_spark.stages`` and ``contact_spark.pipeline`` can all use these without
importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from contact_spark.errors import ContactSparkError
from contact_spark.io.tables import TableStore

RUN_STAGES_SCHEMA = "run_id string, stage_order int, stage string, seconds double, rows long"


@dataclass(frozen=True)
class Inputs:
    """The four input tables, checked against the input contract."""

    customers: DataFrame
    contacts: DataFrame
    contact_history: DataFrame
    propensities: DataFrame


class StageOrderError(ContactSparkError):
    """A stage was run before the stage whose tables it reads, for this run id."""


def require_run(store: TableStore, table: str, run_id: str, producer: str) -> None:
    """Stop with one line when ``table`` has no rows of ``run_id`` yet."""
    if not store.exists(table) or store.read_run(table, run_id).limit(1).count() == 0:
        raise StageOrderError(
            f"table '{table}' has no rows for run '{run_id}': run the {producer} stage "
            f"for this run first (same config and --run-id)"
        )
