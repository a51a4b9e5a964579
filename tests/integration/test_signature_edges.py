"""Signature edge cases: JSON bodies (``bodySHA256``), forwarded headers, a replay hours later."""

from __future__ import annotations

import hashlib
import io
import json
from urllib.parse import urlencode

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator

from service import create_app
from service.errors import ApiError
from service.twilio_signature import check_twilio_signature
from state.keys import ConversationKeys
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, sign, twilio_form

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
TOKEN = AUTH_TOKENS[ACME_NUMBER]
NOT_UTF8 = b'{"Body": "\xff\xfe"}'
RAW_JSON = b'{"MessageSid": "SM' + b"a" * 32 + b'", "Body": "caf\xc3\xa9 \xf0\x9f\x98\x80", "Payload": {"a": [1, 2.50]}}'


def json_check(raw: bytes, query: str, signature: str, path: str = "/hooks/json") -> None:
    """Run :func:`check_twilio_signature` on a JSON POST of ``raw`` to ``path?query``."""
    with Flask(__name__).test_request_context(
        f"{path}?{query}", method="POST", data=raw, content_type="application/json", headers={"X-Twilio-Signature": signature}
    ) as ctx:
        check_twilio_signature(ctx.request, TOKEN, PUBLIC_BASE_URL)


def json_signature(raw: bytes, path: str = "/hooks/json") -> tuple[str, str]:
    """Sign ``raw`` as Twilio does: ``bodySHA256`` in the query, the URL alone signed. Returns (query, signature)."""
    query = f"bodySHA256={hashlib.sha256(raw).hexdigest()}"
    return query, RequestValidator(TOKEN).compute_signature(f"{PUBLIC_BASE_URL}{path}?{query}", {})


def test_a_json_body_signed_with_body_sha256_validates():
    query, signature = json_signature(RAW_JSON)
    json_check(RAW_JSON, query, signature)


@pytest.mark.parametrize(
    "reencode",
    [
        lambda doc: json.dumps(doc).encode(),  # other whitespace, \u escapes
        lambda doc: json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(),
        lambda doc: json.dumps(dict(reversed(list(doc.items()))), ensure_ascii=False).encode(),  # key order
    ],
)
def test_the_same_json_reserialised_no_longer_validates(reencode):
    query, signature = json_signature(RAW_JSON)
    reencoded = reencode(json.loads(RAW_JSON))
    assert json.loads(reencoded) == json.loads(RAW_JSON) and reencoded != RAW_JSON
    with pytest.raises(ApiError) as refused:
        json_check(reencoded, query, signature)
    assert refused.value.status == 403


def test_a_tampered_json_body_with_the_original_hash_is_refused():
    query, signature = json_signature(RAW_JSON)
    with pytest.raises(ApiError) as refused:
        json_check(RAW_JSON.replace(b"caf", b"cat"), query, signature)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "raw,query",
    [
        (RAW_JSON, ""),  # no bodySHA256: the body would be unsigned
        (NOT_UTF8, "bodySHA256=" + hashlib.sha256(NOT_UTF8).hexdigest()),  # not UTF-8
    ],
)
def test_an_unhashable_json_body_is_refused_not_a_500(raw, query):
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_BASE_URL}/hooks/json" + (f"?{query}" if query else ""), {})
    with pytest.raises(ApiError) as refused:
        json_check(raw, query, signature)
    assert refused.value.status == 403


def post_form(client, form, url: str, headers: dict[str, str] | None = None):
    return client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, TOKEN, url), **(headers or {})})


PUBLIC_URL = PUBLIC_BASE_URL + "/twilio/messaging"
PROXIED_URL = "http://internal.laneway.test:8443/twilio/messaging"
PROXIED = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "internal.laneway.test:8443"}


@pytest.fixture
def proxied_client(r, state_conn, settings, rt):
    """A client for an app configured with ``LANEWAY_TRUSTED_PROXY_HOPS=1``."""
    app = create_app(
        {"SETTINGS": settings.model_copy(update={"trusted_proxy_hops": 1}), "QUEUE_REDIS": r, "STATE_REDIS": state_conn, "TESTING": True}
    )
    app.extensions["laneway"].tenants.cache_ttl_s = 0
    return app.test_client()


def test_forwarded_headers_are_ignored_unless_trusted(client, r):
    accepted = post_form(client, twilio_form("hello", CUSTOMER), PUBLIC_URL, PROXIED)
    assert accepted.status_code == 200  # checked against LANEWAY_PUBLIC_BASE_URL, headers ignored
    before = r.dbsize()
    proxied = post_form(client, twilio_form("hello", CUSTOMER), PROXIED_URL, PROXIED)
    assert proxied.status_code == 403 and r.dbsize() == before


def test_a_spoofed_forwarded_host_is_refused_when_not_trusted(client, r):
    """A signature Twilio made for another host (same account, another app) must not pass here."""
    before = r.dbsize()
    spoofed = post_form(
        client, twilio_form("hello", CUSTOMER), "https://evil.test/twilio/messaging", {"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https"}
    )
    assert spoofed.status_code == 403 and r.dbsize() == before


def test_trusted_forwarded_headers_replace_scheme_and_host(proxied_client, r):
    assert post_form(proxied_client, twilio_form("hello", CUSTOMER), PROXIED_URL, PROXIED).status_code == 200
    before = r.dbsize()
    assert post_form(proxied_client, twilio_form("hello", CUSTOMER), PUBLIC_URL, PROXIED).status_code == 403
    assert r.dbsize() == before
    # without the headers (request skipped the proxy) the public base URL still applies
    assert post_form(proxied_client, twilio_form("hello", CUSTOMER), PUBLIC_URL).status_code == 200


def test_only_the_trusted_hop_counts_in_a_forwarded_chain(proxied_client, r):
    """A client-supplied value before the proxy's own is not trusted with one hop."""
    before = r.dbsize()
    chain = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "evil.test, internal.laneway.test:8443"}
    assert post_form(proxied_client, twilio_form("hi", CUSTOMER), "https://evil.test/twilio/messaging", chain).status_code == 403
    assert r.dbsize() == before
    assert post_form(proxied_client, twilio_form("hi", CUSTOMER), PROXIED_URL, chain).status_code == 200


def age_everything(r, seconds: int) -> None:
    """Make Redis look ``seconds`` older: shorten every TTL (expiring what would have) and age ``seen`` scores."""
    for key in r.scan_iter(count=1000):
        ttl_ms = r.pttl(key)
        if ttl_ms > 0:
            if ttl_ms <= seconds * 1000:
                r.delete(key)
                continue
            r.pexpire(key, ttl_ms - seconds * 1000)
        if r.type(key) == b"zset" and b":seen" in key:
            r.zadd(key, {member: score - seconds * 1000 for member, score in r.zrange(key, 0, -1, withscores=True)}, xx=True)


def test_a_replay_hours_later_is_deduped(post_sms, work, standin, operator_get, r, client):
    first, form = post_sms("What are your opening hours?", CUSTOMER)
    assert first.status_code == 200
    assert work()
    age_everything(r, 6 * 3600)
    keys = ConversationKeys("acme-insurance", CUSTOMER)
    assert r.zscore(keys.seen, form["MessageSid"]) is not None  # still inside LANEWAY_DEDUPE_TTL_S (7 days)

    replay = client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, TOKEN)})
    assert replay.status_code == 200 and replay.data == first.data
    assert r.llen(keys.inbox) == 0  # no second inbox entry
    work()
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 1
    assert len([t for t in convo["turns"] if t["direction"] == "inbound"]) == 1
    assert len([m for m in standin.messages() if m["To"] == CUSTOMER]) == 1


def _chunked(client, path: str, body: bytes, content_type: str, **headers: str):
    """POST ``body`` chunked (no Content-Length), as gunicorn hands such a request to the app."""
    return client.post(
        path, input_stream=io.BytesIO(body), content_type=content_type,
        headers={"Transfer-Encoding": "chunked", **headers}, environ_overrides={"wsgi.input_terminated": True},
    )


def test_an_oversize_chunked_body_is_413_not_a_misleading_answer(client, r, settings):
    """werkzeug cuts a chunked body at MAX_CONTENT_LENGTH silently; the app answers 413 instead of parsing the rest."""
    form = twilio_form("hello", "+15557654321") | {"Pad": "y" * settings.max_request_bytes}
    answer = _chunked(client, "/twilio/messaging", urlencode(form).encode(), "application/x-www-form-urlencoded",
                      **{"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])})
    assert answer.status_code == 413 and "bytes or more" in answer.get_json()["error"]
    assert not r.exists(ConversationKeys("acme-insurance", "+15557654321").inbox)
    too_big_json = b'{"text": "' + b"x" * settings.max_request_bytes + b'"}'
    assert _chunked(client, "/api/v1/tenants/acme-insurance/conversations/%2B15557654321/notes", too_big_json,
                    "application/json", Authorization="Bearer dev-acme-api-key").status_code == 413


def test_a_small_chunked_body_is_read_whole(client, r):
    form = twilio_form("hello over chunks", "+15557654322")
    answer = _chunked(client, "/twilio/messaging", urlencode(form).encode(), "application/x-www-form-urlencoded",
                      **{"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])})
    assert answer.status_code == 200
    assert r.llen(ConversationKeys("acme-insurance", "+15557654322").inbox) == 1
