"""The job entry points. (The shared demo run's rerun, which checks that every table keeps its
rows, is the Databricks notebooks' run: tests/deploy/test_databricks.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
