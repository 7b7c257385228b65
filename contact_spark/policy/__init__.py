"""Contact-policy rule language (pydantic models) and its compiler to solver atoms."""

from contact_spark.policy.compiler import CompiledPolicy, PairAtom, WindowAtom, compile_policy
from contact_spark.policy.rules import (
    DEFAULT_POLICY_PATH,
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

__all__ = [
    "DEFAULT_POLICY_PATH",
    "CompiledPolicy",
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
