"""Report section: the drift of a re-plan (or of trigger runs) against the plan it replaced.

A monthly re-plan (``jobs/replan.py``) records its parent and window in ``plan_lineage``,
every contact added or removed against the parent's plan (and every deviation of the
execution from it in the frozen months) in ``plan_drift``, their counts per change × reason
with the contacts kept in ``plan_drift_summary``, and each capacity's frozen usage in
``capacity_carryover``. A trigger run adds revisions (``revision`` ≥ 1) to the same run's
lineage and drift. This section shows those figures; a run that has none says so.

Every count is aggregated by Spark; no customer id reaches the page.
"""

from __future__ import annotations

import html
from typing import Any

from pyspark.sql import functions as F

from contact_spark.io.catalog import CARRYOVER_TABLE, DRIFT_SUMMARY_TABLE, DRIFT_TABLE, LINEAGE_TABLE
from contact_spark.io.tables import TableStore
from contact_spark.report.widgets import _fmt, html_table

# In the order of docs/adaptive.md: what the execution did, then what the re-plan changed.
CHANGES = ("kept", "added", "removed", "not_executed", "executed_off_plan")
TITLE = "<h2>Re-plan drift</h2>"


def _run_rows(store: TableStore, table: str, run_id: str) -> list[dict[str, Any]]:
    if not store.exists(table):
        return []
    return [r.asDict() for r in store.read_run(table, run_id).collect()]


def drift_counts(store: TableStore, run_id: str) -> list[tuple[int, str, str, int, int]]:
    """``(revision, change, reason, contacts, customers)`` of the run, in revision and
    :data:`CHANGES` order: a re-plan's recorded ``plan_drift_summary`` (with the contacts kept)
    for revision 0, ``plan_drift`` counted for the revisions it does not cover."""
    summary = _run_rows(store, DRIFT_SUMMARY_TABLE, run_id)
    rows = [(0, r["change"], r["reason"], int(r["contacts"]), int(r["customers"])) for r in summary]
    if store.exists(DRIFT_TABLE):
        drift = store.read_run(DRIFT_TABLE, run_id)
        if summary:
            drift = drift.filter(F.col("revision") != 0)
        rows += [
            (int(r["revision"]), r["change"], r["reason"], int(r["contacts"]), int(r["customers"]))
            for r in drift.groupBy("revision", "change", "reason")
            .agg(F.count(F.lit(1)).alias("contacts"), F.countDistinct("customer_id").alias("customers"))
            .collect()
        ]
    order = {c: i for i, c in enumerate(CHANGES)}
    return sorted(rows, key=lambda r: (r[0], order.get(r[1], len(CHANGES)), r[1], r[2]))


def drift_by_month(store: TableStore, run_id: str) -> list[dict[str, Any]]:
    """Contacts of ``plan_drift`` per month and change (one row per month, a column per change)."""
    if not store.exists(DRIFT_TABLE):
        return []
    drift = store.read_run(DRIFT_TABLE, run_id)
    counts = [F.count(F.when(F.col("change") == c, 1)).alias(c) for c in CHANGES if c != "kept"]
    return [r.asDict() for r in drift.groupBy("month").agg(*counts).orderBy("month").collect()]


def _lineage_text(row: dict[str, Any]) -> str:
    month = f"{row['replanned_from']:%B %Y}" if row["replanned_from"] else "?"
    if row["kind"] == "replan":
        executed = f"{row['executed_through']:%B %Y}" if row["executed_through"] else "?"
        return (
            f"Re-plan of run {row['parent_run_id']} from {month}, executed through {executed}: "
            f"{_fmt(row['customers_replanned'])} customers re-planned."
        )
    return (
        f"Revision {row['revision']} ({row['kind']}) from {month}: {_fmt(row['customers_replanned'])} "
        f"customers re-planned for {_fmt(row['events'])} event(s)."
    )


def drift_section(store: TableStore, run_id: str) -> str:
    """The run's lineage, drift per change × reason (with the contacts kept), per month, and
    the capacities the executed months used; a plain sentence when the run has no drift."""
    lineage = sorted(_run_rows(store, LINEAGE_TABLE, run_id), key=lambda r: r["revision"])
    counts = drift_counts(store, run_id)
    if not lineage and not counts:
        return (
            TITLE + "<p class='muted'>No drift to show: this run is not a re-plan and no trigger event "
            "changed it (no plan_lineage or plan_drift rows for it). A re-plan (jobs/replan.py) or a "
            "trigger run (jobs/trigger.py) shows here what moved against the plan it replaced.</p>"
        )
    totals: dict[str, int] = {c: 0 for c in CHANGES}
    for _, change, _, contacts, _ in counts:
        totals[change] = totals.get(change, 0) + contacts
    moved = totals["added"] + totals["removed"]
    kpis = [
        ("Contacts kept", totals["kept"]),
        ("Added", totals["added"]),
        ("Removed", totals["removed"]),
        ("Net change", f"{totals['added'] - totals['removed']:+,}"),
        ("Planned, not executed", totals["not_executed"]),
        ("Executed off plan", totals["executed_off_plan"]),
    ]
    out = (
        TITLE
        + "".join(f"<p>{html.escape(_lineage_text(r))}</p>" for r in lineage)
        + "<div class='kpis'>"
        + "".join(f"<div class='kpi'>{html.escape(k)}<b>{html.escape(_fmt(v))}</b></div>" for k, v in kpis)
        + "</div>"
    )
    if not moved and not totals["not_executed"] and not totals["executed_off_plan"]:
        out += "<p class='ok'>No contact moved: the re-planned months keep the parent's plan.</p>"
    out += (
        "<p class='muted'>Each change carries the first reason that applies (docs/adaptive.md): "
        "an attribution, not a proof of cause.</p>"
        + html_table(["revision", "change", "reason", "contacts", "customers"], counts)
    )
    months = drift_by_month(store, run_id)
    if months:
        out += (
            "<details><summary>Drift per month</summary>"
            + html_table(
                ["month", *[c for c in CHANGES if c != "kept"]],
                [(f"{r['month']:%Y-%m}", *[r[c] for c in CHANGES if c != "kept"]) for r in months],
            )
            + "</details>"
        )
    carried = sorted(
        (r for r in _run_rows(store, CARRYOVER_TABLE, run_id) if r["frozen_usage"]),
        key=lambda r: (r["rule"], str(r["month"]), r["sense"]),
    )
    if carried:
        out += (
            "<details><summary>Capacities used by the executed months</summary>"
            + html_table(
                ["constraint", "bound", "used by the execution", "left for the re-plan"],
                [
                    (
                        r["constraint_name"],
                        r["year_bound"],
                        r["frozen_usage"],
                        "closed" if r["remaining_bound"] is None else r["remaining_bound"],
                    )
                    for r in carried
                ],
            )
            + "</details>"
        )
    return out
