"""Every stage job: --help, and a bad argument or config is one line and exit code 2 (no Spark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGE_JOBS = [
    "generate_demo_data",
    "clean_contacts",
    "eligibility",
    "plan",
    "report",
    "replan",
    "trigger",
    "train_propensity",
    "segment_customers",
]


def _job(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"jobs/{name}.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", STAGE_JOBS)
def test_help_names_the_run_id_option(name: str) -> None:
    done = _job(name, "--help")
    assert done.returncode == 0, done.stderr
    assert "--run-id" in done.stdout and "--config" in done.stdout


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("eligibility", ["--set", "demo.customerz=3"], "demo.customerz"),
        ("plan", ["--run-id", "../escape"], "run_id '../escape' is not valid"),
        ("report", ["--config", "no/such.yaml"], "file not found"),
        (
            "replan",
            ["--parent-run-id", "p", "--executed-through", "2027-13"],
            "--executed-through '2027-13' is not a month",
        ),
        ("trigger", ["--executed-through", "January"], "--executed-through 'January' is not a month"),
    ],
)
def test_mistake_is_one_line_and_exit_code_2(name: str, args: list[str], message: str) -> None:
    done = _job(name, *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
