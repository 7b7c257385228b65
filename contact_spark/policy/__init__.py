"""Contact-policy rule language (pydantic models) and its compiler to solver atoms."""

from contact_spark.config.policy import (
    DEFAULT_POLICY_PATH,
    MaxCampaigns,
    MaxOffers,
    MaxPackages,
    MinOffers,
    NeverFollowedBy,
    NeverTogether,
    OnlyAfter,
    PolicyConfig,
    PolicyError,
    Rule,
    Scope,
)
from contact_spark.policy.compiler import CampaignAtom, CompiledPolicy, PairAtom, WindowAtom, compile_policy

__all__ = [
    "DEFAULT_POLICY_PATH",
    "CampaignAtom",
    "CompiledPolicy",
    "MaxCampaigns",
    "MaxOffers",
    "MaxPackages",
    "MinOffers",
    "NeverFollowedBy",
    "NeverTogether",
    "OnlyAfter",
    "PairAtom",
    "PolicyConfig",
    "PolicyError",
    "Rule",
    "Scope",
    "WindowAtom",
    "compile_policy",
]
