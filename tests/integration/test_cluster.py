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
from redis.exceptions import ClusterCrossSlotError, CrossSlotTransactionError, RedisClusterException, ResponseError
from rq.serializers import JSONSerializer

from jobs import runtime as job_runtime
from jobs.runtime import build_runtime
from jobs.worker import LanewayWorker
from service import create_app
from state import keys as K
from state.connection import state_redis
from state.keys import ConversationKeys
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry

from tests.conftest import ACME_NUMBER, AUTH_TOKENS, EXAMPLE_TENANTS, sign, twilio_form

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
ACME = "acme-insurance"


@pytest.fixture
def cluster_settings(settings, redis_cluster):
    return settings.model_copy(update={"state_redis_url": redis_cluster.url, "state_redis_cluster": True})


@pytest.fixture
def cluster_tenants(cluster, cluster_settings) -> TenantRegistry:
    registry = TenantRegistry(cluster, cache_ttl_s=0)
    registry.load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), cluster_settings.env)
    return registry


@pytest.fixture
def crt(r, cluster, cluster_settings, cluster_tenants):
    """The worker runtime: queue on the shared test database, state on the cluster."""
    runtime = build_runtime(cluster_settings, queue_connection=r, state_connection=cluster)
    runtime.tenants.cache_ttl_s = 0
    job_runtime.install(runtime)
    yield runtime
    job_runtime.install(None)


@pytest.fixture
def cclient(r, cluster, cluster_settings, crt):
    app = create_app({"SETTINGS": cluster_settings, "QUEUE_REDIS": r, "STATE_REDIS": cluster, "TESTING": True})
    app.extensions["laneway"].tenants.cache_ttl_s = 0
    return app.test_client()


@pytest.fixture
def post_sms(cclient):
    def post(body: str, sender: str, to: str = ACME_NUMBER, message_sid: str | None = None):
        form = twilio_form(body, sender, to, message_sid)
        response = cclient.post(
            "/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[to])}
        )
        return response, form

    return post


@pytest.fixture
def work(r, crt):
    def run() -> bool:
        return LanewayWorker([crt.queue], connection=r, serializer=JSONSerializer).work(burst=True, with_scheduler=True)

    return run


@pytest.fixture
def operator(cclient):
    def call(method: str, conversation_id: str, tenant_id: str = ACME, api_key: str = "dev-acme-api-key"):
        return cclient.open(
            f"/api/v1/tenants/{tenant_id}/conversations/{quote(conversation_id, safe='')}",
            method=method,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    return call


def sent_to(standin, number: str) -> list[str]:
    return [m["Body"] for m in standin.messages() if m["To"] == number]


def test_state_is_on_the_cluster_and_the_queue_is_not(crt, cluster, r):
    assert isinstance(crt.state_redis, RedisCluster)
    assert crt.queue.connection is r
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
        assert {cluster.keyslot(k) for k in keys.all_static() + [keys.seen("SMx")]} == {cluster.keyslot(keys.state)}


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


def test_erase_on_the_cluster(post_sms, work, operator, crt, cluster):
    post_sms("STOP", CUSTOMER)
    work()
    keys = ConversationKeys(ACME, CUSTOMER)
    assert cluster.exists(keys.state, keys.optout) == 2

    assert crt.store.erase(keys) >= 2
    assert cluster.exists(*keys.all_static()) == 0
    assert crt.store.read(keys) is None
    assert operator("GET", CUSTOMER).status_code == 404
    assert crt.store.erase(keys) == 0


def test_operator_erase_endpoint_on_the_cluster(post_sms, work, operator, cluster):
    post_sms("hello", CUSTOMER)
    work()
    assert operator("DELETE", CUSTOMER).status_code == 204
    assert cluster.exists(*ConversationKeys(ACME, CUSTOMER).all_static()) == 0
    assert operator("GET", CUSTOMER).status_code == 404
    assert operator("DELETE", CUSTOMER).status_code == 404


def test_a_script_given_keys_of_two_slots_is_refused(crt, cluster):
    """Guard: a key built outside the conversation's hash tag fails loudly, never half-runs."""
    a, b = ConversationKeys(ACME, "+15550000001"), ConversationKeys(ACME, "+15550000002")
    assert cluster.keyslot(a.lease) != cluster.keyslot(b.state)
    store = crt.store

    # The cluster client refuses before sending.
    with pytest.raises(RedisClusterException, match="same key slot"):
        store._acquire(keys=[a.lease, b.state, a.inbox, a.optout], args=["token", 1000])
    # And the server itself answers CROSSSLOT (redis-py: ClusterCrossSlotError) to a direct call.
    node = cluster.get_node_from_key(a.lease).redis_connection
    with pytest.raises(ClusterCrossSlotError, match="same slot"):
        node.eval(store._acquire.script, 4, a.lease, b.state, a.inbox, a.optout, "token", 1000)
    # A tenant-wide key never shares a conversation's slot either.
    with pytest.raises((RedisClusterException, ResponseError)):
        store._claim(keys=[a.outbox, K.tenant(ACME)], args=["m1"])
    # A read transaction over two conversations is refused too, never silently split.
    pipe = cluster.pipeline(transaction=True)
    pipe.hmget(a.state, "version", "doc")
    pipe.exists(b.optout)
    with pytest.raises(CrossSlotTransactionError):
        pipe.execute()
    assert cluster.exists(a.lease, b.state) == 0


def test_healthz_pings_the_cluster(cclient):
    response = cclient.get("/healthz")
    assert response.status_code == 200 and response.get_json()["checks"] == {"queue_redis": True, "state_redis": True}


def test_state_redis_connects_to_the_cluster_from_settings(cluster_settings, cluster, cluster_tenants):
    client = state_redis(cluster_settings)
    try:
        assert isinstance(client, RedisCluster)
        assert {n.name for n in client.get_primaries()} == {n.name for n in cluster.get_primaries()}
        assert client.get(K.number(ACME_NUMBER)) == ACME.encode()
    finally:
        client.close()


def test_tenant_resave_moves_numbers_across_slots(cluster_tenants, cluster):
    acme = cluster_tenants.get(ACME)
    extra = "+15550003333"
    cluster_tenants.save(acme.model_copy(update={"phone_numbers": [ACME_NUMBER, extra]}), "development")
    assert cluster_tenants.by_number(extra).tenant_id == ACME
    cluster_tenants.save(acme.model_copy(update={"phone_numbers": [extra]}), "development")
    assert cluster.get(K.number(ACME_NUMBER)) is None
    assert cluster_tenants.by_number(ACME_NUMBER) is None
    assert cluster_tenants.by_number(extra).tenant_id == ACME
    assert cluster_tenants.tenant_for_api_key("dev-acme-api-key") == ACME
    assert cluster.smembers(K.tenants_index()) == {b"acme-insurance", b"bright-clinic"}
