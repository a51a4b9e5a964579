"""A tenant's support desk settings (``desk:`` in the tenants YAML): assignment, business hours, SLAs.

::

    desk:
      assignment:
        policy: least_loaded      # manual | round_robin | least_loaded
        max_per_operator: 3       # open assignments an operator holds at most (required for least_loaded)
      business_hours: {time_zone: America/New_York, weekly: {mon: ["09:00-17:00"]}}   # state.business_hours
      sla: {first_response_s: 900, resolution_s: 28800, business_hours_only: true}     # state.sla

See :mod:`state.assignment` (how escalations are given to operators), :mod:`state.presence`
(who is online), :mod:`state.sla` and :mod:`jobs.desk` (the clocks and their breach alerts).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from state.business_hours import BusinessHours
from state.sla import SlaPolicy

AssignmentPolicyName = Literal["manual", "round_robin", "least_loaded"]


class AssignmentPolicy(BaseModel):
    """How escalations reach operators.

    ``manual``: they wait in the queue until someone claims one. ``round_robin``:
    each goes to the next online operator in name order after the last one given
    one. ``least_loaded``: to the online operator holding the fewest (ties: round
    robin). ``max_per_operator`` caps what one operator holds under either
    automatic policy; the oldest escalation goes first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: AssignmentPolicyName = "manual"
    max_per_operator: int | None = Field(None, ge=1, le=1000)

    @model_validator(mode="after")
    def _limit(self) -> "AssignmentPolicy":
        if self.policy == "least_loaded" and self.max_per_operator is None:
            raise ValueError("least_loaded needs max_per_operator")
        return self


class DeskConfig(BaseModel):
    """The ``desk:`` block of a tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assignment: AssignmentPolicy = Field(default_factory=AssignmentPolicy)
    business_hours: BusinessHours | None = None
    sla: SlaPolicy | None = None

    @model_validator(mode="after")
    def _hours_for_sla(self) -> "DeskConfig":
        if self.sla is not None and self.sla.business_hours_only and self.business_hours is None:
            raise ValueError("sla.business_hours_only needs business_hours")
        return self
