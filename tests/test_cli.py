"""What a job prints when it fails: one line and an exit code, the traceback only on request."""

from __future__ import annotations

from collections.abc import Sequence

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


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(KeyError, match="cell"):
        bug(["--debug"])
    with pytest.raises(ConfigError):
        user_mistake(["--debug"])
