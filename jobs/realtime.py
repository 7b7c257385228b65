"""Real-time contact check from a Delta snapshot of a run: check, confirm, or serve over HTTP.

python jobs/realtime.py check   --customer-id C1 --campaign CROSS_SELLING --channel DEM [--date 2027-03-10]
python jobs/realtime.py confirm --customer-id C1 --campaign CROSS_SELLING --channel DEM [--check-id ID] [--force]
python jobs/realtime.py contacts --customer-id C1
python jobs/realtime.py serve   [--host 127.0.0.1] [--port 8080] [--refresh-seconds 60]

The decision (or confirmation, or contact profile) is printed as JSON on stdout. Exit codes: 0
allowed / recorded / profile printed / server stopped; 1 not allowed (check) or refused and not
recorded (confirm); 2 bad arguments, configuration, a missing table or run, or a customer the
run did not rank (contacts) (one line on stderr). No Spark is started.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
from collections.abc import Sequence

from contact_spark.cli import base_parser, config_from_args, default_run_id, main_guard, setup_logging
from contact_spark.io.tables import check_run_id
from contact_spark.realtime import (
    ContactRefusedError,
    RealtimeError,
    Snapshot,
    SnapshotHolder,
    check,
    contact_profile,
)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date: write YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    doc = (__doc__ or "").splitlines()
    parser = argparse.ArgumentParser(description=doc[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{check,confirm,contacts,serve}")
    for name, text in (
        ("check", "is this contact allowed? (exit 0 yes, 1 no)"),
        ("confirm", "record a contact made (exit 0 recorded, 1 refused)"),
        ("contacts", "the customer's contactability score and rank and ranked contacts, masked"),
        ("serve", "HTTP endpoint: /health, /check, /confirm, /customers/{id}/contacts, /refresh"),
    ):
        # Each subcommand takes the options every job has (--config, --set, --run-id, ...).
        sub = commands.add_parser(
            name, help=text, description=text, parents=[base_parser(text)], conflict_handler="resolve"
        )
        if name in ("check", "confirm"):
            sub.add_argument("--customer-id", required=True)
            sub.add_argument("--campaign", required=True)
            sub.add_argument("--channel", required=True)
            sub.add_argument(
                "--date", type=_date, default=None, help="day of the contact (default: today, UTC)"
            )
        if name == "confirm":
            sub.add_argument("--check-id", default=None, help="id of the check that allowed it (idempotent)")
            sub.add_argument("--force", action="store_true", help="record the contact even if not allowed")
        if name == "contacts":
            sub.add_argument("--customer-id", required=True)
        if name == "serve":
            sub.add_argument("--host", default="127.0.0.1")
            sub.add_argument("--port", type=int, default=8080)
            sub.add_argument(
                "--refresh-seconds",
                type=float,
                default=0,
                help="reload the snapshot when its tables change, checked this often (0 = never)",
            )
    return parser


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    run_id = check_run_id(args.run_id or default_run_id(config))
    snapshot = Snapshot.load(config, run_id, args.base_path)
    # What is loaded by now (modules, the snapshot) lives as long as the process: frozen, a
    # full garbage collection no longer walks it, which keeps long pauses out of checks.
    gc.collect()
    gc.freeze()
    if args.command == "serve":
        return _serve(SnapshotHolder(snapshot), args)
    if args.command == "contacts":
        # An unknown customer or a run without contact tables raises a RealtimeError: exit 2.
        print(contact_profile(snapshot, args.customer_id).model_dump_json())
        return 0
    day = args.date or dt.datetime.now(dt.timezone.utc).date()
    if args.command == "check":
        decision = check(snapshot, args.customer_id, args.campaign, args.channel, day)
        print(decision.model_dump_json())
        return 0 if decision.allowed else 1
    holder = SnapshotHolder(snapshot)
    try:
        done = holder.confirm(
            args.customer_id, args.campaign, args.channel, day, check_id=args.check_id, force=args.force
        )
    except ContactRefusedError as exc:
        print(json.dumps({"error": str(exc), "decision": exc.decision.model_dump(mode="json")}))
        return 1
    print(done.model_dump_json())
    return 0


def _serve(holder: SnapshotHolder, args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from contact_spark.realtime.api import create_app
    except ImportError as exc:
        raise RealtimeError(
            f"serve needs the 'serve' extra (pip install 'contact_spark[serve]'): {exc}"
        ) from exc

    stop = holder.start_refresher(args.refresh_seconds) if args.refresh_seconds > 0 else None
    try:
        uvicorn.run(create_app(holder), host=args.host, port=args.port, log_level=args.log_level.lower())
    finally:
        if stop is not None:
            stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
