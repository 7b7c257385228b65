"""The thin job: --help, and a user mistake is one line on stderr with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _job(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "jobs/clean_contacts.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help() -> None:
    done = _job("--help")
    assert done.returncode == 0
    assert "--config" in done.stdout and "contacts_clean" in done.stdout


def test_bad_contacts_setting_is_one_line_and_exit_code_2() -> None:
    done = _job("--set", "contacts.score.weights.histroy=1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: invalid config")
    assert "contacts.score.weights.histroy" in done.stderr
