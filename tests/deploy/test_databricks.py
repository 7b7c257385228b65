"""The Databricks notebooks run against local Spark, and the bundle points at real files.

Each notebook's Python source is executed cell by cell with the globals the Databricks
runtime provides: ``spark`` (the local test session), ``dbutils`` (a stand-in with the
widget API the notebooks use) and ``display``. Catalog unset: delta-rs on a tmp path.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from chispa import assert_df_equality
from demo_run import DemoRun
from pyspark.sql import DataFrame, SparkSession
from raw_contacts import leaked, personal

from contact_spark.errors import ContactSparkError
from contact_spark.io.runs import StageOrderError
from contact_spark.stages import BY_NAME, STAGES, run_stage

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"


class Widgets:
    """``dbutils.widgets`` of the Databricks runtime: values set by the job, else defaults."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.defaults: dict[str, str] = {}

    def _declare(self, name: str, default: str) -> None:
        assert name not in self.defaults, f"widget {name} declared twice"
        self.defaults[name] = default

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:  # noqa: N803
        self._declare(name, defaultValue)

    def dropdown(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        assert defaultValue in choices, f"dropdown {name}: default not a choice"
        assert self.values.get(name, defaultValue) in choices, f"dropdown {name}: value not a choice"
        self._declare(name, defaultValue)

    def get(self, name: str) -> str:
        if name not in self.defaults:
            raise ValueError(f"InputWidgetNotDefined: no widget named {name}")
        return self.values.get(name, self.defaults[name])


class DBUtils:
    def __init__(self, widgets: Mapping[str, str]) -> None:
        self.widgets = Widgets(widgets)


def cells(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    assert source.startswith(HEADER + "\n"), f"{path.name} is not in Databricks source format"
    return [cell for cell in source[len(HEADER) :].split(SEPARATOR) if cell.strip()]


def run_notebook(path: Path, spark: SparkSession, widgets: Mapping[str, str]) -> dict[str, Any]:
    """Execute the notebook's cells in order in one namespace, as a cluster does."""
    displayed: list[DataFrame] = []
    dbutils = DBUtils(widgets)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "spark": spark,
        "dbutils": dbutils,
        "display": displayed.append,
    }
    for i, cell in enumerate(cells(path)):
        exec(compile(cell, f"{path.name}[cell {i}]", "exec"), namespace)
    unknown = set(widgets) - set(dbutils.widgets.defaults)
    assert not unknown, f"{path.name} has no widgets {unknown}"
    namespace["_displayed"] = displayed
    return namespace


def test_notebooks_are_databricks_source_with_widgets() -> None:
    notebooks = sorted(NOTEBOOKS.glob("*.py"))
    assert {p.name for p in notebooks} >= {"run_pipeline.py", "explore_plan.py"}
    for path in notebooks:
        assert len(cells(path)) >= 3
        assert "dbutils.widgets.text(" in path.read_text(encoding="utf-8")


def test_the_notebooks_rerun_the_shared_demo_run_and_every_table_keeps_its_rows(
    spark: SparkSession, demo_run: DemoRun
) -> None:
    """The Databricks notebooks, cell by cell on local Spark (native Delta), rerun the shared
    demo run: its configuration, lakehouse and run id, stage after stage as the bundle's tasks
    do. This is also the suite's rerun of a run id: every table of the first run keeps exactly
    its rows (a rerun replaces the run's rows, never adds to them), and the rerun's report
    holds no raw phone or e-mail."""
    store, first = demo_run.store, demo_run.result
    snapshot = {name: store.read(name).drop("seconds").localCheckpoint() for name in first.tables}
    common = {
        "config_path": str(ROOT / "contact_spark" / "config" / "default.yaml"),
        # The shared demo run's settings (tests/conftest.py).
        "overrides": "demo.customers=200; demo.partitions=2",
        "base_path": str(demo_run.config.storage.base_path),
        "run_id": demo_run.run_id,
    }
    ran = run_notebook(
        NOTEBOOKS / "run_pipeline.py",
        spark,
        {**common, "generate_demo": "true", "stages": "all", "report_dir": str(demo_run.report_dir)},
    )
    ran_stages = [
        "generate",
        "contacts",
        "eligibility",
        "plan",
        "validate",
        "baseline",
        "metrics",
        "decisions",
    ]
    assert list(ran["outcomes"]) == [*ran_stages, "report"]
    assert ran["store"].backend.name == "spark"
    for name, before in snapshot.items():
        after = store.read(name).drop("seconds")
        assert after.count() == before.count(), name
        assert_df_equality(after, before, ignore_row_order=True)
    page = Path(ran["outcomes"]["report"].details["report_path"]).read_text(encoding="utf-8")
    assert f"Contact plan {demo_run.run_id}" in page
    # The page inlines plotly's JavaScript, so look for the raw contacts themselves
    # (tests/faults/test_raw_contacts.py scans the first run's files and tables).
    raw = [r["value"] for r in store.read("contacts").select("value").collect()]
    assert leaked(page, personal(raw)) == []

    explored = run_notebook(NOTEBOOKS / "explore_plan.py", spark, common)
    by_month = explored["_displayed"][0]
    assert by_month.count() > 0 and "month" in by_month.columns


def test_a_stage_before_its_predecessor_stops_with_one_line(
    spark: SparkSession, store: Any, small_config: Any
) -> None:
    with pytest.raises(StageOrderError, match="run the contacts stage") as caught:
        run_stage("eligibility", spark, store, small_config, "r-early")
    assert isinstance(caught.value, ContactSparkError) and "\n" not in str(caught.value)


def test_bundle_has_one_task_per_registry_stage_with_a_job() -> None:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text(encoding="utf-8"))
    assert bundle["bundle"]["name"] == "contact_spark"
    (job,) = bundle["resources"]["jobs"].values()
    tasks = job["tasks"]
    # Every stage with a job but the demo generator, in registry order (validate included:
    # consent is checked by the independent validator on Databricks too).
    expected = [s for s in STAGES if s.job is not None and s.name != "generate"]
    assert [t["task_key"] for t in tasks] == [s.name for s in expected]
    assert "validate" in [t["task_key"] for t in tasks]
    for previous, task in itertools.pairwise(tasks):
        assert task["depends_on"] == [{"task_key": previous["task_key"]}]
    for stage, task in zip(expected, tasks, strict=True):
        python_file = task["spark_python_task"]["python_file"]
        assert python_file == f"jobs/{stage.job}.py"
        assert (ROOT / python_file).is_file(), python_file
        assert task["libraries"] == [{"whl": "./dist/contact_spark-*.whl"}]
        params = task["spark_python_task"]["parameters"]
        assert params[params.index("--config") + 1].endswith("/${var.config_file}")
    config_file = bundle["variables"]["config_file"]["default"]
    assert (ROOT / config_file).is_file()
    assert bundle["artifacts"]["contact_spark_wheel"]["type"] == "whl"


def test_bundle_schedules_a_paused_monthly_run() -> None:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text(encoding="utf-8"))
    (job,) = bundle["resources"]["jobs"].values()
    # Quartz: second minute hour day-of-month month day-of-week; the 1st of every month, 06:00.
    assert job["schedule"] == {
        "quartz_cron_expression": "0 0 6 1 * ?",
        "timezone_id": "UTC",
        "pause_status": "PAUSED",
    }
    assert job["max_concurrent_runs"] == 1  # a late run never overlaps the next month's


@pytest.mark.parametrize("stage", ["segments", "propensity"])
def test_the_optional_tasks_skip_themselves_when_the_config_turns_them_off(
    spark: SparkSession, store: Any, small_config: Any, stage: str
) -> None:
    """The bundle's segments and propensity tasks always run; the default config (no
    segments, propensities read from the input table) makes each a no-op."""
    assert not BY_NAME[stage].enabled(small_config)
    outcome = run_stage(stage, spark, store, small_config, "r-options")
    assert (outcome.details, outcome.tables) == ({"skipped": True}, {})
    assert not store.exists("run_stages")
