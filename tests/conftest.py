"""Shared fixtures.

Redis: the real server at 127.0.0.1:6379 when it answers (database 9, flushed
before and after each test; never database 0, never FLUSHALL), else (or with
``LANEWAY_TEST_PRIVATE_REDIS=1``) a private server started the way ``make run``
starts one. Workers run in burst mode.

Hypothesis: two profiles, chosen by ``HYPOTHESIS_PROFILE``. ``ci`` (the
default, ``make test``) is derandomized: every run tries the same examples,
so the suite passes or fails on the code, never on luck; a failure prints
its reproduction blob. ``fuzz`` (``make fuzz``) is random and tries
:data:`FUZZ_FACTOR` times the examples, to hunt for new bugs; every example
it finds is kept in the test as an ``@example``. Property tests are marked
``property`` and size their runs with :func:`examples`.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import requests
from hypothesis import settings as hypothesis_settings
from rq.serializers import JSONSerializer
from twilio.request_validator import RequestValidator

from core.settings import Settings
from devtools.chat import inbound_form
from devtools.openai_standin import start_openai_standin_thread
from devtools.redis_server import RedisServer
from devtools.twilio_standin import start_standin_thread
from jobs import runtime as job_runtime
from jobs.queues import campaign_queue
from jobs.runtime import build_runtime
from jobs.worker import LanewayWorker
from service import create_app
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry

ROOT = Path(__file__).parents[1]
EXAMPLE_TENANTS = ROOT / "tenants.example.yaml"
TEST_DB = int(os.environ.get("LANEWAY_TEST_REDIS_DB", "9"))
PUBLIC_BASE_URL = "https://laneway.test"
ACME_NUMBER = "+15550001111"
BRIGHT_NUMBER = "+15550002222"
AUTH_TOKENS = {ACME_NUMBER: "dev-acme-auth-token", BRIGHT_NUMBER: "dev-bright-auth-token"}


FUZZ_FACTOR = 10
"""How many times more examples each property test tries under the ``fuzz`` profile."""

hypothesis_settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
hypothesis_settings.register_profile("fuzz", derandomize=False, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n: int) -> int:
    """``max_examples`` for a property test: ``n`` under the ``ci`` profile, :data:`FUZZ_FACTOR` × ``n`` under ``fuzz``.

    (A test's own ``max_examples`` overrides a profile's, so the scale is applied here.)
    """
    return n * FUZZ_FACTOR if hypothesis_settings.get_current_profile_name() == "fuzz" else n


def _shared_redis_answers() -> bool:
    if os.environ.get("LANEWAY_TEST_PRIVATE_REDIS"):  # behave as on a machine without Redis
        return False
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_base_url():
    """``redis://host:port`` of the Redis the tests use (shared if up, else private)."""
    if _shared_redis_answers():
        yield "redis://127.0.0.1:6379"
        return
    server = RedisServer().start()
    try:
        yield server.url.rsplit("/", 1)[0]
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_base_url):
    return f"{redis_base_url}/{TEST_DB}"


@pytest.fixture
def r(redis_url):
    """A bytes-mode client on the test database, flushed before and after."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(redis_url, twilio_standin) -> Settings:
    return Settings(
        redis_url=redis_url,
        public_base_url=PUBLIC_BASE_URL,
        twilio_api_url=twilio_standin.url,
        delivery_retry_intervals_s=[0, 0],
        drain_retry_intervals_s=[0],
    )


class Standin:
    """Test-side handle on the Twilio stand-in, through its control endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def messages(self) -> list[dict[str, str]]:
        """Form fields (``To``, ``From``, ``Body``) of every message Twilio accepted (201), in order."""
        received = requests.get(f"{self.url}/_standin/messages", timeout=5).json()["messages"]
        return [m["form"] for m in received if m["status"] == 201]

    def attempts(self) -> list[dict]:
        return requests.get(f"{self.url}/_standin/messages", timeout=5).json()["messages"]

    def fail_next(self, status: int, count: int) -> None:
        requests.post(f"{self.url}/_standin/faults", json={"status": status, "count": count}, timeout=5).raise_for_status()

    def callbacks(self) -> list[dict]:
        """Every status callback the stand-in made (``url``, ``form``, ``signature``, ``status``), in order."""
        return requests.get(f"{self.url}/_standin/callbacks", timeout=5).json()["callbacks"]

    def send_callbacks_to(self, base_url: str | None) -> None:
        requests.post(f"{self.url}/_standin/callbacks", json={"base_url": base_url}, timeout=5).raise_for_status()

    def deliver(self, **config) -> None:
        """Configure the stand-in's carrier (``POST /_standin/delivery``: outcome per ``to``, ``callback_delays_s``, ``reorder``)."""
        requests.post(f"{self.url}/_standin/delivery", json=config, timeout=5).raise_for_status()

    def whatsapp_inbound(self, customer: str, sender: str, at_s: float | None = None) -> None:
        """The customer wrote to ``sender`` on WhatsApp at ``at_s`` (default now): the stand-in's 24-hour window."""
        body = {"from": customer, "to": sender} | ({"at_s": at_s} if at_s is not None else {})
        requests.post(f"{self.url}/_standin/whatsapp/inbound", json=body, timeout=5).raise_for_status()

    def messaging_service(self, sid: str, numbers: list[str]) -> None:
        """Declare a Messaging Service and its sender numbers (``POST /_standin/services``)."""
        body = {"sid": sid, "numbers": numbers}
        requests.post(f"{self.url}/_standin/services", json=body, timeout=5).raise_for_status()

    def add_media(self, account_sid: str, auth_token: str, content_type: str, data: bytes) -> str:
        """Store an attachment served behind Basic ``account_sid:auth_token``; returns its Twilio media URL."""
        body = {"account_sid": account_sid, "auth_token": auth_token, "content_type": content_type,
                "body_b64": base64.b64encode(data).decode()}
        answer = requests.post(f"{self.url}/_standin/media", json=body, timeout=5)
        answer.raise_for_status()
        return answer.json()["url"]

    def media_fetches(self) -> list[dict]:
        return requests.get(f"{self.url}/_standin/media", timeout=5).json()["fetches"]

    def handset(self) -> list[str]:
        """Sids in the order the carrier handed them over (``sent``)."""
        return requests.get(f"{self.url}/_standin/delivery", timeout=5).json()["handset"]

    def clear(self) -> None:
        requests.delete(f"{self.url}/_standin/delivery", timeout=5)
        requests.delete(f"{self.url}/_standin/messages", timeout=5)
        requests.delete(f"{self.url}/_standin/faults", timeout=5)
        requests.delete(f"{self.url}/_standin/callbacks", timeout=5)


class OpenAIStandin:
    """Test-side handle on the OpenAI stand-in's control endpoints (``devtools/openai_standin.py``)."""

    def __init__(self, url: str, base_url: str) -> None:
        self.url, self.base_url = url, base_url

    def script(self, *responses: dict, rules: list[dict] | None = None, default: dict | None = None) -> None:
        body = {"responses": list(responses), "rules": rules or [], "default": default}
        requests.post(f"{self.url}/_standin/script", json=body, timeout=5).raise_for_status()

    def answer(self, lane: str, intent: str = "chat", confidence: float = 0.9) -> None:
        """Script one routing answer."""
        self.script({"json": {"lane": lane, "intent": intent, "confidence": confidence}})

    def fault(self, **fault) -> None:
        requests.post(f"{self.url}/_standin/faults", json={"faults": [fault]}, timeout=5).raise_for_status()

    def requests(self) -> list[dict]:
        """Every request received (``api_key``, ``body``, …), in order."""
        return requests.get(f"{self.url}/_standin/requests", timeout=5).json()["requests"]

    def bodies(self) -> list[dict]:
        """The JSON bodies of every request received, in order."""
        return [r["body"] for r in self.requests()]

    def take_bodies(self) -> list[dict]:
        """The bodies received since the last call, then forgotten."""
        bodies = self.bodies()
        requests.delete(f"{self.url}/_standin/requests", timeout=5).raise_for_status()
        return bodies

    def reset(self) -> None:
        requests.post(f"{self.url}/_standin/reset", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def openai_server():
    """The local OpenAI Chat Completions stand-in, served from a thread for the session."""
    server = start_openai_standin_thread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def llm(openai_server) -> OpenAIStandin:
    """The OpenAI stand-in, reset before and after the test."""
    handle = OpenAIStandin(openai_server.url, openai_server.base_url)
    handle.reset()
    yield handle
    handle.reset()


@pytest.fixture(scope="session")
def twilio_standin():
    """The local Twilio Messages API stand-in, served from a thread for the session."""
    server = start_standin_thread()
    try:
        yield Standin(server.url)
    finally:
        server.stop()


@pytest.fixture
def standin(twilio_standin):
    twilio_standin.clear()
    yield twilio_standin
    twilio_standin.clear()


@pytest.fixture
def state_conn(r):
    """The client for conversation state and tenants: the test database (a module may override it)."""
    return r


@pytest.fixture
def tenants(state_conn, settings) -> TenantRegistry:
    registry = TenantRegistry(state_conn, cache_ttl_s=0)
    registry.load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), settings.env)
    return registry


@pytest.fixture
def rt(r, state_conn, settings, tenants):
    """The worker runtime (queue on the test database, state on ``state_conn``), installed for in-process jobs."""
    runtime = build_runtime(settings, queue_connection=r, state_connection=state_conn)
    runtime.tenants.cache_ttl_s = 0
    job_runtime.install(runtime)
    yield runtime
    job_runtime.install(None)


@pytest.fixture
def app(r, state_conn, settings, tenants, rt):
    app = create_app({"SETTINGS": settings, "QUEUE_REDIS": r, "STATE_REDIS": state_conn, "TESTING": True})
    app.extensions["laneway"].tenants.cache_ttl_s = 0
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def twilio_form(body: str, sender: str, to: str = ACME_NUMBER, message_sid: str | None = None) -> dict[str, str]:
    """The form Twilio posts for an inbound SMS (Twilio's parameter names)."""
    return inbound_form(account_sid="AC" + "0" * 32, from_number=sender, to_number=to, body=body, message_sid=message_sid)


def sign(form: dict[str, str], auth_token: str, url: str = PUBLIC_BASE_URL + "/twilio/messaging") -> str:
    return RequestValidator(auth_token).compute_signature(url, form)


@pytest.fixture
def post_sms(client, twilio_standin):
    """Post a correctly signed inbound SMS through the Flask test client.

    A WhatsApp message is also told to the Twilio stand-in (as Twilio sees it
    pass), which opens its 24-hour window for free-form replies.
    """

    def post(body: str, sender: str, to: str = ACME_NUMBER, message_sid: str | None = None, **extra: str):
        form = twilio_form(body, sender, to, message_sid) | extra
        if sender.startswith("whatsapp:"):
            twilio_standin.whatsapp_inbound(sender, to if to.startswith("whatsapp:") else "whatsapp:" + to)
        return client.post(
            "/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[to.removeprefix("whatsapp:")])}
        ), form

    return post


@pytest.fixture
def work(r, rt):
    """Run a burst SimpleWorker on the queue until it is empty; returns whether jobs ran."""

    def run() -> bool:
        worker = LanewayWorker([rt.queue, campaign_queue(rt.queue)], connection=r, serializer=JSONSerializer)
        return worker.work(burst=True, with_scheduler=True)

    return run


@pytest.fixture
def operator_get(client):
    def get(tenant_id: str, conversation_id: str, api_key: str | None = "dev-acme-api-key"):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return client.get(f"/api/v1/tenants/{tenant_id}/conversations/{quote(conversation_id, safe='')}", headers=headers)

    return get
