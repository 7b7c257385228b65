"""The restricted master over hand-built columns (no Spark): choice, prices, new columns."""

from __future__ import annotations

import numpy as np
import pytest

from contact_spark.capacity.columns import Columns, master_duals, solve_master
from contact_spark.capacity.constraints import Constraint

ONE_CELL = np.ones((1, 1, 1))


def _constraint(name: str, bound: float, sense: str = "max") -> Constraint:
    return Constraint(f"{name}:{sense}", name, sense, bound, ONE_CELL)


def _columns(rows: list[tuple[str, float, list[float]]]) -> Columns:
    return Columns(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.arange(len(rows)),
    )


# Three customers, one call each worth 10 / 9 / 4 (or nothing), two calls of capacity and
# one call already used by the fixed customers: only one more call fits.
CALLS = _columns(
    [
        ("A", 10.0, [1.0]),
        ("A", 0.0, [0.0]),
        ("B", 9.0, [1.0]),
        ("B", 0.0, [0.0]),
        ("C", 4.0, [1.0]),
        ("C", 3.5, [0.0]),  # C's second-best schedule uses no call: worth keeping
    ]
)


def test_the_master_picks_the_best_mix_under_the_capacity() -> None:
    """One call left: A takes it (10), B goes without (0), C takes its call-free 3.5."""
    solved = solve_master(CALLS, [_constraint("calls", 2.0)], np.array([1.0]), set(), 1000, 60)
    assert solved is not None
    chosen, value, bound, timed_out = solved
    assert chosen.tolist() == [True, False, False, True, False, True]
    assert value == 13.5
    assert bound == 13.5
    assert not timed_out


def test_a_shortfall_the_plan_cannot_meet_is_left_out_of_the_master() -> None:
    """A minimum of 5 calls is unmeetable; skipped, the max still holds."""
    constraints = [_constraint("calls", 2.0), _constraint("calls_min", 5.0, "min")]
    solved = solve_master(CALLS, constraints, np.array([1.0, 1.0]), {"calls_min:min"}, 1000, 60)
    assert solved is not None
    assert solved[1] == 13.5


def test_the_master_lp_prices_the_binding_capacity_and_not_the_loose_one() -> None:
    """The LP's price of the call capacity is B's loss without a call (9), so that at it a
    customer solved alone chooses as the master does; the loose e-mail cap has price 0."""
    columns = _columns(
        [(c, v, [u, 0.0]) for c, v, (u,) in zip(CALLS.customers, CALLS.values, CALLS.usage, strict=True)]
    )
    prices = master_duals(
        columns, [_constraint("calls", 2.0), _constraint("emails", 100.0)], np.array([1.0, 0.0]), set()
    )
    assert prices is not None
    assert prices[0] == 9.0
    assert prices[1] == 0.0


def test_new_columns_are_those_with_another_value_or_usage() -> None:
    """A column equal in customer, value and usage to a known one is the same for the master."""
    more = _columns([("A", 10.0, [1.0]), ("B", 5.0, [0.0])])
    merged, new = CALLS.added(more)
    assert new == 1
    assert merged.customers.tolist() == ["A", "A", "B", "B", "B", "C", "C"]
    assert sorted(merged.values[merged.customers == "B"].tolist()) == [0.0, 5.0, 9.0]


def test_the_node_and_time_limits_bound_the_master_milp() -> None:
    """A master of 80 customers, each with a call-free column and three schedules using two
    capacities (seeded): with the default node limit (2,000) HiGHS proves its optimum; one
    node stops it with a plan and a bound above it, unproved; a time limit nobody can meet
    stops it before any plan, and the engine then keeps the plan it has (``None``)."""
    rng = np.random.default_rng(7)
    rows: list[tuple[str, float, list[float]]] = []
    for i in range(80):
        rows.append((f"C{i:02d}", 0.0, [0.0, 0.0]))
        rows += [
            (
                f"C{i:02d}",
                float(rng.integers(10, 100)) + 0.37 * j,
                [float(rng.integers(1, 30)) for _ in range(2)],
            )
            for j in range(3)
        ]
    columns = _columns(rows)
    limits = [_constraint("calls", 400.0), _constraint("mails", 400.0)]
    fixed = np.zeros(2)
    proved = solve_master(columns, limits, fixed, set(), 2000, 60)
    assert proved is not None
    _, optimum, bound, timed_out = proved
    assert bound == pytest.approx(optimum, rel=1e-6) and not timed_out
    one_node = solve_master(columns, limits, fixed, set(), 1, 60)
    assert one_node is not None
    _, value, bound, _ = one_node
    assert value <= optimum + 1e-9 and bound > optimum + 1e-6
    assert solve_master(columns, limits, fixed, set(), 2000, 1e-9) is None
