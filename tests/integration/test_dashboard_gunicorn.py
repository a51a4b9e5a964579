"""The Procfile's web line serves live feeds and requests together (gevent workers).

gunicorn runs exactly as the Procfile says (plus ``--no-control-socket``, as
``laneway run`` does, so parallel stacks do not clash) on the test Redis. With
many dashboards' live feeds open, an ordinary API request still answers
promptly: each feed is a greenlet waiting on Redis, not a thread or a worker.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from core.settings import Settings
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, sign, twilio_form
from tests.support.procfile_web import procfile_web

pytestmark = [pytest.mark.redis_server, pytest.mark.stack]

OPEN_FEEDS = 24
"""Live feeds held open during the check (one key; within ``LANEWAY_FEED_STREAMS_PER_KEY``)."""
ACME = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}


@pytest.fixture
def web(redis_url, tenants, tmp_path):
    with procfile_web(redis_url, PUBLIC_BASE_URL, tmp_path / "web.log") as url:
        yield url


@pytest.fixture
def web_many_feeds(redis_url, tenants, tmp_path):
    """The same web line, with one key allowed :data:`OPEN_FEEDS` streams (the default cap is lower)."""
    with procfile_web(redis_url, PUBLIC_BASE_URL, tmp_path / "web.log", LANEWAY_FEED_STREAMS_PER_KEY=str(OPEN_FEEDS)) as url:
        yield url


def test_one_key_cannot_open_more_streams_than_its_cap_and_webhooks_still_answer(web):
    """Issue 18 item 3 with real sockets: the cap holds across both workers; open streams take nothing webhooks need."""
    cap = Settings.model_fields["feed_streams_per_key"].default
    opened: list[requests.Response] = []
    try:
        answers = []
        for _ in range(cap + 3):
            token = requests.post(f"{web}/api/v1/tenants/acme-insurance/events/token", headers=ACME, timeout=5).json()
            response = requests.get(web + token["url"], stream=True, timeout=10)
            answers.append(response.status_code)
            if response.status_code == 200:
                assert response.raw.read(5) == b"retry"  # open, and holding its place
                opened.append(response)
            else:
                assert response.status_code == 429, (response.status_code, response.text[:300], answers)
                assert int(response.headers["Retry-After"]) >= 1
                assert f"already has {cap} live feeds open" in response.json()["error"]
                response.close()
        assert answers == [200] * cap + [429] * 3
        for n in range(5):
            assert requests.get(f"{web}/healthz", timeout=1).status_code == 200
            form = twilio_form(f"while the feeds are open {n}", "+15557650003")
            hook = requests.post(f"{web}/twilio/messaging", data=form, timeout=2,
                                 headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])})
            assert hook.status_code == 200
        bright = requests.get(f"{web}/api/v1/tenants/bright-clinic/conversations", timeout=1,
                              headers={"Authorization": "Bearer dev-bright-api-key"})
        assert bright.status_code == 200
    finally:
        for response in opened:
            response.close()


def test_open_live_feeds_leave_room_for_requests(web_many_feeds):
    web = web_many_feeds
    streams: list[requests.Response] = []
    connected = threading.Barrier(OPEN_FEEDS + 1, timeout=20)
    stop = threading.Event()

    errors: list[BaseException] = []
    stages: dict[str, int] = {}

    def stage(name: str) -> None:
        stages[name] = stages.get(name, 0) + 1

    def follow() -> None:
        try:
            _follow()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
            connected.abort()

    def _follow() -> None:
        stage("start")
        token = requests.post(f"{web}/api/v1/tenants/acme-insurance/events/token", headers=ACME, timeout=5).json()
        response = requests.get(web + token["url"], stream=True, timeout=30)
        stage("get")
        streams.append(response)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        first = response.raw.read(5)  # "retry": the stream is open and holds its thread
        assert first == b"retry", first
        stage("read")
        connected.wait()
        stop.wait(30)
        response.close()

    threads = [threading.Thread(target=follow, daemon=True) for _ in range(OPEN_FEEDS)]
    for t in threads:
        t.start()
    try:
        try:
            connected.wait()
        except threading.BrokenBarrierError:
            raise AssertionError(f"a live feed did not open: {errors[:1]!r}; opened {len(streams)}; stages {stages}") from None
        started = time.monotonic()
        answer = requests.get(f"{web}/api/v1/tenants/acme-insurance/conversations", headers=ACME, timeout=10)
        elapsed_s = time.monotonic() - started
        assert answer.status_code == 200 and answer.json() == {"conversations": [], "next_cursor": None}
        assert elapsed_s < 1.0, f"a list request took {elapsed_s:.2f}s with {OPEN_FEEDS} feeds open"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
