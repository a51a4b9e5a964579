"""The operator dashboard in a real browser: Debian's Chromium (Playwright, ``executable_path``), a live
werkzeug server on the test Redis, the worker run in burst between checks, the Twilio stand-in.

An operator signs in, sees a new escalation appear without a reload (the
customer's SMS goes through the signed webhook over HTTP), claims it, replies
(the reply reaches the Twilio stand-in from the tenant's number), and sees the
customer's next text appear live in the open conversation; then hands back.
Screenshots (desktop and phone) go to ``tests/artifacts/``. An operator of the
other tenant sees and can do nothing of it.
"""

from __future__ import annotations


import pytest

from tests.browser.support import (
    ARTIFACTS, DESKTOP, PHONE, post_sms, serve, until,
)
from tests.conftest import ACME_NUMBER, BRIGHT_NUMBER

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
BRIGHT_CUSTOMER = "+15557659999"
ACME = ("acme-insurance", "dev-acme-api-key")
BRIGHT = ("bright-clinic", "dev-bright-api-key")


@pytest.fixture
def dash_server(app):
    app.config.update(FEED_BLOCK_MS=1000, FEED_STREAM_S=120)
    with serve(app) as url:
        yield url


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard_{name}.png"), full_page=True)


def sign_in(page, base_url: str, tenant: tuple[str, str], operator: str) -> None:
    page.goto(f"{base_url}/dashboard")
    page.fill("#tenant", tenant[0])
    page.fill("#operator", operator)
    page.fill("#apikey", tenant[1])
    page.click("#signin-form button[type=submit]")


def row(conversation_id: str) -> str:
    return f"#conversation-list li[data-conversation='{conversation_id}']"


def test_an_operator_takes_over_an_escalation_live(browser, dash_server, work, standin):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    requests_seen: list[str] = []
    page.on("request", lambda req: requests_seen.append(req.url))
    try:
        sign_in(page, dash_server, ACME, "alice")
        page.wait_for_selector("#live[data-live=on]")
        assert page.evaluate("sessionStorage.getItem('laneway.session')").count("dev-acme-api-key") == 1
        page.evaluate("window.__no_reload = 'still here'")
        shot(page, "1_signed_in")

        # A customer asks for a person; the row appears, marked, without a reload.
        post_sms(dash_server, "I want to talk to a person", CUSTOMER, ACME_NUMBER)
        until(lambda: page.query_selector(row(CUSTOMER) + ".attention"), work, what="the escalation in the live list")
        assert page.evaluate("window.__no_reload") == "still here"
        assert "waiting human" in page.inner_text(row(CUSTOMER))
        shot(page, "2_escalation_live")

        # Claim it and reply.
        page.click(row(CUSTOMER))
        page.wait_for_selector("#conversation[data-status=waiting_human]")
        page.click("#claim-btn")
        page.wait_for_selector("#conversation[data-claimed-by=alice]")
        standin.clear()
        page.fill("#reply-text", "Hi, I'm Alice from Acme. How can I help?")
        page.click("#reply-btn")
        sent = until(
            lambda: [m for m in standin.messages() if m["Body"] == "Hi, I'm Alice from Acme. How can I help?"],
            work, what="the human reply at the Twilio stand-in",
        )
        assert (sent[0]["To"], sent[0]["From"]) == (CUSTOMER, ACME_NUMBER)
        page.wait_for_selector("#transcript li[data-author=human]")

        # The customer's next text appears live in the open conversation.
        post_sms(dash_server, "My policy number is AC-12345", CUSTOMER, ACME_NUMBER)
        until(lambda: "AC-12345" in page.inner_text("#transcript"), work, what="the customer's text in the open view")
        assert page.evaluate("window.__no_reload") == "still here"
        shot(page, "3_conversation_claimed")

        # A note and a hand-back.
        page.fill("#note-text", "Policy AC-12345, asked for a person.")
        page.click("#note-btn")
        until(lambda: "Policy AC-12345" in page.inner_text("#ctx-notes"), work, what="the note")
        # The customer's text is unanswered: the first click warns, the second hands back.
        page.click("#handback-btn")
        page.wait_for_selector("#handback-warning:not([hidden])")
        page.click("#handback-btn")
        until(lambda: page.query_selector("#conversation[data-status=active]"), work, what="the hand-back")
        assert page.get_attribute("#conversation", "data-claimed-by") == ""

        # Phone screen: the list, then the conversation alone.
        page.set_viewport_size(PHONE)
        page.click("#back")
        page.wait_for_selector(row(CUSTOMER))
        shot(page, "4_phone_list")
        page.click(row(CUSTOMER))
        page.wait_for_selector("#conversation:not([hidden])")
        assert not page.is_visible(".list-pane")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
        shot(page, "5_phone_conversation")
        assert not [u for u in requests_seen if "dev-acme-api-key" in u], "the API key went into a URL"
    finally:
        context.close()


def test_an_operator_of_another_tenant_sees_and_does_nothing(browser, dash_server, work, standin):
    post_sms(dash_server, "I want to talk to a person", CUSTOMER, ACME_NUMBER)
    post_sms(dash_server, "hello", BRIGHT_CUSTOMER, BRIGHT_NUMBER)
    work()
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # Bright's key for Acme's tenant: refused at sign-in.
        sign_in(page, dash_server, ("acme-insurance", BRIGHT[1]), "mallory")
        page.wait_for_selector("#signin-error:has-text('does not belong')")
        assert page.is_hidden("#app")

        # Signed in to Bright: Bright's conversation only, live.
        sign_in(page, dash_server, BRIGHT, "mallory")
        page.wait_for_selector(row(BRIGHT_CUSTOMER))
        page.wait_for_selector("#live[data-live=on]")
        post_sms(dash_server, "still need a person", CUSTOMER, ACME_NUMBER)
        work()
        page.wait_for_timeout(1500)  # a feed event of Acme's would have refreshed the list by now
        assert page.query_selector(row(CUSTOMER)) is None
        assert CUSTOMER not in page.content()

        # Even calling the API from the page with Bright's key: 404 for everything of Acme's.
        statuses = page.evaluate(
            """async ([cid]) => {
                 const s = JSON.parse(sessionStorage.getItem('laneway.session'));
                 const h = {'Authorization': 'Bearer ' + s.key, 'Content-Type': 'application/json'};
                 const base = '/api/v1/tenants/acme-insurance';
                 const c = base + '/conversations/' + encodeURIComponent(cid);
                 const calls = [['GET', base + '/conversations'], ['GET', c + '/context'], ['POST', c + '/claim'],
                                ['POST', c + '/reply', {text: 'hi'}], ['POST', c + '/handback'], ['POST', c + '/close'],
                                ['POST', base + '/events/token']];
                 const out = [];
                 for (const [m, u, b] of calls) {
                   const r = await fetch(u, {method: m, headers: h, body: b ? JSON.stringify(b) : undefined});
                   out.push(r.status);
                 }
                 const es = await fetch(base + '/events?token=x');
                 out.push(es.status);
                 return out;
               }""",
            [CUSTOMER],
        )
        assert statuses == [404, 404, 404, 404, 404, 404, 404, 401]
        shot(page, "6_other_tenant")
    finally:
        context.close()
    work()
    assert not [m for m in standin.messages() if m["Body"] == "hi"]


def test_a_claim_silences_the_ai_and_hand_back_answers_what_was_left(browser, dash_server, work, standin):
    post_sms(dash_server, "what are your opening hours?", CUSTOMER, ACME_NUMBER)
    work()
    assert len(standin.messages()) == 1
    standin.clear()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, dash_server, ACME, "alice")
        page.wait_for_selector("#live[data-live=on]")
        page.click(row(CUSTOMER))
        page.wait_for_selector("#conversation[data-owner=ai]")
        page.click("#claim-btn")
        page.wait_for_selector("#conversation[data-owner=operator][data-claimed-by=alice]")
        assert "AI silent" in page.inner_text("#conv-meta")

        # The customer texts while alice owns it: shown live, marked unanswered, and the AI says nothing.
        post_sms(dash_server, "can I pay by card?", CUSTOMER, ACME_NUMBER)
        until(lambda: page.query_selector("#transcript li[data-unanswered=true]"), work, what="the unanswered text")
        assert "can I pay by card?" in page.inner_text("#transcript li[data-unanswered=true]")
        work()
        assert standin.messages() == []
        page.wait_for_selector(row(CUSTOMER) + "[data-owner=operator] .unanswered-mark")
        shot(page, "6_claimed_unanswered")

        # Hand-back warns, then the AI answers the message left unanswered.
        page.click("#handback-btn")
        assert "unanswered" in page.inner_text("#handback-warning")
        page.click("#handback-btn")
        answered = until(lambda: standin.messages(), work, what="the AI's answer after the hand-back")
        assert answered[0]["To"] == CUSTOMER
        until(lambda: page.query_selector("#conversation[data-owner=ai][data-unanswered='0']"), work, what="the AI owning it again")
        assert page.query_selector("#transcript li[data-unanswered=true]") is None
    finally:
        context.close()


def test_an_expired_claim_shows_live_as_back_in_the_queue_with_an_alert(browser, dash_server, r, rt, work, standin):
    from jobs.claims import expire_claims_once
    from state import keys as K

    post_sms(dash_server, "what are your opening hours?", CUSTOMER, ACME_NUMBER)
    work()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, dash_server, ACME, "alice")
        page.wait_for_selector("#live[data-live=on]")
        page.click(row(CUSTOMER))
        page.click("#claim-btn")
        page.wait_for_selector(row(CUSTOMER) + "[data-owner=operator]")
        work()
        # alice went away: her claim's deadline passes (moved back instead of sleeping), the sweep runs.
        keys = K.ConversationKeys(ACME[0], CUSTOMER)
        r.hset(keys.claim, "expires_at", 1)
        r.zadd(K.claim_expiry_index(), {K.pending_member(ACME[0], CUSTOMER): 1})
        assert expire_claims_once(rt).expired == 1
        page.wait_for_selector(row(CUSTOMER) + "[data-owner=queue].attention .alert-mark:has-text('claim expired')")
        page.wait_for_selector("#conversation[data-owner=queue]")
        shot(page, "7_claim_expired")
    finally:
        context.close()


def test_a_replys_delivery_badge_shows_the_carriers_error(browser, dash_server, work, standin):
    """Twilio reports the reply undelivered with 30007 (carrier filtering): the row needs attention and the
    reply carries a badge with the code, its meaning in the title."""
    standin.send_callbacks_to(dash_server)
    standin.deliver(to=CUSTOMER, outcome="undelivered", error_code=30007)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, dash_server, ACME, "alice")
        page.wait_for_selector("#live[data-live=on]")
        post_sms(dash_server, "What are your opening hours?", CUSTOMER, ACME_NUMBER)
        until(lambda: len(standin.callbacks()) >= 2, work, what="the stand-in's sent and undelivered callbacks")
        page.reload()  # the alert is on the feed, but reloading makes the check independent of it
        page.wait_for_selector(row(CUSTOMER) + ".attention")
        page.click(row(CUSTOMER))
        badge = page.wait_for_selector("#transcript .msg-delivery .badge.delivery-undelivered")
        assert badge.inner_text() == "undelivered 30007"
        assert "carrier filtering" in badge.get_attribute("title")
        shot(page, "8_delivery_error_badge")
    finally:
        context.close()
