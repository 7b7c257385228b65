"""The offer-attribute world shared by the validator's and the real-time check's tests:
two offers with attributes, one of them with its own call cost, and rules scoped by
attribute (``campaigns: {where: ...}``)."""

from __future__ import annotations

from typing import Any

from contact_spark.config import AppConfig, load_config

HIGH_MARGIN = {"where": "margin > 100"}


def offers_config(capacities: list[dict[str, Any]], **overrides: Any) -> AppConfig:
    """CROSS_SELLING is a commodity with margin 30, SOLUTION a product with margin 200 whose
    call (a visit booked on the phone) costs 25 instead of the channel's 4."""
    return load_config(
        overrides={
            **overrides,
            "campaigns.CROSS_SELLING.attributes": {"product": "commodity", "margin": 30},
            "campaigns.SOLUTION.attributes": {"product": "product", "margin": 200},
            "campaigns.SOLUTION.channel_costs": {"TLS": 25.0},
            "policy.rules": [
                {
                    "name": "high_margin_per_quarter",
                    "type": "max_offers",
                    "campaigns": HIGH_MARGIN,
                    "window_months": 3,
                    "limit": 1,
                },
                {
                    "name": "commodity_apart_from_product",
                    "type": "never_together",
                    "a": {"campaigns": {"where": "product = 'commodity'"}},
                    "b": {"campaigns": {"where": "product = 'product'"}},
                    "window_months": 1,
                },
            ],
            "capacities.rules": capacities,
            "capacities.spread": [],
            "eligibility.rules": [],
        }
    )
