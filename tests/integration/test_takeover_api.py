"""Human takeover through the operator API, against real Redis and the real worker pipeline.

A customer asks for a person over the signed webhook, the ``work`` fixture
drains, and operators list, claim, reply (the reply reaches the Twilio
stand-in), note, hand back (the AI answers again with the human's reply in its
transcript) and close. Claim exclusivity is checked with concurrent requests
from threads on one app; tenant isolation for every endpoint with the other
tenant's key.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

import pytest

from service.conversation_views import attention_reasons
from state import keys as K
from state.models import SessionState, TranscriptEntry, utcnow
from state.store import encode_document
from tests.conftest import ACME_NUMBER, BRIGHT_NUMBER

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
OTHER = "+15557650000"
ACME = "acme-insurance"
BRIGHT = "bright-clinic"
ACME_KEY = "dev-acme-api-key"
BRIGHT_KEY = "dev-bright-api-key"
BASE = f"/api/v1/tenants/{ACME}/conversations"


def headers(operator: str = "alice", key: str = ACME_KEY, **extra) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Operator": operator, **extra}


def url(conversation_id: str = CUSTOMER, suffix: str = "", tenant: str = ACME) -> str:
    return f"/api/v1/tenants/{tenant}/conversations/{quote(conversation_id, safe='')}{suffix}"


@pytest.fixture
def escalated(post_sms, work, standin):
    """A conversation whose customer asked for a person (``waiting_human``), the handoff text delivered."""
    post_sms("I want to talk to a person", CUSTOMER)
    work()
    return CUSTOMER


def test_escalation_is_listed_as_needing_attention(client, escalated, post_sms, work):
    post_sms("what are your opening hours?", OTHER)
    work()
    everything = client.get(BASE, headers=headers()).get_json()
    assert [c["conversation_id"] for c in everything["conversations"]] == [OTHER, CUSTOMER]  # newest activity first
    assert everything["next_cursor"] is None
    waiting = client.get(f"{BASE}?needs_attention=true", headers=headers()).get_json()["conversations"]
    assert [c["conversation_id"] for c in waiting] == [CUSTOMER]
    row = waiting[0]
    assert row["status"] == "waiting_human" and row["needs_attention"] and row["attention_reasons"] == ["escalated"]
    assert row["claimed_by"] is None and row["form_page"] is None and row["last_activity_at"].endswith("+00:00")
    assert [c["conversation_id"] for c in client.get(f"{BASE}?status=active", headers=headers()).get_json()["conversations"]] == [OTHER]
    assert client.get(f"{BASE}?needs_attention=false", headers=headers()).get_json()["conversations"][0]["conversation_id"] == OTHER
    lane = row["lane"]
    assert [c["conversation_id"] for c in client.get(f"{BASE}?lane={lane}&status=waiting_human", headers=headers()).get_json()["conversations"]] == [CUSTOMER]


def test_pages_follow_the_cursor_without_gaps(client, r, escalated):
    # Three more conversations in the index at the same millisecond (ties) and one older.
    for cid in ("+15550000001", "+15550000002", "+15550000003", "+15550000004"):
        r.hset(K.ConversationKeys(ACME, cid).state, mapping={"version": 1, "doc": encode_document(SessionState.new(ACME, cid))})
    r.zadd(K.tenant_conversations(ACME), {"+15550000001": 5000, "+15550000002": 5000, "+15550000003": 5000, "+15550000004": 4000})
    seen, cursor = [], None
    while True:
        page = client.get(f"{BASE}?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=headers()).get_json()
        seen += [c["conversation_id"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [CUSTOMER, "+15550000003", "+15550000002", "+15550000001", "+15550000004"]
    # An expired conversation is dropped from the index as the list meets it.
    r.zadd(K.tenant_conversations(ACME), {"+15559999999": 1})
    client.get(BASE, headers=headers())
    assert r.zscore(K.tenant_conversations(ACME), "+15559999999") is None


@pytest.mark.parametrize("query", [
    "status=open", "needs_attention=yes", "lane=billing", "limit=0", "limit=101", "limit=x", "cursor=%25%25", "cursor=bm9waXBl",
])
def test_bad_list_queries_are_400(client, query):
    answer = client.get(f"{BASE}?{query}", headers=headers())
    assert answer.status_code == 400 and answer.get_json()["status"] == 400


def test_only_one_of_many_concurrent_claims_wins(app, escalated):
    barrier = threading.Barrier(8)
    answers: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def claim(name: str) -> None:
        client = app.test_client()
        barrier.wait()
        answer = client.post(url(suffix="/claim"), headers=headers(name))
        with lock:
            answers.append((name, answer.status_code, answer.get_json()))

    threads = [threading.Thread(target=claim, args=(f"op{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [name for name, status, _ in answers if status == 200]
    assert len(winners) == 1
    losers = [body for _, status, body in answers if status == 409]
    assert len(losers) == 7 and all(b["claimed_by"]["operator_id"] == winners[0] for b in losers)
    client = app.test_client()
    assert client.post(url(suffix="/claim"), headers=headers(winners[0])).status_code == 200  # idempotent for its holder
    # The same name through another key of the tenant does not hold it.
    assert client.delete(url(suffix="/claim"), headers=headers("someone-else")).status_code == 409
    assert client.delete(url(suffix="/claim"), headers=headers(winners[0])).status_code == 204
    assert client.post(url(suffix="/claim"), headers=headers("op-late")).status_code == 200


def test_claim_reply_handback_and_the_ai_answers_again(client, escalated, post_sms, work, standin, llm):
    standin.clear()
    assert client.post(url(suffix="/reply"), json={"text": "Hi, I'm Alice."}, headers=headers()).status_code == 409  # not claimed
    assert client.post(url(suffix="/claim"), headers=headers()).get_json()["claimed_by"]["operator_id"] == "alice"
    assert client.post(url(suffix="/reply"), json={"text": "nope"}, headers=headers("bob")).status_code == 409
    answer = client.post(url(suffix="/reply"), json={"text": "Hi, I'm Alice. Your renewal is on the 3rd."},
                         headers=headers(**{"Idempotency-Key": "reply-1"}))
    assert answer.status_code == 202 and answer.get_json() == {"event_id": "op:reply-1", "kind": "human_reply", "accepted": True}
    again = client.post(url(suffix="/reply"), json={"text": "Hi, I'm Alice. Your renewal is on the 3rd."},
                        headers=headers(**{"Idempotency-Key": "reply-1"}))
    assert again.status_code == 202 and again.get_json()["accepted"] is False
    assert client.post(url(suffix="/notes"), json={"text": "Customer worried about renewal date."}, headers=headers()).status_code == 202
    work()
    sent = standin.messages()
    assert [(m["To"], m["From"], m["Body"]) for m in sent] == [(CUSTOMER, ACME_NUMBER, "Hi, I'm Alice. Your renewal is on the 3rd.")]

    ctx = client.get(url(suffix="/context"), headers=headers()).get_json()
    human = [t for t in ctx["transcript"] if t["author"] == "human"]
    assert human == [{**human[0], "author_id": "alice", "channel": "sms", "direction": "outbound", "delivery": "sent"}]
    assert ctx["notes"][-1]["text"] == "Customer worried about renewal date." and ctx["notes"][-1]["author_id"] == "alice"
    assert ctx["claimed_by"]["operator_id"] == "alice" and ctx["status"] == "waiting_human"

    # While a human holds it the AI stays silent.
    post_sms("thanks, and can I pay by card?", CUSTOMER)
    work()
    assert len(standin.messages()) == 1

    assert client.post(url(suffix="/handback"), headers=headers("bob")).status_code == 409
    handback = client.post(url(suffix="/handback"), headers=headers())
    # The customer's last message is unanswered: the answer warns, and the AI answers it on hand-back.
    assert handback.status_code == 202 and handback.get_json()["unanswered_customer_messages"] == 1
    work()
    assert len(standin.messages()) == 2
    ctx = client.get(url(suffix="/context"), headers=headers()).get_json()
    assert ctx["status"] == "active" and ctx["claimed_by"] is None and not ctx["needs_attention"]
    assert ctx["owner"] == "ai" and ctx["unanswered_customer_messages"] == 0
    llm.reset()
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    assert len(standin.messages()) == 3  # the AI answered again
    ctx = client.get(url(suffix="/context"), headers=headers()).get_json()
    authors = [t["author"] for t in ctx["transcript"]]
    assert "human" in authors and authors[-1] == "ai"
    assert any(t["text"] == "Hi, I'm Alice. Your renewal is on the 3rd." for t in ctx["transcript"])


def test_escalate_and_close(client, post_sms, work, standin):
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    standin.clear()
    assert client.post(url(suffix="/escalate"), headers=headers()).status_code == 202
    work()
    ctx = client.get(url(suffix="/context"), headers=headers()).get_json()
    assert ctx["status"] == "waiting_human" and ctx["handoff"]["reason"] == "operator"
    assert len(standin.messages()) == 1  # the customer is told once
    assert client.post(url(suffix="/claim"), headers=headers()).status_code == 200
    assert client.post(url(suffix="/close"), headers=headers("bob")).status_code == 409
    assert client.post(url(suffix="/close"), headers=headers()).status_code == 202
    work()
    ctx = client.get(url(suffix="/context"), headers=headers()).get_json()
    assert ctx["status"] == "closed" and ctx["claimed_by"] is None


def test_claim_and_handback_clear_an_open_alert(client, r, escalated):
    keys = K.ConversationKeys(ACME, CUSTOMER)
    r.hset(keys.alert, mapping={"rule_id": "stuck-on-page-2", "priority": "high", "at": "2026-11-23T13:00:00+00:00"})
    r.hset(keys.fires, mapping={"n:stuck-on-page-2": 1, "t:stuck-on-page-2": 1795430158123})
    row = client.get(BASE, headers=headers()).get_json()["conversations"][0]
    assert row["attention_reasons"] == ["escalated", "alert"] and row["alert"]["rule_id"] == "stuck-on-page-2"
    ctx = client.get(url(suffix="/context"), headers=headers()).get_json()
    assert ctx["triggers_fired"] == [{"rule_id": "stuck-on-page-2", "fires": 1, "last_fired_at": "2026-11-23T10:35:58.123000+00:00"}]
    client.post(url(suffix="/claim"), headers=headers())
    assert not r.exists(keys.alert)
    r.hset(keys.alert, mapping={"rule_id": "again", "priority": "low", "at": "x"})
    client.post(url(suffix="/handback"), headers=headers())
    assert not r.exists(keys.alert) and not r.exists(keys.claim)


def test_stalled_is_computed_from_the_tenant_threshold():
    now = utcnow()
    state = SessionState.new(ACME, CUSTOMER, now)
    old = state.model_copy(update={"transcript": [TranscriptEntry(author="customer", text="hello?", at=now.replace(year=now.year - 1))]})
    assert attention_reasons(old, None, now, 300) == ["stalled"]
    fresh = state.model_copy(update={"transcript": [TranscriptEntry(author="customer", text="hello?", at=now)]})
    assert attention_reasons(fresh, None, now, 300) == []
    answered = old.model_copy(update={"transcript": old.transcript + [TranscriptEntry(author="ai", text="hi", at=now)]})
    assert attention_reasons(answered, None, now, 300) == []
    assert attention_reasons(old.model_copy(update={"status": "closed"}), None, now, 300) == []


@pytest.mark.parametrize("body, content_type, status", [
    ({"text": ""}, None, 400),
    ({"text": "   "}, None, 400),
    ({"text": "x" * 1601}, None, 400),
    ({"text": 5}, None, 400),
    ({"text": "hi", "extra": 1}, None, 400),
    ({}, None, 400),
    (None, "text/plain", 415),
])
def test_reply_validation(client, escalated, body, content_type, status):
    client.post(url(suffix="/claim"), headers=headers())
    if content_type:
        answer = client.post(url(suffix="/reply"), data="text=hi", headers={**headers(), "Content-Type": content_type})
    else:
        answer = client.post(url(suffix="/reply"), json=body, headers=headers())
    assert answer.status_code == status and answer.get_json()["status"] == status


def test_bad_headers_are_400(client, escalated):
    assert client.post(url(suffix="/claim"), headers=headers("  bad")).status_code == 400
    assert client.post(url(suffix="/claim"), headers=headers("x" * 65)).status_code == 400
    client.post(url(suffix="/claim"), headers=headers())
    bad_key = headers(**{"Idempotency-Key": "spaces are bad"})
    assert client.post(url(suffix="/reply"), json={"text": "hi"}, headers=bad_key).status_code == 400
    assert client.post(url(suffix="/handback"), headers=bad_key).status_code == 400
    assert client.get(url(suffix="/context"), headers=headers()).get_json()["claimed_by"]["operator_id"] == "alice"


ENDPOINTS = [
    ("get", "/context", None), ("post", "/claim", None), ("delete", "/claim", None), ("post", "/reply", {"text": "hi"}),
    ("post", "/notes", {"text": "hi"}), ("post", "/handback", None), ("post", "/close", None), ("post", "/escalate", None),
]


@pytest.mark.parametrize("method, suffix, body", ENDPOINTS)
def test_another_tenants_key_gets_404_and_changes_nothing(client, r, escalated, method, suffix, body):
    before = r.hgetall(K.ConversationKeys(ACME, CUSTOMER).state)
    for target in (url(suffix=suffix), url(suffix=suffix, tenant=BRIGHT)):
        answer = getattr(client, method)(target, json=body, headers=headers(key=BRIGHT_KEY))
        assert answer.status_code == 404 and CUSTOMER not in answer.get_data(as_text=True)
    answer = getattr(client, method)(url(suffix=suffix), json=body)
    assert answer.status_code == 401
    unknown = getattr(client, method)(url(OTHER, suffix=suffix), json=body, headers=headers())
    assert unknown.status_code == 404
    assert r.hgetall(K.ConversationKeys(ACME, CUSTOMER).state) == before
    assert r.llen(K.ConversationKeys(ACME, CUSTOMER).inbox) == 0 and not r.exists(K.ConversationKeys(ACME, CUSTOMER).claim)


def test_lists_and_feed_tokens_are_per_tenant(client, escalated, post_sms, work):
    post_sms("hello", "+15557658888", to=BRIGHT_NUMBER)
    work()
    assert client.get(BASE, headers=headers(key=BRIGHT_KEY)).status_code == 404
    assert [c["conversation_id"] for c in client.get(f"/api/v1/tenants/{BRIGHT}/conversations", headers=headers(key=BRIGHT_KEY)).get_json()["conversations"]] == ["+15557658888"]
    assert client.post(f"/api/v1/tenants/{ACME}/events/token", headers=headers(key=BRIGHT_KEY)).status_code == 404
    bright_token = client.post(f"/api/v1/tenants/{BRIGHT}/events/token", headers=headers(key=BRIGHT_KEY)).get_json()["token"]
    assert client.get(f"/api/v1/tenants/{ACME}/events?token={bright_token}").status_code == 401
    assert client.get(f"/api/v1/tenants/{ACME}/events?token=forged.{'0' * 64}").status_code == 401
    assert client.get(f"/api/v1/tenants/{ACME}/events").status_code == 401
    assert client.get(f"/api/v1/tenants/{ACME}/events", headers=headers()).status_code == 401  # a bearer key does not open it


def test_the_feed_streams_commits_and_resumes_after_last_event_id(app, client, escalated, post_sms, work):
    app.config.update(FEED_BLOCK_MS=300, FEED_STREAM_S=2)
    token = client.post(f"/api/v1/tenants/{ACME}/events/token", headers=headers()).get_json()
    assert token["expires_in_s"] == 60 and token["token"] not in ACME_KEY and ACME_KEY not in token["url"]
    first = app.test_client().get(token["url"] + "&last_event_id=0-0")
    assert first.status_code == 200 and first.mimetype == "text/event-stream"
    body = first.get_data(as_text=True)  # the whole (2 s) stream
    ids = [line[4:] for line in body.splitlines() if line.startswith("id: ")]
    assert ids and '"conversation": "+15557654321"' in body and ": keepalive" in body and body.rstrip().endswith("data: {}")
    post_sms("still there?", CUSTOMER)
    work()
    again = app.test_client().get(token["url"], headers={"Last-Event-ID": ids[-1]}).get_data(as_text=True)
    new_ids = [line[4:] for line in again.splitlines() if line.startswith("id: ")]
    assert len(new_ids) == 1 and new_ids[0] > ids[-1]
    assert app.test_client().get(token["url"], headers={"Last-Event-ID": "yesterday"}).status_code == 400


def test_a_revoked_key_ends_the_stream(app, client, r, escalated):
    app.config.update(FEED_BLOCK_MS=200, FEED_STREAM_S=5)
    token = client.post(f"/api/v1/tenants/{ACME}/events/token", headers=headers()).get_json()
    from state.tenant_config import sha256_hex
    r.delete(K.api_key(sha256_hex(ACME_KEY)))
    assert app.test_client().get(token["url"]).status_code == 401
    started = time.monotonic()
    r.set(K.api_key(sha256_hex(ACME_KEY)), ACME)
    stream = app.test_client().get(token["url"], buffered=False)
    chunks = stream.response
    next(chunks)
    r.delete(K.api_key(sha256_hex(ACME_KEY)))
    rest = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    assert "event: revoked" in rest and time.monotonic() - started < 3


def test_a_key_revoked_during_a_read_gets_no_more_events(app, client, r, escalated):
    """Issue 18 item 8: the key is checked after the blocking read, before what it read is sent."""
    from state.tenant_config import sha256_hex

    app.config.update(FEED_BLOCK_MS=3000, FEED_STREAM_S=10)
    token = client.post(f"/api/v1/tenants/{ACME}/events/token", headers=headers()).get_json()
    stream = app.test_client().get(token["url"], buffered=False)
    chunks = iter(stream.response)
    assert "connected" in _text(next(chunks))
    after: list[str] = []
    reader = threading.Thread(target=lambda: after.append(_text(next(chunks))))
    reader.start()  # the stream is now in XREAD BLOCK
    time.sleep(0.5)
    r.delete(K.api_key(sha256_hex(ACME_KEY)))
    r.xadd(K.tenant_feed(ACME), {"conversation": CUSTOMER, "version": "99", "status": "active"})
    reader.join(timeout=10)
    assert after and "event: revoked" in after[0] and "event: feed" not in after[0] and "99" not in after[0]
    stream.close()


def _text(chunk) -> str:
    return chunk.decode() if isinstance(chunk, bytes) else chunk


def test_open_streams_are_capped_per_key_and_per_tenant(app, client, r, settings):
    """Issue 18 item 3 (in-process): one key cannot hold more than its streams; the tenant's keys together neither."""
    from state.tenant_config import sha256_hex

    app.config.update(FEED_BLOCK_MS=200, FEED_STREAM_S=30)
    app.extensions["laneway"].settings = settings.model_copy(update={"feed_streams_per_key": 2, "feed_streams_per_tenant": 3})
    second_key = "second-acme-operator-key"
    r.set(K.api_key(sha256_hex(second_key)), ACME)

    def open_stream(key: str):
        token = client.post(f"/api/v1/tenants/{ACME}/events/token", headers=headers(key=key)).get_json()
        return app.test_client().get(token["url"], buffered=False)

    first, second = open_stream(ACME_KEY), open_stream(ACME_KEY)
    assert first.status_code == second.status_code == 200
    third = open_stream(ACME_KEY)
    assert third.status_code == 429 and 1 <= int(third.headers["Retry-After"]) <= 30
    assert "this API key already has 2 live feeds open" in third.get_json()["error"]
    other = open_stream(second_key)
    assert other.status_code == 200  # the tenant's third
    refused = open_stream(second_key)
    assert refused.status_code == 429 and f"tenant {ACME} already has 3 live feeds open" in refused.get_json()["error"]
    assert client.get(f"/api/v1/tenants/{BRIGHT}/conversations", headers=headers(key=BRIGHT_KEY)).status_code == 200

    for response in (first, second):  # a stream that ends gives its place back
        next(iter(response.response))
        response.close()
    assert r.zcard(K.feed_streams(ACME)) == 1
    again = open_stream(ACME_KEY)
    assert again.status_code == 200
    again.close()
    other.close()

    # A stream whose web process died (never refreshed, never closed) stops counting once its lease passes.
    r.zadd(K.feed_streams(ACME), {"dead-1": 1, "dead-2": 2, "dead-3": 3})
    late = open_stream(ACME_KEY)
    assert late.status_code == 200 and r.zscore(K.feed_streams(ACME), "dead-1") is None
    late.close()


def test_every_action_is_audited(client, r, escalated):
    client.post(url(suffix="/claim"), headers=headers())
    client.post(url(suffix="/reply"), json={"text": "hello"}, headers=headers())
    client.post(url(suffix="/claim"), headers=headers("bob"))
    entries = client.get(f"/api/v1/tenants/{ACME}/audit", headers=headers()).get_json()["entries"]
    assert [(e["method"], e["path"].rsplit("/", 1)[-1], e["status"]) for e in entries[:3]] == [
        ("POST", "claim", "409"), ("POST", "reply", "202"), ("POST", "claim", "200"),
    ]
    assert all(CUSTOMER not in e["path"] for e in entries)


def test_the_dashboard_page_is_self_contained_and_locked_down(client):
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "<script>" not in html  # no CDN, no inline script
    for asset in ("/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"):
        assert asset in html and client.get(asset).status_code == 200
    js = client.get("/dashboard/static/dashboard.js").get_data(as_text=True)
    assert "sessionStorage" in js and "localStorage" not in js and "innerHTML" not in js


def test_an_expired_or_altered_feed_token_is_refused(app, client, r):
    from service.feed_token import make_feed_token
    from state.takeover import TakeoverStore
    from state.tenant_config import sha256_hex

    key = TakeoverStore(r).token_key()
    expired = make_feed_token(key, ACME, sha256_hex(ACME_KEY), int(time.time()) - 1)
    assert client.get(f"/api/v1/tenants/{ACME}/events?token={expired}").status_code == 401
    valid = make_feed_token(key, ACME, sha256_hex(ACME_KEY), int(time.time()) + 60)
    payload, mac = valid.split(".")
    forged = make_feed_token(b"not the key", ACME, sha256_hex(ACME_KEY), int(time.time()) + 60)
    assert client.get(f"/api/v1/tenants/{ACME}/events?token={forged}").status_code == 401
    altered = mac[:-1] + ("1" if mac[-1] == "0" else "0")
    assert client.get(f"/api/v1/tenants/{ACME}/events?token={payload}.{altered}").status_code == 401
    assert client.get(f"/api/v1/tenants/{BRIGHT}/events?token={valid}").status_code == 401  # signed for Acme
    entries = client.get(f"/api/v1/tenants/{ACME}/audit", headers=headers()).get_json()["entries"]
    assert [e for e in entries if "/events" in e["path"]] == []  # refused: counted, never entries
    [today] = client.get(f"/api/v1/tenants/{ACME}/audit/refused?from={utcnow().date()}", headers=headers()).get_json()["days"]
    assert today["by_client"] == [{"client": "127.0.0.1", "status": 401, "count": 3}]  # the fourth is Bright's


def test_takeover_requests_share_the_operator_rate_limit(app, client, r, settings):
    from service.rate_limits import RateLimits

    app.extensions["laneway"].rate_limits = RateLimits(r, settings.model_copy(update={"operator_api_rate": "3/minute"}))
    answers = [client.get(BASE, headers=headers()).status_code for _ in range(3)]
    refused = client.post(url(suffix="/claim"), headers=headers())
    assert answers == [200, 200, 200] and refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.post(f"/api/v1/tenants/{ACME}/events/token", headers=headers()).status_code == 429
    assert client.get(f"/api/v1/tenants/{BRIGHT}/conversations", headers=headers(key=BRIGHT_KEY)).status_code == 200


def test_the_operator_view_and_the_context_packet_agree(client, escalated):
    """Both views come from one builder: every field and transcript entry field they share is equal."""
    view = client.get(url(), headers=headers()).get_json()
    packet = client.get(url(suffix="/context"), headers=headers()).get_json()
    shared = set(view) & set(packet) - {"turns", "transcript"}
    assert {"tenant_id", "conversation_id", "channel", "lane", "intent", "status", "version", "opted_out", "slots",
            "handoff", "lane_history"} <= shared
    assert {k: view[k] for k in shared} == {k: packet[k] for k in shared}
    assert len(view["turns"]) == len(packet["transcript"]) >= 2
    for turn, entry in zip(view["turns"], packet["transcript"]):
        assert turn == {k: entry[k] for k in turn}
        assert ("delivery" in turn) == (turn["direction"] == "outbound")
