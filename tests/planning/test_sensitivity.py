"""``capacity_sensitivity.binding`` says whether the plan uses a capacity up (issue 21: a
9-of-10 call capacity was reported binding, though one more call fitted)."""

from __future__ import annotations

import numpy as np
import pytest

from contact_spark.capacity.constraints import Constraint
from contact_spark.planning.stage import binding


def constraint(sense: str, bound: float, attr: str | None = None) -> Constraint:
    return Constraint("c", "r", sense, bound, np.ones((12, 1, 1)), attr=attr)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sense", "bound", "attr", "used", "expected"),
    [
        ("max", 10, None, 9, False),  # room for one more call
        ("max", 10, None, 10, True),
        ("max", 10, None, 9.5, True),  # half a contact of room is no room
        ("max", 100.0, "cost", 99.9999999, True),  # a budget met within rounding
        ("max", 100.0, "cost", 99.0, False),
        ("min", 5, None, 5, True),
        ("min", 5, None, 7, False),
        ("min", 5, None, 3, True),  # a shortfall: the minimum is what limits the plan
    ],
)
def test_binding_means_no_room_for_one_more_contact(
    sense: str, bound: float, attr: str | None, used: float, expected: bool
) -> None:
    assert binding(constraint(sense, bound, attr), used) is expected
