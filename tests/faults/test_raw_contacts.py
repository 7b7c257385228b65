"""No raw phone or e-mail outside the tables that need it, nor in any log or report.

The shared demo run (200 customers, the whole pipeline, native Delta): every phone and
e-mail of its input ``contacts`` table, as entered and as normalised, is looked for in every
column of every Delta table under the run's lakehouse, in the log the run wrote and in every
file of its report folder. Only the tables of ``raw_contacts.ALLOWED_TABLES`` may hold them
(issue 24, item 7); the others name a contact by ``contact_id``. Read with delta-rs: no
Spark job, no second pipeline run.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest
from demo_run import DemoRun
from pyspark.sql import SparkSession
from raw_contacts import ALLOWED_TABLES, column_texts, delta_tables, leaked, raw_contacts, read_table

from contact_spark.baseline.greedy import BASELINE_TABLE, run_baseline_stage
from contact_spark.config import AppConfig
from contact_spark.eligibility.stage import run_eligibility_stage
from contact_spark.io.runs import RawContactColumnError
from contact_spark.io.tables import LocalRows, TableStore


def test_no_raw_contact_outside_plan_best_and_clean_contacts_logs_and_reports_included(
    demo_run: DemoRun,
) -> None:
    tables = delta_tables(Path(demo_run.config.storage.base_path))
    values = raw_contacts(tables)
    assert len(values) > 500  # phones and e-mails of 200 customers: the scan is not vacuous

    found = {}
    for name, path in tables.items():
        if name in ALLOWED_TABLES:
            continue
        for column, text in column_texts(read_table(path)).items():
            hits = leaked(text, values)
            if hits:
                found[f"table {name}.{column}"] = len(hits)
    files = [demo_run.log_file, *sorted(p for p in demo_run.report_dir.rglob("*") if p.is_file())]
    for path in files:
        hits = leaked(path.read_text(encoding="utf-8", errors="replace"), values)
        if hits:
            found[str(path)] = len(hits)
    assert found == {}

    # Not vacuous either: the tables in between carry the key, and the scan would see a copy.
    scanned = set(tables) - ALLOWED_TABLES
    assert {"eligibility", "baseline_plan", "contact_decisions", "contacts_rejected"} <= scanned
    assert "stage plan: done" in demo_run.log_file.read_text(encoding="utf-8")
    assert any(p.name == "report.html" for p in files)
    for name in ("eligibility", "baseline_plan"):
        keys = read_table(tables[name]).column("contact_id")
        assert pc.sum(pc.is_valid(keys)).as_py() > 0, name
    assert leaked(column_texts(read_table(tables["plan"]))["contact"], values)


def test_a_table_an_earlier_version_wrote_with_raw_contacts_stops_its_stage_in_one_line(
    spark: SparkSession, store: TableStore, small_config: AppConfig
) -> None:
    """Before, eligibility and baseline_plan had a raw ``contact`` column: the stages that
    write them stop before any work, naming the table and saying to drop it (native Delta
    would otherwise fail on the new columns, and the old rows would keep their raw values)."""
    # Written with pyarrow (LocalRows on delta-rs): no Spark job.
    old = LocalRows.of(
        [("old", "C1", "K1", "+393471234567")],
        "run_id string, customer_id string, contact_id string, contact string",
    )
    empty = spark.createDataFrame([], "customer_id string")
    for table in ("eligibility", BASELINE_TABLE):
        store.replace_run(old, table, "old")
    with pytest.raises(
        RawContactColumnError, match=r"^table 'eligibility' at .* has a column 'contact' .*drop the table"
    ):
        run_eligibility_stage(spark, store, small_config, empty, empty, "new")
    with pytest.raises(RawContactColumnError, match=r"^table 'baseline_plan' at .*drop the table"):
        run_baseline_stage(spark, store, small_config, "new")
