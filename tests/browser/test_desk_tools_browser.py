"""Operator tools in a real browser (Chromium, Playwright): the phone layout, canned replies through ``/``, CSAT shown.

A live werkzeug server on the test Redis, the worker in burst between checks,
the Twilio stand-in. The phone layout is checked at 390×844 CSS pixels: no
horizontal overflow (``document.documentElement.scrollWidth <= 390``) on the
sign-in form, the list and an open conversation. Screenshots go to
``tests/artifacts/``.
"""

from __future__ import annotations

import pytest

from tests.browser.support import ARTIFACTS, DESKTOP, PHONE, post_sms, serve, until
from tests.conftest import ACME_NUMBER

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
OTHERS = ("+15557650001", "+15557650002")
ACME = ("acme-insurance", "dev-acme-api-key")
WIDEST_OFFENDERS = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
  .slice(0, 8)"""


@pytest.fixture
def dash_server(app):
    app.config.update(FEED_BLOCK_MS=1000, FEED_STREAM_S=120)
    with serve(app) as url:
        yield url


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"desk_{name}.png"), full_page=True)


def sign_in(page, base_url: str, operator: str = "alice") -> None:
    page.goto(f"{base_url}/dashboard")
    page.fill("#tenant", ACME[0])
    page.fill("#operator", operator)
    page.fill("#apikey", ACME[1])
    page.click("#signin-form button[type=submit]")


def row(conversation_id: str) -> str:
    return f"#conversation-list li[data-conversation='{conversation_id}']"


def assert_fits_a_phone(page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{where}: {width}px wide; overflowing: {page.evaluate(WIDEST_OFFENDERS)}"


def test_the_phone_layout_fits_390_px_and_the_sign_in_patterns_are_valid(browser, dash_server, work):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    try:
        page.goto(f"{dash_server}/dashboard")
        assert_fits_a_phone(page, "sign-in")
        # Every pattern attribute compiles as Chromium compiles it (the v flag), and the sign-in values pass.
        problems = page.evaluate("""() => [...document.querySelectorAll('[pattern]')].flatMap((e) => {
            try { new RegExp('^(?:' + e.getAttribute('pattern') + ')$', 'v'); return []; }
            catch (err) { return [e.id + ': ' + err.message]; } })""")
        assert page.evaluate("document.querySelectorAll('[pattern]').length") >= 2 and problems == []
        page.fill("#tenant", ACME[0])
        page.fill("#operator", "alice o'neil-smith")
        assert page.evaluate("document.getElementById('tenant').checkValidity()") is True
        assert page.evaluate("document.getElementById('operator').checkValidity()") is False  # the apostrophe
        page.fill("#operator", "alice.o-neil_2@acme")
        assert page.evaluate("document.getElementById('operator').checkValidity()") is True
        page.fill("#tenant", "acme insurance")
        assert page.evaluate("document.getElementById('tenant').checkValidity()") is False
        sign_in(page, dash_server)
        page.wait_for_selector("#live[data-live=on]")
        for number, text in ((CUSTOMER, "I want to talk to a person about my application please"),
                             (OTHERS[0], "what are your opening hours on public holidays and weekends?"),
                             (OTHERS[1], "Supercalifragilisticexpialidocious-unbroken-words-that-go-on-and-on-and-on")):
            post_sms(dash_server, text, number, ACME_NUMBER)
        until(lambda: len(page.query_selector_all("#conversation-list li")) == 3, work, what="three rows")
        assert_fits_a_phone(page, "list")
        shot(page, "phone_list")
        page.click(row(CUSTOMER))
        page.wait_for_selector("#conversation[data-status=waiting_human]")
        assert_fits_a_phone(page, "conversation")
        shot(page, "phone_conversation")
        assert not [line for line in console if "pattern" in line.lower()], console
    finally:
        context.close()


def test_canned_replies_through_slash_and_csat_shown(browser, app, dash_server, work, standin):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, dash_server)
        page.wait_for_selector("#live[data-live=on]")
        post_sms(dash_server, "I want to talk to a person", CUSTOMER, ACME_NUMBER)
        until(lambda: page.query_selector(row(CUSTOMER)), work, what="the escalation in the list")
        page.click(row(CUSTOMER))
        page.wait_for_selector("#conversation[data-status=waiting_human]")
        assert "Asked for a person" in page.inner_text("#ctx-summary")
        page.click("#claim-btn")
        page.wait_for_selector("#conversation[data-claimed-by=alice]")

        # "/" opens the canned responses; typing filters them; Enter puts the rendered text in the box.
        page.focus("#reply-text")
        page.keyboard.type("/ho")
        page.wait_for_selector("#canned li[data-shortcut=hours]")
        assert [li.get_attribute("data-shortcut") for li in page.query_selector_all("#canned li")][0] == "hours"
        shot(page, "canned_picker")
        page.keyboard.press("Enter")
        assert page.input_value("#reply-text") == "Our agents are available Monday to Friday, 8am to 8pm Eastern."
        assert page.is_hidden("#canned")
        # A click works too, and the variables are rendered server-side.
        page.fill("#reply-text", "")
        page.keyboard.type("/hel")
        page.click("#canned li[data-shortcut=hello]")
        assert page.input_value("#reply-text") == "Hi, this is alice from Acme Insurance. I'm looking at your conversation now."
        standin.clear()
        page.click("#reply-btn")
        until(lambda: standin.messages(), work, what="the canned reply at the stand-in")
        assert standin.messages()[0]["Body"] == "Hi, this is alice from Acme Insurance. I'm looking at your conversation now."

        # Close: the survey goes out; the customer's "4 stars" is kept and shown.
        standin.clear()
        page.click("#close-btn")
        until(lambda: standin.messages(), work, what="the CSAT question")
        until(lambda: "pending" in page.inner_text("#ctx-csat"), work, what="the pending survey in the context")
        post_sms(dash_server, "4 stars", CUSTOMER, ACME_NUMBER)
        until(lambda: "4 / 5" in page.inner_text("#ctx-csat"), work, what="the answer in the context")
        assert "alice" in page.inner_text("#ctx-csat")
        assert page.get_attribute("#conversation", "data-status") == "closed"
        shot(page, "csat_shown")
    finally:
        context.close()
