"""Types shared by every stage of a run: the checked input frames, the stage-order check.

A leaf of the run machinery (it imports only the table layer), so that features,
``contact_spark.stages`` and ``contact_spark.pipeline`` can all use these without
importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contact_spark.errors import ContactSparkError
from contact_spark.io.catalog import RUN_STAGES_TABLE
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


class EmptyStageError(ContactSparkError):
    """A stage found nothing to write (no customers, no usable contact), so the next cannot run."""


def require_run(store: TableStore, table: str, run_id: str, producer: str) -> None:
    """Stop with one line when ``table`` has no rows of ``run_id`` yet: the producer stage
    has not run for the run, or it ran and found nothing to write."""
    if store.exists(table) and store.read_run(table, run_id).limit(1).count() > 0:
        return
    if store.exists(RUN_STAGES_TABLE):
        ran = store.read_run(RUN_STAGES_TABLE, run_id).filter(F.col("stage") == producer)
        if ran.limit(1).count() > 0:
            raise EmptyStageError(
                f"the {producer} stage of run '{run_id}' wrote no rows to table '{table}': there is "
                f"nothing to go on with; check the run's input tables (the {producer} stage's other "
                f"tables say why rows were left out)"
            )
    raise StageOrderError(
        f"table '{table}' has no rows for run '{run_id}': run the {producer} stage "
        f"for this run first (same config and --run-id)"
    )


class RawContactColumnError(ContactSparkError):
    """A table that names contacts by key still has the raw ``contact`` column of an earlier version."""


def refuse_raw_contact_column(store: TableStore, table: str) -> None:
    """Stop with one line when ``table`` (``eligibility``, ``baseline_plan``) still has the
    ``contact`` column an earlier version wrote: its earlier runs' rows hold raw phones and
    e-mails, which only ``contacts_clean``, ``best_contacts`` and ``plan`` may (the table now
    names the contact by ``contact_id``), and native Delta would refuse the new columns with
    a schema error. Checked before the stage's work; reads the table's schema only."""
    if store.exists(table) and "contact" in store.read(table).columns:
        raise RawContactColumnError(
            f"table '{table}' at {store.location(table)} has a column 'contact' of raw phones and "
            f"e-mails, written by an earlier version: drop the table (the next run writes it again, "
            f"naming the contact by contact_id only)"
        )
