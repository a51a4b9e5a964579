"""The Procfile's web line serves live feeds and requests together (gthread workers).

gunicorn runs exactly as the Procfile says (plus ``--no-control-socket``, as
``laneway run`` does, so parallel stacks do not clash) on the test Redis. With
many dashboards' live feeds open, an ordinary API request still answers
promptly: the feeds hold threads, not whole workers.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from state.settings import child_environment
from tests.conftest import PUBLIC_BASE_URL

pytestmark = [pytest.mark.redis_server, pytest.mark.stack]

ROOT = Path(__file__).parents[2]
OPEN_FEEDS = 24
"""Live feeds held open during the check: fewer than one worker's threads (32), since gunicorn
does not balance connections between workers and one may take them all."""
ACME = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}


def procfile_web_argv(port: int) -> list[str]:
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    argv = shlex.split(line.removeprefix("web:").replace("$PORT", str(port)))
    assert argv[0] == "gunicorn"
    return [sys.executable, "-m", "gunicorn", "--no-control-socket", *argv[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web(redis_url, tenants, tmp_path):
    port = free_port()
    env = child_environment()
    env.update(REDIS_URL=redis_url, LANEWAY_PUBLIC_BASE_URL=PUBLIC_BASE_URL, LANEWAY_LOG_LEVEL="WARNING",
               PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(procfile_web_argv(port), cwd=ROOT, env=env, start_new_session=True,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=3).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start: {(tmp_path / 'web.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


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
