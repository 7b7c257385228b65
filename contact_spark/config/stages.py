"""Which optional stages a run includes: those outside the target path (issue 25)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from contact_spark.config.base import StrictModel

Switch = Literal["auto", "on", "off"]
OptionalStage = Literal["baseline", "decisions"]


class StageSettings(StrictModel):
    """The greedy baseline and ``contact_decisions`` explain a plan but do not make it; at a
    million customers they cost more than the plan stage. ``auto`` runs them below
    ``auto_max_customers`` customers. Not part of the run id: turning one off keeps the run
    id, and the stage's tables lose the run's rows (never stale rows of an earlier run)."""

    baseline: Switch = Field(
        "auto",
        description="The greedy baseline (baseline_plan, baseline_violations, the report's uplift): "
        "on, off, or auto (on below auto_max_customers customers).",
    )
    decisions: Switch = Field(
        "auto",
        description="contact_decisions, the reason for every customer × campaign × channel: "
        "on, off, or auto (on below auto_max_customers customers).",
    )
    auto_max_customers: int = Field(
        1_000_000, ge=1, description="An 'auto' stage runs when the run has fewer customers than this."
    )

    @field_validator("baseline", "decisions", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted on/off (and yes/no) as a boolean.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    def runs(self, stage: OptionalStage, customers: int) -> bool:
        """Whether ``stage`` runs for a run of ``customers`` customers."""
        switch = self.baseline if stage == "baseline" else self.decisions
        return switch == "on" or (switch == "auto" and customers < self.auto_max_customers)
