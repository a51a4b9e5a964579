"""Browser-test harness: the real app behind a real HTTP server, and Debian's Chromium driven by Playwright.

* ``live_server``: the app of the ``app`` fixture (test Redis, example
  tenants) served by :func:`tests.browser.support.serve` (werkzeug's threaded
  ``make_server`` on a free loopback port) for one test; ``.url`` is its base URL.
* ``browser``: ``/usr/bin/chromium`` launched once per session through
  Playwright's sync API with ``executable_path`` (no browser download); a
  missing binary fails the tests (``make browser``, run by ``make test``,
  installs it; a skip would hide it).
* ``page``: a fresh phone-sized context and page per test; on teardown a
  screenshot is saved as ``tests/artifacts/<test name>.png`` (git-ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.browser.support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE, serve


@dataclass
class LiveServer:
    url: str


@pytest.fixture
def live_server(app):
    """Serve ``app`` over real HTTP on 127.0.0.1 for the test."""
    with serve(app) as url:
        yield LiveServer(url=url)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make browser` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, request):
    """A new page in a phone-sized context; its screenshot is saved under ``tests/artifacts/`` at the end."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            context.close()


TIMER_SLACK_MS = 150
"""How late a browser timer may fire on a busy machine (the poll's ``setTimeout``)."""


@dataclass
class HighlightTiming:
    """When a highlight was queued (Redis's clock: its stream id), when the poll that brought it began, when it showed (epoch ms)."""

    queued_at_ms: int
    poll_started_at_ms: int
    shown_at_ms: int

    @property
    def shown_after_ms(self) -> int:
        return self.shown_at_ms - self.queued_at_ms

    @property
    def poll_round_trip_ms(self) -> int:
        return self.shown_at_ms - self.poll_started_at_ms


def highlight_timing(box) -> HighlightTiming:
    """Read the timing the page wrote on a highlighted field box (a Playwright locator).

    Redis and Chromium run on this machine, so the stream id's milliseconds
    and the page's ``Date.now()`` read the same clock.
    """
    return HighlightTiming(
        queued_at_ms=int(box.get_attribute("data-command-id").split("-")[0]),
        poll_started_at_ms=int(box.get_attribute("data-poll-started-at-ms")),
        shown_at_ms=int(box.get_attribute("data-highlighted-at-ms")),
    )


def assert_shown_within_one_poll(box, poll_interval_ms: int) -> HighlightTiming:
    """Assert the first poll begun after the command was queued brought it (no poll missed it or was skipped).

    Then it showed within one poll interval of being queued, plus that
    poll's own round trip (printed with the result).
    """
    timing = highlight_timing(box)
    print(
        f"highlight shown {timing.shown_after_ms} ms after it was queued "
        f"(poll interval {poll_interval_ms} ms, that poll's round trip {timing.poll_round_trip_ms} ms)"
    )
    assert timing.poll_started_at_ms - timing.queued_at_ms <= poll_interval_ms + TIMER_SLACK_MS
    assert 0 <= timing.shown_after_ms <= poll_interval_ms + TIMER_SLACK_MS + timing.poll_round_trip_ms
    return timing
