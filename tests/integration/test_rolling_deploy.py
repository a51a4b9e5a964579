"""Rolling deploys: old and new workers share one conversation.

The "old" worker is this code with its known schema set back to v3 (what the
previous release knew: :data:`state.upcast.CURRENT_SCHEMA_VERSION` is the
one place a worker decides whether it can read a document). It must leave a
v4 document untouched and requeue its drain; the new worker then takes it.
The new worker reads what an old one wrote (v2) and writes it back as v4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from state import upcast as upcast_module
from state.keys import ConversationKeys
from state.models import CURRENT_SCHEMA_VERSION
from state.store import decode_document

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557650123"  # the conversation of tests/data/session_v2.json
KEYS = ConversationKeys("acme-insurance", CUSTOMER)


def test_an_old_worker_leaves_a_newer_document_alone_and_requeues_the_drain(post_sms, work, rt, r, monkeypatch, standin):
    post_sms("What are your opening hours?", CUSTOMER)
    work()  # the new worker writes v5
    assert r.hget(KEYS.state, "schema_version") == b"5"
    before = r.hgetall(KEYS.state)
    post_sms("How much does it cost?", CUSTOMER)

    with monkeypatch.context() as old_release:
        old_release.setattr(upcast_module, "CURRENT_SCHEMA_VERSION", 4)
        work()
    assert r.hgetall(KEYS.state) == before  # not a byte written
    assert r.llen(KEYS.inbox) == 1 and not r.exists(KEYS.lease)
    registry = rt.queue.scheduled_job_registry
    [job_id] = registry.get_job_ids()
    assert 25 < registry.get_expiration_time(rt.queue.fetch_job(job_id)).timestamp() - redis_now(r) < 35

    rt.queue.enqueue_job(rt.queue.fetch_job(job_id))  # the delay is over; a new worker takes it
    registry.remove(job_id)
    work()
    assert int(r.hget(KEYS.state, "version")) == 2 and not r.exists(KEYS.inbox)
    assert len(standin.messages()) == 2


def test_a_new_worker_upgrades_what_an_old_worker_wrote(post_sms, work, r, operator_get):
    v2 = json.loads((Path(__file__).parents[1] / "data" / "session_v2.json").read_text())
    r.hset(KEYS.state, mapping={"version": 4, "schema_version": 2, "doc": json.dumps(v2)})
    post_sms("Are you there?", CUSTOMER)
    work()
    stored = decode_document(r.hget(KEYS.state, "doc"))
    assert r.hget(KEYS.state, "schema_version") == str(CURRENT_SCHEMA_VERSION).encode() == b"5"
    assert stored["handoff"] == {"requested_at": "2026-11-23T10:47:18.656817Z", "reason": "customer_request"}
    assert "human_requested_at" not in stored and all("direction" not in e for e in stored["transcript"])
    assert stored["notes"] == []
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 5 and convo["status"] == "waiting_human"  # still with a human: the AI stays silent
    assert [t["direction"] for t in convo["turns"]][-1] == "inbound"


def redis_now(r) -> float:
    seconds, micros = r.time()
    return seconds + micros / 1e6
