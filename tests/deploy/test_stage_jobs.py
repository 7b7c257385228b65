"""Every job: --help, and a bad argument or config is one line and exit code 2 (no Spark).

The stage jobs are the registry's (``contact_spark.stages.STAGES``): each stage with a job
has its file, and the file runs that stage.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from contact_spark.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted(p.stem for p in (ROOT / "jobs").glob("*.py"))
# Jobs that are not one registry stage: whole runs, runs derived from a parent run, serving,
# the maintenance of the lakehouse and the import of the input tables (no run at all), the
# export of a plan to execution systems and the comparison of two runs.
NOT_STAGES = {
    "run_pipeline",
    "replan",
    "trigger",
    "realtime",
    "maintain",
    "import_inputs",
    "export_plan",
    "compare_runs",
}
# validate_plan also checks other plan tables (--plan-table): it calls the validator itself.
CUSTOM_STAGE_JOBS = {"validate_plan"}


def _job(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"jobs/{name}.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_job_is_a_registry_stage_or_a_known_other_job() -> None:
    stage_jobs = {stage.job: stage.name for stage in STAGES if stage.job is not None}
    assert set(JOBS) == set(stage_jobs) | NOT_STAGES
    for job, stage in stage_jobs.items():
        if job not in CUSTOM_STAGE_JOBS:
            assert _stage_job_stages(job) == [stage], f"jobs/{job}.py does not run stage {stage}"


def _stage_job_stages(job: str) -> list[str]:
    """The stage names a job passes to ``stage_job(...)``."""
    tree = ast.parse((ROOT / "jobs" / f"{job}.py").read_text(encoding="utf-8"))
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "stage_job"
        and isinstance(node.args[0], ast.Constant)
    ]


def _description(name: str) -> str:
    doc = ast.get_docstring(ast.parse((ROOT / "jobs" / f"{name}.py").read_text(encoding="utf-8")))
    assert doc, f"jobs/{name}.py has no docstring"
    return doc.splitlines()[0]


@pytest.mark.parametrize("name", JOBS)
def test_help_prints_the_description_and_the_run_id_option(name: str) -> None:
    done = _job(name, "--help")
    assert done.returncode == 0, done.stderr
    # realtime: per sub-command; compare_runs names its two runs --base and --scenario.
    assert "--run-id" in done.stdout or name in ("realtime", "compare_runs")
    # argparse wraps the description: compare without line breaks.
    description = " ".join(done.stdout.split("\n\n")[1].split())
    assert description and description == " ".join(_description(name).split()), done.stdout


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
        ("run_pipeline", ["--base-run", "r1"], "--base-run needs --scenario NAME"),
        ("run_pipeline", ["--scenario", "autumn agents"], "--scenario 'autumn agents' is not a valid name"),
        ("compare_runs", ["--base", "r1", "--scenario", "../x"], "run_id '../x' is not valid"),
    ],
)
def test_mistake_is_one_line_and_exit_code_2(name: str, args: list[str], message: str) -> None:
    done = _job(name, *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
