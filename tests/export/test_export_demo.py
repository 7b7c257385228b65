"""The export of the shared demo run (200 customers, the whole pipeline, native Delta): with
the inputs unchanged since planning, every planned contact is exported, with the contact
the plan chose, and a second export of a month changes nothing."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from demo_run import DemoRun
from pyspark.sql import SparkSession

from contact_spark.export.run import EXPORT_REJECTED_TABLE, export_plan


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_planned_contact_of_the_demo_run_is_exported(
    spark: SparkSession, demo_run: DemoRun, tmp_path: Path
) -> None:
    result = export_plan(spark, demo_run.store, demo_run.config, demo_run.run_id, tmp_path)

    plan = demo_run.store.read_run("plan", demo_run.run_id).collect()
    planned = sorted(
        (r["customer_id"], f"{r['month']:%Y-%m}", r["campaign"], r["channel"], r["contact"]) for r in plan
    )
    exported = []
    for month in result.months:
        for channel in demo_run.config.channel_names:
            rows = read_csv(month.folder / f"{channel}_{month.month:%Y-%m}.csv")
            values = [float(r["expected_value"]) for r in rows]
            assert values == sorted(values, reverse=True)  # worked in expected-value order
            assert [int(r["priority"]) for r in rows] == list(range(1, len(rows) + 1))
            exported += [
                (r["customer_id"], r["month"][:7], r["campaign"], r["channel"], r["contact"]) for r in rows
            ]
    assert len(plan) == 1969 and sorted(exported) == planned
    assert [m.month for m in result.months] == demo_run.config.run.months()
    assert sum(m.manifest["consent_recheck"]["rejected"] for m in result.months) == 0
    counts = Counter((f"{r['month']:%Y-%m}", r["channel"]) for r in plan)
    for month in result.months:
        for channel, summary in month.manifest["channels"].items():
            assert summary["exported"] == counts[(f"{month.month:%Y-%m}", channel)]

    # Once more for January, on native Delta: the same files, no duplicate rejected row.
    january = result.months[0]
    before = {p.name: p.read_bytes() for p in january.folder.iterdir()}
    again = export_plan(spark, demo_run.store, demo_run.config, demo_run.run_id, tmp_path, january.month)
    assert {p.name: p.read_bytes() for p in again.months[0].folder.iterdir()} == before
    assert demo_run.store.read_run(EXPORT_REJECTED_TABLE, demo_run.run_id).count() == 0
