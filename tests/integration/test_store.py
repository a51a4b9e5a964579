"""ConversationStore against real Redis: dedupe, lease, fence, outbox CAS."""

from __future__ import annotations

import threading
import time

import pytest

from state.errors import LeaseLostError, SchemaTooNewError, VersionConflictError
from state.keys import ConversationKeys
from state.models import InboundMessage, OutboundMessage, SessionState, utcnow
from state.store import ConversationStore, OutboundEntry

pytestmark = pytest.mark.redis_server

KEYS = ConversationKeys("acme-insurance", "+15557654321")


def msg(sid: str, text: str = "hi") -> InboundMessage:
    return InboundMessage(
        provider_id=sid, channel="sms", from_=KEYS.conversation_id, to="+15550001111", text=text, received_at=utcnow()
    )


def out(message_id: str, bypass: bool = False) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, to=KEYS.conversation_id, from_="+15550001111", body="reply", bypass_opt_out=bypass, created_at=utcnow()
    )


@pytest.fixture
def store(r):
    return ConversationStore(r, lease_ttl_ms=5_000)


def new_state() -> SessionState:
    return SessionState.new(KEYS.tenant_id, KEYS.conversation_id)


def test_accept_dedupes_on_provider_id(store, r):
    assert store.accept(KEYS, msg("SM1"), 3600).new
    again = store.accept(KEYS, msg("SM1"), 3600)
    assert not again.new and again.pending  # still waiting: a drain must be enqueued
    assert r.llen(KEYS.inbox) == 1
    assert 0 < r.pttl(KEYS.inbox) <= 3600_000


def test_a_text_clears_the_unreachable_marker_in_the_accept_script(store, r):
    r.set(KEYS.unreachable, "30003")
    store.accept(KEYS, msg("SM1"), 3600)  # an event, not the customer's text: the marker stays
    assert r.get(KEYS.unreachable) == b"30003"
    store.accept(KEYS, msg("SM1"), 3600, reachable=True)  # a repeat still shows the number receives
    assert not r.exists(KEYS.unreachable)
    r.set(KEYS.unreachable, "30005")
    assert store.accept(KEYS, msg("SM2"), 3600, reachable=True).new
    assert not r.exists(KEYS.unreachable)


def test_dedupe_ids_are_forgotten_after_the_dedupe_ttl(r):
    store = ConversationStore(r, dedupe_ttl_s=1)
    assert store.accept(KEYS, msg("SM1"), 3600).new
    assert 0 < r.pttl(KEYS.seen) <= 1000
    time.sleep(1.1)  # the seen set itself expired
    assert store.accept(KEYS, msg("SM1"), 3600).new
    r.zadd(KEYS.seen, {"SMold": 0})  # an id far older than the TTL, in a live set
    assert store.accept(KEYS, msg("SM2"), 3600).new
    assert r.zrange(KEYS.seen, 0, -1) == [b"SM1", b"SM2"]  # trimmed on the way

def test_acquire_reads_everything_and_excludes_others(store):
    store.accept(KEYS, msg("SM1", "a"), 3600)
    store.accept(KEYS, msg("SM2", "b"), 3600)
    loaded = store.acquire(KEYS, "token-a")
    assert loaded.version == 0 and loaded.doc is None and not loaded.opted_out
    assert [m.text for m in loaded.inbox] == ["a", "b"]
    assert store.acquire(KEYS, "token-b") is None


def test_acquire_sends_reads_alongside_in_its_round_trip_and_survives_a_script_flush(store, r):
    store.accept(KEYS, msg("SM1", "a"), 3600)
    r.set("other-slot", "x")
    r.script_flush()  # the pipelined EVALSHA answers NOSCRIPT: the lease is taken by loading the script
    loaded = store.acquire(KEYS, "token-a", read_alongside=lambda pipe: pipe.get("other-slot"))
    assert loaded.alongside == [b"x"] and [m.text for m in loaded.inbox] == ["a"]
    assert r.get(KEYS.lease) == b"token-a"
    store.release_lease(KEYS, "token-a")
    calls = []
    original = r.execute_command
    r.execute_command = lambda *a, **k: calls.append(a[0]) or original(*a, **k)
    try:
        assert store.acquire(KEYS, "token-b", read_alongside=lambda pipe: pipe.get("other-slot")).alongside == [b"x"]
    finally:
        del r.execute_command
    assert calls == []  # one pipeline: no command of its own


def test_a_failed_read_alongside_releases_the_lease_it_came_with(store, r):
    import redis

    store.accept(KEYS, msg("SM1", "a"), 3600)
    r.set("a-string", "x")
    with pytest.raises(redis.ResponseError):
        store.acquire(KEYS, "token-a", read_alongside=lambda pipe: pipe.hget("a-string", "field"))  # WRONGTYPE
    assert not r.exists(KEYS.lease)
    assert store.acquire(KEYS, "token-b") is not None


def test_acquire_on_empty_inbox_holds_nothing(store, r):
    assert store.acquire(KEYS, "t") is None
    assert not r.exists(KEYS.lease)


def test_commit_trims_consumed_and_returns_late_arrivals(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    loaded = store.acquire(KEYS, "t")
    store.accept(KEYS, msg("SM2", "late"), 3600)  # arrives during the turn
    committed = store.commit(KEYS, "t", loaded.version, new_state(), len(loaded.inbox), [out("1.0")], 3600)
    assert committed.version == 1
    assert [m.text for m in committed.inbox] == ["late"]
    assert r.get(KEYS.lease) == b"t"  # kept: the worker loops
    done = store.commit(KEYS, "t", 1, new_state(), 1, [], 3600)
    assert done.version == 2 and done.inbox == []
    assert not r.exists(KEYS.lease) and not r.exists(KEYS.inbox)
    assert 0 < r.pttl(KEYS.state) <= 3600_000


def test_a_lapsed_lease_cannot_commit(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    loaded = store.acquire(KEYS, "slow-worker")
    r.delete(KEYS.lease)  # the lease expired during a slow agent
    assert store.acquire(KEYS, "new-worker") is not None
    with pytest.raises(LeaseLostError):
        store.commit(KEYS, "slow-worker", loaded.version, new_state(), 1, [out("1.0")], 3600)
    assert not r.exists(KEYS.state) and not r.exists(KEYS.outbox)
    assert r.llen(KEYS.inbox) == 1


def test_two_threads_committing_from_one_version_exactly_one_wins(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    loaded = store.acquire(KEYS, "shared")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def commit(i: int) -> None:
        barrier.wait()
        try:
            store.commit(KEYS, "shared", loaded.version, new_state(), 0, [out(f"1.{i}")], 3600)
            outcomes.append("won")
        except VersionConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert r.hget(KEYS.state, "version") == b"1"
    assert len([k for k in r.hkeys(KEYS.outbox) if k.startswith(b"s:")]) == 1


def test_an_older_schema_never_overwrites_a_newer_one(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    r.hset(KEYS.state, mapping={"version": 3, "schema_version": 99, "doc": "{}"})
    with pytest.raises(SchemaTooNewError):
        store.commit(KEYS, store.acquire(KEYS, "t").token, 3, new_state(), 1, [], 3600)
    assert r.hget(KEYS.state, "schema_version") == b"99"


def test_outbox_entry_is_claimed_once(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    store.acquire(KEYS, "t")
    store.commit(KEYS, "t", 0, new_state(), 1, [out("1.0")], 3600)
    status, message = store.claim_outbound(KEYS, "1.0")
    assert status == "send" and message.body == "reply"
    assert store.claim_outbound(KEYS, "1.0") == ("sending", None)
    entry = store.outbound_entry(KEYS, "1.0")
    assert entry.status == "sending" and entry.message.body == "reply"
    assert abs(entry.claimed_at_ms - time.time() * 1000) < 5000
    assert store.finish_outbound(KEYS, "1.0", "sent", "SMabc")
    # A final entry keeps status and sid only, so the hash stays small (listpack).
    assert store.outbound_entry(KEYS, "1.0") == OutboundEntry("sent", None, None)
    assert r.hgetall(KEYS.outbox) == {b"s:1.0": b"sent", b"p:1.0": b"SMabc", b"q:SMabc": b"1.0"}
    assert not r.exists(KEYS.outbox_pending)
    assert r.object("encoding", KEYS.outbox) == b"listpack"
    assert not store.finish_outbound(KEYS, "1.0", "failed")
    assert store.claim_outbound(KEYS, "1.0") == ("sent", None)
    assert store.claim_outbound(KEYS, "9.9") == ("missing", None)


def test_a_provider_sid_is_recorded_for_one_entry_only(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    store.acquire(KEYS, "t")
    store.commit(KEYS, "t", 0, new_state(), 1, [out("1.0"), out("1.1")], 3600)
    assert store.claim_outbound(KEYS, "1.0")[0] == store.claim_outbound(KEYS, "1.1")[0] == "send"
    assert store.finish_outbound(KEYS, "1.0", "sent", "SMabc")
    assert not store.finish_outbound(KEYS, "1.1", "sent", "SMabc")  # 1.0's message is not 1.1's proof
    assert store.outbound_entry(KEYS, "1.1").status == "sending"
    assert store.sid_owner(KEYS, "SMabc") == "1.0"
    assert store.record_sent_evidence(KEYS, "1.1", "SMabc") == -1
    assert store.record_sent_evidence(KEYS, "9.9", "SMdef") == 0
    assert store.record_sent_evidence(KEYS, "1.1", "SMdef") == 1
    assert store.record_sent_evidence(KEYS, "1.1", "SMxyz") == 1  # the first evidence is kept
    assert store.outbound_entry(KEYS, "1.1").evidence_sid == "SMdef"
    assert store.outbound_entry(KEYS, "1.1").status == "sending"  # evidence never moves the status


def test_opt_out_suppresses_all_but_the_confirmation(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    store.acquire(KEYS, "t")
    store.commit(KEYS, "t", 0, new_state(), 1, [out("1.0", bypass=True), out("1.1")], 3600, optout_action="set")
    assert r.ttl(KEYS.optout) == -1  # an opt-out outlives the session
    assert store.claim_outbound(KEYS, "1.0")[0] == "send"
    assert store.claim_outbound(KEYS, "1.1") == ("suppressed", None)
    assert r.hget(KEYS.outbox, "s:1.1") == b"suppressed"


def test_erase_removes_the_conversation(store, r):
    store.accept(KEYS, msg("SM1"), 3600)
    store.acquire(KEYS, "t")
    store.commit(KEYS, "t", 0, new_state(), 1, [out("1.0")], 3600, optout_action="set")
    assert store.read(KEYS) is not None
    store.erase(KEYS)
    assert store.read(KEYS) is None
    assert not any(r.exists(k) for k in KEYS.all())
