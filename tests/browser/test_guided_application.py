"""The guide lane's whole loop, with a person's browser in it (issue 4, "Proof").

Over SMS the guide collects the name and the number and texts the form link
(through the Twilio stand-in); Chromium opens that link on the live server and
types; the customer's next text gets a reply that names what was typed, and
the highlight the guide asked for shows on the page within one poll interval
of being queued, then is acknowledged. Screenshot: ``tests/artifacts/``.
"""

from __future__ import annotations

import re
import time

import pytest

from service import hosted_form
from state.forms import FormStore
from state.models import utcnow
from tests.browser.conftest import assert_shown_within_one_poll
from tests.conftest import PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
from tests.browser.support import ARTIFACTS
LINK = re.compile(re.escape(PUBLIC_BASE_URL) + r"/f/[A-Za-z0-9_-]+")


def test_guided_application_over_sms_in_a_browser(page, live_server, post_sms, work, standin, state_conn, tenants):
    forms = FormStore(state_conn)
    definition = tenants.get("acme-insurance").form

    def text(body: str) -> str:
        """Send ``body`` as the customer, run the turn, return the reply texted back."""
        before = len(standin.messages())
        response, _ = post_sms(body, CUSTOMER)
        assert response.status_code == 200
        work()
        replies = [m["Body"] for m in standin.messages()[before:] if m["To"] == CUSTOMER]
        assert replies, f"no reply to {body!r}"
        return "\n".join(replies)

    text("I'd like to apply for life insurance")
    text("Dana Reyes")
    with_link = text("yes")
    link = LINK.search(with_link).group(0)
    token = link.rsplit("/", 1)[1]
    assert forms.session(token).conversation_id == CUSTOMER

    page.goto(link.replace(PUBLIC_BASE_URL, live_server.url))
    page.wait_for_selector("#lw-form[data-ready=true]")
    page.fill("#first_name", "Dana")
    page.fill("#last_name", "Reyes")
    page.locator("#last_name").blur()
    deadline = time.monotonic() + 5
    while (s := forms.screen_state(token, definition, utcnow())) is None or s.fields.get("last_name") != "Reyes":
        assert time.monotonic() < deadline, "the typed values never reached the screen state"
        page.wait_for_timeout(50)

    reply = text("ok, what next?")
    print(f"guide: {reply!r}")
    assert "Dana" in reply and "Reyes" in reply, "the reply names what was typed"
    assert "date of birth" in reply.lower()

    box = page.locator("#field-date_of_birth")
    page.wait_for_selector("#field-date_of_birth.lw-highlighted", timeout=hosted_form.POLL_INTERVAL_MS * 3)
    assert_shown_within_one_poll(box, hosted_form.POLL_INTERVAL_MS)
    assert box.locator(".lw-highlight-label").inner_text() == "Date of birth"
    deadline = time.monotonic() + 2
    while forms.pending_commands(token):
        assert time.monotonic() < deadline, "the highlight was never acknowledged"
        page.wait_for_timeout(50)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "guided_application_highlight.png"), full_page=True)
