"""Quiet hours, segment counting, pacing defaults and their tenant config (issue 15), without Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from state.pacing import default_segments_per_s
from state.quiet_hours import answers_customer, next_opening, number_zone
from state.segments import count_segments, segments_of
from state.tenant_config import QuietHours, SendingConfig

NEW_YORK = QuietHours(time_zone="America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(("address", "zone"), [
    ("+13105550147", "America/Los_Angeles"), ("whatsapp:+12125550147", "America/New_York"),
    ("+15557650147", None), ("+18005550147", None), ("not a number", None),
])
def test_the_zone_comes_from_the_number_when_it_names_one(address, zone):
    assert number_zone(address) == zone


@pytest.mark.parametrize(("address", "now", "opening"), [
    ("+13105550147", utc(2026, 12, 7, 10, 0), utc(2026, 12, 7, 16, 0)),   # 02:00 in LA: 08:00 PST
    ("+13105550147", utc(2026, 12, 7, 18, 0), None),                      # 10:00 in LA
    ("+13105550147", utc(2026, 12, 8, 5, 0), utc(2026, 12, 8, 16, 0)),    # 21:00 in LA: closed, tomorrow 08:00
    ("+15557650147", utc(2026, 12, 7, 12, 59), utc(2026, 12, 7, 13, 0)),  # the tenant's zone: 07:59 EST
    ("+15557650147", utc(2026, 7, 7, 11, 30), utc(2026, 7, 7, 12, 0)),    # summer: 08:00 EDT is 12:00 UTC
])
def test_next_opening_in_the_recipients_local_time(address, now, opening):
    assert next_opening(address, NEW_YORK, now) == opening


def test_a_window_across_midnight():
    late = QuietHours(send_from="20:00", send_until="02:00", time_zone="UTC")
    assert next_opening("+15557650147", late, utc(2026, 12, 7, 1, 0)) is None
    assert next_opening("+15557650147", late, utc(2026, 12, 7, 3, 0)) == utc(2026, 12, 7, 20, 0)


@pytest.mark.parametrize("bad", [
    {"time_zone": "Mars/Olympus"}, {"time_zone": "UTC", "send_from": "8:00"}, {"time_zone": "UTC", "send_until": "24:00"},
    {"time_zone": "UTC", "send_from": "09:00", "send_until": "09:00"}, {"time_zone": "UTC", "extra": 1},
])
def test_quiet_hours_config_is_validated(bad):
    with pytest.raises(ValidationError):
        QuietHours.model_validate(bad)


@pytest.mark.parametrize("bad", [{"messaging_service_sid": "MGxyz"}, {"segments_per_s": 0}, {"reply_window_s": 1}])
def test_sending_config_is_validated(bad):
    with pytest.raises(ValidationError):
        SendingConfig.model_validate(bad)


def test_a_reply_is_within_the_window_of_the_customers_last_message():
    now = utc(2026, 12, 7, 10, 0)
    assert answers_customer(now - timedelta(seconds=299), now, 300)
    assert not answers_customer(now - timedelta(seconds=301), now, 300)
    assert not answers_customer(None, now, 300)


@pytest.mark.parametrize(("text", "encoding", "count"), [
    ("", "GSM-7", 1), ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),  # extension characters take two septets
    ("é" * 160, "GSM-7", 1),  # in the basic set
    ("ł" * 70, "UCS-2", 1), ("ł" * 71, "UCS-2", 2), ("ł" * 134, "UCS-2", 2), ("ł" * 135, "UCS-2", 3),
    ("😀" * 35, "UCS-2", 1), ("😀" * 36, "UCS-2", 2),  # an emoji is two UTF-16 units
])
def test_segments_gsm7_and_ucs2(text, encoding, count):
    segments = count_segments(text)
    assert (segments.encoding, segments.count) == (encoding, count)


def test_whatsapp_has_no_segments():
    assert segments_of("whatsapp:+13105550147", "a" * 1000) == 1
    assert segments_of("+13105550147", "a" * 1000) == 7


@pytest.mark.parametrize(("sender", "rate"), [
    ("+13105550147", 1.0), ("+18005550147", 3.0), ("12345", 100.0), ("whatsapp:+13105550147", 80.0), ("MG" + "0" * 32, 1.0),
])
def test_default_rates_by_sender(sender, rate):
    assert default_segments_per_s(sender) == rate
