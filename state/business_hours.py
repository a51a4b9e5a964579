"""A tenant's business hours, and time counted in them (pure: no Redis, no clock).

``desk.business_hours`` in the tenants YAML::

    business_hours:
      time_zone: America/New_York          # IANA name (zoneinfo)
      weekly:                              # local times; a day not listed is closed
        mon: ["09:00-17:00"]
        sat: ["10:00-13:00", "14:00-16:00"]
      holidays: [2026-12-25]               # local dates closed all day

Times are local wall-clock times in ``time_zone``: a DST change moves them
with the clocks (09:00 stays 09:00). ``24:00`` ends a range at midnight.
Every function takes and returns aware datetimes (any zone in, UTC out).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
SEARCH_DAYS = 400
"""How far ahead (local days) the next opening is looked for; past it the desk counts as never open."""


def _parse_range(text: str) -> tuple[int, int]:
    """``"09:00-17:30"`` → (540, 1050) minutes after local midnight. Raises ValueError."""
    m = RANGE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a range like 09:00-17:00")
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    if end > 24 * 60 or end <= start:
        raise ValueError(f"{text!r} must end after it starts, at 24:00 at the latest")
    return start, end


class BusinessHours(BaseModel):
    """When the tenant's people answer: weekly local ranges in ``time_zone``, minus ``holidays``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = Field(max_length=64)
    weekly: dict[Weekday, list[str]] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list, max_length=366)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone (like America/New_York)") from None
        return name

    @field_validator("weekly")
    @classmethod
    def _ranges(cls, weekly: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, ranges in weekly.items():
            if len(ranges) > 8:
                raise ValueError(f"{day}: at most 8 ranges")
            parsed = sorted(_parse_range(r) for r in ranges)
            for (_, end), (start, _) in zip(parsed, parsed[1:]):
                if start < end:
                    raise ValueError(f"{day}: ranges overlap")
        return weekly

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def _day_ranges(self, day: date) -> list[tuple[int, int]]:
        if day in self.holidays:
            return []
        return sorted(_parse_range(r) for r in self.weekly.get(WEEKDAYS[day.weekday()], []))


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``minute`` minutes after local midnight of ``day`` (24:00 is the next midnight)."""
    extra, minute = divmod(minute, 24 * 60)
    local = datetime.combine(day + timedelta(days=extra), time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(timezone.utc)


def open_intervals(hours: BusinessHours, start: datetime, days: int = SEARCH_DAYS) -> Iterator[tuple[datetime, datetime]]:
    """The open intervals ``(opens_at, closes_at)`` (UTC) from ``start`` on, in order, clipped to begin at ``start``.

    Looks ``days`` local days ahead. Adjacent ranges (``…-24:00`` then ``00:00-…``) come as separate intervals.
    """
    zone = hours.zone
    first = start.astimezone(zone).date() - timedelta(days=1)  # a range ending after midnight in UTC terms
    for offset in range(days + 2):
        day = first + timedelta(days=offset)
        for a, b in hours._day_ranges(day):
            opens, closes = _local(day, a, zone), _local(day, b, zone)
            if closes <= start:
                continue
            yield max(opens, start), closes


def is_open(hours: BusinessHours, at: datetime) -> bool:
    """Whether the desk is open at ``at``."""
    for opens, _ in open_intervals(hours, at, days=2):
        return opens <= at
    return False


def next_open(hours: BusinessHours, at: datetime) -> datetime | None:
    """When the desk next opens at or after ``at`` (``at`` itself when open); ``None`` if never within :data:`SEARCH_DAYS`."""
    for opens, _ in open_intervals(hours, at):
        return opens
    return None


def add_business_time(hours: BusinessHours, start: datetime, seconds: float) -> datetime | None:
    """The instant when ``seconds`` of open time have passed since ``start`` (UTC).

    A clock started while closed begins at the next opening. ``None`` when the
    desk never opens long enough within :data:`SEARCH_DAYS`.
    """
    left = timedelta(seconds=seconds)
    for opens, closes in open_intervals(hours, start):
        span = closes - opens
        if left <= span:
            return opens + left
        left -= span
    return None


def business_seconds_between(hours: BusinessHours, start: datetime, end: datetime) -> float:
    """Seconds of open time in ``[start, end)`` (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return 0.0
    total = 0.0
    for opens, closes in open_intervals(hours, start, days=(end - start).days + 2):
        if opens >= end:
            break
        total += (min(closes, end) - opens).total_seconds()
    return total
