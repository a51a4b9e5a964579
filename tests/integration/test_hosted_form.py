"""The hosted form's HTTP surface (``service/hosted_form.py``) through the Flask test client, on real Redis.

Rendering from the example tenant's definition, activity validation (every
refusal writes nothing), the command queue shown once, and the rate limit.
"""

from __future__ import annotations

import io
import json
import re
import secrets

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from service import hosted_form
from state.forms import FormCommand, FormSession, FormStore
from state.keys import FormKeys
from state.models import utcnow
from tests.conftest import examples

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
PAGE_1 = "page-1-applicant"


@pytest.fixture
def forms(state_conn) -> FormStore:
    return FormStore(state_conn)


@pytest.fixture
def token(forms) -> str:
    form_token = secrets.token_urlsafe(16)
    assert forms.create(
        FormSession(form_token=form_token, tenant_id="acme-insurance", conversation_id=CUSTOMER, phone=CUSTOMER, created_at=utcnow())
    )
    return form_token


def definition(tenants):
    return tenants.get("acme-insurance").form


def every_field(tenants, **values: str) -> dict[str, str]:
    return {f.id: values.get(f.id, "") for p in definition(tenants).pages for f in p.fields}


def activity(tenants, **overrides):
    body = {"screen_name": PAGE_1, "page": 1, "fields": every_field(tenants, first_name="Dana"), "action": "field_change", "field_id": "first_name"}
    body.update(overrides)
    return body


def stream_length(r, token: str) -> int:
    """Entries in the session's activity stream (0 when it does not exist)."""
    return r.xlen(FormKeys(token).activity)


COMPLETE = dict(
    first_name="Dana", last_name="Reyes", date_of_birth="1988-04-12", phone="(555) 765-4321", email="dana@example.com",
    tobacco_use="No", height_inches="66", weight_pounds="140", coverage_amount="$500,000", term_years="20 years",
    beneficiary_name="Alex Reyes", beneficiary_relationship="Spouse or partner",
)


def test_page_renders_every_page_and_field_of_the_definition(client, token, tenants):
    response = client.get(f"/f/{token}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    form = definition(tenants)
    for n, page in enumerate(form.pages, start=1):
        assert f'data-screen-name="{page.screen_name}"' in html
        assert f'data-page="{n}"' in html
        for field in page.fields:
            assert f'data-field-id="{field.id}"' in html
            assert field.label.replace("'", "&#39;") in html
    assert 'type="date"' in html and 'type="tel"' in html and 'type="email"' in html
    assert 'type="radio" name="tobacco_use"' in html and '<select id="coverage_amount"' in html
    assert 'inputmode="decimal"' in html and 'data-max="96"' in html and 'maxlength="50"' in html and "required" in html
    assert f'data-poll-interval-ms="{hosted_form.POLL_INTERVAL_MS}"' in html
    assert 'name="viewport"' in html
    assert "http://" not in html and "https://" not in html, "nothing loaded from elsewhere"
    assert response.headers["Referrer-Policy"] == "no-referrer" and response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_static_files_are_served(client):
    js = client.get("/static/form/form.js")
    css = client.get("/static/form/form.css")
    assert js.status_code == 200 and "poll" in js.get_data(as_text=True)
    assert css.status_code == 200 and ".lw-highlighted" in css.get_data(as_text=True)


def test_page_opens_where_the_customer_left_off(client, token, tenants):
    fields = every_field(tenants, first_name="Dana", last_name="Reyes", phone="5557654321")
    response = client.post(f"/f/{token}/activity", json={"screen_name": "page-2-contact", "page": 2, "fields": fields, "action": "page_change", "field_id": None})
    assert response.status_code == 201
    html = client.get(f"/f/{token}").get_data(as_text=True)
    initial = json.loads(re.search(r'<script type="application/json" id="lw-initial">(.*?)</script>', html, re.S).group(1))
    assert initial["page"] == 2 and initial["fields"]["last_name"] == "Reyes" and not initial["submitted"]
    assert re.search(r'id="page-2"[^>]*data-page="2"[^>]*\n?[^>]*>', html)
    assert 'id="page-1" data-page="1"' in html and re.search(r'id="page-1"[^>]*hidden', html, re.S)


@pytest.mark.parametrize("path", ["/f/{unknown}", "/f/{unknown}/commands"])
def test_unknown_token_is_404(client, r, path):
    unknown = secrets.token_urlsafe(16)
    response = client.get(path.format(unknown=unknown))
    assert response.status_code == 404


def test_an_unknown_token_creates_no_redis_key(client, r):
    """Issue 18 item 9: the per-token limiter ran before the token was checked, so every guess made a key."""
    unknown = secrets.token_urlsafe(16)
    for path in (f"/f/{unknown}", f"/f/{unknown}/commands", f"/f/{unknown}/activity", f"/f/{unknown}/commands/ack"):
        response = client.post(path, json={}) if path.endswith(("activity", "ack")) else client.get(path)
        assert response.status_code == 404, path
    assert [k for k in r.scan_iter(count=1000) if unknown.encode() in k] == []


def test_wrong_guesses_are_limited_per_client_address(client, token, r):
    """Past FORM_GUESS_RATE unknown tokens, every form URL from that address is 429 (a valid token too); others are unaffected."""
    guesser = {"REMOTE_ADDR": "203.0.113.7"}
    limit = int(hosted_form.FORM_GUESS_RATE.split("/")[0])
    statuses = [client.get(f"/f/{secrets.token_urlsafe(16)}/commands", environ_base=guesser).status_code for _ in range(limit + 1)]
    assert statuses == [404] * limit + [429]
    page = client.get(f"/f/{secrets.token_urlsafe(16)}", environ_base=guesser)
    assert page.status_code == 429 and int(page.headers["Retry-After"]) >= 1
    valid = client.get(f"/f/{token}/commands", environ_base=guesser)
    assert valid.status_code == 429 and int(valid.headers["Retry-After"]) >= 1 and "too many" in valid.get_json()["error"]
    assert client.get(f"/f/{token}/commands", environ_base={"REMOTE_ADDR": "198.51.100.2"}).status_code == 200


def test_the_guess_limit_reads_the_client_address_through_trusted_proxies(app, client, token, settings):
    app.extensions["laneway"].settings = settings.model_copy(update={"trusted_proxy_hops": 1})
    limit = int(hosted_form.FORM_GUESS_RATE.split("/")[0])
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(limit + 1):
        client.get(f"/f/{secrets.token_urlsafe(16)}/commands", environ_base=proxy, headers={"X-Forwarded-For": "spoofed, 203.0.113.9"})
    assert client.get(f"/f/{token}/commands", environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 429
    assert client.get(f"/f/{token}/commands", environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 200


def test_malformed_token_is_404_without_touching_redis(client):
    assert client.get("/f/a%20b").status_code == 404
    assert client.post("/f/short/activity", json={}).status_code == 404


def test_activity_is_recorded_and_becomes_screen_state(client, token, tenants, forms):
    first = client.post(f"/f/{token}/activity", json=activity(tenants, action="load", field_id=None, fields=every_field(tenants)))
    second = client.post(f"/f/{token}/activity", json=activity(tenants))
    assert first.status_code == 201 and second.status_code == 201
    assert re.fullmatch(r"\d+-\d+", second.get_json()["id"])
    state = forms.screen_state(token, definition(tenants), utcnow())
    assert state.screen_name == PAGE_1 and state.page_number == 1
    assert state.fields["first_name"] == "Dana"
    assert [(c.field_id, c.from_, c.to) for c in state.changed_fields] == [("first_name", "", "Dana")]
    assert state.is_fresh and not state.submitted


@pytest.mark.parametrize(
    "change, status",
    [
        ({"extra": 1}, 400),
        ({"action": "delete"}, 400),
        ({"page": 0}, 400),
        ({"page": 7}, 400),
        ({"page": "1"}, 400),
        ({"screen_name": "page-2-contact"}, 400),  # not page 1's
        ({"screen_name": "<script>"}, 400),
        ({"field_id": "ssn"}, 400),
        ({"fields": {"ssn": "123-45-6789"}}, 400),
        ({"fields": {"first_name": 5}}, 400),
        ({"fields": {"first_name": "x" * (hosted_form.MAX_FIELD_VALUE_CHARS + 1)}}, 400),
        ({"fields": ["first_name"]}, 400),
    ],
)
def test_bad_activity_is_refused_and_nothing_is_written(client, token, tenants, r, change, status):
    response = client.post(f"/f/{token}/activity", json=activity(tenants, **change))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]
    assert stream_length(r, token) == 0


def test_malformed_json_is_400_and_wrong_type_415(client, token, r):
    assert client.post(f"/f/{token}/activity", data="{not json", content_type="application/json").status_code == 400
    assert client.post(f"/f/{token}/activity", data="[]", content_type="application/json").status_code == 400
    assert client.post(f"/f/{token}/activity", data="page=1", content_type="application/x-www-form-urlencoded").status_code == 415
    assert stream_length(r, token) == 0


def test_oversize_activity_is_413_and_nothing_is_written(client, token, tenants, r):
    body = json.dumps(activity(tenants)) + " " * hosted_form.MAX_ACTIVITY_BYTES
    response = client.post(f"/f/{token}/activity", data=body, content_type="application/json")
    assert response.status_code == 413
    assert stream_length(r, token) == 0


def test_oversize_chunked_activity_is_413_and_nothing_is_written(client, token, tenants, r):
    body = (json.dumps(activity(tenants)) + " " * hosted_form.MAX_ACTIVITY_BYTES).encode()
    response = client.post(
        f"/f/{token}/activity", input_stream=io.BytesIO(body), content_type="application/json",
        headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True},  # as gunicorn serves it
    )
    assert response.status_code == 413
    assert stream_length(r, token) == 0


def test_activity_for_unknown_token_is_404_and_nothing_is_written(client, tenants, r):
    unknown = secrets.token_urlsafe(16)
    response = client.post(f"/f/{unknown}/activity", json=activity(tenants))
    assert response.status_code == 404
    assert stream_length(r, unknown) == 0


def test_incomplete_submit_is_refused_complete_submit_closes_the_form(client, token, tenants, forms, r):
    incomplete = activity(tenants, screen_name="page-6-review", page=6, action="submit", field_id=None)
    refused = client.post(f"/f/{token}/activity", json=incomplete)
    assert refused.status_code == 400 and "Last name is required" in refused.get_json()["error"]
    assert forms.session(token).submitted_at is None and stream_length(r, token) == 0

    too_tall = activity(tenants, screen_name="page-6-review", page=6, action="submit", field_id=None, fields=every_field(tenants, **{**COMPLETE, "height_inches": "140"}))
    refused = client.post(f"/f/{token}/activity", json=too_tall)
    assert refused.status_code == 400 and "Height (inches) must be at most 96" in refused.get_json()["error"]
    not_a_number = activity(tenants, screen_name="page-6-review", page=6, action="submit", field_id=None, fields=every_field(tenants, **{**COMPLETE, "weight_pounds": "nan"}))
    assert client.post(f"/f/{token}/activity", json=not_a_number).status_code == 400

    bad_choice = activity(tenants, screen_name="page-6-review", page=6, action="submit", field_id=None, fields=every_field(tenants, **{**COMPLETE, "term_years": "99 years"}))
    assert client.post(f"/f/{token}/activity", json=bad_choice).status_code == 400

    complete = activity(tenants, screen_name="page-6-review", page=6, action="submit", field_id=None, fields=every_field(tenants, **COMPLETE))
    assert client.post(f"/f/{token}/activity", json=complete).status_code == 201
    assert forms.session(token).submitted_at is not None
    assert forms.screen_state(token, definition(tenants), utcnow()).submitted

    again = client.post(f"/f/{token}/activity", json=activity(tenants))
    assert again.status_code == 409
    html = client.get(f"/f/{token}").get_data(as_text=True)
    assert '"submitted": true' in html


def test_each_command_is_served_until_acked_then_never_again(client, token, forms):
    forms.push_command(token, FormCommand(command_id="c1", action="highlight", field_id="date_of_birth", label="Date of birth", created_at=utcnow()))
    forms.push_command(token, FormCommand(command_id="c2", action="highlight", field_id="last_name", label="Your last name", created_at=utcnow()))

    first = client.get(f"/f/{token}/commands").get_json()
    assert first["poll_interval_ms"] == hosted_form.POLL_INTERVAL_MS
    assert [(c["command_id"], c["field_id"], c["label"]) for c in first["commands"]] == [
        ("c1", "date_of_birth", "Date of birth"),
        ("c2", "last_name", "Your last name"),
    ]
    assert client.get(f"/f/{token}/commands").get_json()["commands"] == first["commands"], "pending until acked"

    ack = client.post(f"/f/{token}/commands/ack", json={"ids": [first["commands"][0]["id"]]})
    assert ack.status_code == 200 and ack.get_json() == {"acked": 1}
    assert [c["command_id"] for c in client.get(f"/f/{token}/commands").get_json()["commands"]] == ["c2"]

    both = client.post(f"/f/{token}/commands/ack", json={"ids": [c["id"] for c in first["commands"]]})
    assert both.get_json() == {"acked": 1}, "an id already acked counts nothing"
    assert client.get(f"/f/{token}/commands").get_json()["commands"] == []


def test_nested_json_is_400_on_every_form_endpoint(client, token, forms):
    """JSON nested deeper than the parser recurses (issue 18 item 7): 400 naming it, nothing written; it was a 500."""
    forms.push_command(token, FormCommand(command_id="c1", field_id="first_name", label="First name", created_at=utcnow()))
    for path, depth in (("activity", 8_000), ("commands/ack", 2_000)):
        response = client.post(f"/f/{token}/{path}", data=b"[" * depth + b"]" * depth, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        assert "not valid JSON" in response.get_json()["error"] and "recursion" in response.get_json()["error"]
    assert len(forms.pending_commands(token)) == 1
    assert forms.screen_state(token, None, utcnow()) is None


def test_an_over_long_screen_name_is_400_naming_it(client, token):
    """A screen_name over 80 characters (no page to compare it with) broke the stored model: 500, now 400."""
    response = client.post(f"/f/{token}/activity", json={"screen_name": "x" * 90, "action": "load"})
    assert response.status_code == 400 and "screen_name" in response.get_json()["error"]


@pytest.mark.parametrize(
    "body", [{"ids": []}, {"ids": ["nope"]}, {"ids": "1-0"}, {"ids": [1]}, {"id": ["1-0"]}, {"ids": ["1-0"] * (hosted_form.MAX_ACK_IDS + 1)}]
)
def test_bad_ack_is_400_and_acks_nothing(client, token, forms, body):
    forms.push_command(token, FormCommand(command_id="c1", action="highlight", field_id="email", label="Email", created_at=utcnow()))
    response = client.post(f"/f/{token}/commands/ack", json=body)
    assert response.status_code == 400
    assert len(client.get(f"/f/{token}/commands").get_json()["commands"]) == 1


def test_requests_over_the_rate_are_429_with_retry_after(client, token, monkeypatch):
    from limits import parse

    monkeypatch.setattr(hosted_form, "_rate", parse("3/minute"))
    statuses = [client.get(f"/f/{token}/commands").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get(f"/f/{token}/commands")
    assert int(limited.headers["Retry-After"]) >= 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
activity_like = st.fixed_dictionaries(
    {},
    optional={
        "screen_name": st.sampled_from(["page-1-applicant", "page-6-review", "", "x" * 90]) | json_values,
        "page": st.integers(-2, 9) | json_values,
        "fields": st.dictionaries(st.sampled_from(["first_name", "phone", "ssn", ""]), st.text(max_size=30) | json_values, max_size=4),
        "action": st.sampled_from(["load", "field_change", "page_change", "submit", "nope"]),
        "field_id": st.sampled_from(["first_name", "ssn", None]) | json_values,
        "extra": json_values,
    },
)


@pytest.mark.property
@hypothesis_settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=activity_like | json_values)
# Found by the fuzzer (issue 18): a screen_name over 80 characters with no page passed the body's
# unanchored pattern and broke the stored model's max_length outside request validation (500).
@example(body={"screen_name": "x" * 90, "action": "load"})
@example(body={"screen_name": "page-1-applicant" + "-x" * 40, "action": "field_change", "fields": {}})
# Nested deeper than any parser recursion (sent raw: json.dumps cannot write it): RecursionError, 500.
@example(body=b"[" * 8_000 + b"]" * 8_000)
@example(body=b'{"fields":' * 1_200 + b"1" + b"}" * 1_200)
def test_any_json_activity_is_answered_never_500(client, token, monkeypatch, body):
    # Far more examples than the per-token rate (600/minute) under `make fuzz`: the limit is not under test here.
    from limits import parse

    monkeypatch.setattr(hosted_form, "_rate", parse("1000000/minute"))
    raw = body if isinstance(body, bytes) else json.dumps(body)
    response = client.post(f"/f/{token}/activity", data=raw, content_type="application/json")
    assert response.status_code in (201, 400, 409), (body, response.get_json())
    assert response.is_json and response.get_json().get("error" if response.status_code >= 400 else "id")
