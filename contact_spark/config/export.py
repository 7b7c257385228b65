"""Configuration of the plan export to execution systems (``jobs/export_plan.py``).

Optional: without an ``export`` section every channel's send window is its month, first
day to last day. The section does not change what is planned, so it is left out of the
config's fingerprint (``config.fingerprint``): adding a window later does not change the
run id the export looks the plan up by.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from contact_spark.config.base import StrictModel


class SendWindow(StrictModel):
    """The days of the month within which a channel's list may be sent (or called).

    Days past the month's length (31 in February) mean its last day.
    """

    first_day: int = Field(1, ge=1, le=31, description="First day of the month to send on.")
    last_day: int = Field(31, ge=1, le=31, description="Last day to send on (31: the month's last day).")

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.first_day > self.last_day:
            raise ValueError(
                f"first_day {self.first_day} is after last_day {self.last_day}: a window runs "
                f"from its first day to its last day within one month, e.g. first_day: 1, last_day: 20"
            )
        return self


class ExportSettings(StrictModel):
    """Per-channel send windows of the exported lists (docs/export.md)."""

    windows: dict[str, SendWindow] = Field(
        default_factory=dict,
        description="Channel name -> send window; a channel not listed sends all month.",
    )
