"""What an escalation while the desk is closed tells the customer (pure; the turn controller adds it to the turn).

Kept apart from :mod:`jobs.desk` (which submits events and webhooks) so the
controller imports no I/O of the desk.
"""

from __future__ import annotations

from datetime import datetime

from agents.templates import render
from state.business_hours import is_open, next_open
from state.models import SessionState
from state.tenant_config import TenantConfig

DESK_AUTHOR = "desk"
"""The ``author_id`` of the desk's notes and messages, and the audit credential of its assignments."""
CUSTOMER_REASONS = ("customer_request", "trigger", "urgent", "language")
"""Escalations the customer did not see an operator cause: those tell them when a person will answer."""


def closed_notice(tenant: TenantConfig, before: SessionState, after: SessionState, now: datetime, channel: str) -> str | None:
    """What to tell a customer whose conversation was just escalated while the desk is closed, else ``None``. Pure.

    Only for an escalation the customer caused or saw (``handoff.reason`` in
    :data:`CUSTOMER_REASONS`, not an operator's), when ``desk.business_hours`` is
    set and closed at ``now``. Template ``desk_closed`` in the conversation's
    language, ``{when}``: the next opening in the desk's time zone (``Monday 09:00 EST``,
    day names from the template ``day_names``).
    """
    desk = tenant.desk
    if desk is None or desk.business_hours is None:
        return None
    if after.status != "waiting_human" or before.status == "waiting_human" or after.handoff is None:
        return None
    if after.handoff.reason not in CUSTOMER_REASONS or is_open(desk.business_hours, now):
        return None
    opens = next_open(desk.business_hours, now)
    if opens is None:
        return None
    local = opens.astimezone(desk.business_hours.zone)
    names = render(tenant, after.language, "sms", "day_names").split(",")
    day = names[local.weekday()].strip() if len(names) == 7 else local.strftime("%A")
    when = f"{day} {local:%H:%M} {local.tzname()}"
    return render(tenant, after.language, "voice" if channel == "voice" else "sms", "desk_closed", when=when)
