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

from tests.conftest import PUBLIC_BASE_URL
from tests.support.procfile_web import procfile_web

pytestmark = [pytest.mark.redis_server, pytest.mark.stack]

OPEN_FEEDS = 24
"""Live feeds held open during the check (one key; within ``LANEWAY_FEED_STREAMS_PER_KEY``)."""
ACME = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}


@pytest.fixture
def web(redis_url, tenants, tmp_path):
    with procfile_web(redis_url, PUBLIC_BASE_URL, tmp_path / "web.log") as url:
        yield url


def test_open_live_feeds_leave_room_for_requests(web):
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
