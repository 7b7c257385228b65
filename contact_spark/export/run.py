"""Export a run's plan to the execution systems: per month, one list per channel (CSV and
Parquet) and a manifest, after consent is re-checked against the current inputs.

Layout under ``out``::

    <out>/<run_id>/<YYYY-MM>/<CHANNEL>_<YYYY-MM>.csv
                             <CHANNEL>_<YYYY-MM>.parquet      (one pair per configured channel)
                             manifest.json                    (files, rows, sha256, versions, counts)

Rerunning the export of a run × month replaces its folder whole (written aside, then swapped
in) and its ``export_rejected`` rows; nothing else is touched. See docs/export.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.fingerprint import config_hash
from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError
from contact_spark.export.files import (
    ListWriter,
    remove_leftovers,
    staging_folder,
    swap_in,
    write_manifest,
)
from contact_spark.export.recheck import read_current, recheck
from contact_spark.io.runs import require_run
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.validation.stage import VIOLATIONS_TABLE, raise_for_violations

log = logging.getLogger(__name__)

EXPORT_REJECTED_TABLE = "export_rejected"
EXPORT_REJECTED_SCHEMA = (
    "run_id string, month date, customer_id string, campaign string, channel string, reason_code string"
)
MANIFEST_FORMAT = "contact_spark.export/1"


class ExportError(ContactSparkError):
    """The export cannot start: an unknown month, or a plan the configuration does not describe."""


@dataclass(frozen=True)
class MonthExport:
    """One exported month: its folder and its manifest (as written)."""

    month: dt.date
    folder: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class ExportResult:
    run_id: str
    months: list[MonthExport]


def send_window(config: AppConfig, channel: str, month: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day a channel's list of ``month`` may be sent (the whole month by
    default; ``export.windows`` narrows it, days past the month's end meaning its last)."""
    last = calendar.monthrange(month.year, month.month)[1]
    window = config.export.windows.get(channel)
    first_day, last_day = (1, last) if window is None else (window.first_day, window.last_day)
    return month.replace(day=min(first_day, last)), month.replace(day=min(last_day, last))


def _months(
    store: TableStore, plan: DataFrame, config: AppConfig, run_id: str, month: dt.date | None
) -> list[dt.date]:
    """The months to export: ``month`` (one of the config's horizon), else every month of the
    run's plan. Stops when the plan names a campaign or channel the config does not know: it
    was made with another configuration, whose attributes and windows the files would lack."""
    if month is not None and month not in config.run.months():
        horizon = config.run.months()
        raise ExportError(
            f"--month {month:%Y-%m} is not a month of the plan horizon "
            f"({horizon[0]:%Y-%m} to {horizon[-1]:%Y-%m})"
        )
    # One small query: at most months × campaigns × channels rows.
    cells = plan.select("month", "campaign", "channel").distinct().collect()
    if not cells:
        require_run(store, "plan", run_id, "plan")  # says which stage to run first
    for column, known in (("campaign", config.campaign_names), ("channel", config.channel_names)):
        unknown = sorted({row[column] for row in cells} - set(known), key=str)
        if unknown:
            raise ExportError(
                f"plan of run '{run_id}' has {column} '{unknown[0]}' that the config does not "
                f"have (it has {', '.join(known)}): export with the config the run was planned with"
            )
    return [month] if month is not None else sorted({row["month"] for row in cells})


def _write_rejected(store: TableStore, rejected: DataFrame, run_id: str, months: list[dt.date]) -> None:
    """Replace the run's ``export_rejected`` rows of ``months``; other months' rows are kept."""
    rows = rejected.select(
        F.lit(run_id).alias("run_id"), "month", "customer_id", "campaign", "channel", "reason_code"
    )
    if store.exists(EXPORT_REJECTED_TABLE):
        kept = store.read_run(EXPORT_REJECTED_TABLE, run_id).filter(~F.col("month").isin(*months))
        # Materialised first: the replacement must not read the files it replaces.
        rows = kept.select(*rows.columns).unionByName(rows).localCheckpoint(eager=True)
    store.replace_run(rows, EXPORT_REJECTED_TABLE, run_id)


def _file_row(
    row: Any, priority: int, config: AppConfig, run_id: str, window: tuple[dt.date, dt.date]
) -> tuple[Any, ...]:
    campaign = config.campaigns[row["campaign"]]
    return (
        priority,
        row["customer_id"],
        row["contact"],
        row["contact_kind"],
        row["contact_id"],
        row["channel"],
        row["campaign"],
        campaign.description,
        campaign.family,
        float(campaign.success_value),
        None if row["expected_value"] is None else float(row["expected_value"]),
        row["month"],
        window[0],
        window[1],
        run_id,
    )


def _manifest(
    config: AppConfig,
    run_id: str,
    month: dt.date,
    plan_version: int,
    versions: dict[str, int],
    counts: Counter[tuple[dt.date, str, str | None]],
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The month's manifest: only ids, versions, counts and checksums (never a contact)."""
    channels: dict[str, Any] = {}
    total: Counter[str] = Counter()
    for channel in config.channel_names:
        by_reason = {
            reason: n for (m, ch, reason), n in counts.items() if m == month and ch == channel and reason
        }
        exported = counts.get((month, channel, None), 0)
        first, last = send_window(config, channel, month)
        channels[channel] = {
            "planned": exported + sum(by_reason.values()),
            "exported": exported,
            "rejected": sum(by_reason.values()),
            "rejected_by_reason": dict(sorted(by_reason.items())),
            "send_from": first.isoformat(),
            "send_to": last.isoformat(),
        }
        total.update(by_reason)
    exported_rows = sum(c["exported"] for c in channels.values())
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "month": f"{month:%Y-%m}",
        "config_hash": config_hash(config),
        "plan": {"table": "plan", "version": plan_version},
        "inputs": dict(sorted(versions.items())),
        "consent_recheck": {
            "planned": exported_rows + sum(total.values()),
            "exported": exported_rows,
            "rejected": sum(total.values()),
            "rejected_by_reason": dict(sorted(total.items())),
            "rejected_table": EXPORT_REJECTED_TABLE,
        },
        "channels": channels,
        "files": sorted(files, key=lambda f: f["name"]),
    }


def _write_lists(
    checked: DataFrame, config: AppConfig, run_id: str, months: list[dt.date], run_folder: Path
) -> dict[dt.date, tuple[Path, list[dict[str, Any]]]]:
    """Every month's lists into a staging folder each; month → (folder, manifest file entries)."""
    staged = {month: staging_folder(run_folder, month) for month in months}
    writers = {
        (month, channel): ListWriter(staged[month], channel, month).open()
        for month in months
        for channel in config.channel_names
    }
    # A total order: (customer, month, campaign, channel) is unique in a plan.
    ordered = checked.filter(F.col("reason_code").isNull()).orderBy(
        "month", "channel", F.col("expected_value").desc_nulls_last(), "customer_id", "campaign"
    )
    priority: Counter[tuple[dt.date, str]] = Counter()
    for row in ordered.toLocalIterator(prefetchPartitions=True):
        key = (row["month"], row["channel"])
        priority[key] += 1
        window = send_window(config, row["channel"], row["month"])
        writers[key].add(_file_row(row, priority[key], config, run_id, window))
    entries: dict[dt.date, list[dict[str, Any]]] = {month: [] for month in months}
    for (month, _), writer in writers.items():
        entries[month].extend(writer.close())
    return {month: (staged[month], entries[month]) for month in months}


def export_plan(
    spark: SparkSession,
    store: TableStore,
    config: AppConfig,
    run_id: str,
    out: str | Path,
    month: dt.date | None = None,
) -> ExportResult:
    """Export ``month`` (default: every month of the run's plan) of the run's plan to ``out``.

    Stops with one line when the run has no plan, its plan has violations, the month is not
    in the horizon or the plan names a campaign or channel the config lacks. Callers that may
    run concurrently for the same run hold its lock (``jobs/export_plan.py`` does).
    """
    run_id = check_run_id(run_id)
    if not store.exists("plan"):
        require_run(store, "plan", run_id, "plan")
    if store.exists(VIOLATIONS_TABLE):
        raise_for_violations(store, run_id)  # a plan that breaks a rule is never sent
    plan_version = store.version("plan")
    plan = store.read("plan", plan_version).filter(F.col("run_id") == run_id)
    months = _months(store, plan, config, run_id, month)
    current = read_current(store, config, run_id)
    checked = recheck(plan.filter(F.col("month").isin(*months)), current, config).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    run_folder = Path(out).expanduser().resolve() / run_id
    try:
        counts: Counter[tuple[dt.date, str, str | None]] = Counter(
            {
                (r["month"], r["channel"], r["reason_code"]): int(r["n"])
                for r in checked.groupBy("month", "channel", "reason_code")
                .agg(F.count(F.lit(1)).alias("n"))
                .collect()
            }
        )
        remove_leftovers(run_folder, months)
        staged = _write_lists(checked, config, run_id, months, run_folder)
        _write_rejected(store, checked.filter(F.col("reason_code").isNotNull()), run_id, months)
    except BaseException:
        remove_leftovers(run_folder, months)  # the staged folders; the exported ones stay
        raise
    finally:
        checked.unpersist()
    done = []
    for m in months:
        folder, files = staged[m]
        manifest = _manifest(config, run_id, m, plan_version, current.versions, counts, files)
        write_manifest(folder, manifest)
        target = run_folder / f"{m:%Y-%m}"
        swap_in(folder, target)
        recheck_counts = manifest["consent_recheck"]
        log.info(
            "export of run %s %s: %d planned, %d exported, %d rejected %s",
            run_id,
            f"{m:%Y-%m}",
            recheck_counts["planned"],
            recheck_counts["exported"],
            recheck_counts["rejected"],
            recheck_counts["rejected_by_reason"],
        )
        done.append(MonthExport(m, target, manifest))
    return ExportResult(run_id, done)
