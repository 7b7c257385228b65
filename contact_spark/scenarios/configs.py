"""The configuration each compared run was planned with, and the checks that two runs compare.

A comparison needs a run's catalogue (campaigns, channels and what a contact costs) and its
horizon, which its tables do not carry. They come from the configuration: the config file
and ``--set`` given to the comparison, plus, for a run recorded as a scenario, the overrides
that made it (``scenarios`` table), checked against the configuration hash the run recorded.
The run's own ``eligibility`` (every customer × campaign × channel) then confirms that the
run was planned with that catalogue, so a base run made from another file is caught too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import functions as F

from contact_spark.config import AppConfig, load_config, parse_override
from contact_spark.config.fingerprint import config_hash
from contact_spark.io.scenarios import ScenarioError, ScenarioRecord, read_scenario
from contact_spark.io.tables import TableStore


@dataclass(frozen=True)
class ComparedRun:
    """One side of a comparison: its role (``base`` or ``scenario``), run id, configuration
    and scenario row (None for a run made without ``--scenario``)."""

    role: str
    run_id: str
    config: AppConfig
    record: ScenarioRecord | None

    @property
    def label(self) -> str:
        """How the page and the messages name the run."""
        name = f" ({self.record.scenario.name})" if self.record is not None else ""
        return f"{self.role} run '{self.run_id}'{name}"


def run_config(
    store: TableStore, role: str, run_id: str, config_file: str | None, overrides: Mapping[str, Any]
) -> ComparedRun:
    """``run_id``'s configuration: ``config_file`` with ``overrides``, then the run's recorded
    scenario overrides on top, as ``run_pipeline --set`` applied them."""
    record = read_scenario(store, run_id)
    if record is None:
        return ComparedRun(role, run_id, load_config(config_file, overrides), None)
    recorded = dict(parse_override(f"{key}={value}") for key, value in record.scenario.overrides)
    config = load_config(config_file, {**overrides, **recorded})
    if config_hash(config) != record.config_hash:
        made_from = record.scenario.config_file or "the default config"
        given = config_file or "the default config"
        raise ScenarioError(
            f"{role} run '{run_id}' (scenario {record.scenario.name}) was made from {made_from} with its "
            f"overrides; {given} with the same overrides is another configuration: pass --config with the "
            "file the run was made with"
        )
    return ComparedRun(role, run_id, config, record)


def _names(values: set[str]) -> str:
    return ", ".join(sorted(values)) or "none"


def check_comparable(base: ComparedRun, scenario: ComparedRun) -> None:
    """Stop with one line when the two runs plan different months or different catalogues."""
    if base.run_id == scenario.run_id:
        raise ScenarioError(f"--base and --scenario are the same run '{base.run_id}': compare two runs")
    horizons = [(r.config.run.first_month, r.config.run.horizon_months) for r in (base, scenario)]
    if horizons[0] != horizons[1]:
        (b_first, b_months), (s_first, s_months) = horizons
        raise ScenarioError(
            f"runs of different horizons: {base.label} plans {b_months} months from {b_first:%Y-%m}, "
            f"{scenario.label} {s_months} months from {s_first:%Y-%m}: compare runs of one horizon"
        )
    differences = []
    for kind, names in (
        ("campaigns", lambda c: set(c.campaign_names)),
        ("channels", lambda c: set(c.channel_names)),
    ):
        b, s = names(base.config), names(scenario.config)
        if b != s:
            differences.append(
                f"{kind} only in the base: {_names(b - s)}; only in the scenario: {_names(s - b)}"
            )
    if differences:
        raise ScenarioError(
            f"runs of different catalogues ({base.label}, {scenario.label}): "
            + "; ".join(differences)
            + ": compare runs of one catalogue"
        )


def check_catalogue(store: TableStore, *runs: ComparedRun) -> None:
    """Stop with one line when a run's ``eligibility`` names other campaigns or channels than
    its configuration: the run was planned from another config file (one Spark job for all)."""
    ids = [run.run_id for run in runs]
    cells = (
        store.read("eligibility")
        .filter(F.col("run_id").isin(ids))
        .select("run_id", "campaign", "channel")
        .distinct()
        .collect()  # at most runs × campaigns × channels rows
    )
    for run in runs:
        campaigns = {r["campaign"] for r in cells if r["run_id"] == run.run_id}
        channels = {r["channel"] for r in cells if r["run_id"] == run.run_id}
        if campaigns == set(run.config.campaign_names) and channels == set(run.config.channel_names):
            continue
        raise ScenarioError(
            f"{run.label} was not planned with this configuration's catalogue: its eligibility has "
            f"campaigns {_names(campaigns)} and channels {_names(channels)}, the configuration campaigns "
            f"{_names(set(run.config.campaign_names))} and channels {_names(set(run.config.channel_names))}: "
            "pass --config with the file the run was made with"
        )
