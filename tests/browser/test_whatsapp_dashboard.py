"""The dashboard's WhatsApp window indicator, template picker and attachments, in Debian's Chromium.

A WhatsApp customer sends a photo; the operator sees the window open with its
time left and the photo (fetched through the media proxy with the Bearer key,
shown from a blob URL under the page's CSP). A day later the window is
closed: the indicator says so, the reply box offers the tenant's templates,
and the operator's reply goes to the Twilio stand-in as the chosen template.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest

from state.keys import ConversationKeys
from state.models import utcnow
from state.whatsapp_window import WINDOW_S, WhatsAppWindow
from tests.browser.support import ARTIFACTS, DESKTOP, serve, until
from tests.conftest import ACME_NUMBER

pytestmark = pytest.mark.redis_server

CUSTOMER = "whatsapp:+15557654321"
ACME_WA = "whatsapp:" + ACME_NUMBER
KEYS = ConversationKeys("acme-insurance", CUSTOMER)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==")


def test_window_indicator_template_picker_and_photo(browser, app, post_sms, work, standin, r):
    url = standin.add_media("AC00000000000000000000000000acme01", "dev-acme-auth-token", "image/png", PNG)
    post_sms("Here is my license", CUSTOMER, to=ACME_WA, NumMedia="1", MediaUrl0=url, MediaContentType0="image/png")
    work()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    with serve(app) as base_url:
        try:
            page.goto(f"{base_url}/dashboard")
            page.fill("#tenant", "acme-insurance")
            page.fill("#operator", "alice")
            page.fill("#apikey", "dev-acme-api-key")
            page.click("#signin-form button[type=submit]")
            page.click(f"#conversation-list li[data-conversation='{CUSTOMER}']")
            page.wait_for_selector("#wa-window[data-open=true]")
            assert "h" in page.inner_text("#wa-window") and "left" in page.inner_text("#wa-window")
            assert page.is_hidden("#reply-template")
            page.click(".media-btn")
            page.wait_for_selector(".media-img")
            assert page.evaluate("document.querySelector('.media-img').naturalWidth") == 1  # the PNG, through the proxy

            # a day later: the window is closed for Laneway and for Twilio
            r.delete(KEYS.wa_window)
            WhatsAppWindow(r).note_inbound(KEYS, utcnow() - timedelta(seconds=WINDOW_S + 60))
            standin.whatsapp_inbound(CUSTOMER, ACME_WA, at_s=time.time() - WINDOW_S - 60)
            page.click("#claim-btn")
            page.wait_for_selector("#wa-window[data-open=false]")
            assert "closed" in page.inner_text("#wa-window")
            page.wait_for_selector("#reply-template:not([hidden])")
            page.select_option("#reply-template", "policy_document")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard_whatsapp_window_closed.png"), full_page=True)
            standin.clear()
            page.fill("#reply-text", "Your policy document is attached.")
            page.click("#reply-btn")
            sent = until(lambda: standin.messages(), work, what="the template at the stand-in")
            assert sent[-1]["ContentSid"] == "HX000000000000000000000000000ac002" and "Body" not in sent[-1]
        finally:
            context.close()
