"""contact_decisions: every customer × campaign × channel gets a decision and a specific reason."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from contact_spark.config import load_config
from contact_spark.explain.decisions import contact_decisions

CELLS = [(c, h) for c in ("CROSS_SELLING", "SOLUTION") for h in ("DEM", "SMS", "TLS")]
VALUE = {"CROSS_SELLING": 120.0, "SOLUTION": 450.0}
COST = {"DEM": 0.02, "SMS": 0.06, "TLS": 4.0}


def m(t: int) -> dt.date:
    return dt.date(2027, t + 1, 1)


def test_every_cell_is_planned_or_has_a_specific_reason(spark: SparkSession) -> None:
    config = load_config(
        overrides={
            "policy.rules": [
                {
                    "name": "one_campaign_per_month",
                    "type": "never_together",
                    "a": {"campaigns": ["CROSS_SELLING"]},
                    "b": {"campaigns": ["SOLUTION"]},
                    "window_months": 1,
                }
            ],
            "capacities.rules": [
                {"name": "tls_cap", "channels": ["TLS"], "max": 1},
                {
                    "name": "sms_budget",
                    "measure": "sum",
                    "column": "cost",
                    "channels": ["SMS"],
                    "period": "year",
                    "max": 100,
                },
            ],
            "capacities.spread": [],
        }
    )
    propensity = {"C3": 0.01}
    not_eligible = {("C1", "SOLUTION", "SMS"): ["NO_VALID_MOBILE", "CHANNEL_OPT_OUT"]}
    eligibility = []
    for cid in ("C1", "C2", "C3", "C4"):
        for c, h in CELLS:
            p = propensity.get(cid, 0.3)
            reasons = not_eligible.get(
                (cid, c, h), [] if cid != "C3" or (c, h) == ("CROSS_SELLING", "TLS") else ["CHURN_RISK"]
            )
            eligibility.append((cid, c, h, not reasons, reasons, p, p * VALUE[c] - COST[h]))
    eligibility_df = spark.createDataFrame(
        eligibility,
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double",
    )
    # C1: a SOLUTION e-mail every month; C2: a CROSS_SELLING call every month (the call centre is full).
    plan = [("C1", m(t), "SOLUTION", "DEM") for t in range(12)] + [
        ("C2", m(t), "CROSS_SELLING", "TLS") for t in range(12)
    ]
    plan_df = spark.createDataFrame(plan, "customer_id string, month date, campaign string, channel string")
    sensitivity = spark.createDataFrame(
        [(f"tls_cap[{m(t):%Y-%m}]:max", 1.0, 0.0) for t in range(12)] + [("sms_budget:max", 0.0, 1000.0)],
        "constraint_name string, usage double, shadow_price double",
    )
    quarantine = spark.createDataFrame([("C4", "SOLVER_FAILURE")], "customer_id string, reason_code string")
    history = spark.createDataFrame(
        [], "customer_id string, contact_date date, campaign string, channel string"
    )
    found = contact_decisions(
        spark, config, eligibility_df, plan_df, history, "r1", quarantine, sensitivity
    ).cache()
    expected = {
        ("C1", "CROSS_SELLING", "DEM"): ("NOT_PLANNED", "POLICY:one_campaign_per_month"),
        ("C1", "CROSS_SELLING", "SMS"): ("NOT_PLANNED", "POLICY:one_campaign_per_month"),
        ("C1", "CROSS_SELLING", "TLS"): ("NOT_PLANNED", "POLICY:one_campaign_per_month"),
        ("C1", "SOLUTION", "DEM"): ("PLANNED", "PLANNED"),
        ("C1", "SOLUTION", "SMS"): ("NOT_ELIGIBLE", "NO_VALID_MOBILE"),
        # Allowed and worth it, but one more call exceeds the full call centre: exact.
        ("C1", "SOLUTION", "TLS"): ("NOT_PLANNED", "CAPACITY:tls_cap/2027-01"),
        # 120 × 0.3 × (1 − 0.3) − 0.02 = 25.18 > 0 next to the call, no capacity, no price.
        ("C2", "CROSS_SELLING", "DEM"): ("NOT_PLANNED", "ROOM_LEFT"),
        # 120 × 0.3 × (1 − 0.3) − 0.06 = 25.14 in January, and the SMS budget has room (0 of
        # 1000 used): the plan could take it, though its shadow price charges 1000 × 0.06.
        ("C2", "CROSS_SELLING", "SMS"): ("NOT_PLANNED", "ROOM_LEFT"),
        ("C2", "CROSS_SELLING", "TLS"): ("PLANNED", "PLANNED"),
        ("C2", "SOLUTION", "DEM"): ("NOT_PLANNED", "POLICY:one_campaign_per_month"),
        ("C2", "SOLUTION", "SMS"): ("NOT_PLANNED", "POLICY:one_campaign_per_month"),
        ("C2", "SOLUTION", "TLS"): ("NOT_PLANNED", "POLICY:one_campaign_per_month"),
        ("C3", "CROSS_SELLING", "TLS"): ("NOT_PLANNED", "NOT_WORTH"),  # 0.01 × 120 − 4 < 0
        **{
            ("C3", c, h): ("NOT_ELIGIBLE", "CHURN_RISK")
            for c, h in CELLS
            if (c, h) != ("CROSS_SELLING", "TLS")
        },
        **{("C4", c, h): ("QUARANTINED", "QUARANTINE:SOLVER_FAILURE") for c, h in CELLS},
    }
    assert_df_equality(
        found.select("run_id", "customer_id", "campaign", "channel", "decision", "reason_code"),
        spark.createDataFrame(
            [("r1", *key, *value) for key, value in expected.items()],
            "run_id string, customer_id string, campaign string, channel string, decision string, reason_code string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    details = {(r["customer_id"], r["campaign"], r["channel"]): r["detail"] for r in found.collect()}
    assert details[("C1", "SOLUTION", "DEM")] == "12 contact(s): " + ", ".join(
        f"{m(t):%Y-%m}" for t in range(12)
    )
    assert details[("C1", "SOLUTION", "SMS")] == "NO_VALID_MOBILE, CHANNEL_OPT_OUT"
    assert "exceed tls_cap[2027-01]:max (usage 1 of 1)" in details[("C1", "SOLUTION", "TLS")]
    assert details[("C2", "CROSS_SELLING", "SMS")].startswith("CROSS_SELLING/SMS: fits in 12 month(s)")
    assert "worth 25.1400 in 2027-01 (-34.8600 at the shadow prices)" in details[("C2", "CROSS_SELLING", "SMS")]
    assert "one_campaign_per_month: 12 month(s)" in details[("C1", "CROSS_SELLING", "DEM")]
    found.unpersist()


def test_max_campaigns_blocks_by_history_and_counts_a_campaign_once(spark: SparkSession) -> None:
    """POLICY:<max_campaigns rule> is found like any max rule (the greedy's checker):

    Both customers have CROSS_SELLING e-mails planned in 2027-03, -05, -07, -09, -11 and a
    rule "at most one campaign in every 2 months". A SOLUTION e-mail is blocked in every
    month but January by the planned e-mails; C1's CROSS_SELLING e-mail of 2026-12 also
    blocks January (its window 2026-12..2027-01 would hold two campaigns): POLICY for C1,
    ROOM_LEFT for C2 (allowed in January, worth it, no capacity). A CROSS_SELLING SMS is
    the same campaign again, which counts once: never blocked, ROOM_LEFT for both.
    """
    config = load_config(
        overrides={
            "policy.rules": [
                {"name": "one_campaign_2m", "type": "max_campaigns", "window_months": 2, "limit": 1}
            ],
            "capacities.rules": [],
            "capacities.spread": [],
        }
    )
    open_cells = {("CROSS_SELLING", "DEM"), ("CROSS_SELLING", "SMS"), ("SOLUTION", "DEM")}
    eligibility = spark.createDataFrame(
        [
            (
                cid,
                c,
                h,
                (c, h) in open_cells,
                [] if (c, h) in open_cells else ["X"],
                0.3,
                0.3 * VALUE[c] - COST[h],
            )
            for cid in ("C1", "C2")
            for c, h in CELLS
        ],
        "customer_id string, campaign string, channel string, eligible boolean, reasons array<string>, "
        "propensity double, expected_value double",
    )
    plan = spark.createDataFrame(
        [(cid, m(t), "CROSS_SELLING", "DEM") for cid in ("C1", "C2") for t in (2, 4, 6, 8, 10)],
        "customer_id string, month date, campaign string, channel string",
    )
    history = spark.createDataFrame(
        [("C1", dt.date(2026, 12, 9), "CROSS_SELLING", "DEM")],
        "customer_id string, contact_date date, campaign string, channel string",
    )
    found = {
        (r["customer_id"], r["campaign"], r["channel"]): (r["reason_code"], r["detail"])
        for r in contact_decisions(spark, config, eligibility, plan, history, "r1").collect()
    }
    codes = {key: code for key, (code, _) in found.items() if code != "X"}
    assert codes == {
        ("C1", "CROSS_SELLING", "DEM"): "PLANNED",
        ("C1", "CROSS_SELLING", "SMS"): "ROOM_LEFT",
        ("C1", "SOLUTION", "DEM"): "POLICY:one_campaign_2m",
        ("C2", "CROSS_SELLING", "DEM"): "PLANNED",
        ("C2", "CROSS_SELLING", "SMS"): "ROOM_LEFT",
        ("C2", "SOLUTION", "DEM"): "ROOM_LEFT",
    }
    assert found[("C1", "SOLUTION", "DEM")][1].endswith("one_campaign_2m: 12 month(s)")
