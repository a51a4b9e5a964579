"""The support desk in a real browser (Chromium): presence, assignment, hand-over, and SLA countdown and breach.

Two operators sign in; their live feeds make them online; an escalation is
assigned round robin and shows live as the assignee's; the assignee hands it
to the colleague; an operator who sets themselves away gets nothing new. The
SLA countdown ticks in the list; with the browser's clock moved forward
(Playwright's ``page.clock``) it turns to breached, and the SLA sweep run at
the deadline (its clock injected) raises the breach alert live.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from jobs.desk import check_sla_once
from state.tenant_config import TenantConfig
from tests.browser.support import ARTIFACTS, DESKTOP, post_sms, serve, until
from tests.conftest import ACME_NUMBER

pytestmark = pytest.mark.redis_server

ACME = ("acme-insurance", "dev-acme-api-key")
FIRST, SECOND = "+15557652001", "+15557652002"


@pytest.fixture
def dash_server(app):
    app.config.update(FEED_BLOCK_MS=1000, FEED_STREAM_S=120)
    with serve(app) as url:
        yield url


@pytest.fixture
def use_desk(tenants, settings):
    def apply(**desk_cfg) -> None:
        acme = tenants.get(ACME[0], cached=False)
        tenants.save(TenantConfig.model_validate({**acme.model_dump(), "desk": desk_cfg}), settings.env)

    return apply


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"desk_{name}.png"), full_page=True)


def signed_in(browser, base_url: str, operator: str, clock: bool = False):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    if clock:
        page.clock.install()
    page.goto(f"{base_url}/dashboard")
    page.fill("#tenant", ACME[0])
    page.fill("#operator", operator)
    page.fill("#apikey", ACME[1])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#live[data-live=on]")
    return context, page


def row(conversation_id: str) -> str:
    return f"#conversation-list li[data-conversation='{conversation_id}']"


def test_escalations_are_assigned_live_handed_over_and_skip_an_away_operator(browser, dash_server, use_desk, work):
    use_desk(assignment={"policy": "round_robin"})
    alice_ctx, alice = signed_in(browser, dash_server, "alice")
    bob_ctx, bob = signed_in(browser, dash_server, "bob")
    try:
        for page in (alice, bob):  # the live feed made them online
            page.wait_for_selector("#presence-btn[data-status=online]:has-text('You: online')")
        post_sms(dash_server, "I want to talk to a person", FIRST, ACME_NUMBER)
        until(lambda: bob.query_selector(row(FIRST) + "[data-owner=operator]:has-text('owner: alice')"), work,
              what="the escalation assigned to alice, live in bob's list")
        alice.wait_for_selector(row(FIRST) + ":has-text('owner: alice')")
        shot(alice, "1_assigned")

        # alice hands it to bob
        alice.click(row(FIRST))
        alice.wait_for_selector("#conversation[data-claimed-by=alice]")
        alice.select_option("#assign-to", "bob")
        alice.click("#assign-btn")
        alice.wait_for_selector("#conversation[data-claimed-by=bob]")
        until(lambda: "Reassigned to bob by alice." in alice.inner_text("#ctx-notes"), work, what="the reassignment note")
        bob.wait_for_selector(row(FIRST) + ":has-text('owner: bob')")
        shot(alice, "2_handed_to_bob")

        # bob steps away: the next escalation goes to alice although it is bob's turn
        bob.click("#presence-btn")
        bob.wait_for_selector("#presence-btn[data-status=away]:has-text('You: away')")
        post_sms(dash_server, "I want to talk to a person", SECOND, ACME_NUMBER)
        until(lambda: alice.query_selector(row(SECOND) + ":has-text('owner: alice')"), work, what="the next one to alice")
        assert "waiting" in alice.inner_text("#desk-summary")
    finally:
        alice_ctx.close()
        bob_ctx.close()


def test_the_sla_countdown_ticks_turns_breached_and_the_breach_alerts_live(browser, dash_server, use_desk, rt, work):
    use_desk(sla={"first_response_s": 900, "resolution_s": 7200})
    post_sms(dash_server, "I want to talk to a person", FIRST, ACME_NUMBER)
    work()
    context, page = signed_in(browser, dash_server, "alice", clock=True)
    try:
        mark = row(FIRST) + " .sla"
        page.wait_for_selector(mark + "[data-breached=false]:has-text('first response')")
        first = page.inner_text(mark)
        assert first.endswith(" left")
        page.clock.run_for(2000)
        until(lambda: page.inner_text(mark) != first, lambda: None, what="the countdown ticking")
        due_at = page.get_attribute(mark, "data-due")
        shot(page, "3_sla_countdown")

        page.clock.fast_forward("16:00")  # the browser's clock past the deadline
        page.wait_for_selector(mark + ".breached:has-text('SLA breached')")
        # the scheduler's sweep at the deadline (its clock injected) raises the alert, which arrives live
        due_ms = int(datetime.fromisoformat(due_at).timestamp() * 1000)
        assert check_sla_once(rt, now_ms=due_ms).breached == 1
        page.wait_for_selector(row(FIRST) + ".attention .alert-mark:has-text('SLA breached: first response')")
        shot(page, "4_sla_breached")
    finally:
        context.close()
