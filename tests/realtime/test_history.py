"""Contacts confirmed in real time reach the next batch run through ``load_inputs``."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
from pyspark.sql import SparkSession

from contact_spark.config.models import StorageSettings
from contact_spark.inputs import load_inputs
from contact_spark.io.tables import TableStore
from contact_spark.realtime import Snapshot, confirm

from .world import CONTACT, HISTORY_SCHEMA, RUN_ID, customer_row, make_config, write, write_world

CONTACTS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("contact_type", pa.string()),
        ("value", pa.string()),
        ("source", pa.string()),
        ("created_at", pa.date32()),
        ("last_confirmed_at", pa.date32()),
    ]
)
PROPENSITIES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("campaign", pa.string()),
        ("channel", pa.string()),
        ("propensity", pa.float64()),
    ]
)


def history_rows(store: TableStore, base: Path) -> list[tuple[str, dt.date, str, str, str | None]]:
    config = make_config(base)
    df = load_inputs(store, config).contact_history
    return sorted(
        (r["customer_id"], r["contact_date"], r["campaign"], r["channel"], r["outcome"])
        for r in df.select("customer_id", "contact_date", "campaign", "channel", "outcome").collect()
    )


def test_confirmed_contacts_are_history_for_the_next_batch_run(spark: SparkSession, tmp_path: Path) -> None:
    base = tmp_path / "lakehouse"
    write_world(base, [customer_row("C1"), customer_row("C2")], [("C1", -3, "CROSS_SELLING", "DEM")], [])
    write(base, "contacts", [], CONTACTS_SCHEMA)
    write(base, "propensities", [], PROPENSITIES_SCHEMA)
    store = TableStore(spark, StorageSettings(base_path=str(base), backend="deltalake"))
    past = ("C1", dt.date(2026, 10, 15), "CROSS_SELLING", "DEM", "no_response")
    assert history_rows(store, base) == [past]  # no realtime_contacts table yet

    snapshot = Snapshot.load(make_config(base), RUN_ID)
    confirm(snapshot, "C1", "CROSS_SELLING", "SMS", dt.date(2027, 1, 20))
    confirm(snapshot, "C2", "CROSS_SELLING", "DEM", dt.date(2027, 1, 21))
    sms = ("C1", dt.date(2027, 1, 20), "CROSS_SELLING", "SMS", None)
    dem = ("C2", dt.date(2027, 1, 21), "CROSS_SELLING", "DEM", None)
    assert history_rows(store, base) == [past, sms, dem]

    # The operational system delivers C1's SMS later (a timestamp that day): counted once,
    # the history row wins; the contract's timestamp type is kept.
    at = dt.datetime(2027, 1, 20, 9, 30, tzinfo=dt.timezone.utc)
    shutil.rmtree(base / "contact_history")  # a new table: the column type changes
    write(
        base,
        "contact_history",
        [
            {
                "customer_id": "C1",
                "contact_date": at,
                "campaign": "CROSS_SELLING",
                "channel": "SMS",
                "contact": CONTACT["SMS"],
                "outcome": "responded",
            },
        ],
        pa.schema(
            [
                f if f.name != "contact_date" else pa.field("contact_date", pa.timestamp("us", tz="UTC"))
                for f in HISTORY_SCHEMA
            ]
        ),
    )
    rows = load_inputs(store, make_config(base)).contact_history
    assert dict(rows.dtypes)["contact_date"].startswith("timestamp")
    got = sorted((r["customer_id"], r["channel"], r["outcome"]) for r in rows.collect())
    assert got == [("C1", "SMS", "responded"), ("C2", "DEM", None)]
