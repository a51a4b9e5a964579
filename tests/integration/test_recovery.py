"""Recovery sweep and erasure: lost drains and deliveries are found again; erased means gone."""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit

import pytest

from jobs.delivery import status_callback_url
from jobs.sweep import schedule_sweep, sweep_once
from state import keys as K
from state.keys import ConversationKeys

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
KEYS = ConversationKeys("acme-insurance", CUSTOMER)
MEMBER = K.pending_member("acme-insurance", CUSTOMER)


def later(rt) -> int:
    """A sweep time at which everything accepted so far is overdue."""
    return int(time.time() * 1000) + rt.settings.lease_ttl_ms + 1


def test_accept_marks_the_conversation_pending(post_sms, r, rt):
    post_sms("hello", CUSTOMER)
    assert r.zscore(K.pending_index(), MEMBER) is not None
    assert rt.queue.count == 1


def test_a_lost_drain_is_enqueued_again(post_sms, r, rt, work, standin):
    post_sms("What are your opening hours?", CUSTOMER)
    rt.queue.empty()  # the drain job was lost (worker crashed, queue flushed …)
    assert not work()
    report = sweep_once(rt, later(rt))
    assert (report.examined, report.drains) == (1, 1)
    work()
    assert [m["Body"] for m in standin.messages()][0].startswith("Our licensed agents")


def test_replies_committed_but_never_sent_are_delivered(post_sms, r, rt, work, standin):
    post_sms("What are your opening hours?", CUSTOMER)
    rt.queue.empty()
    assert rt.controller.drain("acme-insurance", CUSTOMER).turns == 1  # the job died before deliver_now
    assert standin.messages() == []
    first = later(rt)
    report = sweep_once(rt, first)
    assert report.deliveries == 1
    work()
    assert len(standin.messages()) == 1
    # Looked at again one lease TTL after the re-enqueue: nothing left, so cleared.
    assert sweep_once(rt, first + rt.settings.lease_ttl_ms + 1).cleared == 1
    assert r.zscore(K.pending_index(), MEMBER) is None


def _commit_and_claim(post_sms, rt) -> tuple[str, object]:
    """A turn committed and its reply claimed by a sender that then died."""
    post_sms("What are your opening hours?", CUSTOMER)
    rt.queue.empty()
    [message_id] = rt.controller.drain("acme-insurance", CUSTOMER).message_ids
    status, message = rt.store.claim_outbound(KEYS, message_id)
    assert status == "send"
    return message_id, message


def _age_claim(r, rt, message_id: str) -> None:
    claimed_at_ms = int(r.hget(KEYS.outbox, f"c:{message_id}"))
    r.hset(KEYS.outbox, f"c:{message_id}", claimed_at_ms - int(rt.settings.delivery_reconcile_after_s * 1000) - 1)


def deliver_status_callbacks(client, standin, count: int) -> None:
    """Hand the stand-in's status callbacks to the app, as Twilio's requests reach the web process."""
    deadline = time.monotonic() + 10
    while len(callbacks := standin.callbacks()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(callbacks) == count
    for callback in callbacks:
        url = urlsplit(callback["url"])
        answer = client.post(f"{url.path}?{url.query}", data=callback["form"], headers={"X-Twilio-Signature": callback["signature"]})
        assert answer.status_code == 204, answer.get_data(as_text=True)


def _send_as_the_dead_sender(rt, message_id: str, message) -> str:
    """The request the sender made before it died: with its entry's StatusCallback URL."""
    url = status_callback_url(rt.settings.effective_public_base_url, message_id)
    return _client_for(rt).messages.create(to=message.to, from_=message.from_, body=message.body, status_callback=url).sid


def test_a_send_that_reached_twilio_before_its_sender_died_is_not_sent_again(post_sms, client, r, rt, work, standin):
    message_id, message = _commit_and_claim(post_sms, rt)
    sid = _send_as_the_dead_sender(rt, message_id, message)  # then SIGKILL
    deliver_status_callbacks(client, standin, 1)  # Twilio's "sent" callback names the entry
    first = later(rt)
    assert sweep_once(rt, first).reconciles == 0  # a claim this young may still be in flight
    assert r.zscore(K.pending_index(), MEMBER) == first  # so it is looked at again
    _age_claim(r, rt, message_id)
    assert sweep_once(rt, first + rt.settings.lease_ttl_ms + 1).reconciles == 1
    work()
    assert len(standin.messages()) == 1
    assert r.hgetall(KEYS.outbox) == {
        f"s:{message_id}".encode(): b"sent", f"p:{message_id}".encode(): sid.encode(),
        f"q:{sid}".encode(): message_id.encode(), f"x:{message_id}".encode(): sid.encode(),
        f"t:{message_id}".encode(): b"sent",  # Twilio's MessageStatus from the callback
    }


def test_a_send_at_twilio_without_a_status_callback_is_sent_again(post_sms, r, rt, work, standin):
    """Ambiguous evidence (a message with the text, no callback naming the entry): at least once, so sent again."""
    message_id, message = _commit_and_claim(post_sms, rt)
    _client_for(rt).messages.create(to=message.to, from_=message.from_, body=message.body)  # its callback never arrived
    _age_claim(r, rt, message_id)
    assert sweep_once(rt, later(rt)).reconciles == 1
    work()
    assert [m["Body"] for m in standin.messages()] == [message.body, message.body]
    assert r.hget(KEYS.outbox, f"s:{message_id}") == b"sent"


def test_reconcile_never_takes_another_replys_sid(post_sms, client, r, rt, work, standin):
    """The customer asks the same FAQ twice; the first reply's send timed out before reaching Twilio.

    Found by a chaos run: the reconcile matched by text and recorded the
    first reply as sent with the second reply's sid, so the customer got one
    answer of two while the outbox said both were sent.
    """
    first_id, message = _commit_and_claim(post_sms, rt)  # claimed; the request never reached Twilio
    post_sms("What are your opening hours?", CUSTOMER)  # the same question again: the same reply text
    work()
    second = [m for m in standin.attempts() if m["status"] == 201]
    assert [m["form"]["Body"] for m in second] == [message.body]
    deliver_status_callbacks(client, standin, 1)
    _age_claim(r, rt, first_id)
    assert sweep_once(rt, later(rt)).reconciles == 1
    work()
    sent = [m for m in standin.attempts() if m["status"] == 201]
    assert [m["form"]["Body"] for m in sent] == [message.body, message.body]  # both answers reached the customer
    outbox = {k.decode(): v.decode() for k, v in r.hgetall(KEYS.outbox).items()}
    assert outbox[f"s:{first_id}"] == "sent"
    assert outbox[f"p:{first_id}"] == sent[1]["sid"] != sent[0]["sid"]  # its own sid, not the other reply's
    assert {m["form"]["StatusCallback"] for m in sent} == {
        status_callback_url(rt.settings.effective_public_base_url, i) for i in (first_id, outbox[f"q:{sent[0]['sid']}"])
    }


def test_a_send_that_never_reached_twilio_is_sent_once(post_sms, r, rt, work, standin):
    message_id, message = _commit_and_claim(post_sms, rt)
    _age_claim(r, rt, message_id)
    first = later(rt)
    assert sweep_once(rt, first).reconciles == 1
    assert sweep_once(rt, first + rt.settings.lease_ttl_ms + 1).reconciles == 1  # again, before the first one ran
    work()
    assert [m["Body"] for m in standin.messages()] == [message.body]
    assert r.hget(KEYS.outbox, f"s:{message_id}") == b"sent"


def test_a_retryable_failure_in_the_drain_job_is_handed_to_a_delivery_job(post_sms, r, rt, work, standin):
    standin.fail_next(503, 1)
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    assert len(standin.messages()) == 1
    assert [a["status"] for a in standin.attempts()] == [503, 201]


def _client_for(rt):
    from jobs.delivery import _tenant_client

    return _tenant_client(rt, "acme-insurance")


def test_a_held_lease_is_left_alone(post_sms, r, rt):
    post_sms("hello", CUSTOMER)
    r.set(KEYS.lease, "a-live-worker", px=60_000)
    now = later(rt)
    report = sweep_once(rt, now)
    assert report.busy == 1 and report.drains == 0
    assert r.zscore(K.pending_index(), MEMBER) == now


def test_only_due_conversations_are_examined(post_sms, r, rt, work):
    post_sms("hello", CUSTOMER)
    work()
    assert sweep_once(rt, int(time.time() * 1000)).examined == 0  # not older than the lease TTL yet
    report = sweep_once(rt, later(rt))
    assert (report.examined, report.cleared) == (1, 1)
    assert r.zcard(K.pending_index()) == 0


def test_schedule_sweep_is_idempotent(rt):
    assert schedule_sweep(rt.queue, rt.settings) is True
    assert schedule_sweep(rt.queue, rt.settings) is False


def test_erasure(post_sms, work, client, operator_get, r):
    post_sms("Stop", CUSTOMER)
    work()
    url = f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}"
    assert client.delete(url, headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404
    assert client.delete(url).status_code == 401
    assert client.delete(url, headers={"Authorization": "Bearer dev-acme-api-key"}).status_code == 204
    assert operator_get("acme-insurance", CUSTOMER).status_code == 404
    assert not any(r.exists(k) for k in KEYS.all())
    assert r.zscore(K.pending_index(), MEMBER) is None
    assert client.delete(url, headers={"Authorization": "Bearer dev-acme-api-key"}).status_code == 404


def test_workers_take_over_rqs_scheduler_within_the_maintenance_interval(r, rt):
    from jobs.worker import LanewayWorker

    assert LanewayWorker([rt.queue], connection=r).maintenance_interval == rt.settings.worker_maintenance_interval_s == 30


def test_an_idle_worker_runs_its_maintenance_between_dequeues(r, rt):
    """RQ 3.0 blocks an idle worker's dequeue ``worker_ttl - 15`` = 405 s, and maintains only between dequeues."""
    from jobs.worker import LanewayWorker, LanewayWorkerWithoutScheduler

    worker = LanewayWorker([rt.queue], connection=r)
    assert worker.dequeue_timeout == worker.maintenance_interval == 30
    assert LanewayWorker([rt.queue], connection=r, maintenance_interval=600).dequeue_timeout == 405
    assert LanewayWorker.run_scheduler and not LanewayWorkerWithoutScheduler.run_scheduler
