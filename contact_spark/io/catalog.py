"""The names of the Delta tables, grouped by the stage that writes them (defined once here).

Stages write exactly these tables; the report, the stage registry and the jobs read the
lists from here rather than spelling the names again. Tables of the validation, baseline,
metrics and decision stages are named by the modules that write them (``VIOLATIONS_TABLE``
and friends) and collected by ``contact_spark.stages``.
"""

from __future__ import annotations

from contact_spark import contract

INPUT_TABLES = tuple(contract.INPUT_TABLES)  # customers, contacts, contact_history, propensities
CONTACT_TABLES = ("contacts_clean", "contacts_rejected", "best_contacts", "contactability")
SEGMENT_TABLES = ("customer_segments", "segment_profiles")
PROPENSITY_TABLES = (
    "propensity_scores",
    "propensity_metrics",
    "propensity_calibration",
    "propensity_features",
)
ELIGIBILITY_TABLES = ("eligibility", "eligibility_funnel", "inputs_rejected")
ITERATIONS_TABLE = "capacity_iterations"
PLAN_TABLES = ("plan", "plan_quarantine", "capacity_sensitivity", "plan_summary", ITERATIONS_TABLE)
RUN_STAGES_TABLE = "run_stages"
RUN_INPUTS_TABLE = "run_inputs"  # the input versions each run reads (io/run_inputs.py)
SCENARIOS_TABLE = "scenarios"  # a run's scenario name, base run and overrides (io/scenarios.py)
COMPARISON_TABLE = "run_comparison"  # two runs side by side (contact_spark/scenarios)
# Written by re-plans and trigger runs (contact_spark/adaptive, docs/adaptive.md), read by the report.
LINEAGE_TABLE = "plan_lineage"
DRIFT_TABLE = "plan_drift"
DRIFT_SUMMARY_TABLE = "plan_drift_summary"
CARRYOVER_TABLE = "capacity_carryover"
ADAPTIVE_TABLES = (LINEAGE_TABLE, DRIFT_TABLE, DRIFT_SUMMARY_TABLE, CARRYOVER_TABLE)
