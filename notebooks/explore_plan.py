# Databricks notebook source
# MAGIC %md
# MAGIC # contact_spark — explore a run's plan
# MAGIC
# MAGIC Reads the Delta tables of one run (written by the `run_pipeline` notebook or the
# MAGIC bundle's job): the plan by month and channel, the eligibility funnel, the capacity
# MAGIC constraints with their shadow prices, and the run's certificate (value, bound, gap).
# MAGIC Same widgets as `run_pipeline` for the config and the table location.

# COMMAND ----------

# ruff: noqa: E402, F821  -- a notebook: cells import late; dbutils, display and spark come from the runtime
dbutils.widgets.text("config_path", "../contact_spark/config/default.yaml", "Config YAML")
dbutils.widgets.text("overrides", "", "Overrides (key=value; ...)")
dbutils.widgets.text("catalog", "", "Unity Catalog catalog")
dbutils.widgets.text("schema", "", "Unity Catalog schema")
dbutils.widgets.text("base_path", "", "Base path (no catalog)")
dbutils.widgets.text("run_id", "", "Run id (empty: from config)")

# COMMAND ----------

from pyspark.sql import functions as F

from contact_spark.cli import default_run_id
from contact_spark.config import load_config, parse_override
from contact_spark.io.runs import require_run
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.spark import get_spark

text = dbutils.widgets.get("overrides").replace("\n", ";")
overrides = dict(parse_override(item.strip()) for item in text.split(";") if item.strip())
for widget, key in (
    ("catalog", "storage.catalog"),
    ("schema", "storage.database"),
    ("base_path", "storage.base_path"),
):
    if dbutils.widgets.get(widget).strip():
        overrides[key] = dbutils.widgets.get(widget).strip()
config = load_config(dbutils.widgets.get("config_path"), overrides=overrides)
run_id = check_run_id(dbutils.widgets.get("run_id").strip() or default_run_id(config))
spark = get_spark("contact_spark.notebook")
store = TableStore(spark, config.storage)
require_run(store, "plan", run_id, "plan")
plan = store.read_run("plan", run_id)

# COMMAND ----------

# MAGIC %md ## Planned contacts by month and channel

# COMMAND ----------

by_month = plan.groupBy("month").pivot("channel", sorted(config.channel_names)).count().orderBy("month")
display(by_month)

# COMMAND ----------

# MAGIC %md ## Campaign × channel: contacts and expected value

# COMMAND ----------

display(
    plan.groupBy("campaign", "channel")
    .agg(F.count(F.lit(1)).alias("contacts"), F.round(F.sum("expected_value"), 2).alias("expected_value"))
    .orderBy("campaign", "channel")
)

# COMMAND ----------

# MAGIC %md ## Eligibility funnel, capacities and certificate

# COMMAND ----------

display(store.read_run("eligibility_funnel", run_id))
display(store.read_run("capacity_sensitivity", run_id))
display(store.read_run("plan_summary", run_id))
