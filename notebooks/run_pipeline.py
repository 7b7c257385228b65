# Databricks notebook source
# MAGIC %md
# MAGIC # contact_spark — run the pipeline
# MAGIC
# MAGIC Runs the stages of one planning run on the attached cluster, in the order of the
# MAGIC stage registry (`contact_spark.stages.STAGES`): `generate` (demo data only) →
# MAGIC `contacts` → (`segments`, `propensity` when configured) → `eligibility` → `plan` →
# MAGIC `validate` → `baseline` → `metrics` → `decisions` → `report`.
# MAGIC Every stage reads and writes Delta tables — Unity Catalog `catalog.schema.table`
# MAGIC names when **catalog** and **schema** are set, else paths under **base_path**.
# MAGIC
# MAGIC The cluster needs the `contact_spark` wheel as a library (the bundle's job installs
# MAGIC it; on an interactive cluster: `%pip install /Volumes/<catalog>/<schema>/<volume>/contact_spark-0.1.0-py3-none-any.whl`).
# MAGIC The configuration is a YAML file (`contact_spark/config/default.yaml` of the repository,
# MAGIC synced by the bundle); **overrides** takes `key=value` pairs separated by `;` or new lines.

# COMMAND ----------

# ruff: noqa: E402, F821  -- a notebook: cells import late; dbutils, display and spark come from the runtime
from contact_spark.stages import BY_NAME, STAGES

# Every stage that runs on its own (load_inputs is part of each of them; generate has its widget).
RUNNABLE = [s.name for s in STAGES if s.job is not None and s.name != "generate"]
dbutils.widgets.text("config_path", "../contact_spark/config/default.yaml", "Config YAML")
dbutils.widgets.text("overrides", "", "Overrides (key=value; ...)")
dbutils.widgets.text("catalog", "", "Unity Catalog catalog")
dbutils.widgets.text("schema", "", "Unity Catalog schema")
dbutils.widgets.text("base_path", "", "Base path (no catalog)")
dbutils.widgets.text("run_id", "", "Run id (empty: from config)")
dbutils.widgets.dropdown("generate_demo", "false", ["false", "true"], "Generate demo inputs")
dbutils.widgets.dropdown(
    "stages",
    "all",
    ["all", *RUNNABLE],
    "Stages to run",
)
dbutils.widgets.text("report_dir", "reports", "Report directory")

# COMMAND ----------

import logging

from contact_spark.cli import default_run_id, setup_logging
from contact_spark.config import load_config, parse_override
from contact_spark.io.tables import TableStore, check_run_id
from contact_spark.spark import get_spark
from contact_spark.stages import run_stage

setup_logging("INFO")
logging.getLogger("contact_spark").setLevel(logging.INFO)


def widget_overrides() -> dict:
    """The overrides widget plus the storage widgets, as dotted config keys."""
    text = dbutils.widgets.get("overrides").replace("\n", ";")
    overrides = dict(parse_override(item.strip()) for item in text.split(";") if item.strip())
    for widget, key in (
        ("catalog", "storage.catalog"),
        ("schema", "storage.database"),
        ("base_path", "storage.base_path"),
    ):
        if dbutils.widgets.get(widget).strip():
            overrides[key] = dbutils.widgets.get(widget).strip()
    return overrides


config = load_config(dbutils.widgets.get("config_path"), overrides=widget_overrides())
run_id = check_run_id(dbutils.widgets.get("run_id").strip() or default_run_id(config))
spark = get_spark("contact_spark.notebook")  # the cluster's session
store = TableStore(spark, config.storage)
selected = dbutils.widgets.get("stages")
# Segments and learned propensities run when the config asks for them (docs/propensity.md).
everything = [name for name in RUNNABLE if BY_NAME[name].enabled(config)]
stages = everything if selected == "all" else [selected]
if dbutils.widgets.get("generate_demo") == "true":
    stages.insert(0, "generate")
print(f"run {run_id}: stages {', '.join(stages)} on the {store.backend.name} Delta backend")

# COMMAND ----------

# MAGIC %md ## Stages

# COMMAND ----------

outcomes = {}
for stage in stages:
    kwargs = {"report_dir": dbutils.widgets.get("report_dir")} if stage == "report" else {}
    outcomes[stage] = run_stage(stage, spark, store, config, run_id, **kwargs)
    print(f"{stage}: {outcomes[stage].rows} rows in {outcomes[stage].seconds:.1f}s")

# COMMAND ----------

# MAGIC %md ## Result

# COMMAND ----------

display(store.read_run("run_stages", run_id).orderBy("stage_order"))

# COMMAND ----------

if store.exists("plan_summary"):
    display(store.read_run("plan_summary", run_id))
if "report" in outcomes:
    print(f"report: {outcomes['report'].details['report_path']}")
