# contact_spark — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
CONFIG ?= contact_spark/config/default.yaml
CUSTOMERS ?=
RUN_ARGS := --config $(CONFIG) $(if $(CUSTOMERS),--set demo.customers=$(CUSTOMERS),)
PYTEST_ARGS ?=
# Native Delta for the tests and local runs: the jar version is the pip delta_spark pin, the
# artifact the one built for the pinned pyspark's minor version.
DELTA_VERSION := $(shell sed -n 's/^delta_spark==//p' requirements/constraints.txt)
SPARK_MINOR := $(shell sed -n 's/^pyspark==\([0-9]*\.[0-9]*\).*/\1/p' requirements/constraints.txt)
DELTA_JARS := .cache/delta-jars
DELTA_STAMP := $(DELTA_JARS)/.fetched-$(DELTA_VERSION)-spark$(SPARK_MINOR)
# JDBC drivers for the import's JDBC sources (group:artifact:version, space-separated): SQLite
# for the tests and the example; add your database's driver here, or pass --jars yourself.
JDBC_DRIVERS ?= org.xerial:sqlite-jdbc:3.54.1.0
JDBC_JARS := .cache/jdbc-jars
JDBC_STAMP := $(JDBC_JARS)/.fetched-$(shell echo '$(JDBC_DRIVERS)' | md5sum | cut -c1-12)
MAPPING ?= conf/examples/import_crm_export.yaml

.DEFAULT_GOAL := help
.PHONY: help check-java install run import maintain export-plan compare test lint layers typecheck docs wheel bench bench-1m bench-alternatives clean test-deploy faults submit bundle-validate

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

check-java: ## Stop with a clear message when no Java 17+ is installed
	@command -v java >/dev/null 2>&1 || { echo "Java is missing: install a JDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless') and retry." >&2; exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	  if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then echo "Java $$v found but Spark 4 needs Java 17 or newer: install a JDK 17 and put it first on PATH." >&2; exit 1; fi

$(STAMP): setup.py requirements/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements/constraints.txt -e '.[test,serve]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with pinned dependencies

# The stamp names the versions, so a new pin fetches again; an existing cache costs nothing.
$(DELTA_STAMP): scripts/fetch_delta_jars.sh scripts/fetch_maven_jars.sh | $(STAMP)
	scripts/fetch_delta_jars.sh $(DELTA_JARS) $(DELTA_VERSION) $(SPARK_MINOR) \
	  "$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
	touch $(DELTA_STAMP)

.PHONY: delta-jars
delta-jars: $(DELTA_STAMP) ## Fetch the Delta Spark jars (pinned delta_spark) into .cache/delta-jars with Maven

# The stamp names the drivers' list, so a new driver or version fetches again.
$(JDBC_STAMP): scripts/fetch_maven_jars.sh | $(STAMP)
	scripts/fetch_maven_jars.sh $(JDBC_JARS) \
	  "$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" $(JDBC_DRIVERS)
	touch $(JDBC_STAMP)

.PHONY: jdbc-jars
jdbc-jars: $(JDBC_STAMP) ## Fetch the JDBC drivers (JDBC_DRIVERS, SQLite by default) into .cache/jdbc-jars with Maven

import: check-java install jdbc-jars ## Import your own data into the input tables (MAPPING=file.yaml, CONFIG=…; docs/import.md)
	$(PY) jobs/import_inputs.py --mapping $(MAPPING) --config $(CONFIG) \
	  --jars $$(ls -d $(CURDIR)/$(JDBC_JARS)/*.jar | paste -sd, -)

run: check-java install ## Generate the demo data and run the whole pipeline locally (CUSTOMERS=n to resize)
	$(PY) jobs/run_pipeline.py --generate $(RUN_ARGS)

maintain: check-java install ## Remove old staging folders and unreferenced files, compact small files (DRY_RUN=1 to only report; RETENTION_HOURS=n)
	$(PY) jobs/maintain.py --config $(CONFIG) $(if $(RETENTION_HOURS),--retention-hours $(RETENTION_HOURS),) $(if $(DRY_RUN),--dry-run,)

export-plan: check-java install ## Export a run's plan as per-channel lists for the execution systems (RUN_ID=…, MONTH=YYYY-MM or all, OUT=exports; docs/export.md)
	$(PY) jobs/export_plan.py $(RUN_ARGS) $(if $(RUN_ID),--run-id $(RUN_ID),) $(if $(MONTH),--month $(MONTH),) --out $(or $(OUT),exports)

compare: check-java install ## Compare a scenario run with its base run: run_comparison and an HTML page (BASE=…, SCENARIO=…; docs/scenarios.md)
	$(PY) jobs/compare_runs.py $(RUN_ARGS) --base $(BASE) --scenario $(SCENARIO)

chromium: ## Install headless Chromium (Debian package) for the report tests, unless present
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: check-java install delta-jars jdbc-jars chromium ## Run the test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## Ruff lint of library, jobs, notebooks, tests and benchmarks
	$(VENV)/bin/ruff check contact_spark jobs notebooks tests bench

layers: install ## Layer contract: no module imports a later layer, no import cycle (tests/test_layers.py)
	$(PY) -m pytest -q -p no:cacheprovider tests/test_layers.py

typecheck: install ## mypy on the whole contact_spark package (settings in pyproject.toml)
	$(PY) -m mypy

docs: install ## Regenerate docs/input_contract.md from the contract in code
	$(PY) -c "from contact_spark.contract import contract_markdown; from contact_spark.config import load_config; print(contract_markdown(load_config().channel_names))" > docs/input_contract.md

wheel: install ## Build dist/contact_spark-*.whl for spark-submit --py-files
	$(PIP) wheel -q --no-deps -w dist .

test-deploy: check-java install delta-jars jdbc-jars ## Deployment tests only: the wheel (installed, spark-submit local and to a standalone cluster), Databricks notebooks on local Spark, bundle
	$(PY) -m pytest tests/deploy -m 'deploy_only or not deploy_only' $(PYTEST_ARGS)

faults: check-java install delta-jars jdbc-jars ## The whole fault suite: tests/faults with the kills at every stage boundary and inside every stage (about 15 minutes; CI runs the rest)
	$(PY) -m pytest tests/faults -m 'faults_full or not faults_full' $(PYTEST_ARGS)

submit: check-java wheel ## Run the pipeline the cluster way: spark-submit --py-files dist/*.whl in local mode (CUSTOMERS=n)
	PYSPARK_PYTHON=$(abspath $(PY)) $(VENV)/bin/spark-submit --master 'local[2]' \
	  --conf spark.sql.shuffle.partitions=8 --conf spark.default.parallelism=8 \
	  --py-files $$(ls -t dist/contact_spark-*.whl | head -1) jobs/run_pipeline.py --generate $(RUN_ARGS)

bundle-validate: ## Validate databricks.yml with the Databricks CLI (needs `databricks` and a configured workspace)
	databricks bundle validate

bench: check-java install ## Benchmarks: solver kernel and the pipeline at 10k and 100k customers (JSON in bench/results/)
	$(PY) bench/bench_kernel.py
	$(PY) bench/bench_pipeline.py --customers 10000 --customers 100000

bench-1m: check-java install ## End-to-end benchmark at 1,000,000 customers (long)
	$(PY) bench/bench_pipeline.py --customers 1000000 --output pipeline_1m

bench-alternatives: check-java install ## Side by side: ours vs global HiGHS MILP, greedy, 1,000-customer chunks (N=300,1k,3k; MILP_TIME=s)
	$(PY) bench/bench_alternatives.py --customers 300 --customers 1000 --customers 3000 --milp-time-limit $(or $(MILP_TIME),600)

clean: ## Remove generated tables, reports and build outputs (keeps .venv)
	rm -rf lakehouse reports build dist *.egg-info spark-warehouse .pytest_cache
