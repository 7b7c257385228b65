"""The batch problem handed to the per-customer kernel, its result, and the value model.

Value of a plan for one customer (maximised)::

    sum_t sum_c  s[t] * ( v[c] * (1 - prod_{h chosen} (1 - p[c,h])) - sum_{h chosen} cost[c,h] )
  - sum_{t,c,h chosen} ( price[t,c,h] + unit_cost[t,c,h] )

i.e. each contact is worth ``p * v - cost`` times the seasonality weight, except that
several channels of the same campaign in the same month succeed with the union
probability (DEM+SMS: ``1 - (1-p_dem)(1-p_sms)``), and Lagrangian prices / custom unit
costs are charged per contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class ErrorCode(IntEnum):
    """Per-customer status; anything but OK means "quarantine this customer_id"."""

    OK = 0
    BAD_PROPENSITY = 1  # NaN/inf or outside [0, 1]
    BAD_HISTORY = 2  # negative or non-finite history counts
    BAD_UNIT_COST = 3  # non-finite per-customer unit cost
    BAD_STATIC_INPUT = 4  # success value / channel cost / seasonality / price invalid
    INFEASIBLE = 5  # no schedule satisfies the rules (min rules vs eligibility)
    SOLVER_FAILURE = 6  # the MILP did not reach a proven optimum


class SolverKind(IntEnum):
    """Which solver produced a customer's schedule."""

    NONE = 0
    DP = 1
    MILP = 2
    LABEL = 3  # the catalogue kernel (label DP with state refinement)


def _flat(a: np.ndarray) -> np.ndarray:
    """``[N, ...]`` -> ``[N, rest]``, also for N = 0."""
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


@dataclass(frozen=True, init=False)
class KernelBatch:
    """Inputs for N customers, C campaigns, H channels, T months (axes in this order).

    propensity    [N, C, H] or [N, T, C, H] float   success probability of a contact
                                    (per month when a trigger boosts some months)
    eligible      [N, C, H] or [N, T, C, H] bool   contact allowed at all
    history       [N, M, C, H] int  past contacts; index 0 = month -1, 1 = month -2, ...
    success_value [C] float         value of a success per campaign (>= 0)
    channel_cost  [C, H] float      cost per contact of each campaign on each channel (>= 0);
                                    a [H] array (one cost per channel) is broadcast
    seasonality   [T] or [T, C] float  per-month (per-campaign: monthly_value) weight of the
                                    contact value (>= 0), default 1
    price         [T, C, H] float   Lagrangian price per contact (capacity duals), default 0
    unit_cost     [N, T, C, H] float  extra per-customer cost per contact, default 0
    """

    propensity: np.ndarray
    eligible: np.ndarray
    history: np.ndarray
    success_value: np.ndarray
    channel_cost: np.ndarray
    horizon: int
    seasonality: np.ndarray
    price: np.ndarray
    unit_cost: np.ndarray | None

    # A hand-written __init__ rather than __post_init__: seasonality and price may be left
    # out (None) by the caller but are always arrays once built, and the fields say so.
    def __init__(
        self,
        propensity: np.ndarray,
        eligible: np.ndarray,
        history: np.ndarray,
        success_value: np.ndarray,
        channel_cost: np.ndarray,
        horizon: int = 12,
        seasonality: np.ndarray | None = None,
        price: np.ndarray | None = None,
        unit_cost: np.ndarray | None = None,
    ) -> None:
        p = np.asarray(propensity, dtype=np.float64)
        t = int(horizon)
        if t < 1:
            raise ValueError(f"horizon must be >= 1, got {t}")
        if p.ndim == 4 and p.shape[1] != t:
            raise ValueError(f"propensity [N, T, C, H] must have T = horizon = {t}, got shape {p.shape}")
        if p.ndim not in (3, 4):
            raise ValueError(f"propensity must be [N, C, H] or [N, T, C, H], got shape {p.shape}")
        n, c, h = p.shape[0], p.shape[-2], p.shape[-1]
        e = np.asarray(eligible, dtype=bool)
        if e.shape == (n, c, h):
            e = np.broadcast_to(e[:, None], (n, t, c, h))
        if e.shape != (n, t, c, h):
            raise ValueError(f"eligible must be [N, C, H] or [N, T, C, H], got {e.shape}")
        hist = np.asarray(history)
        if hist.ndim != 4 or hist.shape[0] != n or hist.shape[2:] != (c, h):
            raise ValueError(f"history must be [N, M, C, H] = [{n}, M, {c}, {h}], got {hist.shape}")
        sv = np.asarray(success_value, dtype=np.float64).reshape(-1)
        cost = np.asarray(channel_cost, dtype=np.float64)
        if cost.shape == (h,):
            cost = np.broadcast_to(cost, (c, h))
        if sv.shape != (c,) or cost.shape != (c, h):
            raise ValueError(f"success_value must be [{c}] and channel_cost [{h}] or [{c}, {h}]")
        seas = np.ones(t) if seasonality is None else np.asarray(seasonality, dtype=np.float64)
        price = np.zeros((t, c, h)) if price is None else np.asarray(price, dtype=np.float64)
        if seas.shape not in ((t,), (t, c)) or price.shape != (t, c, h):
            raise ValueError(f"seasonality must be [{t}] or [{t}, {c}] and price [{t}, {c}, {h}]")
        uc = None if unit_cost is None else np.asarray(unit_cost, dtype=np.float64)
        if uc is not None and uc.shape != (n, t, c, h):
            raise ValueError(f"unit_cost must be [N, T, C, H] = [{n}, {t}, {c}, {h}], got {uc.shape}")
        for name, value in (
            ("propensity", p),
            ("eligible", e),
            ("history", hist),
            ("success_value", sv),
            ("channel_cost", cost),
            ("horizon", t),
            ("seasonality", seas),
            ("price", price),
            ("unit_cost", uc),
        ):
            object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, T, C, H)."""
        p = self.propensity
        return p.shape[0], self.horizon, p.shape[-2], p.shape[-1]

    @property
    def monthly(self) -> bool:
        """True when the propensity varies by month ([N, T, C, H])."""
        return self.propensity.ndim == 4

    def propensity_by_month(self) -> np.ndarray:
        """``[N, T, C, H]`` cleaned propensity (a broadcast view when it is per customer)."""
        p = self.clean_propensity()
        if p.ndim == 4:
            return p
        n, t, c, h = self.shape
        return np.broadcast_to(p[:, None], (n, t, c, h))

    def subset(self, idx: np.ndarray) -> KernelBatch:
        """The batch restricted to customers ``idx``."""
        return KernelBatch(
            propensity=self.propensity[idx],
            eligible=self.eligible[idx],
            history=self.history[idx],
            success_value=self.success_value,
            channel_cost=self.channel_cost,
            horizon=self.horizon,
            seasonality=self.seasonality,
            price=self.price,
            unit_cost=None if self.unit_cost is None else self.unit_cost[idx],
        )

    # --------------------------------------------------------------- validation
    def validate(self) -> np.ndarray:
        """``[N]`` int8 :class:`ErrorCode` per customer; never raises on bad values."""
        n = self.propensity.shape[0]
        code = np.zeros(n, dtype=np.int8)
        static_ok = (
            np.isfinite(self.success_value).all()
            and (self.success_value >= 0).all()
            and np.isfinite(self.channel_cost).all()
            and (self.channel_cost >= 0).all()
            and np.isfinite(self.seasonality).all()
            and (self.seasonality >= 0).all()
            and np.isfinite(self.price).all()
        )
        if not static_ok:
            code[:] = ErrorCode.BAD_STATIC_INPUT
            return code
        p = _flat(self.propensity)
        with np.errstate(invalid="ignore"):
            bad_p = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0)).all(axis=1)
        hist = _flat(self.history)
        if np.issubdtype(hist.dtype, np.floating):
            bad_h = ~(np.isfinite(hist) & (hist >= 0) & (hist == np.round(hist))).all(axis=1)
        else:
            bad_h = (hist < 0).any(axis=1)
        bad_u = np.zeros(n, dtype=bool)
        if self.unit_cost is not None:
            bad_u = ~np.isfinite(_flat(self.unit_cost)).all(axis=1)
        code[bad_u] = ErrorCode.BAD_UNIT_COST
        code[bad_h] = ErrorCode.BAD_HISTORY
        code[bad_p] = ErrorCode.BAD_PROPENSITY
        return code

    def clean_history(self) -> np.ndarray:
        """History as int64 with invalid entries zeroed (for quarantined customers)."""
        if np.issubdtype(self.history.dtype, np.integer) or self.history.dtype == bool:
            return np.maximum(self.history, 0).astype(np.int64, copy=False)
        hist = np.asarray(self.history, dtype=np.float64)
        hist = np.where(np.isfinite(hist) & (hist >= 0), hist, 0.0)
        return np.minimum(hist, 1e6).astype(np.int64)

    def clean_propensity(self) -> np.ndarray:
        """Propensity with NaN/out-of-range values replaced by 0 (results are discarded)."""
        p = self.propensity
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(p) & (p >= 0) & (p <= 1)
        return np.where(ok, p, 0.0)

    def clean_unit_cost(self) -> np.ndarray | None:
        if self.unit_cost is None:
            return None
        return np.where(np.isfinite(self.unit_cost), self.unit_cost, 0.0)

    # -------------------------------------------------------------------- value
    def season_by_campaign(self) -> np.ndarray:
        """``[T, C]`` weight of each campaign's contact value each month."""
        if self.seasonality.ndim == 2:
            return self.seasonality
        return np.broadcast_to(self.seasonality[:, None], (self.horizon, self.propensity.shape[-2]))

    def linear_cost(self) -> np.ndarray:
        """``[N, T, C, H]`` per-contact charges not multiplied by seasonality."""
        n, t, c, h = self.shape
        out = np.broadcast_to(self.price[None], (n, t, c, h)).astype(np.float64)
        uc = self.clean_unit_cost()
        return out + uc if uc is not None else out

    def schedule_value(self, x: np.ndarray) -> np.ndarray:
        """``[N]`` exact value of schedules ``x[N, T, C, H]`` under the value model."""
        x = np.asarray(x, dtype=bool)
        p = self.propensity_by_month()  # [N, T, C, H]
        miss = np.prod(np.where(x, 1.0 - p, 1.0), axis=-1)  # [N, T, C]
        hit = np.where(x.any(axis=-1), 1.0 - miss, 0.0)
        contact_cost = (x * self.channel_cost).sum(axis=-1)  # [N, T, C]
        seasonal = hit * self.success_value - contact_cost  # [N, T, C]
        if self.seasonality.ndim == 2:  # a weight per month and campaign
            value = (seasonal * self.seasonality).sum(axis=(1, 2))
        else:  # one per month: summed over campaigns first, as before per-campaign weights
            value = (seasonal.sum(axis=-1) * self.seasonality).sum(axis=-1)
        return value - (x * self.linear_cost()).sum(axis=(1, 2, 3))


@dataclass(frozen=True)
class KernelResult:
    """Solver output for a batch.

    x            [N, T, C, H] bool   chosen contacts
    objective    [N] float           value of the chosen plan (NaN when status != OK)
    status       [N] int8            :class:`ErrorCode`
    solver       [N] int8            :class:`SolverKind` that produced the plan
    upper_bound  [N] float           proved bound on the customer's optimal value: the
                                     objective when the plan is proved optimal, more when
                                     a time limit stopped the MILP with a legal plan (NaN
                                     when status != OK). Certificates sum these, never the
                                     objectives, so a gap stays a proof.
    """

    x: np.ndarray
    objective: np.ndarray
    status: np.ndarray
    solver: np.ndarray
    upper_bound: np.ndarray

    @property
    def proved(self) -> np.ndarray:
        """``[N]`` bool: the plan is proved optimal (within HiGHS's 1e-6 relative gap)."""
        tol = 1e-6 * np.maximum(1.0, np.abs(self.objective))
        return (self.status == 0) & (self.upper_bound <= self.objective + tol)

    @property
    def method(self) -> str:
        """Summary of the solvers used, e.g. ``"dp"``, ``"milp"`` or ``"dp+milp"``."""
        used = [
            k.name.lower()
            for k in (SolverKind.DP, SolverKind.LABEL, SolverKind.MILP)
            if (self.solver == k).any()
        ]
        return "+".join(used) or "none"
