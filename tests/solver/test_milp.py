"""The MILP's model-building choices that the solver comparisons cannot see."""

from __future__ import annotations

import numpy as np

from contact_spark.config.policy import PolicyConfig
from contact_spark.policy.compiler import compile_policy
from contact_spark.solver.milp import HistoryFeatures, build_model, cell_gains
from contact_spark.solver.problem import KernelBatch


def test_losing_contacts_are_pruned_only_for_a_standalone_solve() -> None:
    """One campaign, channels H0 (p 0.5, value 10, cost 1: worth 4) and H1 (p 0.1, cost 2:
    worth -1), one month, max 2 contacts a month. H1 loses value and only tightens the
    rule, so the standalone model fixes it to 0; the embedded model (prune=False, what
    capacity.reference captures) keeps it, because a capacity row may need it. The
    helpful side of an only_after (H1 here) is never pruned."""
    batch = KernelBatch(
        propensity=np.array([[[0.5, 0.1]]]),
        eligible=np.ones((1, 1, 2), dtype=bool),
        history=np.zeros((1, 0, 1, 2), dtype=int),
        success_value=np.array([10.0]),
        channel_cost=np.array([1.0, 2.0]),
        horizon=1,
    )
    gains = cell_gains(batch)[0].reshape(1, 2)
    assert gains.tolist() == [[4.0, -1.0]]
    p = batch.propensity_by_month().reshape(1, 1, 2)[0]

    def upper_bounds(rules: list[dict], prune: bool) -> list[float]:
        compiled = compile_policy(PolicyConfig.model_validate({"rules": rules}), ["C0"], ["H0", "H1"])
        feats = HistoryFeatures(compiled, batch.clean_history(), 1)
        return build_model(compiled, batch, feats, 0, gains, p, prune=prune).ubs[:2]

    cap = [{"name": "two", "type": "max_offers", "window_months": 1, "limit": 2}]
    assert upper_bounds(cap, prune=True) == [1.0, 0.0]
    assert upper_bounds(cap, prune=False) == [1.0, 1.0]
    after = [{"name": "follow", "type": "only_after", "a": {"channels": ["H1"]}, "b": {"channels": ["H0"]}}]
    assert upper_bounds(after, prune=True) == [1.0, 1.0]
