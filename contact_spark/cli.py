"""Shared plumbing of the thin ``jobs/*.py`` entry points: arguments, logging, errors."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from contact_spark.config import AppConfig, load_config, parse_override
from contact_spark.config.fingerprint import config_hash
from contact_spark.errors import ContactSparkError

log = logging.getLogger("contact_spark")


def base_parser(description: str, *, run_id: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the options every job shares (``--run-id`` unless the job
    names its runs otherwise, as the comparison of two runs does)."""
    if not description.strip():
        # ``--help`` would print an empty description: a job passes its docstring's first line.
        raise ValueError("a job's argument parser needs a description (its docstring's first line)")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        default=None,
        help="YAML config file (default: the packaged contact_spark/config/default.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set demo.customers=100000 (repeatable)",
    )
    parser.add_argument("--base-path", default=None, help="Delta base path (overrides storage.base_path)")
    if run_id:
        parser.add_argument(
            "--run-id", default=None, help="run id (default: derived from config, so reruns replace)"
        )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--debug", action="store_true", help="print the traceback of any error")
    return parser


def add_lock_arguments(parser: argparse.ArgumentParser) -> None:
    """``--force`` of the jobs that hold a run's lock (``contact_spark.io.run_lock``)."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="take the run id over from a process that holds it but has shown no sign of life "
        "for 10 minutes (one on this host that has exited is taken over without it)",
    )


def setup_logging(level: str) -> None:
    """Log progress lines (stage, rows, iteration, gap) – never personal data."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` overrides, and ``--base-path`` as ``storage.base_path``."""
    overrides: dict[str, Any] = dict(parse_override(text) for text in args.overrides)
    if args.base_path:
        overrides["storage.base_path"] = args.base_path
    return overrides


def config_from_args(args: argparse.Namespace) -> AppConfig:
    """Load the config named on the command line, with ``--set`` and ``--base-path`` applied."""
    config = load_config(args.config, overrides=overrides_from_args(args))
    # Loading is pure; whether the rules allow any contact is asked here, bounded in time.
    from contact_spark.solver.satisfiability import check_satisfiable

    check_satisfiable(config.policy, list(config.campaigns), list(config.channels), config.run.horizon_months)
    return config


def default_run_id(config: AppConfig) -> str:
    """Deterministic run id: the same config reruns into (and replaces) the same run."""
    return f"{config.run.first_month:%Y%m}-{config_hash(config)[:10]}"


def parse_month(text: str, option: str = "month") -> dt.date:
    """``YYYY-MM`` (or a full date) → the first day of that month."""
    try:
        value = dt.date.fromisoformat(text if len(text) > 7 else f"{text}-01")
    except ValueError as exc:
        raise ContactSparkError(f"{option} '{text}' is not a month: use YYYY-MM, e.g. 2027-01") from exc
    return value.replace(day=1)


def main_guard(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Run a job's main: a user's mistake is one line on stderr and exit code 2.

    Any other exception is a bug of ours: one line naming it and exit code 1. The
    traceback is printed only with ``--debug``, above the same line and with the same exit
    code, so that a scheduler tells a user's mistake from a bug whatever the flag.
    """

    def wrapped(argv: Sequence[str] | None = None) -> int:
        debug = "--debug" in (sys.argv[1:] if argv is None else argv)
        try:
            return main(argv)
        except ContactSparkError as exc:
            if debug:
                traceback.print_exc(file=sys.stderr)
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # an escaped exception is a bug: say so in one line
            if debug:
                traceback.print_exc(file=sys.stderr)
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            print(
                f"error: internal error {type(exc).__name__}: {first} (a bug of contact_spark: "
                f"rerun with --debug for the traceback and report it)",
                file=sys.stderr,
            )
            return 1

    return wrapped
