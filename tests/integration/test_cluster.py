"""The turn pipeline with state on a Redis Cluster and RQ on a single primary.

State (conversations, tenants) lives on a private 3-primary cluster (fixture
``cluster`` from ``tests/integration/conftest.py``); the queue stays on the
shared test database (fixture ``r``). Every conversation script must touch one
hash slot; the guard test proves a script given keys of two slots is refused,
so a wrongly built key fails here rather than in production.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from redis.cluster import RedisCluster
from redis.exceptions import (
    ClusterCrossSlotError,
    CrossSlotTransactionError,
    RedisClusterException,
    ResponseError,
)

from core.connection import state_redis
from state import keys as K
from state.keys import ConversationKeys
from tests.conftest import ACME_NUMBER

pytestmark = [pytest.mark.redis_server, pytest.mark.state_on_cluster]

CUSTOMER = "+15557654321"
ACME = "acme-insurance"


@pytest.fixture
def operator(client):
    def call(method: str, conversation_id: str, tenant_id: str = ACME, api_key: str = "dev-acme-api-key"):
        return client.open(
            f"/api/v1/tenants/{tenant_id}/conversations/{quote(conversation_id, safe='')}",
            method=method,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    return call


def sent_to(standin, number: str) -> list[str]:
    return [m["Body"] for m in standin.messages() if m["To"] == number]


def test_state_is_on_the_cluster_and_the_queue_is_not(rt, cluster, r):
    assert isinstance(rt.state_redis, RedisCluster)
    assert rt.queue.connection is r
    assert cluster.get(K.number(ACME_NUMBER)) == ACME.encode()
    assert r.get(K.number(ACME_NUMBER)) is None


def test_a_text_is_answered_and_recorded_on_the_cluster(post_sms, work, standin, operator, cluster, r):
    response, form = post_sms("Hi, I'd like to apply for life insurance", CUSTOMER)
    assert response.status_code == 200
    assert work()
    replies = sent_to(standin, CUSTOMER)
    assert len(replies) == 1 and "name" in replies[0].lower()
    assert standin.messages()[0]["From"] == ACME_NUMBER

    got = operator("GET", CUSTOMER)
    assert got.status_code == 200, got.get_json()
    convo = got.get_json()
    assert convo["version"] == 1
    assert [(t["direction"], t.get("delivery")) for t in convo["turns"]] == [("inbound", None), ("outbound", "sent")]
    assert convo["turns"][0]["text"] == form["Body"]
    keys = ConversationKeys(ACME, CUSTOMER)
    assert cluster.exists(keys.state) == 1
    assert r.exists(keys.state) == 0  # nothing of the conversation leaked onto the queue Redis


def test_many_conversations_spread_over_the_primaries_all_commit(post_sms, work, standin, operator, cluster):
    customers = [f"+1555800{i:04d}" for i in range(20)]
    nodes = {cluster.get_node_from_key(ConversationKeys(ACME, c).state).name for c in customers}
    slots = {cluster.keyslot(ConversationKeys(ACME, c).state) for c in customers}
    assert len(nodes) >= 2, "the conversations should land on more than one primary"
    assert len(slots) == len(customers)

    for customer in customers:
        assert post_sms("What are your opening hours?", customer)[0].status_code == 200
    assert work()

    for customer in customers:
        assert len(sent_to(standin, customer)) == 1
        convo = operator("GET", customer).get_json()
        assert convo["version"] == 1
        assert convo["turns"][-1]["delivery"] == "sent"
    for customer in customers:
        keys = ConversationKeys(ACME, customer)
        # every key of one conversation sits on one slot, on the node that owns it
        assert {cluster.keyslot(k) for k in keys.all()} == {cluster.keyslot(keys.state)}


def test_stop_and_start_on_the_cluster(post_sms, work, standin, operator, cluster):
    post_sms("STOP", CUSTOMER)
    work()
    assert len(sent_to(standin, CUSTOMER)) == 1
    assert operator("GET", CUSTOMER).get_json()["opted_out"] is True
    assert cluster.exists(ConversationKeys(ACME, CUSTOMER).optout) == 1

    post_sms("What are your opening hours?", CUSTOMER)
    work()
    assert len(sent_to(standin, CUSTOMER)) == 1
    assert operator("GET", CUSTOMER).get_json()["turns"][-1]["delivery"] == "suppressed"

    post_sms("START", CUSTOMER)
    work()
    assert operator("GET", CUSTOMER).get_json()["opted_out"] is False
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    replies = sent_to(standin, CUSTOMER)
    assert len(replies) == 3 and "8am" in replies[-1]


def test_erase_on_the_cluster(post_sms, work, operator, rt, cluster):
    post_sms("STOP", CUSTOMER)
    work()
    keys = ConversationKeys(ACME, CUSTOMER)
    assert cluster.exists(keys.state, keys.optout) == 2

    assert rt.store.erase(keys) >= 2
    assert cluster.exists(*keys.all()) == 0
    assert rt.store.read(keys) is None
    assert operator("GET", CUSTOMER).status_code == 404
    assert rt.store.erase(keys) == 0


def test_operator_erase_endpoint_on_the_cluster(post_sms, work, operator, cluster):
    post_sms("hello", CUSTOMER)
    work()
    assert operator("DELETE", CUSTOMER).status_code == 204
    assert cluster.exists(*ConversationKeys(ACME, CUSTOMER).all()) == 0
    assert operator("GET", CUSTOMER).status_code == 404
    assert operator("DELETE", CUSTOMER).status_code == 404


def test_a_script_given_keys_of_two_slots_is_refused(rt, cluster):
    """Guard: a key built outside the conversation's hash tag fails loudly, never half-runs."""
    a, b = ConversationKeys(ACME, "+15550000001"), ConversationKeys(ACME, "+15550000002")
    assert cluster.keyslot(a.lease) != cluster.keyslot(b.state)
    store = rt.store

    # The cluster client refuses before sending.
    with pytest.raises(RedisClusterException, match="same key slot"):
        store._acquire(keys=[a.lease, b.state, a.inbox, a.optout], args=["token", 1000])
    # And the server itself answers CROSSSLOT (redis-py: ClusterCrossSlotError) to a direct call.
    node = cluster.get_node_from_key(a.lease).redis_connection
    with pytest.raises(ClusterCrossSlotError, match="same slot"):
        node.eval(store._acquire.script, 4, a.lease, b.state, a.inbox, a.optout, "token", 1000)
    # A tenant-wide key never shares a conversation's slot either.
    with pytest.raises((RedisClusterException, ResponseError)):
        store._claim(keys=[a.outbox, K.tenant(ACME), a.outbox_pending], args=["m1"])
    # A read transaction over two conversations is refused too, never silently split.
    pipe = cluster.pipeline(transaction=True)
    pipe.hmget(a.state, "version", "doc")
    pipe.exists(b.optout)
    with pytest.raises(CrossSlotTransactionError):
        pipe.execute()
    assert cluster.exists(a.lease, b.state) == 0


def test_healthz_pings_the_cluster(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["checks"] == {"queue_redis": True, "state_redis": True}


def test_state_redis_connects_to_the_cluster_from_settings(settings, cluster, tenants):
    client = state_redis(settings)
    try:
        assert isinstance(client, RedisCluster)
        assert {n.name for n in client.get_primaries()} == {n.name for n in cluster.get_primaries()}
        assert client.get(K.number(ACME_NUMBER)) == ACME.encode()
    finally:
        client.close()


def test_tenant_resave_moves_numbers_across_slots(tenants, cluster):
    acme = tenants.get(ACME)
    extra = "+15550003333"
    tenants.save(acme.model_copy(update={"phone_numbers": [ACME_NUMBER, extra]}), "development")
    assert tenants.by_number(extra).tenant_id == ACME
    tenants.save(acme.model_copy(update={"phone_numbers": [extra]}), "development")
    assert cluster.get(K.number(ACME_NUMBER)) is None
    assert tenants.by_number(ACME_NUMBER) is None
    assert tenants.by_number(extra).tenant_id == ACME
    assert tenants.tenant_for_api_key("dev-acme-api-key") == ACME
    assert cluster.smembers(K.tenants_index()) == {b"acme-insurance", b"bright-clinic"}
