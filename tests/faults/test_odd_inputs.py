"""Odd input rows change no other customer's plan, and each is planned or reported.

* History in another case or with spaces (`` cross_selling``, ``dem ``) counts for every
  rule. Before, the fatigue rules ignored it: the plan contacted customers again within
  their windows, a breach the validator did not see.
* History of a campaign no config names, or dated after the plan starts, is reported in
  ``inputs_rejected`` and changes nothing (contact scores are as of the first month).
* 10 kB strings and emoji in every input table: a customer whose id is 10 kB of emoji and
  text, with an emoji segment and household, is planned like any other (its id
  round-trips exactly); a 10 kB phone, an emoji-only phone, an emoji e-mail and an emoji
  contact type are rejected with their reason (a number after a leading emoji is read,
  like one after "Tel:"); history and propensity rows with such names are reported.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from demo_run import small_demo
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.io.fingerprint import table_fingerprint
from contact_spark.io.tables import TableStore
from contact_spark.stages import run_stage

PLAN_COLUMNS = ["customer_id", "month", "campaign", "channel", "contact", "expected_value"]
LONG_ID = "🙂" + "cliente-ü-" * 1_000  # about 10 kB, not ASCII
CONFIRMED = dt.datetime(2024, 1, 1)
HOSTILE_CONTACTS = [
    ("h-phone", "phone", "+39 02 7200 3991"),
    ("h-email", "email", "mario.rossi@example.com"),
    ("h-long", "phone", "3" * 10_000),
    ("h-emoji-phone", "phone", "📞 +39 02 7200 3992"),
    ("h-emoji-only", "phone", "📞📞📞"),
    ("h-emoji-email", "email", "🙂mario@example.com"),
    ("h-emoji-type", "📞", "+39 02 7200 3993"),
]


def _rows(like: DataFrame, rows: list[dict[str, Any]]) -> DataFrame:
    """``rows`` as a frame with ``like``'s columns (missing keys are null)."""
    return like.sparkSession.createDataFrame(
        [tuple(r.get(c) for c in like.columns) for r in rows], like.schema
    )


def _add_hostile_customer(store: TableStore, channels: list[str], campaigns: list[str]) -> None:
    customers = store.read("customers")
    template = customers.first().asDict()  # type: ignore[union-attr]
    hostile = {
        **template,
        "customer_id": LONG_ID,
        "household_id": "🏠" * 2_500,
        "segment": "VIP 🌟",
        "churn_risk": False,
        "outbound": False,
        "privacy_consent": True,
        **{f"optout_{h.lower()}": False for h in channels},
    }
    contacts = store.read("contacts")
    contact_rows = [
        {"customer_id": LONG_ID, "contact_id": i, "contact_type": kind, "value": value, "source": "CRM"}
        | {"created_at": CONFIRMED, "last_confirmed_at": CONFIRMED}
        for i, kind, value in HOSTILE_CONTACTS
    ]
    propensities = store.read("propensities")
    cells = [
        {"customer_id": LONG_ID, "campaign": c, "channel": h, "propensity": 0.9}
        for c in campaigns
        for h in channels
    ]
    odd_cell = {"customer_id": LONG_ID, "campaign": "🎯" * 2_500, "channel": channels[0], "propensity": 0.5}
    for table, like, rows in (
        ("customers", customers, [hostile]),
        ("contacts", contacts, contact_rows),
        ("propensities", propensities, [*cells, odd_cell]),
    ):
        store.overwrite(like.unionByName(_rows(like, rows)).localCheckpoint(), table)


def test_odd_history_and_hostile_strings_change_no_other_plan_and_are_reported(
    spark: SparkSession, lakehouse: Path
) -> None:
    config, store = small_demo(spark, lakehouse, 40)
    for stage in ("contacts", "eligibility", "plan"):
        run_stage(stage, spark, store, config, "exact")

    history = store.read("contact_history")
    future = dt.date(2030, 1, 1)
    odd = history.limit(2).select(
        "customer_id",
        F.when(F.lit(True), F.lit(future))
        .cast(history.schema["contact_date"].dataType)
        .alias("contact_date"),
        F.lit("LEGACY_MAILING").alias("campaign"),
        "channel",
        "contact",
        "outcome",
    )
    hostile = _rows(
        history,
        [
            {
                "customer_id": LONG_ID,
                "contact_date": dt.date(2023, 11, 3),
                "campaign": campaign,
                "channel": channel,
            }
            | {"outcome": "no_response"}
            for campaign, channel in [("CROSS_SELLING🎯", "DEM"), (config.campaign_names[0], "🛰" * 2_500)]
        ],
    )
    exported = history.select(
        "customer_id",
        "contact_date",
        F.concat(F.lit(" "), F.lower("campaign")).alias("campaign"),
        F.concat(F.lower("channel"), F.lit(" ")).alias("channel"),
        "contact",
        "outcome",
    ).unionByName(odd)
    store.overwrite(exported.unionByName(hostile).localCheckpoint(), "contact_history")
    _add_hostile_customer(store, config.channel_names, config.campaign_names)
    for stage in ("contacts", "eligibility", "plan", "validate"):
        run_stage(stage, spark, store, config, "odd")

    plans = [store.read_run("plan", run).select(*PLAN_COLUMNS) for run in ("exact", "odd")]
    others = plans[1].filter(F.col("customer_id") != LONG_ID)
    assert plans[0].count() > 0
    assert table_fingerprint(others) == table_fingerprint(plans[0])
    assert store.read_run("violations", "odd").count() == 0
    # the hostile customer is planned, its id exact
    hostile_plan = plans[1].filter(F.col("customer_id") == LONG_ID)
    assert hostile_plan.count() > 0
    assert {r["customer_id"] for r in hostile_plan.select("customer_id").distinct().collect()} == {LONG_ID}

    rejected = {
        r["contact_id"]: r["reason_code"]
        for r in store.read_run("contacts_rejected", "odd")
        .filter(F.col("contact_id").startswith("h-"))
        .collect()
    }
    assert rejected == {
        "h-long": "PHONE_TOO_LONG",
        "h-emoji-only": "PHONE_NOT_A_NUMBER",
        "h-emoji-email": "EMAIL_NON_ASCII_LOCAL_PART",
        "h-emoji-type": "UNKNOWN_CONTACT_TYPE",
    }
    clean = {
        r["value"]: r["contact_ids"]
        for r in store.read_run("contacts_clean", "odd").filter(F.col("customer_id") == LONG_ID).collect()
    }
    assert clean == {
        "+390272003991": ["h-phone"],
        "+390272003992": ["h-emoji-phone"],
        "mario.rossi@example.com": ["h-email"],
    }
    reported = sorted(
        (r["table_name"], r["reason_code"], r["row_ref"].startswith(LONG_ID))
        for r in store.read_run("inputs_rejected", "odd").collect()
    )
    assert reported == [
        ("contact_history", "UNKNOWN_HISTORY_CAMPAIGN", False),  # LEGACY_MAILING, dated 2030
        ("contact_history", "UNKNOWN_HISTORY_CAMPAIGN", False),
        ("contact_history", "UNKNOWN_HISTORY_CAMPAIGN", True),  # CROSS_SELLING🎯
        ("contact_history", "UNKNOWN_HISTORY_CHANNEL", True),  # 10 kB of 🛰
        ("propensities", "UNKNOWN_CAMPAIGN", True),  # 10 kB of 🎯
    ]
