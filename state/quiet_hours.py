"""Quiet hours: when a proactive message may reach a recipient, in their local time (issue 15).

The recipient's time zone is the one ``phonenumbers``' time-zone data gives
for the number (by country and area code); when it gives none
(``Etc/Unknown``) or several (toll-free, mobile-only countries), the
tenant's ``quiet_hours.time_zone`` is used. The window is
``[send_from, send_until)`` in that zone's wall-clock time; one whose
``send_from`` is later than ``send_until`` spans midnight. Daylight saving is
the zone's (``zoneinfo``): a window opening at 08:00 opens at 08:00 local on
either side of a change.

Pure functions; the delivery gate (:mod:`jobs.outbound_gate`) calls them with
its clock.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

from state.models import TranscriptEntry
from state.tenant_config import QuietHours

UNKNOWN_ZONE = "Etc/Unknown"


@lru_cache(maxsize=4096)
def number_zone(address: str) -> str | None:
    """The IANA zone of a phone address (``+E164`` or ``whatsapp:+E164``), or ``None`` when unknown or ambiguous."""
    try:
        parsed = phonenumbers.parse(address.removeprefix("whatsapp:"), None)
    except phonenumbers.NumberParseException:
        return None
    zones = number_zones.time_zones_for_number(parsed)
    return zones[0] if len(zones) == 1 and zones[0] != UNKNOWN_ZONE else None


def recipient_zone(address: str, quiet_hours: QuietHours) -> ZoneInfo:
    """The zone quiet hours are judged in for ``address``: the number's own, else the tenant's ``time_zone``."""
    return ZoneInfo(number_zone(address) or quiet_hours.time_zone)


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_opening(address: str, quiet_hours: QuietHours, now: datetime) -> datetime | None:
    """When a proactive message to ``address`` may go: ``None`` if now, else the window's next opening (aware UTC).

    Args:
        now: an aware datetime (the caller's clock).
    """
    zone = recipient_zone(address, quiet_hours)
    local = now.astimezone(zone)
    start, end = _hhmm(quiet_hours.send_from), _hhmm(quiet_hours.send_until)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if inside:
        return None
    day = local.date() if t < start else local.date() + timedelta(days=1)
    opening = datetime.combine(day, start, tzinfo=zone)
    return opening.astimezone(timezone.utc)


def answers_customer(last_customer_at: datetime | None, now: datetime, reply_window_s: int) -> bool:
    """Whether a message written ``now`` answers the customer: they wrote within ``reply_window_s`` seconds.

    Such a message is a reply: quiet hours never defer it and pacing never
    puts it behind a campaign. Any other message is proactive.
    """
    return last_customer_at is not None and (now - last_customer_at).total_seconds() <= reply_window_s


def last_customer_at(transcript: list[TranscriptEntry]) -> datetime | None:
    """When the customer last wrote or spoke (the newest ``customer`` entry), or ``None``."""
    for entry in reversed(transcript):
        if entry.author == "customer":
            return entry.at
    return None
