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
        ("C2", "CROSS_SELLING", "DEM"): ("NOT_PLANNED", "TRADE_OFF"),
        # 35.94 of value ≤ 1000 × 0.06 of SMS budget price: priced out (attribution).
        ("C2", "CROSS_SELLING", "SMS"): ("NOT_PLANNED", "CAPACITY:sms_budget/year"),
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
    assert "priced out (attribution)" in details[("C2", "CROSS_SELLING", "SMS")]
    assert "one_campaign_per_month: 12 month(s)" in details[("C1", "CROSS_SELLING", "DEM")]
    found.unpersist()
