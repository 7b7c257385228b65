"""The customer frame's Arrow batches as kernel input and solver output, without Spark.

``mapInArrow`` hands the solver whole Arrow arrays; these tests pin how each frame column
becomes a kernel array (dense, sparse, nullable overlays) and how schedules go back as
list arrays, on batches small enough to write out by hand.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from contact_spark.config.policy import PolicyConfig
from contact_spark.planning.frame import Layout
from contact_spark.planning.solve import StaticInputs, batch_from_arrow, batch_from_pandas, make_batch_solver
from contact_spark.policy.compiler import compile_policy

LAYOUT = Layout(campaigns=("OFFER",), channels=("DEM", "SMS"), horizon=3, history_months=2)
STATIC = StaticInputs(
    success_value=np.array([100.0]), channel_cost=np.array([1.0, 2.0]), seasonality=np.ones(3)
)
ZERO = np.zeros((3, 1, 2))


def frame_batch(**extra: pa.Array) -> pa.RecordBatch:
    """Three customers: A eligible for both channels, B only for DEM, C for SMS with history."""
    columns = {
        "customer_id": pa.array(["A", "B", "C"]),
        "batch": pa.array([0, 0, 0], pa.int32()),
        "propensity": pa.array([[0.3, 0.1], [0.2, 0.0], [0.0, 0.4]], pa.list_(pa.float64())),
        "eligible": pa.array([[True, True], [True, False], [False, True]], pa.list_(pa.bool_())),
        # C: one SMS a month ago (flat index 1) and three e-mails two months ago (index 2 + 0).
        "history_index": pa.array([[], [], [1, 2]], pa.list_(pa.int32())),
        "history_count": pa.array([[], [], [1, 3]], pa.list_(pa.int32())),
        **extra,
    }
    return pa.RecordBatch.from_pydict(columns)


def test_dense_and_sparse_columns_become_the_kernel_arrays() -> None:
    batch = batch_from_arrow(frame_batch(), LAYOUT, STATIC, ZERO)
    np.testing.assert_array_equal(batch.propensity, [[[0.3, 0.1]], [[0.2, 0.0]], [[0.0, 0.4]]])
    assert batch.eligible.shape == (3, 3, 1, 2)  # the same every month
    np.testing.assert_array_equal(batch.eligible[:, 2], [[[True, True]], [[True, False]], [[False, True]]])
    expected_history = np.zeros((3, 2, 1, 2), dtype=np.int64)
    expected_history[2, 0, 0, 1] = 1  # month -1, SMS
    expected_history[2, 1, 0, 0] = 3  # month -2, DEM
    np.testing.assert_array_equal(batch.history, expected_history)


def test_a_null_month_overlay_means_every_month() -> None:
    """Only B carries a month mask (DEM in month 2 only) and month propensities."""
    month_eligible = pa.array([None, [False, False, True, False, False, False], None], pa.list_(pa.bool_()))
    month_propensity = pa.array([None, [0.1, 0.0, 0.5, 0.0, 0.1, 0.0], None], pa.list_(pa.float64()))
    batch = batch_from_arrow(
        frame_batch(month_eligible=month_eligible, month_propensity=month_propensity), LAYOUT, STATIC, ZERO
    )
    assert batch.eligible.shape == (3, 3, 1, 2)
    np.testing.assert_array_equal(batch.eligible[0], np.ones((3, 1, 2), bool))
    np.testing.assert_array_equal(batch.eligible[1, :, 0, 0], [False, True, False])
    np.testing.assert_array_equal(batch.eligible[1, :, 0, 1], [False, False, False])
    np.testing.assert_array_equal(batch.propensity[1, :, 0, 0], [0.1, 0.5, 0.1])
    np.testing.assert_array_equal(batch.propensity[2, :, 0, 1], [0.4, 0.4, 0.4])


def test_a_pandas_chunk_gives_the_same_batch_as_its_arrow_batch() -> None:
    record = frame_batch()
    from_pandas = batch_from_pandas(record.to_pandas(), LAYOUT, STATIC, ZERO)
    from_arrow = batch_from_arrow(record, LAYOUT, STATIC, ZERO)
    for name in ("propensity", "eligible", "history"):
        np.testing.assert_array_equal(getattr(from_pandas, name), getattr(from_arrow, name))


def test_a_row_of_the_wrong_width_names_the_column() -> None:
    bad = frame_batch().set_column(
        2, "propensity", pa.array([[0.3], [0.2, 0.0], [0.0, 0.4]], pa.list_(pa.float64()))
    )
    with pytest.raises(ValueError, match="'propensity': every row must hold 2 values"):
        batch_from_arrow(bad, LAYOUT, STATIC, ZERO)


def test_schedules_come_back_as_list_arrays_with_bans_and_allowed_sets() -> None:
    """No rule: every eligible contact worth more than its cost is taken, every month.

    A's DEM is banned in month 0 (flat index 0); B is restricted to month 1's DEM (index 2);
    C has neither (null ``allowed``). DEM+SMS succeed with 1-(0.7)(0.9) = 0.37, worth 37,
    split 3:1 by propensity; each channel pays its own cost.
    """
    policy = compile_policy(PolicyConfig(rules=[]), ["OFFER"], ["DEM", "SMS"])
    solver = make_batch_solver(policy, LAYOUT, STATIC, ZERO)
    record = frame_batch(
        banned=pa.array([[0], [], None], pa.list_(pa.int32())),
        allowed=pa.array([None, [2], None], pa.list_(pa.int32())),
    )
    (out,) = list(solver(iter([record])))
    got = out.to_pydict()
    assert got["customer_id"] == ["A", "B", "C"]
    assert got["status"] == [0, 0, 0]
    assert got["months"] == [[0, 1, 1, 2, 2], [1], [0, 1, 2]]
    assert got["cells"] == [[1, 0, 1, 0, 1], [0], [1, 1, 1]]
    dem, sms = 0.75 * 37 - 1, 0.25 * 37 - 2
    np.testing.assert_allclose(got["values"][0], [0.1 * 100 - 2, dem, sms, dem, sms])
    np.testing.assert_allclose(got["values"][1], [0.2 * 100 - 1])
    np.testing.assert_allclose(got["values"][2], [0.4 * 100 - 2] * 3)
    assert got["objective"] == pytest.approx([8 + 2 * (dem + sms), 19.0, 3 * 38.0])


def test_a_task_sums_its_batches_into_one_row_set() -> None:
    """The summarised solve (price iterations) reports what the per-customer rows add up to:
    contacts per (month, cell), Σ objective, Σ value without prices; two Arrow batches of
    one task give one row set."""
    rules = [{"name": "one_a_month", "type": "max_packages", "window_months": 1, "limit": 1}]
    policy = compile_policy(PolicyConfig(rules=rules), ["OFFER"], ["DEM", "SMS"])
    price = np.array([[[2.0, 0.0]], [[0.0, 9.0]], [[1.0, 1.0]]])
    widths = np.array([[[0.5, 0.5]], [[0.5, 0.5]], [[0.0, 0.0]]])
    record = frame_batch()
    (rows,) = list(make_batch_solver(policy, LAYOUT, STATIC, price, perturbation=widths)(iter([record])))
    (summary,) = list(
        make_batch_solver(policy, LAYOUT, STATIC, price, perturbation=widths, summarise=True)(
            iter([record, record])
        )
    )
    got = summary.to_pydict()
    per_customer = rows.to_pydict()
    counts: dict[tuple[int, int], int] = {}
    for months, cells in zip(per_customer["months"], per_customer["cells"], strict=True):
        for t, k in zip(months, cells, strict=True):
            counts[(t, k)] = counts.get((t, k), 0) + 2
    assert (got["t"][0], got["k"][0]) == (-1, -1)
    assert dict(zip(zip(got["t"][1:], got["k"][1:], strict=True), got["n"][1:], strict=True)) == counts
    assert got["obj"][0] == pytest.approx(2 * sum(per_customer["objective"]), rel=1e-12)
    # every customer is solved exactly by the DP: the bounds a certificate sums are the objectives
    assert per_customer["upper_bound"] == per_customer["objective"]
    assert got["ub"][0] == pytest.approx(got["obj"][0], rel=1e-12)
    assert got["val"][0] == pytest.approx(2 * sum(sum(v) for v in per_customer["values"]), rel=1e-12)
    assert got["bad"][0] == 0
