"""The input versions a run reads: pinned once, read by every stage of the run.

Input tables are shared by every run of a lakehouse and change under them: new exports,
another run's ``--generate``. So a run pins the Delta version of each input table when it
starts (``run_inputs``, one row per table, partitioned by ``run_id``), and every stage of
the run, in this application or in a later stage job, reads the inputs as of those
versions (Delta time travel). Two runs never plan each other's data, and a stage job
started after the inputs changed still sees what the run's first stage saw.

The versions also fingerprint the run's inputs: a crashed run resumes its recorded price
iterations only when the fingerprint (with the config's) is the same, so a rerun after
the inputs changed starts afresh. A vacuum must keep the files of pinned versions for as
long as their runs may be rerun or resumed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import DataFrame

from contact_spark.config.models import AppConfig
from contact_spark.config.stages import OptionalStage
from contact_spark.io.catalog import RUN_INPUTS_TABLE
from contact_spark.io.history import normalise_history
from contact_spark.io.rows import LocalRows
from contact_spark.io.tables import TableStore

log = logging.getLogger(__name__)

RUN_INPUTS_SCHEMA = "run_id string, input_table string, version long, source string"


def current_versions(store: TableStore, tables: Iterable[str]) -> dict[str, int]:
    """The latest version of each of ``tables`` that exists."""
    return {table: store.version(table) for table in tables if store.exists(table)}


def pin_inputs(store: TableStore, run_id: str, versions: Mapping[str, int], source: str) -> None:
    """Record the versions ``run_id`` reads (``source`` says who chose them), replacing any
    earlier pin of the run."""
    rows = [(run_id, table, int(version), source) for table, version in sorted(versions.items())]
    store.replace_run(LocalRows.of(rows, RUN_INPUTS_SCHEMA), RUN_INPUTS_TABLE, run_id)
    log.info(
        "run %s reads the inputs as of %s (%s)",
        run_id,
        ", ".join(f"{t}@v{v}" for t, v in sorted(versions.items())),
        source,
    )


def pinned_versions(store: TableStore, run_id: str) -> dict[str, int]:
    """The versions ``run_id`` pinned; empty when the run pinned none (an older run)."""
    if not store.exists(RUN_INPUTS_TABLE):
        return {}
    rows = store.read_run(RUN_INPUTS_TABLE, run_id).select("input_table", "version").collect()
    return {row["input_table"]: int(row["version"]) for row in rows}  # a few rows


def read_pinned(store: TableStore, table: str, run_id: str) -> DataFrame:
    """An input table as ``run_id`` reads it: at its pinned version, else the latest."""
    return store.read(table, version=pinned_versions(store, run_id).get(table))


def run_customers(store: TableStore, run_id: str) -> int:
    """How many customers the run plans for (its pinned ``customers`` table)."""
    return read_pinned(store, "customers", run_id).count()


def optional_stage_runs(store: TableStore, config: AppConfig, run_id: str, stage: OptionalStage) -> bool:
    """Whether the optional ``stage`` runs (or ran) for ``run_id`` under ``config.stages``:
    the stage itself, the metrics and the report ask the same question."""
    auto = getattr(config.stages, stage) == "auto"
    return config.stages.runs(stage, run_customers(store, run_id) if auto else 0)


def read_history(
    store: TableStore, run_id: str, campaigns: Sequence[str], channels: Sequence[str]
) -> DataFrame:
    """``contact_history`` as ``run_id`` reads it, names matched to the config (``io.history``)."""
    return normalise_history(read_pinned(store, "contact_history", run_id), campaigns, channels)


def run_fingerprint(config_hash: str, versions: Mapping[str, int]) -> str:
    """The config's hash and the pinned input versions in one digest: what a run's recorded
    work (the price iterations) is valid for."""
    text = ",".join(f"{table}@{version}" for table, version in sorted(versions.items()))
    return hashlib.sha256(f"{config_hash}|{text}".encode()).hexdigest()


def latest_commits_tagged(store: TableStore, tables: Iterable[str], prefix: str) -> dict[str, int] | None:
    """The latest versions of ``tables`` when each one's last commit carries a tag starting
    with ``prefix`` (the same writer wrote all of them last), else None."""
    versions = {}
    for table in tables:
        if not store.exists(table):
            return None
        (last,) = store.history(table, 1)
        if not str(last.get("userMetadata") or "").startswith(prefix):
            return None
        versions[table] = int(last["version"])
    return versions
