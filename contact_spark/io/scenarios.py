"""Scenarios: a run's name and the overrides that made it (``scenarios``, one row per run).

A what-if is a second run of the same configuration with a few keys changed on the command
line (``run_pipeline.py --scenario autumn_agents --base-run RUN --set
capacities.rules.call_centre.max=300``). The overrides change the configuration, so they
are already part of the derived run id (``cli.default_run_id`` hashes the loaded config):
rerunning the same scenario replaces the same run, and another set of overrides is another
run. The scenario's *name* is a label on the run and not part of its id: two names for one
configuration would otherwise plan the same thing twice.

The row keeps the overrides as they were typed (key and raw YAML text, in order), the
config file they were applied to and the configuration's hash, so that the comparison
(:mod:`contact_spark.scenarios`) can rebuild the scenario's configuration (its catalogue,
horizon and contact costs) and check that it rebuilt the right one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.io.catalog import SCENARIOS_TABLE
from contact_spark.io.rows import LocalRows, check_run_id
from contact_spark.io.tables import TableStore

SCENARIOS_SCHEMA = (
    "run_id string, scenario string, base_run_id string, config_file string, "
    "overrides array<struct<key: string, value: string>>, config_hash string"
)
SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PLANNED_RUNS_TABLE = "plan_summary"  # one row per run whose plan stage finished
SHOWN_RUNS = 10  # known run ids listed in an "unknown run" message


class ScenarioError(ContactSparkError):
    """A scenario's name, base run or overrides cannot be recorded or compared."""


@dataclass(frozen=True)
class Scenario:
    """A named run: the run it varies and the ``--set`` overrides as typed (key, raw value)."""

    name: str
    base_run_id: str | None
    overrides: tuple[tuple[str, str], ...]
    config_file: str | None = None

    @classmethod
    def from_arguments(
        cls, name: str, base_run_id: str | None, overrides: Sequence[str], config_file: str | None
    ) -> Scenario:
        """From a job's ``--scenario``, ``--base-run``, ``--set`` texts and ``--config``."""
        if not SCENARIO_NAME.match(name or ""):
            raise ScenarioError(
                f"--scenario '{name}' is not a valid name: use letters, digits, '_', '.' or '-' "
                "(at most 64 characters, starting with a letter or digit)"
            )
        pairs = []
        for text in overrides:
            if "=" not in text:
                raise ScenarioError(f"--set '{text}' must look like key.path=value")
            key, raw = text.split("=", 1)
            pairs.append((key.strip(), raw))
        return cls(name, check_run_id(base_run_id) if base_run_id else None, tuple(pairs), config_file)

    def override_map(self) -> dict[str, str]:
        """The overrides as ``--set`` applies them: a key given twice keeps its last value."""
        return dict(self.overrides)


def planned_runs(store: TableStore) -> list[str]:
    """Run ids with a finished plan stage, sorted (one row per run of ``plan_summary``)."""
    if not store.exists(PLANNED_RUNS_TABLE):
        return []
    rows = store.read(PLANNED_RUNS_TABLE).select("run_id").distinct().orderBy("run_id").collect()
    return [row["run_id"] for row in rows]  # one row per run, not per customer


def require_planned_run(store: TableStore, run_id: str, role: str) -> None:
    """Stop with one line when ``run_id`` has no plan in this lakehouse (an unknown run id)."""
    check_run_id(run_id)
    if store.exists(PLANNED_RUNS_TABLE) and store.read_run(PLANNED_RUNS_TABLE, run_id).limit(1).count():
        return
    known = planned_runs(store)
    listed = ", ".join(known[:SHOWN_RUNS]) + (f" … ({len(known)} in all)" if len(known) > SHOWN_RUNS else "")
    raise ScenarioError(
        f"{role} run '{run_id}' is unknown: table {PLANNED_RUNS_TABLE} at {store.location(PLANNED_RUNS_TABLE)} "
        f"has no plan of it (runs with a plan: {listed or 'none'})"
    )


def record_scenario(store: TableStore, run_id: str, scenario: Scenario, config: AppConfig) -> None:
    """Write ``run_id``'s scenario row, replacing the run's earlier one (a rerun).

    Checked first, before any stage runs: the base run exists and is not this run. A
    scenario whose overrides leave the planned configuration as it was derives the base's
    own run id and would overwrite the base plan.
    """
    check_run_id(run_id)
    if scenario.base_run_id is not None:
        if scenario.base_run_id == run_id:
            raise ScenarioError(
                f"scenario '{scenario.name}' would replace its base run '{run_id}': with these overrides "
                "its run id is the base's own (storage, export and stages keys do not change what is "
                "planned); change a planning key with --set, or give the scenario its own --run-id"
            )
        require_planned_run(store, scenario.base_run_id, "base")
    overrides = [{"key": key, "value": value} for key, value in scenario.overrides]
    row = (
        run_id,
        scenario.name,
        scenario.base_run_id,
        scenario.config_file,
        overrides,
        config_hash(config),
    )
    store.replace_run(LocalRows.of([row], SCENARIOS_SCHEMA), SCENARIOS_TABLE, run_id)


@dataclass(frozen=True)
class ScenarioRecord:
    """A run's row of ``scenarios``."""

    run_id: str
    scenario: Scenario
    config_hash: str


def read_scenario(store: TableStore, run_id: str) -> ScenarioRecord | None:
    """``run_id``'s scenario row, or None for a run made without ``--scenario``."""
    if not store.exists(SCENARIOS_TABLE):
        return None
    row = store.read_run(SCENARIOS_TABLE, run_id).first()  # one row per run
    if row is None:
        return None
    overrides = tuple((o["key"], o["value"]) for o in row["overrides"] or [])
    scenario = Scenario(row["scenario"], row["base_run_id"], overrides, row["config_file"])
    return ScenarioRecord(run_id, scenario, row["config_hash"])
