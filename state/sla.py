"""Service-level targets for people, and the clocks they start (pure: no Redis, no clock of its own).

``desk.sla`` in the tenants YAML::

    sla:
      first_response_s: 900      # escalation → the first human reply
      next_response_s: 1800     # a customer message after a human reply → the next human reply
      resolution_s: 28800        # escalation → hand-back or close
      business_hours_only: true  # count only open time (desk.business_hours)

The clocks are derived from the session document alone, so nothing new is
stored per conversation: a conversation waiting for a person
(``status == "waiting_human"``, ``handoff.requested_at`` = the escalation)
runs the first-response clock until a transcript entry by ``human`` after
the escalation, then a next-response clock from the first customer message
after the last human reply; the resolution clock runs until it leaves
``waiting_human`` (hand-back or close). A clock is *breached* once ``now``
reaches its ``due_at``. With ``business_hours_only`` a clock started while
closed begins at the next opening, and ``due_at`` skips closed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from state.business_hours import BusinessHours, add_business_time
from state.models import SessionState

SlaKind = Literal["first_response", "next_response", "resolution"]
SLA_KINDS: tuple[SlaKind, ...] = ("first_response", "next_response", "resolution")
MAX_TARGET_S = 30 * 24 * 3600


class SlaPolicy(BaseModel):
    """The tenant's targets in seconds (``None``: not tracked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_response_s: int | None = Field(None, ge=10, le=MAX_TARGET_S)
    next_response_s: int | None = Field(None, ge=10, le=MAX_TARGET_S)
    resolution_s: int | None = Field(None, ge=10, le=MAX_TARGET_S)
    business_hours_only: bool = False

    @model_validator(mode="after")
    def _some_target(self) -> "SlaPolicy":
        if self.first_response_s is None and self.next_response_s is None and self.resolution_s is None:
            raise ValueError("set at least one of first_response_s, next_response_s, resolution_s")
        return self

    def target_s(self, kind: SlaKind) -> int | None:
        return getattr(self, f"{kind}_s")


@dataclass(frozen=True)
class SlaClock:
    """One running clock: ``kind``, started at ``started_at``, breached at ``due_at`` (UTC)."""

    kind: SlaKind
    started_at: datetime
    due_at: datetime

    def remaining_s(self, now: datetime) -> float:
        """Wall-clock seconds until the breach (negative once breached)."""
        return (self.due_at - now).total_seconds()

    def breached(self, now: datetime) -> bool:
        return now >= self.due_at


def _due(policy: SlaPolicy, hours: BusinessHours | None, start: datetime, seconds: int) -> datetime:
    if policy.business_hours_only and hours is not None:
        due = add_business_time(hours, start, seconds)
        if due is not None:
            return due
    return start + timedelta(seconds=seconds)


def running_clocks(state: SessionState, policy: SlaPolicy, hours: BusinessHours | None) -> list[SlaClock]:
    """The clocks running for ``state``, earliest ``due_at`` first (empty unless it waits for a person)."""
    if state.status != "waiting_human" or state.handoff is None:
        return []
    start = state.handoff.requested_at
    clocks: list[SlaClock] = []
    human_at = [e.at for e in state.transcript if e.author == "human" and e.at >= start]
    if not human_at:
        if policy.first_response_s is not None:
            clocks.append(SlaClock("first_response", start, _due(policy, hours, start, policy.first_response_s)))
    elif policy.next_response_s is not None:
        waiting = [e.at for e in state.transcript if e.author == "customer" and e.at > human_at[-1]]
        if waiting:
            clocks.append(SlaClock("next_response", waiting[0], _due(policy, hours, waiting[0], policy.next_response_s)))
    if policy.resolution_s is not None:
        clocks.append(SlaClock("resolution", start, _due(policy, hours, start, policy.resolution_s)))
    return sorted(clocks, key=lambda c: c.due_at)


def sla_json(clocks: list[SlaClock], now: datetime) -> dict | None:
    """The list row's ``sla``: the nearest clock (``kind``, ``due_at``, ``remaining_s``, ``breached``) and all of them."""
    if not clocks:
        return None
    nearest = clocks[0]

    def one(c: SlaClock) -> dict:
        return {"kind": c.kind, "due_at": c.due_at.isoformat(), "remaining_s": round(c.remaining_s(now), 1),
                "breached": c.breached(now)}

    return {**one(nearest), "clocks": [one(c) for c in clocks]}
