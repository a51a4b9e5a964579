"""The guide lane after the link: page-by-page guidance from the customer's screen."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from agents import route, run_agent
from agents.lanes.form_guide import NOT_OPENED, REVIEW, WHICH_TO_FIX
from state.form_definition import FormDefinition
from state.screen import ScreenActivity, screen_state_of
from tests.unit.agents.conftest import T0, make_turn, new_state

FORM = FormDefinition.model_validate({
    "form_id": "life",
    "title": "Life insurance application",
    "pages": [
        {"id": "applicant", "title": "About you", "screen_name": "page-1-applicant", "fields": [
            {"id": "first_name", "label": "First name"},
            {"id": "last_name", "label": "Last name"},
            {"id": "date_of_birth", "label": "Date of birth", "type": "date"},
        ]},
        {"id": "contact", "title": "Contact details", "screen_name": "page-2-contact", "fields": [
            {"id": "email", "label": "Email", "type": "email"},
        ]},
        {"id": "review", "title": "Review", "screen_name": "page-3-review", "fields": []},
    ],
})


@pytest.fixture
def form_tenant(acme):
    return acme.model_copy(update={"form": FORM})


def screen(fields, previous=None, screen_name="page-1-applicant", action="field_change", field_id=None):
    latest = ScreenActivity(screen_name=screen_name, fields=fields, action=action, field_id=field_id, at=T0)
    before = ScreenActivity(screen_name=screen_name, fields=previous, action="field_change", at=T0) if previous is not None else None
    return screen_state_of(latest, before, FORM, T0 + timedelta(seconds=2))


def answer(tenant, text, scr, channel_state=None):
    state = channel_state or new_state(tenant, lane="guide", form_token="tok", slots={"first_name": "Dana"})
    turn = replace(make_turn(tenant, state, text), screen=scr)
    return run_agent("guide", turn, route(turn))


def test_it_reads_back_what_was_typed_and_highlights_the_next_field(form_tenant):
    result = answer(form_tenant, "ok what now?", screen({"first_name": "Dana", "last_name": "Whitfield"}, {"first_name": "Dana"}))
    [reply] = result.outbound
    assert "your first name is Dana and your last name is Whitfield" in reply.text
    assert "Next is your date of birth." in reply.text
    [command] = result.commands
    assert command.field_id == "date_of_birth" and command.label == "Date of birth"


def test_a_correction_is_noticed(form_tenant):
    result = answer(form_tenant, "done", screen({"first_name": "Dina", "last_name": "W"}, {"first_name": "Dana", "last_name": "W"}))
    assert result.outbound[0].text.startswith("I see you changed your first name from Dana to Dina.")


def test_a_date_is_never_read_back(form_tenant):
    fields = {"first_name": "Dana", "last_name": "W", "date_of_birth": "1990-04-01"}
    result = answer(form_tenant, "next?", screen(fields, {"first_name": "Dana", "last_name": "W"}))
    text = result.outbound[0].text
    assert "1990" not in text and "your date of birth is filled in" in text
    assert "Tap Next for Contact details." in text and result.commands == []


def test_a_stale_screen_name_falls_back_to_the_fields(form_tenant):
    scr = screen({"email": "d@example.com"}, {}, screen_name="old-contact-page")
    assert scr.page_number == 2 and scr.page_title == "Contact details"
    assert "Tap Next for Review." in answer(form_tenant, "next", scr).outbound[0].text


def test_review_page_and_submission(form_tenant):
    review = screen({"first_name": "Dana"}, {"first_name": "Dana"}, screen_name="page-3-review", action="page_change")
    assert answer(form_tenant, "now what", review).outbound[0].text.endswith(REVIEW)
    done = screen({"first_name": "Dana"}, {"first_name": "Dana"}, screen_name="page-3-review", action="submit")
    assert answer(form_tenant, "did it work?", done).outbound[0].text.startswith("Your application is submitted. Thank you, Dana!")


def test_a_no_asks_what_to_fix_and_points_at_the_page(form_tenant):
    result = answer(form_tenant, "no", screen({"first_name": "Dana", "last_name": "W"}, {"first_name": "Dana"}))
    assert result.outbound[0].text == WHICH_TO_FIX
    assert [c.field_id for c in result.commands] == ["first_name"]


def test_before_the_form_is_opened_on_a_call_the_caller_is_told_to_open_it(form_tenant):
    state = new_state(form_tenant, lane="guide", form_token="tok", slots={"first_name": "Dana", "phone": "+15557655432"})
    turn = make_turn(form_tenant, state, "what now")
    voice = replace(turn, messages=tuple(m.model_copy(update={"channel": "voice"}) for m in turn.messages))
    assert run_agent("guide", voice, route(voice)).outbound[0].text == NOT_OPENED


def test_without_a_screen_over_sms_it_says_where_the_link_went(form_tenant):
    state = new_state(form_tenant, lane="guide", form_token="tok", slots={"first_name": "Dana", "phone": "+15557655432"})
    turn = make_turn(form_tenant, state, "hmm")
    assert "ending 5432" in run_agent("guide", turn, route(turn)).outbound[0].text
