"""A CRM team's first day, end to end (issue 23): their own data in, the plan out to execution,
a what-if scenario side by side with its base run (contact_spark/scenarios, jobs/compare_runs.py).

The path is the README's: the shipped export of a made-up CRM (conf/examples/crm_export: three
CSV files and a Parquet file) is imported with its mapping YAML (``make import``); the pipeline
plans on the imported tables (``jobs/run_pipeline.py`` without ``--generate``); the plan is
exported for the execution systems (``jobs/export_plan.py``); the scenario is a second pipeline
run with ``--scenario``/``--base-run``; ``jobs/compare_runs.py`` compares them, and its page is
checked in headless Chromium.

The base run's call centre makes CALLS calls a month, and every month it uses all of them (the
imported customers want more): the capacity binds and carries a shadow price. The scenario is
the issue's what-if, "more agents in autumn": one call more in September, October and
November, typed as a ``--set`` override of the rule by its name. Price iterations are cut to 6
(the plans stay within 1 % of their dual bounds) to keep the module short.
"""

from __future__ import annotations

import csv
import runpy
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from raw_contacts import column_texts, delta_tables, leaked, raw_contacts, read_table
from report.chromium import CHROMIUM, assert_renders
from spark_conf import LEAN, temporary_conf

from contact_spark.config import load_config, parse_override
from contact_spark.config.imports import load_import_mapping
from contact_spark.export.run import ExportResult, export_plan
from contact_spark.io.catalog import SCENARIOS_TABLE
from contact_spark.io.importer import ImportResult, import_inputs
from contact_spark.io.scenarios import Scenario, ScenarioError, read_scenario, record_scenario
from contact_spark.io.tables import TableStore
from contact_spark.pipeline import run_pipeline
from contact_spark.scenarios.compare import COMPARISON_TABLE, Comparison, compare_runs, comparison_id
from contact_spark.scenarios.configs import ComparedRun, check_catalogue, check_comparable, run_config
from contact_spark.scenarios.page import write_comparison_page
from contact_spark.stages import run_stage

BASE_RUN, SCENARIO_RUN = "base", "autumn"
ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "conf" / "examples" / "import_crm_export.yaml"
CALLS = 2  # the base run's call centre, every month
# Tiny inputs: fewer, shorter Spark jobs, and expressions interpreted rather than compiled
# (compiling each query's Java costs more than running it on a few customers).
TINY = {**LEAN, "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
BASE_OVERRIDES: dict[str, Any] = {
    "capacities.rules.call_centre.max": CALLS,
    "capacities.rules.call_centre.exceptions": [],  # no August cut: the same calls every month
    "capacities.lagrangian.max_iterations": 6,
    "capacities.lagrangian.repair_rounds": 2,
    "capacities.lagrangian.batches": 1,
    # The explaining stages are not on this path (the shared demo run covers them).
    "stages.baseline": "off",
    "stages.decisions": "off",
}
AUTUMN = [f"2027-{m:02d}-01" for m in (9, 10, 11)]
# The imported customers' figures at these settings (rounded to cents): the base prices a call
# at about 29.60 in each autumn month, so three more calls predict +88.80; the scenario's plan
# is worth 84.00 more. A change of the example export, the importer or the
# solver moves them: update them here.
PINNED_PREDICTION = (88.8, 84.0)
SCENARIO_SET = (
    "capacities.rules.call_centre.exceptions=["
    + ", ".join(f"{{month: {m}, max: {CALLS + 1}}}" for m in AUTUMN)
    + "]"
)


@dataclass(frozen=True)
class Runs:
    store: TableStore
    lakehouse: Path
    overrides: dict[str, Any]  # what a comparison job's --set and --base-path give
    imported: ImportResult
    exported: ExportResult
    base: ComparedRun
    scenario: ComparedRun
    comparison: Comparison
    page: Path


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The whole path once: import, the base run (run_pipeline without the report, the greedy
    baseline and contact_decisions), its export, the scenario's plan, the comparison and its
    page."""
    root = tmp_path_factory.mktemp("scenarios")
    lakehouse = root / "lakehouse"
    overrides = {**BASE_OVERRIDES, "storage.base_path": str(lakehouse), "storage.backend": "deltalake"}
    base_config = load_config(overrides=overrides)
    scenario = Scenario.from_arguments("autumn_agents", BASE_RUN, [SCENARIO_SET], None)
    scenario_config = load_config(overrides={**overrides, **dict([parse_override(SCENARIO_SET)])})
    store = TableStore(spark, base_config.storage)
    with temporary_conf(spark, TINY):
        imported = import_inputs(
            spark,
            store,
            load_import_mapping(MAPPING),
            base_config.channel_names,
            mapping_path=str(MAPPING),
            run_id="crm-export",
        )
        run_pipeline(spark, store, base_config, BASE_RUN, report_dir=None)
        exported = export_plan(spark, store, base_config, BASE_RUN, root / "exports")
        # What jobs/run_pipeline.py --scenario does first; its contacts and eligibility stages
        # would write the base's rows again (same inputs, same settings: the stages are
        # deterministic), so they are copied to the scenario's run id instead (about 12 s).
        # Its plan stage runs for real under the scenario's configuration.
        record_scenario(store, SCENARIO_RUN, scenario, scenario_config)
        for table in ("best_contacts", "eligibility"):
            rows = store.read_run(table, BASE_RUN).withColumn("run_id", F.lit(SCENARIO_RUN))
            store.replace_run(rows, table, SCENARIO_RUN)
        run_stage("plan", spark, store, scenario_config, SCENARIO_RUN)
        base = run_config(store, "base", BASE_RUN, None, overrides)
        autumn = run_config(store, "scenario", SCENARIO_RUN, None, overrides)
        comparison = compare_runs(spark, store, base, autumn)
    page = Path(write_comparison_page(comparison, str(root / "reports")))
    return Runs(store, lakehouse, overrides, imported, exported, base, autumn, comparison, page)


def _rows(runs: Runs, section: str, metric: str) -> list[dict[str, Any]]:
    return [r for r in runs.comparison.section(section) if r["metric"] == metric]


# table → (read, written, quarantined): tests/test_import.py checks each quarantined row.
IMPORTED = {
    "customers": (32, 25, 7),
    "contacts": (46, 44, 2),
    "contact_history": (22, 20, 2),
    "propensities": (153, 148, 5),
}
PLANNED = 230  # the base run's planned contacts on the imported customers


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_base_run_plans_the_imported_rows_and_every_planned_contact_is_exported(runs: Runs) -> None:
    """Every row of the CRM's export is written or quarantined; the base run plans imported
    customers only; each planned contact is in its channel's list of its month, with the
    contact the plan chose (the inputs did not change since planning: nothing is held back by
    the consent re-check)."""
    assert {t.table: (t.read, t.written, t.quarantined) for t in runs.imported.tables} == IMPORTED
    store = runs.store
    plan = store.read_run("plan", BASE_RUN).collect()
    imported = {r["customer_id"] for r in store.read("customers").collect()}
    assert len(plan) == PLANNED and {r["customer_id"] for r in plan} <= imported
    planned = sorted(
        (r["customer_id"], f"{r['month']:%Y-%m}", r["campaign"], r["channel"], r["contact"]) for r in plan
    )
    exported = []
    for month in runs.exported.months:
        assert month.manifest["consent_recheck"]["rejected"] == 0
        for channel in runs.base.config.channel_names:
            rows = read_csv(month.folder / f"{channel}_{month.month:%Y-%m}.csv")
            assert month.manifest["channels"][channel]["exported"] == len(rows)
            exported += [
                (r["customer_id"], r["month"][:7], r["campaign"], r["channel"], r["contact"]) for r in rows
            ]
    assert sorted(exported) == planned
    violations = store.read_run("violations", BASE_RUN).filter(F.col("severity") == "error")
    assert violations.count() == 0


def test_the_scenario_is_recorded_with_its_overrides_as_typed(runs: Runs) -> None:
    record = read_scenario(runs.store, SCENARIO_RUN)
    assert record is not None and record.scenario == Scenario(
        "autumn_agents",
        BASE_RUN,
        (("capacities.rules.call_centre.exceptions", SCENARIO_SET.split("=", 1)[1]),),
    )
    assert read_scenario(runs.store, BASE_RUN) is None
    # The comparison rebuilt the scenario's configuration from the record: one call more in autumn.
    assert [e.max for e in runs.scenario.config.capacities.rules[0].exceptions] == [CALLS + 1.0] * 3


def test_autumn_calls_are_the_only_moved_bounds_and_the_calls_follow_them(runs: Runs) -> None:
    """The base plans CALLS calls every month (the cap binds); the scenario one more in autumn."""
    moved = _rows(runs, "prediction", "bound")
    assert [(r["constraint_name"], r["base"], r["scenario"], r["difference"]) for r in moved] == [
        (f"call_centre[{m[:7]}]:max", float(CALLS), CALLS + 1.0, 1.0) for m in AUTUMN
    ]
    calls: dict[str, dict[str, float]] = defaultdict(lambda: {"base": 0.0, "scenario": 0.0})
    for r in _rows(runs, "cell", "contacts"):
        if r["channel"] == "TLS":
            for role in ("base", "scenario"):
                calls[f"{r['month']:%Y-%m}"][role] += r[role]
    assert {m: (c["base"], c["scenario"]) for m, c in calls.items()} == {
        f"2027-{m:02d}": (float(CALLS), CALLS + 1.0 if m in (9, 10, 11) else float(CALLS))
        for m in range(1, 13)
    }


def test_prediction_against_measured(runs: Runs) -> None:
    """Predicted: Σ price × Δbound over the three autumn months at the base run's shadow prices
    (read here from capacity_sensitivity). Measured: the plans' values (Σ plan.expected_value).
    Weak duality bounds the measured gain: the base's dual bound at the same prices, moved by
    the prediction, is a bound on every plan under the scenario's capacities."""
    store = runs.store
    prices = {
        r["constraint_name"]: r["shadow_price"]
        for r in store.read_run("capacity_sensitivity", BASE_RUN).collect()
    }
    predicted = sum(prices[f"call_centre[{m[:7]}]:max"] * 1.0 for m in AUTUMN)
    values = {
        run: store.read_run("plan", run).agg(F.sum("expected_value")).first()[0]
        for run in (BASE_RUN, SCENARIO_RUN)
    }
    row = runs.comparison.prediction()
    assert row["predicted"] == pytest.approx(predicted, abs=1e-6)
    assert row["base"] == pytest.approx(values[BASE_RUN], abs=1e-6)
    assert row["scenario"] == pytest.approx(values[SCENARIO_RUN], abs=1e-6)
    assert row["difference"] == pytest.approx(values[SCENARIO_RUN] - values[BASE_RUN], abs=1e-6)
    base_dual = runs.comparison.total("dual_bound")["base"]
    assert row["scenario"] <= base_dual + row["predicted"] + 1e-6
    assert (round(row["predicted"], 2), round(row["difference"], 2)) == PINNED_PREDICTION


def _change(old: set[str], new: set[str]) -> str:
    """The kind of change of a customer's planned contacts, as docs/scenarios.md words it."""
    if not old:
        return "NEWLY_CONTACTED"
    if not new:
        return "NO_LONGER_CONTACTED"
    if old < new:
        return "CONTACTS_ADDED"
    if new < old:
        return "CONTACTS_REMOVED"
    return "CONTACTS_MOVED"


def test_changed_customers_reconcile_with_the_two_plans(runs: Runs) -> None:
    """Each customer's planned contacts are compared here in Python (25 customers: a test may
    collect them); the comparison's rows and counts must say the same."""
    plans: dict[str, dict[str, set[str]]] = {}
    for run in (BASE_RUN, SCENARIO_RUN):
        per: dict[str, set[str]] = defaultdict(set)
        for r in runs.store.read_run("plan", run).collect():
            per[r["customer_id"]].add(f"{r['month']:%Y-%m} {r['campaign']}/{r['channel']}")
        plans[run] = per
    expected = {}
    for customer in set(plans[BASE_RUN]) | set(plans[SCENARIO_RUN]):
        old, new = plans[BASE_RUN].get(customer, set()), plans[SCENARIO_RUN].get(customer, set())
        if old == new:
            continue
        kind = _change(old, new)
        expected[customer] = (kind, ", ".join(sorted(new - old)), ", ".join(sorted(old - new)))
    table = runs.store.read_run(COMPARISON_TABLE, runs.comparison.id).filter(F.col("section") == "customer")
    found = {r["customer_id"]: (r["change"], r["added"], r["removed"]) for r in table.collect()}
    assert found == expected and expected
    counts = Counter(kind for kind, _, _ in expected.values())
    assert {k: n for k, (n, _) in runs.comparison.changes.items()} == dict(counts)


def test_totals_reconcile_with_the_plans_and_the_costs(runs: Runs) -> None:
    """Contacts are the plans' rows; cost is contacts × the channel's cost of the config
    (DEM 0.02, SMS 0.06, TLS 4.0: neither run changes costs)."""
    for run, role in ((BASE_RUN, "base"), (SCENARIO_RUN, "scenario")):
        by_channel = {
            r["channel"]: r["count"]
            for r in runs.store.read_run("plan", run).groupBy("channel").count().collect()
        }
        cost = sum(n * {"DEM": 0.02, "SMS": 0.06, "TLS": 4.0}[ch] for ch, n in by_channel.items())
        assert runs.comparison.total("contacts")[role] == sum(by_channel.values())
        assert runs.comparison.total("cost")[role] == pytest.approx(cost, abs=1e-6)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make chromium)")
def test_the_page_renders_and_no_contact_is_on_it_or_in_the_tables(runs: Runs, tmp_path: Path) -> None:
    page = runs.page.read_text(encoding="utf-8")
    assert runs.page.name == f"compare-{BASE_RUN}.html" and runs.page.parent.name == SCENARIO_RUN
    assert assert_renders(page, tmp_path) == 6
    assert "<script src=" not in page  # plotly.js is inlined: the page opens offline
    tables = delta_tables(runs.lakehouse)
    values = raw_contacts(tables)
    assert len(values) > 60 and leaked(page, values) == []  # 25 customers' phones and e-mails
    for table in (COMPARISON_TABLE, SCENARIOS_TABLE):  # nor in the tables the comparison adds
        assert {c: leaked(t, values) for c, t in column_texts(read_table(tables[table])).items()} == {
            c: [] for c in read_table(tables[table]).column_names
        }
    customers = [r["customer_id"] for r in runs.store.read("customers").collect()]
    assert not [c for c in customers if f">{c}<" in page]  # counted by kind, not listed


def _job_argv(runs: Runs, scenario_run: str) -> list[str]:
    """jobs/compare_runs.py's arguments for the fixture's lakehouse and configuration."""
    sets = [f"--set={k}={v}" for k, v in BASE_OVERRIDES.items()]
    argv = ["--base", BASE_RUN, "--scenario", scenario_run, "--base-path", str(runs.lakehouse), *sets]
    return [*argv, "--set=storage.backend=deltalake", "--report-dir", str(runs.page.parent.parent)]


def _job() -> Any:
    """The job's ``main``, run in this process (and Spark session)."""
    return runpy.run_path(str(ROOT / "jobs" / "compare_runs.py"), run_name="compare_runs")["main"]


def test_a_rerun_of_the_job_replaces_the_pair_rows(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    """jobs/compare_runs.py on the same pair: the same rows (not twice as many) and the same page."""
    before = runs.store.read_run(COMPARISON_TABLE, runs.comparison.id)
    rows_before = before.collect()
    page_before = runs.page.read_bytes()
    assert _job()(_job_argv(runs, SCENARIO_RUN)) == 0
    out = capsys.readouterr().out
    assert (
        f"table run_comparison {runs.store.location(COMPARISON_TABLE)} (run_id {runs.comparison.id})" in out
    )
    after = runs.store.read_run(COMPARISON_TABLE, runs.comparison.id)
    assert_df_equality(
        runs.store.spark.createDataFrame(rows_before, before.schema), after, ignore_row_order=True
    )
    assert runs.page.read_bytes() == page_before


def test_unknown_runs_and_different_horizons_or_catalogues_are_one_line_errors(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    store = runs.store
    assert _job()(_job_argv(runs, "nope")) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: scenario run 'nope' is unknown: table plan_summary at {store.location('plan_summary')} has "
        "no plan of it (runs with a plan: autumn, base)"
    ]
    with pytest.raises(
        ScenarioError,
        match=r"^scenario run 'nope' is unknown: table plan_summary at .* has no "
        r"plan of it \(runs with a plan: autumn, base\)$",
    ):
        compare_runs(store.spark, store, runs.base, ComparedRun("scenario", "nope", runs.base.config, None))
    with pytest.raises(
        ScenarioError, match=r"^--base and --scenario are the same run 'base': compare two runs$"
    ):
        check_comparable(runs.base, runs.base)
    short = load_config(overrides={**runs.overrides, "run.horizon_months": 6})
    with pytest.raises(
        ScenarioError,
        match=r"^runs of different horizons: base run 'base' plans 12 months from 2027-01, scenario run "
        r"'autumn' \(autumn_agents\) 6 months from 2027-01: compare runs of one horizon$",
    ):
        check_comparable(runs.base, ComparedRun("scenario", SCENARIO_RUN, short, runs.scenario.record))
    winback = load_config(overrides={**runs.overrides, "campaigns.WINBACK": {"success_value": 50.0}})
    with pytest.raises(
        ScenarioError,
        match=r"^runs of different catalogues \(base run 'base', scenario run 'autumn' \(autumn_agents\)\): "
        r"campaigns only in the base: none; only in the scenario: WINBACK: compare runs of one catalogue$",
    ):
        check_comparable(runs.base, ComparedRun("scenario", SCENARIO_RUN, winback, runs.scenario.record))
    with pytest.raises(
        ScenarioError,
        match=r"^base run 'base' was not planned with this configuration's catalogue: its eligibility has "
        r"campaigns CROSS_SELLING, SOLUTION and channels DEM, SMS, TLS, the configuration campaigns "
        r"CROSS_SELLING, SOLUTION, WINBACK and channels DEM, SMS, TLS: pass --config with the file the run "
        r"was made with$",
    ):
        check_catalogue(store, ComparedRun("base", BASE_RUN, winback, None))


def test_a_scenario_recorded_from_another_config_file_is_refused(runs: Runs) -> None:
    """Rebuilt without the base's capacity overrides, the scenario's configuration is not the one
    it recorded (its hash differs): the comparison says which file to pass."""
    plain = {k: v for k, v in runs.overrides.items() if not k.startswith("capacities.")}
    with pytest.raises(
        ScenarioError,
        match=r"^scenario run 'autumn' \(scenario autumn_agents\) was made from the default config with its "
        r"overrides; the default config with the same overrides is another configuration: pass --config",
    ):
        run_config(runs.store, "scenario", SCENARIO_RUN, None, plain)


def test_a_scenario_is_checked_before_its_run(runs: Runs) -> None:
    store = runs.store
    autumn = Scenario.from_arguments("autumn_agents", "nope", [], None)
    with pytest.raises(ScenarioError, match=r"^base run 'nope' is unknown: table plan_summary"):
        record_scenario(store, "other", autumn, runs.base.config)
    same = Scenario.from_arguments("same", BASE_RUN, ["capacities.rules.call_centre.description=x"], None)
    with pytest.raises(ScenarioError, match=r"^scenario 'same' would replace its base run 'base'"):
        record_scenario(store, BASE_RUN, same, runs.base.config)
    with pytest.raises(ScenarioError, match=r"^--scenario 'autumn agents' is not a valid name"):
        Scenario.from_arguments("autumn agents", None, [], None)
    assert (
        comparison_id(BASE_RUN, SCENARIO_RUN) == runs.comparison.id != comparison_id(SCENARIO_RUN, BASE_RUN)
    )
