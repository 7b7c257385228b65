"""The pipeline end to end on a tiny demo base, and the job entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chispa import assert_df_equality
from demo_run import DemoRun
from pyspark.sql import SparkSession
from raw_contacts import leaked, personal

from contact_spark.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[1]


def test_rerun_of_the_same_run_id_leaves_every_table_unchanged_and_reports_without_personal_data(
    spark: SparkSession, demo_run: DemoRun
) -> None:
    """The shared demo run, then its rerun: every table keeps exactly the same rows."""
    store, first = demo_run.store, demo_run.result
    snapshot = {name: store.read(name).drop("seconds").localCheckpoint() for name in first.tables}
    second = run_pipeline(
        spark, store, demo_run.config, demo_run.run_id, generate=True, report_dir=str(demo_run.report_dir)
    )
    assert second.tables.keys() == first.tables.keys()
    for name, before in snapshot.items():
        after = store.read(name).drop("seconds")
        assert after.count() == before.count(), name
        assert_df_equality(after, before, ignore_row_order=True)
    page = Path(second.report_path or "").read_text(encoding="utf-8")
    assert f"Contact plan {demo_run.run_id}" in page
    # The rerun's report too (tests/faults/test_raw_contacts.py scans the first run's files and
    # tables). The page inlines plotly's JavaScript, so look for the raw contacts themselves.
    raw = [r["value"] for r in store.read("contacts").select("value").collect()]
    assert leaked(page, personal(raw)) == []


def run_job(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_jobs_have_help() -> None:
    for job in ("jobs/run_pipeline.py", "jobs/generate_demo_data.py"):
        done = run_job(job, "--help")
        assert done.returncode == 0
        assert "--config" in done.stdout


def test_bad_config_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  first_month: 2027-01-15\ncampaigns: {}\nchannels: {}\n", encoding="utf-8")
    done = run_job("jobs/run_pipeline.py", "--config", str(bad))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: invalid config {bad}: run.first_month")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
