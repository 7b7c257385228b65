"""Hand-built Delta inputs for the real-time tests: pyarrow tables written with delta-rs (no Spark)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from contact_spark.config import AppConfig, load_config

CAMPAIGNS = ("CROSS_SELLING", "SOLUTION")
CHANNELS = ("DEM", "SMS", "TLS")
CELLS = tuple((c, h) for c in CAMPAIGNS for h in CHANNELS)
KIND = {"DEM": "email", "SMS": "mobile", "TLS": "phone"}
CONTACT = {"DEM": "mario.rossi@example.org", "SMS": "+393471234567", "TLS": "+393471234567"}
RUN_ID = "rt-test"

# Every rule type, windows reaching back into the history, per-campaign/-channel copies.
POLICY: list[dict[str, Any]] = [
    {
        "name": "dem_two_months",
        "type": "max_offers",
        "channels": ["DEM"],
        "per_campaign": True,
        "window_months": 2,
        "limit": 1,
    },
    {
        "name": "one_per_channel_month",
        "type": "max_offers",
        "per_channel": True,
        "window_months": 1,
        "limit": 1,
    },
    {"name": "tls_half_year", "type": "max_offers", "channels": ["TLS"], "window_months": 6, "limit": 1},
    {"name": "two_packages", "type": "max_packages", "window_months": 1, "limit": 2},
    {
        "name": "three_packages_quarter",
        "type": "max_packages",
        "campaigns": ["CROSS_SELLING"],
        "window_months": 3,
        "limit": 3,
    },
    {
        "name": "tls_campaigns_apart",
        "type": "never_together",
        "a": {"campaigns": ["CROSS_SELLING"], "channels": ["TLS"]},
        "b": {"campaigns": ["SOLUTION"], "channels": ["TLS"]},
        "window_months": 3,
    },
    {
        "name": "dem_sms_not_together",
        "type": "never_together",
        "a": {"channels": ["DEM"]},
        "b": {"channels": ["SMS"]},
        "per_campaign": True,
    },
    {
        "name": "no_sms_after_tls",
        "type": "never_followed_by",
        "a": {"channels": ["TLS"]},
        "b": {"channels": ["SMS"]},
        "window_months": 2,
    },
    {
        "name": "solution_after_cross",
        "type": "only_after",
        "a": {"campaigns": ["CROSS_SELLING"]},
        "b": {"campaigns": ["SOLUTION"]},
    },
    {
        "name": "tls_after_dem",
        "type": "only_after",
        "a": {"channels": ["DEM"]},
        "b": {"channels": ["TLS"]},
        "per_campaign": True,
        "window_months": 4,
    },
]


def make_config(
    base: Path, policy: list[dict[str, Any]] | None = None, capacities: list[dict[str, Any]] | None = None
) -> AppConfig:
    return load_config(
        overrides={
            "storage.base_path": str(base),
            "policy.rules": POLICY if policy is None else policy,
            "capacities.rules": capacities or [],
            "capacities.spread": [],
            "eligibility.rules": [],
        }
    )


def month(index: int) -> dt.date:
    """Plan month index -> first day (0 = 2027-01, -1 = 2026-12)."""
    total = 2027 * 12 + index
    return dt.date(total // 12, total % 12 + 1, 1)


def customer_row(cid: str, **flags: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer_id": cid,
        "household_id": f"H{cid}",
        "segment": "MASS",
        "churn_risk": False,
        "outbound": False,
        "privacy_consent": True,
        "optout_dem": False,
        "optout_sms": False,
        "optout_tls": False,
    }
    row.update(flags)
    return row


def write(
    base: Path,
    table: str,
    rows: list[dict[str, Any]],
    schema: pa.Schema,
    partition_by: list[str] | None = None,
) -> None:
    write_deltalake(
        str(base / table),
        pa.Table.from_pylist(rows, schema=schema),
        mode="overwrite",
        partition_by=partition_by,
    )


CUSTOMERS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("household_id", pa.string()),
        ("segment", pa.string()),
        ("churn_risk", pa.bool_()),
        ("outbound", pa.bool_()),
        ("privacy_consent", pa.bool_()),
        ("optout_dem", pa.bool_()),
        ("optout_sms", pa.bool_()),
        ("optout_tls", pa.bool_()),
    ]
)
ELIGIBILITY_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("customer_id", pa.string()),
        ("campaign", pa.string()),
        ("channel", pa.string()),
        ("eligible", pa.bool_()),
        ("reasons", pa.list_(pa.string())),
        ("contact_id", pa.string()),
        ("propensity", pa.float64()),
        ("expected_value", pa.float64()),
    ]
)
HISTORY_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("contact_date", pa.date32()),
        ("campaign", pa.string()),
        ("channel", pa.string()),
        ("contact", pa.string()),
        ("outcome", pa.string()),
    ]
)
PLAN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("customer_id", pa.string()),
        ("month", pa.date32()),
        ("campaign", pa.string()),
        ("channel", pa.string()),
        ("contact", pa.string()),
        ("expected_value", pa.float64()),
    ]
)
BEST_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("customer_id", pa.string()),
        ("channel", pa.string()),
        ("contact_id", pa.string()),
        ("value", pa.string()),
        ("contact_kind", pa.string()),
        ("score", pa.int32()),
    ]
)


def contact_id(customer_id: str, channel: str) -> str:
    """The key of the customer's best contact for the channel (eligibility names it so)."""
    return f"K{customer_id}{channel}"


def write_world(
    base: Path,
    customers: list[dict[str, Any]],
    history: list[tuple[str, int, str, str]],
    plan: list[tuple[str, int, str, str]],
    ineligible: set[tuple[str, str, str]] | None = None,
    run_id: str = RUN_ID,
) -> None:
    """Write customers, eligibility (all eligible but ``ineligible``), best contacts, history and plan.

    ``history`` and ``plan`` rows are ``(customer_id, month index, campaign, channel)``; history
    contacts fall on the 15th of their month.
    """
    ineligible = ineligible or set()
    ids = list(dict.fromkeys(c["customer_id"] for c in customers))
    write(base, "customers", customers, CUSTOMERS_SCHEMA)
    elig = []
    best = []
    for cid in ids:
        for campaign, channel in CELLS:
            ok = (cid, campaign, channel) not in ineligible
            elig.append(
                {
                    "run_id": run_id,
                    "customer_id": cid,
                    "campaign": campaign,
                    "channel": channel,
                    "eligible": ok,
                    "reasons": [] if ok else ["EXCLUDED_BY_RULE:test"],
                    "contact_id": contact_id(cid, channel),
                    "propensity": 0.3,
                    "expected_value": 10.0,
                }
            )
        for channel in CHANNELS:
            best.append(
                {
                    "run_id": run_id,
                    "customer_id": cid,
                    "channel": channel,
                    "contact_id": contact_id(cid, channel),
                    "value": CONTACT[channel],
                    "contact_kind": KIND[channel],
                    "score": 900,
                }
            )
    write(base, "eligibility", elig, ELIGIBILITY_SCHEMA, ["run_id"])
    write(base, "best_contacts", best, BEST_SCHEMA, ["run_id"])
    write(
        base,
        "contact_history",
        [
            {
                "customer_id": c,
                "contact_date": month(m).replace(day=15),
                "campaign": a,
                "channel": h,
                "contact": CONTACT[h],
                "outcome": "no_response",
            }
            for c, m, a, h in history
        ],
        HISTORY_SCHEMA,
    )
    write(
        base,
        "plan",
        [
            {
                "run_id": run_id,
                "customer_id": c,
                "month": month(m),
                "campaign": a,
                "channel": h,
                "contact": CONTACT[h],
                "expected_value": 3.0,
            }
            for c, m, a, h in plan
        ],
        PLAN_SCHEMA,
        ["run_id"],
    )


# The contacts stage's tables, reduced to the columns the contact profile reads (an extra
# column would be ignored), with the types the stage writes (docs/best_contact.md).
CONTACTABILITY_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("customer_id", pa.string()),
        ("household_id", pa.string()),
        ("score", pa.int32()),
        ("rank", pa.int64()),
        ("household_best", pa.bool_()),
        ("usable_contacts", pa.int32()),
    ]
)
CLEAN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("customer_id", pa.string()),
        ("contact_id", pa.string()),
        ("contact_type", pa.string()),
        ("value", pa.string()),
        ("phone_type", pa.string()),
        ("email_domain_class", pa.string()),
        ("valid", pa.bool_()),
        ("score", pa.int32()),
        ("owner", pa.bool_()),
        ("rank", pa.int32()),
        ("rank_email", pa.int32()),
        ("rank_mobile", pa.int32()),
        ("rank_phone", pa.int32()),
        ("reason_codes", pa.list_(pa.string())),
    ]
)


def write_contact_tables(
    base: Path,
    contactability: list[dict[str, Any]],
    clean: list[dict[str, Any]],
    best: list[tuple[str, str, str]],
    run_id: str = RUN_ID,
) -> None:
    """Write ``contactability`` and ``contacts_clean`` rows of the run, and its ``best_contacts``.

    ``best`` rows are ``(customer_id, channel, contact_id)`` naming a ``clean`` row, whose value
    and score they copy (this replaces the best contacts :func:`write_world` wrote).
    """
    ranked = [{"run_id": run_id, **r} for r in contactability]
    write(base, "contactability", ranked, CONTACTABILITY_SCHEMA, ["run_id"])
    write(base, "contacts_clean", [{"run_id": run_id, **r} for r in clean], CLEAN_SCHEMA, ["run_id"])
    by_key = {(r["customer_id"], r["contact_id"]): r for r in clean}
    rows = [
        {
            "run_id": run_id,
            "customer_id": cid,
            "channel": channel,
            "contact_id": key,
            "value": by_key[(cid, key)]["value"],
            "contact_kind": KIND[channel],
            "score": by_key[(cid, key)]["score"],
        }
        for cid, channel, key in best
    ]
    write(base, "best_contacts", rows, BEST_SCHEMA, ["run_id"])
