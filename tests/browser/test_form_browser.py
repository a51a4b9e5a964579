"""The hosted form in a real browser: Chromium fills the acme application served over real HTTP, on real Redis.

What the page sends is checked twice: as the requests Chromium made (action,
field id, values; debounced typing is one ``field_change``) and as what
:class:`state.forms.FormStore` then holds (``screen_state``: page, values,
changed fields). A highlight pushed through ``FormStore`` must be on screen
within one poll interval and acknowledged.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from service import hosted_form
from state.forms import FormCommand, FormSession, FormStore
from state.models import utcnow
from tests.browser.conftest import assert_shown_within_one_poll

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
from tests.browser.support import ARTIFACTS
YELLOW = "rgb(255, 245, 157)"
"""The highlight background (``#fff59d`` in form.css)."""


@pytest.fixture
def wait_until(page):
    """``wait_until(predicate, timeout_s=5)``: ``predicate()`` once truthy; fail after ``timeout_s``.

    Waits with ``page.wait_for_timeout`` so Playwright keeps delivering the
    page's events (requests, responses) meanwhile.
    """

    def wait(predicate, timeout_s: float = 5.0, interval_ms: int = 50):
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s}s")
            page.wait_for_timeout(interval_ms)

    return wait


@pytest.fixture
def forms(state_conn) -> FormStore:
    return FormStore(state_conn)


@pytest.fixture
def token(forms) -> str:
    form_token = secrets.token_urlsafe(16)
    forms.create(FormSession(form_token=form_token, tenant_id="acme-insurance", conversation_id=CUSTOMER, phone=CUSTOMER, created_at=utcnow()))
    return form_token


@pytest.fixture
def definition(tenants):
    return tenants.get("acme-insurance").form


@pytest.fixture
def sent(page):
    """Every activity body the page posted, and every answer's status, in order."""
    record = {"activity": [], "statuses": []}

    def on_request(request):
        if request.method == "POST" and request.url.endswith("/activity"):
            record["activity"].append(request.post_data_json)

    def on_response(response):
        if response.request.method == "POST" and response.url.endswith("/activity"):
            record["statuses"].append(response.status)

    page.on("request", on_request)
    page.on("response", on_response)
    return record


def open_form(page, live_server, token):
    page.goto(f"{live_server.url}/f/{token}")
    page.wait_for_selector("#lw-form[data-ready=true]")


def screen(forms, token, definition):
    return forms.screen_state(token, definition, utcnow())


def test_typing_and_paging_reach_screen_state(page, live_server, token, forms, definition, sent, wait_until):
    open_form(page, live_server, token)
    wait_until(lambda: (s := screen(forms, token, definition)) and s.last_action == "load")

    page.locator("#first_name").press_sequentially("Dana", delay=40)  # keystrokes, as a person types
    state = wait_until(lambda: (s := screen(forms, token, definition)) and s.fields.get("first_name") == "Dana" and s)
    assert state.screen_name == "page-1-applicant" and state.page_number == 1 and state.last_action == "field_change"
    assert [(c.field_id, c.to) for c in state.changed_fields] == [("first_name", "Dana")]
    assert [b["field_id"] for b in sent["activity"] if b["action"] == "field_change"] == ["first_name"], "typing is debounced into one post"

    page.fill("#last_name", "Reyes")
    page.fill("#date_of_birth", "1988-04-12")
    state = wait_until(lambda: (s := screen(forms, token, definition)) and s.fields.get("last_name") == "Reyes" and s.fields.get("date_of_birth") and s)
    assert state.fields["date_of_birth"] == "1988-04-12" and state.fields["first_name"] == "Dana"

    page.click("#page-1 [data-nav=next]")
    state = wait_until(lambda: (s := screen(forms, token, definition)) and s.page_number == 2 and s)
    assert state.screen_name == "page-2-contact" and state.last_action == "page_change" and state.changed_fields == []
    assert page.locator("#page-2").is_visible() and not page.locator("#page-1").is_visible()

    page.fill("#email", "dana@")  # not an address: Next stays on the page and says why
    page.click("#page-2 [data-nav=next]")
    assert "email" in page.locator("#email-error").inner_text().lower()
    assert page.locator("#page-2").is_visible()
    page.fill("#email", "dana@example.com")
    page.fill("#phone", "(555) 765-4321")
    state = wait_until(lambda: (s := screen(forms, token, definition)) and s.fields.get("phone") == "(555) 765-4321" and s.fields.get("email") == "dana@example.com" and s)
    assert state.fields["last_name"] == "Reyes", "every activity carries the whole form"

    every_field = {f.id for p in definition.pages for f in p.fields}
    assert all(set(body["fields"]) == every_field for body in sent["activity"])
    assert [b["action"] for b in sent["activity"]][:1] == ["load"] and "page_change" in [b["action"] for b in sent["activity"]]
    assert set(sent["statuses"]) == {201}

    page.reload()  # opens where the customer left off
    page.wait_for_selector("#lw-form[data-ready=true]")
    assert page.locator("#page-2").is_visible()
    assert page.input_value("#email") == "dana@example.com" and page.input_value("#first_name") == "Dana"


def test_highlight_appears_within_one_poll_interval_and_is_acked(page, live_server, token, forms, definition, wait_until):
    open_form(page, live_server, token)
    wait_until(lambda: (s := screen(forms, token, definition)) and s.last_action == "load")
    page.set_viewport_size({"width": 390, "height": 320})  # a short screen: the field starts out of view
    in_view = "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    assert not page.locator("#field-date_of_birth").evaluate(in_view)

    forms.push_command(token, FormCommand(command_id="h1", action="highlight", field_id="date_of_birth", label="Date of birth here", created_at=utcnow()))
    page.wait_for_selector("#field-date_of_birth.lw-highlighted", timeout=hosted_form.POLL_INTERVAL_MS * 3)
    # Timed on the page: Playwright's own selector wait polls with back-off (up to 500 ms late).
    assert_shown_within_one_poll(page.locator("#field-date_of_birth"), hosted_form.POLL_INTERVAL_MS)

    box = page.locator("#field-date_of_birth")
    wait_until(lambda: box.evaluate("el => getComputedStyle(el).backgroundColor") == YELLOW, timeout_s=1)  # after the fade-in
    assert box.locator(".lw-highlight-label").inner_text() == "Date of birth here"
    wait_until(lambda: box.evaluate(in_view), timeout_s=2)  # scrolled into view (smoothly)
    wait_until(lambda: forms.pending_commands(token) == [], timeout_s=2)
    page.set_viewport_size({"width": 390, "height": 844})
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(_artifact("highlight_date_of_birth.png")))

    # Shown once: nothing more arrives, and a later highlight on another page brings that page up.
    shown_at = box.get_attribute("data-highlighted-at-ms")
    page.wait_for_timeout(hosted_form.POLL_INTERVAL_MS * 1.5)
    assert page.locator(".lw-highlight-label").count() == 1 and box.get_attribute("data-highlighted-at-ms") == shown_at
    forms.push_command(token, FormCommand(command_id="h2", action="highlight", field_id="tobacco_use", label="Tobacco question", created_at=utcnow()))
    page.wait_for_selector("#field-tobacco_use.lw-highlighted", timeout=hosted_form.POLL_INTERVAL_MS * 3)
    assert page.locator("#page-3").is_visible() and page.locator(".lw-highlighted").count() == 1
    state = wait_until(lambda: (s := screen(forms, token, definition)) and s.page_number == 3 and s)
    assert state.screen_name == "page-3-health"
    wait_until(lambda: forms.pending_commands(token) == [], timeout_s=2)


def test_whole_application_reviewed_and_submitted(page, live_server, token, forms, definition, sent, wait_until):
    open_form(page, live_server, token)
    page.fill("#first_name", "Dana")
    page.fill("#last_name", "Reyes")
    page.fill("#date_of_birth", "1988-04-12")
    page.click("#page-1 [data-nav=next]")
    page.fill("#phone", "5557654321")
    page.fill("#email", "dana@example.com")
    page.click("#page-2 [data-nav=next]")
    page.check("#field-tobacco_use input[value=No]")
    page.fill("#height_inches", "66")
    page.fill("#weight_pounds", "140")
    page.click("#page-3 [data-nav=next]")
    page.select_option("#coverage_amount", "$500,000")
    page.select_option("#term_years", "20 years")
    page.click("#page-4 [data-nav=next]")
    page.click("#page-5 [data-nav=next]")  # nothing filled: stays, with reasons
    assert page.locator("#page-5").is_visible() and "required" in page.locator("#beneficiary_name-error").inner_text()
    page.fill("#beneficiary_name", "Alex Reyes")
    page.select_option("#beneficiary_relationship", "Spouse or partner")
    page.click("#page-5 [data-nav=next]")

    review = page.locator("#lw-review")
    assert review.locator("[data-review-for=first_name] dd").inner_text() == "Dana"
    assert review.locator("[data-review-for=tobacco_use] dd").inner_text() == "No"
    assert review.locator("[data-review-for=coverage_amount] dd").inner_text() == "$500,000"
    page.screenshot(path=str(_artifact("review_page.png")), full_page=True)

    page.click("#lw-submit")
    page.wait_for_selector("#lw-submitted", state="visible")
    session = wait_until(lambda: (s := forms.session(token)) and s.submitted_at and s)
    assert session.submitted_at is not None
    state = screen(forms, token, definition)
    assert state.submitted and state.last_action == "submit" and state.screen_name == "page-6-review"
    assert state.fields["beneficiary_relationship"] == "Spouse or partner" and state.fields["tobacco_use"] == "No"
    assert sent["activity"][-1]["action"] == "submit" and set(sent["statuses"]) == {201}

    page.reload()
    assert page.locator("#lw-submitted").is_visible() and not page.locator("#lw-pages").is_visible()


def test_expired_link_shows_a_page_not_a_stack_trace(page, live_server):
    response = page.goto(f"{live_server.url}/f/{secrets.token_urlsafe(16)}")
    assert response.status == 404
    assert "expired" in page.locator("h1").inner_text()


def _artifact(name: str) -> Path:
    """A path under ``tests/artifacts/`` (git-ignored) for an extra screenshot."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
