"""One small plan year shared by the adaptive tests: planned, January executed, re-planned."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.adaptive.replan import replan
from contact_spark.config import AppConfig, load_config
from contact_spark.config.models import StorageSettings
from contact_spark.inputs import write_demo_data
from contact_spark.io.tables import TableStore
from contact_spark.stage_job import StageRunner
from contact_spark.stages import run_stage

JAN, FEB = dt.date(2027, 1, 1), dt.date(2027, 2, 1)
# Binding capacities sized for 200 customers: TLS per month, a yearly SMS budget.
CAPACITIES = {
    "rules": [
        {"name": "call_centre", "channels": ["TLS"], "max": 8},
        {
            "name": "sms_budget",
            "measure": "sum",
            "column": "cost",
            "channels": ["SMS"],
            "period": "year",
            "max": 9.0,
        },
    ],
    "lagrangian": {"max_iterations": 5, "repair_rounds": 3},
}
TRIGGERS = {
    "events": {
        "MOVE": {"months": 2, "campaign": "MOVING_HOME", "propensity": {"DEM": 0.05, "SMS": 0.1, "TLS": 0.3}},
        "COMPLAINT": {"months": 3, "suppress": {"campaigns": "any", "channels": "any"}},
        "CONTRACT_ENDING": {"months": 2, "boost": {"campaigns": ["CROSS_SELLING"], "factor": 3.0}},
    }
}


@dataclass(frozen=True)
class Replanned:
    config: AppConfig
    store: TableStore
    executed: DataFrame  # January rows appended to contact_history
    forced_tls_customer: str  # given an off-plan TLS in January; its plan had TLS in February
    dropped: list[tuple]  # planned January contacts that were not executed


@pytest.fixture(scope="package")
def replanned(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Replanned:
    base = tmp_path_factory.mktemp("replan") / "lakehouse"
    config = load_config(
        overrides={"storage.base_path": str(base), "demo.customers": 200, "demo.partitions": 2}
    )
    data = config.model_dump(mode="json")
    data["capacities"] = CAPACITIES
    data["campaigns"]["MOVING_HOME"] = {"success_value": 200.0, "trigger_only": True}
    data["triggers"] = TRIGGERS
    config = AppConfig.model_validate(data)
    store = TableStore(spark, StorageSettings(base_path=str(base), backend="deltalake"))
    write_demo_data(spark, store, config)
    for stage in ("contacts", "eligibility", "plan"):
        run_stage(stage, spark, store, config, "year")
    plan = store.read_run("plan", "year")
    january = plan.filter(F.col("month") == F.lit(JAN))
    # Executed: January as planned, except two contacts not made, plus an off-plan TLS call
    # in January to a customer whose plan calls it in February (and not in January).
    # One planned call and one e-mail not made (the off-plan call keeps January within capacity).
    dropped = [
        tuple(
            january.filter(F.col("channel") == channel)
            .orderBy("customer_id", "campaign")
            .select("customer_id", "campaign", "channel")
            .first()
        )
        for channel in ("TLS", "DEM")
    ]
    jan_customers = january.select("customer_id").distinct()
    forced = (
        plan.filter((F.col("month") == F.lit(FEB)) & (F.col("channel") == "TLS"))
        .join(jan_customers, "customer_id", "left_anti")
        .orderBy("customer_id")
        .first()
    )
    assert forced is not None, "the parent plan calls somebody in February who has no January contact"
    executed = (
        january.join(
            plan.sparkSession.createDataFrame(dropped, "customer_id string, campaign string, channel string"),
            ["customer_id", "campaign", "channel"],
            "left_anti",
        )
        .select("customer_id", "campaign", "channel", "contact")
        .unionByName(
            spark.createDataFrame(
                [(forced["customer_id"], forced["campaign"], "TLS", forced["contact"])],
                "customer_id string, campaign string, channel string, contact string",
            )
        )
        .select(
            "customer_id",
            F.lit(dt.datetime(2027, 1, 15, 10, 0)).alias("contact_date"),
            "campaign",
            "channel",
            "contact",
            F.lit("no_response").alias("outcome"),
        )
    )
    history = store.read("contact_history")
    executed = executed.select(*[F.col(f.name).cast(f.dataType) for f in history.schema.fields])
    rows = [tuple(r) for r in history.unionByName(executed).collect()]
    store.overwrite(spark.createDataFrame(rows, history.schema), "contact_history")
    replan(spark, store, config, "year", JAN, "year-r1", StageRunner(spark, store, "year-r1"))
    return Replanned(config, store, executed, forced["customer_id"], dropped)


def copy_of(spark: SparkSession, replanned: Replanned, base: Path) -> Replanned:
    """The re-planned year in a copy of its lakehouse under ``base``.

    Tests that write to the run (trigger runs) work on a copy: the package-scoped
    ``replanned`` stays as the re-plan left it, whatever order the tests run in.
    """
    source = replanned.config.storage.base_path
    assert source is not None
    shutil.copytree(source, base)
    storage = replanned.config.storage.model_copy(update={"base_path": str(base)})
    config = replanned.config.model_copy(update={"storage": storage})
    store = TableStore(spark, StorageSettings(base_path=str(base), backend="deltalake"))
    return replace(replanned, config=config, store=store)
