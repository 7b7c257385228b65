"""What a job prints when it fails: one line and an exit code, the traceback only on request."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import pytest

from contact_spark.cli import main_guard
from contact_spark.errors import ConfigError


@main_guard
def user_mistake(argv: Sequence[str] | None = None) -> int:
    raise ConfigError("conf/x.yaml", ["run.first_month: must be the first day of a month"])


@main_guard
def bug(argv: Sequence[str] | None = None) -> int:
    raise KeyError("cell")


def test_a_user_mistake_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert user_mistake([]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: invalid config conf/x.yaml: run.first_month: must be the first day of a month"
    ]


def test_any_other_exception_is_one_line_naming_a_bug_and_exit_code_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bug([]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: internal error KeyError: 'cell' (a bug of contact_spark: rerun with --debug for the "
        "traceback and report it)"
    ]


def test_debug_shows_the_traceback_and_keeps_the_line_and_the_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --debug the traceback comes first; the last line and the exit code are those
    without it (before, the exception escaped: exit code 1 for a user's mistake too)."""
    assert bug(["--debug"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert err[-2] == "KeyError: 'cell'"
    assert err[-1].startswith("error: internal error KeyError: 'cell' (a bug of contact_spark")
    assert user_mistake(["--debug"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert err[-1] == "error: invalid config conf/x.yaml: run.first_month: must be the first day of a month"


def test_every_job_runs_its_main_under_the_guard() -> None:
    """Every entry point in jobs/: ``main`` is decorated with ``main_guard`` (one line and
    exit code 2 for a user's mistake, 1 for a bug, the traceback with --debug) and the
    script calls it as ``sys.exit(main())``. Read from the source: no job is started."""
    jobs = sorted((Path(__file__).parents[1] / "jobs").glob("*.py"))
    assert len(jobs) >= 18
    for job in jobs:
        tree = ast.parse(job.read_text(encoding="utf-8"))
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert len(mains) == 1, job.name
        decorators = [d.id for d in mains[0].decorator_list if isinstance(d, ast.Name)]
        assert decorators == ["main_guard"], job.name
        tail = ast.unparse(tree.body[-1])
        assert tail == "if __name__ == '__main__':\n    sys.exit(main())", job.name
