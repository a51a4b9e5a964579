"""Slow clients cannot take the web tier offline (issue 18, item 2): real sockets against the Procfile's web line.

Two attacks from the security probe, each held for a bounded time while a
probe checks that the service still answers:

* slowloris: 200 connections each send a request line, then one header line
  every 2 s and never finish their headers; ``/healthz`` answers within 1 s
  throughout, and the server closes each such connection at its header
  deadline (``LANEWAY_WEB_HEADER_TIMEOUT_S``) instead of holding it.
* slow bodies: 100 POSTs to the Twilio messaging webhook announce
  ``Content-Length: 60000`` and send one byte every 3 s; ``/healthz`` and a
  correctly signed webhook still answer, and each slow POST is answered 408
  at the body deadline (``LANEWAY_WEB_BODY_TIMEOUT_S``).

With the former Procfile line (``--worker-class gthread --threads 32``, 2
workers: 64 threads that read headers and bodies with no deadline) both fail:
every thread is held by a slow client and ``/healthz`` times out.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests

from core.settings import Settings
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, sign, twilio_form
from tests.support.procfile_web import procfile_web

pytestmark = [pytest.mark.redis_server, pytest.mark.stack]

HEADER_TIMEOUT_S = Settings.model_fields["web_header_timeout_s"].default
BODY_TIMEOUT_S = Settings.model_fields["web_body_timeout_s"].default
PROBE_TIMEOUT_S = 1.0
"""How long ``/healthz`` may take to answer during an attack."""


@pytest.fixture
def web(redis_url, tenants, tmp_path):
    with procfile_web(redis_url, PUBLIC_BASE_URL, tmp_path / "web.log") as url:
        yield url


@dataclass
class SlowClients:
    """``count`` connections that send ``opening``, then ``drip`` every ``interval_s``; reopened when the server closes them."""

    url: str
    count: int
    opening: bytes
    drip: bytes
    interval_s: float
    reopen: bool
    closed_by_server: int = 0
    answers: list[bytes] = field(default_factory=list)
    opened: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def _open(self, selector: selectors.BaseSelector) -> None:
        parts = urlsplit(self.url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        sock.sendall(self.opening)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        self.opened += 1

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for _ in range(self.count):
            self._open(selector)
        next_drip = time.monotonic() + self.interval_s
        try:
            while not self.stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    sock = key.fileobj
                    try:
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        self.answers.append(data)
                    selector.unregister(sock)
                    sock.close()
                    self.closed_by_server += 1
                    if self.reopen and not self.stop.is_set():
                        self._open(selector)
                if time.monotonic() >= next_drip:
                    next_drip += self.interval_s
                    for key in list(selector.get_map().values()):
                        try:
                            key.fileobj.send(self.drip)
                        except OSError:
                            pass  # closed by the server: the select above sees it
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()


@dataclass
class Probe:
    """Calls ``check()`` every ``every_s`` until stopped; records each failure with its time."""

    check: object
    every_s: float
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.wait(self.every_s):
            try:
                self.check()
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.failures.append(f"{time.monotonic() - started:.1f}s: {exc!r}"[:200])


def _attack(clients: SlowClients, probes: list[Probe], duration_s: float) -> None:
    threads = [threading.Thread(target=clients.run, daemon=True)] + [
        threading.Thread(target=p.run, daemon=True) for p in probes
    ]
    for t in threads:
        t.start()
    time.sleep(duration_s)
    clients.stop.set()
    for p in probes:
        p.stop.set()
    for t in threads:
        t.join(timeout=10)


def _healthz(web: str):
    def check() -> None:
        answer = requests.get(f"{web}/healthz", timeout=PROBE_TIMEOUT_S)
        assert answer.status_code == 200, answer.status_code

    return check


def test_slowloris_headers_do_not_take_the_web_tier_offline(web):
    clients = SlowClients(
        web, count=200, opening=b"GET /healthz HTTP/1.1\r\nHost: laneway.test\r\n",
        drip=b"X-Slow: y\r\n", interval_s=2.0, reopen=True,
    )
    health = Probe(_healthz(web), every_s=0.25)
    _attack(clients, [health], duration_s=HEADER_TIMEOUT_S + 5)
    print(f"slowloris: /healthz ok {health.ok}, failed {len(health.failures)}; "
          f"connections opened {clients.opened}, closed by the server {clients.closed_by_server}")

    assert health.failures == [], f"/healthz failed {len(health.failures)} of {len(health.failures) + health.ok} times: {health.failures[:5]}"
    assert health.ok > 20
    # Every one of the first 200 connections was closed at the header deadline, never answered.
    assert clients.closed_by_server >= 200, (clients.closed_by_server, clients.opened)
    assert clients.answers == []


def test_slow_bodies_do_not_take_the_webhook_offline(web):
    head = (
        "POST /twilio/messaging HTTP/1.1\r\nHost: laneway.test\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n"
        f"X-Twilio-Signature: {'A' * 28}=\r\n\r\n"
    ).encode()
    clients = SlowClients(web, count=100, opening=head + b"B", drip=b"o", interval_s=3.0, reopen=False)
    health = Probe(_healthz(web), every_s=0.5)
    sent = 0

    def webhook() -> None:
        nonlocal sent
        sent += 1
        form = twilio_form(f"slow-body probe {sent}", "+15557650000")
        answer = requests.post(
            f"{web}/twilio/messaging", data=form, timeout=2,
            headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])},
        )
        assert answer.status_code == 200, (answer.status_code, answer.text[:200])

    hook = Probe(webhook, every_s=1.0)
    _attack(clients, [health, hook], duration_s=BODY_TIMEOUT_S + 4)
    print(f"slow bodies: /healthz ok {health.ok}, failed {len(health.failures)}; webhook ok {hook.ok}, "
          f"failed {len(hook.failures)}; slow POSTs answered {len(clients.answers)}, closed {clients.closed_by_server}")

    assert health.failures == [], f"/healthz failed {len(health.failures)} of {len(health.failures) + health.ok} times: {health.failures[:5]}"
    assert hook.failures == [], f"the signed webhook failed {len(hook.failures)} of {len(hook.failures) + hook.ok} times: {hook.failures[:5]}"
    assert health.ok > 10 and hook.ok > 5
    # Each slow POST was answered 408 at the body deadline and closed.
    assert clients.closed_by_server == 100, clients.closed_by_server
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in clients.answers) and len(clients.answers) == 100, clients.answers[:3]


def test_buffered_bodies_reach_the_app_unchanged(web):
    """The body deadline buffers bodies before the app: chunked ones within the limit still work, larger ones are 413."""
    from urllib.parse import urlencode

    form = twilio_form("sent in chunks", "+15557650004")
    raw = urlencode(form).encode()
    chunked = requests.post(
        f"{web}/twilio/messaging", data=(raw[i:i + 7] for i in range(0, len(raw), 7)), timeout=5,
        headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER]), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert chunked.status_code == 200 and chunked.request.headers.get("Transfer-Encoding") == "chunked"
    limit = Settings.model_fields["max_request_bytes"].default
    too_long = requests.post(
        f"{web}/twilio/messaging", data=(b"x" * 4096 for _ in range(limit // 4096 + 2)), timeout=5,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_long.status_code == 413
    announced = requests.post(f"{web}/twilio/messaging", data=b"x" * (limit + 1), timeout=5,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert announced.status_code == 413
