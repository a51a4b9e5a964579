"""Business hours (pure): open or not, the next opening, time counted in open hours, across DST and holidays."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from state.business_hours import BusinessHours, add_business_time, business_seconds_between, is_open, next_open

UTC = timezone.utc
NY = BusinessHours(time_zone="America/New_York", weekly={d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                   holidays=[date(2026, 12, 25)])


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_in_local_hours_only():
    assert is_open(NY, utc(2026, 12, 7, 14, 0))       # Monday 09:00 EST
    assert not is_open(NY, utc(2026, 12, 7, 13, 59))  # 08:59 EST
    assert not is_open(NY, utc(2026, 12, 7, 22, 0))   # 17:00 EST: the range ends
    assert not is_open(NY, utc(2026, 12, 5, 15, 0))   # Saturday
    assert not is_open(NY, utc(2026, 12, 25, 15, 0))  # a holiday (Friday)


def test_next_open_skips_the_weekend_and_holidays():
    assert next_open(NY, utc(2026, 12, 5, 15, 0)) == utc(2026, 12, 7, 14, 0)     # Saturday → Monday 09:00 EST
    assert next_open(NY, utc(2026, 12, 24, 23, 0)) == utc(2026, 12, 28, 14, 0)   # Thu evening → (Fri holiday) → Mon
    at = utc(2026, 12, 7, 15, 0)
    assert next_open(NY, at) == at  # open now


def test_local_times_follow_daylight_saving():
    # 2026-03-08 US clocks go forward: Monday 9 March 09:00 EDT is 13:00 UTC, not 14:00.
    assert next_open(NY, utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 9, 13, 0)


def test_business_time_skips_closed_time():
    friday_1630 = utc(2026, 12, 4, 21, 30)  # 16:30 EST
    # 30 minutes left on Friday, the other 30 on Monday from 09:00
    assert add_business_time(NY, friday_1630, 3600) == utc(2026, 12, 7, 14, 30)
    # a clock started on Saturday begins at Monday's opening
    assert add_business_time(NY, utc(2026, 12, 5, 12, 0), 900) == utc(2026, 12, 7, 14, 15)
    assert business_seconds_between(NY, friday_1630, utc(2026, 12, 7, 14, 30)) == 3600
    assert business_seconds_between(NY, utc(2026, 12, 7, 15), utc(2026, 12, 7, 14)) == 0


def test_several_ranges_a_day_and_midnight():
    hours = BusinessHours(time_zone="UTC", weekly={"mon": ["10:00-12:00", "13:00-24:00"], "tue": ["00:00-01:00"]})
    assert not is_open(hours, utc(2026, 12, 7, 12, 30))
    assert add_business_time(hours, utc(2026, 12, 7, 11, 0), 2 * 3600) == utc(2026, 12, 7, 14, 0)
    assert add_business_time(hours, utc(2026, 12, 7, 23, 0), 2 * 3600) == utc(2026, 12, 8, 1, 0)
    never = BusinessHours(time_zone="UTC", weekly={"mon": ["10:00-11:00"]}, holidays=[])
    assert add_business_time(never, utc(2026, 12, 7, 10, 0), 3600 * 24 * 400) is None


@pytest.mark.parametrize("weekly, zone, problem", [
    ({"mon": ["9-17"]}, "UTC", "is not a range"),
    ({"mon": ["17:00-09:00"]}, "UTC", "must end after it starts"),
    ({"mon": ["09:00-12:00", "11:00-13:00"]}, "UTC", "overlap"),
    ({"mon": ["09:00-17:00"]}, "Mars/Olympus", "IANA time zone"),
    ({"monday": ["09:00-17:00"]}, "UTC", "weekly.monday"),
])
def test_bad_hours_are_refused_naming_the_field(weekly, zone, problem):
    with pytest.raises(ValidationError) as exc:
        BusinessHours(time_zone=zone, weekly=weekly)
    assert problem in str(exc.value)


def test_hours_are_open_for_one_interval_at_a_time():
    at = utc(2026, 12, 7, 16, 0)
    assert add_business_time(NY, at, 0) == at
    assert add_business_time(NY, at, 1) == at + timedelta(seconds=1)
