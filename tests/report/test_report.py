"""The run report on a real (tiny) pipeline run: renders in headless Chromium, masks contacts;
the greedy baseline of the same run passes the validator."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from demo_run import DEMO_RUN_ID, DemoRun
from pyspark.sql import functions as F

from contact_spark.io.tables import TableStore
from contact_spark.pipeline import PipelineResult
from contact_spark.report.volume import volume_section
from contact_spark.report.widgets import Charts
from contact_spark.validation.metrics import METRICS_TABLE
from report.chromium import CHROMIUM, assert_renders
from report.test_budget import volume_metrics

RUN_ID = DEMO_RUN_ID


@pytest.fixture(scope="module")
def run(demo_run: DemoRun) -> tuple[TableStore, PipelineResult]:
    return demo_run.store, demo_run.result


def test_greedy_baseline_passes_the_validator_and_is_compared(run: tuple[TableStore, PipelineResult]) -> None:
    store, result = run
    assert store.read_run("violations", RUN_ID).count() == 0
    assert store.read_run("baseline_plan", RUN_ID).count() > 0
    assert store.read_run("baseline_violations", RUN_ID).count() == 0
    summary = {
        (r["plan"], r["metric"]): r["value"]
        for r in store.read_run(METRICS_TABLE, RUN_ID).filter(F.col("section") == "summary").collect()
    }
    assert summary[("greedy", "violations")] == 0
    # Both plans respect the same rules; the optimizer is never worse than the greedy.
    assert summary[("optimizer", "expected_value")] >= summary[("greedy", "expected_value")] - 1e-6
    assert {s.stage for s in result.stages} >= {"validate", "baseline", "metrics"}


def test_every_input_customer_has_a_decision_and_a_reason(run: tuple[TableStore, PipelineResult]) -> None:
    store, result = run
    decisions = store.read_run("contact_decisions", RUN_ID)
    customers = store.read("customers").filter(F.trim("customer_id") != "").select("customer_id").distinct()
    assert customers.join(decisions, "customer_id", "left_anti").count() == 0
    assert decisions.count() == store.read_run("eligibility", RUN_ID).count()
    assert decisions.filter(F.col("reason_code").isNull() | F.col("detail").isNull()).count() == 0
    planned = store.read_run("plan", RUN_ID).select("customer_id", "campaign", "channel").distinct()
    assert_df_equality(
        decisions.filter(F.col("decision") == "PLANNED").select("customer_id", "campaign", "channel"),
        planned,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    codes = {
        r["reason_code"].split(":")[0] for r in decisions.filter(F.col("decision") == "NOT_PLANNED").collect()
    }
    assert codes <= {"NOT_WORTH", "POLICY", "CAPACITY", "ROOM_LEFT"}
    page = Path(result.report_path or "").read_text(encoding="utf-8")
    assert "contact_decisions" in page and "Every reason code" in page


def test_report_shows_contacts_masked(run: tuple[TableStore, PipelineResult]) -> None:
    """No raw contact in the report: tests/faults/test_raw_contacts.py scans every report file
    (and the logs and tables) for the inputs' phones and e-mails."""
    _, result = run
    page = Path(result.report_path or "").read_text(encoding="utf-8")
    assert "***" in page  # masked contacts are shown in the why-not-contacted table
    assert "<script src=" not in page  # plotly.js is inlined, nothing is fetched


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make chromium)")
def test_report_renders_in_headless_chromium(demo_run: DemoRun, tmp_path: Path) -> None:
    """The demo report renders, with its budget sections (cost and ROI, campaign mix) and the
    plain sentence of a run without drift; the capacity small multiple, which the demo's
    volumes never need (its call centre is within 10× of them), is appended from a base with
    20× more e-mails than calls, so one Chromium launch checks both."""
    page = Path(demo_run.result.report_path or "").read_text(encoding="utf-8")
    for heading in ("Cost and return", "Campaign mix over time", "Re-plan drift"):
        assert f"<h2>{heading}</h2>" in page
    assert "No drift to show" in page
    apart = volume_section(Charts(first_id=1000), volume_metrics(demo_run.config, 4_800.0), demo_run.config)
    assert "Drawn apart, each on its own scale: call_centre" in apart
    assert assert_renders(page.replace("</body>", apart + "</body>", 1), tmp_path) >= 10
