"""Alert webhooks against real sockets: a loopback HTTPS canary that must receive nothing.

Every test here talks to real servers on loopback (threads, TLS with a
``trustme`` CA). The canary listens on 127.0.0.1 and [::1] on one port and
counts TCP connections before any TLS, so "refused" means not a single
packet reached it. The control test proves the canary would see each
spelling if the address check were not there (the same URLs, with loopback
exempted, do connect). The receiver that should get webhooks listens on
127.0.0.2 (also loopback on Linux), so a test can exempt it alone while the
canary at 127.0.0.1 stays protected.

The RQ job tests use real Redis and a burst worker (``work``).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
import urllib3.util.connection
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from core.settings import Settings
from jobs.webhooks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookDeliveryError,
    WebhookRefusedError,
    enqueue_webhook,
    post_webhook,
    verify_signature,
)
from state.tenant_config import AlertChannel, SecretRef

SECRET = "whsec-test-secret"
HOOKS = "hooks.example.test"
RECEIVER_IP = "127.0.0.2"
_real_getaddrinfo = socket.getaddrinfo


def fake_resolver(names: dict[str, list[str]]):
    """A ``getaddrinfo`` answering ``names`` from the table (as a DNS server might) and anything else as usual."""

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host.lower() in names:
            out = []
            for address in names[host.lower()]:
                fam = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (address, port, 0, 0) if fam == socket.AF_INET6 else (address, port)
                out.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
            return out
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    return getaddrinfo


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What the receiver answers: ``status``, extra ``headers`` (a redirect's ``Location``), ``body``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, family, context: ssl.SSLContext, owner: "Receiver"):
        self.address_family = family
        self.context = context
        self.owner = owner
        super().__init__(address, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        with self.owner.lock:
            self.owner.connections += 1
        sock.settimeout(5)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):  # TLS failures from clients that refuse our certificate
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        owner: Receiver = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with owner.lock:
            owner.received.append(Received(self.path, {k: v for k, v in self.headers.items()}, body))
            answer = owner.answers.pop(0) if owner.answers else owner.default
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST


class Receiver:
    """HTTPS on ``hosts`` (IP addresses) on one port, with a certificate for ``names``.

    Attributes:
        port: the port every address listens on.
        connections: TCP connections accepted (before TLS).
        received: the HTTP requests that arrived, in order.
        answers: answers to give, in order, then ``default``.
    """

    def __init__(self, ca, names: list[str], hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.lock = threading.Lock()
        self.connections = 0
        self.received: list[Received] = []
        self.answers: list[Answer] = []
        self.default = Answer()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names).configure_cert(context)
        self._servers: list[_Server] = []
        for _attempt in range(20):
            try:
                self._bind(hosts, context)
                break
            except OSError:  # the port was free on the first address only
                self._close_unstarted()
        else:
            raise RuntimeError(f"cannot bind {hosts} on one port")
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in self._servers]
        for t in self._threads:
            t.start()

    def _bind(self, hosts, context) -> None:
        self._servers = []
        port = 0
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = _Server((host, port), family, context, self)
            self._servers.append(server)
            port = server.server_address[1]
        self.port = port

    def _close_unstarted(self) -> None:
        for server in self._servers:
            server.server_close()
        self._servers = []

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.connections = 0
            self.received.clear()
            self.answers.clear()


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_pem(ca, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def _canary(ca):
    server = Receiver(ca, ["canary.example.test", "localhost", "127.0.0.1", "::1"], hosts=("127.0.0.1", "::1"))
    yield server
    server.close()


@pytest.fixture
def canary(_canary):
    """HTTPS on 127.0.0.1 and [::1] (one port): must receive nothing unless a test exempts loopback."""
    _canary.reset()
    yield _canary
    _canary.reset()


@pytest.fixture(scope="module")
def _receiver(ca):
    server = Receiver(ca, [HOOKS], hosts=(RECEIVER_IP,))
    yield server
    server.close()


@pytest.fixture
def receiver(_receiver):
    """The tenant's HTTPS receiver on 127.0.0.2, certificate for ``hooks.example.test``."""
    _receiver.reset()
    yield _receiver
    _receiver.reset()


def post(url, allowed_hosts, ca_pem, **kwargs):
    kwargs.setdefault("connect_timeout_s", 2.0)
    kwargs.setdefault("read_timeout_s", 2.0)
    return post_webhook(url, {"event": "test"}, SECRET, allowed_hosts, ca_certs=ca_pem, **kwargs)


# --- the bypasses: refused, and the canary hears nothing --------------------------

BYPASSES = [
    ("127.1", "decimal shorthand of 127.0.0.1"),
    ("0x7f000001", "hexadecimal"),
    ("2130706433", "one decimal number"),
    ("017700000001", "octal"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped IPv6"),
    ("[::1]", "IPv6 loopback"),
    ("0.0.0.0", "unspecified (connects to this host on Linux)"),
    ("localhost", "a name resolving to loopback"),
]


@pytest.mark.parametrize("host", [h for h, _ in BYPASSES], ids=[why for _, why in BYPASSES])
def test_loopback_in_every_spelling_is_refused(canary, ca_pem, host):
    url = f"https://{host}:{canary.port}/hook"
    with pytest.raises(WebhookRefusedError, match="special-purpose"):
        post(url, [host.strip("[]")], ca_pem)
    time.sleep(0.05)
    assert canary.connections == 0 and canary.received == []


@pytest.mark.parametrize("host", [h for h, _ in BYPASSES], ids=[why for _, why in BYPASSES])
def test_control_the_canary_hears_each_spelling_when_loopback_is_exempted(canary, ca_pem, host):
    """Proves the refusals above come from the address check: exempted, the same URLs reach the canary."""
    url = f"https://{host}:{canary.port}/hook"
    try:
        post(url, [host.strip("[]")], ca_pem, allow_networks=["127.0.0.0/8", "::1/128", "0.0.0.0/32"])
    except WebhookDeliveryError:
        pass  # the TLS name check may fail for the numeric spellings; the connection still happened
    assert canary.connections >= 1


def test_the_metadata_address_is_refused_before_any_connection(monkeypatch, ca_pem):
    attempts = []

    def connect(*args, **kwargs):
        attempts.append(args)
        raise OSError("the test forbids connecting")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)  # what urllib3 connects with
    for host in ("169.254.169.254", "[fe80::1]", "100.64.0.1", "10.0.0.1", "192.168.1.1", "224.0.0.1", "[2002:7f00:1::]"):
        with pytest.raises(WebhookRefusedError):
            post(f"https://{host}/latest/meta-data/", [host.strip("[]")], ca_pem)
    assert attempts == []


def test_a_name_resolving_to_loopback_is_refused(canary, ca_pem):
    resolver = fake_resolver({HOOKS: ["127.0.0.1"]})
    with pytest.raises(WebhookRefusedError, match="127.0.0.1"):
        post(f"https://{HOOKS}:{canary.port}/", [HOOKS], ca_pem, getaddrinfo=resolver)
    assert canary.connections == 0


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused(canary, ca_pem, monkeypatch):
    """One bad answer refuses the host, even listed after a public one (nothing is connected to)."""
    resolver = fake_resolver({HOOKS: ["93.184.215.14", "127.0.0.1"]})
    attempts = []
    real = urllib3.util.connection.create_connection
    monkeypatch.setattr(urllib3.util.connection, "create_connection", lambda *a, **k: attempts.append(a) or real(*a, **k))
    with pytest.raises(WebhookRefusedError, match="127.0.0.1"):
        post(f"https://{HOOKS}:{canary.port}/", [HOOKS], ca_pem, getaddrinfo=resolver)
    assert canary.connections == 0 and attempts == []


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(receiver, canary, ca_pem):
    """DNS rebinding: the first lookup says 127.0.0.2 (exempted), every later one would say the canary."""
    answers = iter([[RECEIVER_IP]])
    calls = []

    def rebinding(host, port, *args, **kwargs):
        calls.append(host)
        if host == HOOKS:
            return fake_resolver({HOOKS: next(answers, ["127.0.0.1"])})(host, port, *args, **kwargs)
        return _real_getaddrinfo(host, port, *args, **kwargs)

    original = socket.getaddrinfo
    socket.getaddrinfo = rebinding  # urllib3 resolves through socket.getaddrinfo too: it must only see the IP
    try:
        result = post(f"https://{HOOKS}:{receiver.port}/", [HOOKS], ca_pem, allow_networks=[f"{RECEIVER_IP}/32"])
    finally:
        socket.getaddrinfo = original
    assert result.address == RECEIVER_IP and len(receiver.received) == 1
    assert calls.count(HOOKS) == 1 and canary.connections == 0


def test_a_redirect_to_loopback_is_not_followed(receiver, canary, ca_pem):
    receiver.answers = [Answer(302, {"Location": f"https://127.0.0.1:{canary.port}/"}, b"")]
    resolver = fake_resolver({HOOKS: [RECEIVER_IP]})
    with pytest.raises(WebhookDeliveryError, match="302.*not followed"):
        post(f"https://{HOOKS}:{receiver.port}/", [HOOKS], ca_pem, allow_networks=[f"{RECEIVER_IP}/32"], getaddrinfo=resolver)
    time.sleep(0.05)
    assert len(receiver.received) == 1
    assert canary.connections == 0


def test_plain_http_is_refused_even_to_an_exempted_address(canary, ca_pem):
    with pytest.raises(WebhookRefusedError, match="https"):
        post(f"http://127.0.0.1:{canary.port}/", ["127.0.0.1"], ca_pem, allow_networks=["127.0.0.0/8"])
    assert canary.connections == 0


def test_a_host_not_on_the_allow_list_is_refused(canary, ca_pem):
    with pytest.raises(WebhookRefusedError, match="allowed_hosts"):
        post(f"https://localhost:{canary.port}/", [HOOKS], ca_pem, allow_networks=["127.0.0.0/8"])
    assert canary.connections == 0


def test_user_info_in_the_url_is_refused(canary, ca_pem):
    with pytest.raises(WebhookRefusedError, match="user name"):
        post(f"https://{HOOKS}@127.0.0.1:{canary.port}/", ["127.0.0.1", HOOKS], ca_pem, allow_networks=["127.0.0.0/8"])
    assert canary.connections == 0


# --- the positive path: real TLS, signed, verified ---------------------------------


def test_a_signed_payload_arrives_over_verified_tls_and_verifies(receiver, ca_pem):
    resolver = fake_resolver({HOOKS: [RECEIVER_IP]})
    payload = {"event": "dashboard_alert", "rule_id": "stuck-on-dob", "priority": "high", "note": "café"}
    result = post_webhook(
        f"https://{HOOKS}:{receiver.port}/laneway/alerts?tenant=acme", payload, SECRET, [HOOKS],
        allow_networks=[f"{RECEIVER_IP}/32"], ca_certs=ca_pem, getaddrinfo=resolver, delivery_id="d-1",
    )
    assert result.status == 200 and result.address == RECEIVER_IP and result.body_prefix == b"ok"
    [got] = receiver.received
    assert got.path == "/laneway/alerts?tenant=acme"
    assert got.headers["Host"] == f"{HOOKS}:{receiver.port}"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers[DELIVERY_ID_HEADER] == "d-1"
    assert verify_signature(got.headers[SIGNATURE_HEADER], got.body, SECRET)
    assert not verify_signature(got.headers[SIGNATURE_HEADER], got.body, "another-secret")
    assert not verify_signature(got.headers[SIGNATURE_HEADER], got.body.replace(b"high", b"low"), SECRET)
    assert json.loads(got.body) == payload


def test_the_certificate_must_name_the_original_host(ca, ca_pem):
    """TLS is verified for the URL's host (SNI ``server_hostname``), not for the address connected to."""
    impostor = Receiver(ca, ["someone-else.example.test", RECEIVER_IP], hosts=(RECEIVER_IP,))
    try:
        with pytest.raises(WebhookDeliveryError, match="SSL|certificate|hostname"):
            post(f"https://{HOOKS}:{impostor.port}/", [HOOKS], ca_pem,
                 allow_networks=[f"{RECEIVER_IP}/32"], getaddrinfo=fake_resolver({HOOKS: [RECEIVER_IP]}))
        assert impostor.received == []
    finally:
        impostor.close()


def test_an_untrusted_certificate_is_refused(receiver):
    """The system's CAs do not trust the test CA: nothing is posted."""
    with pytest.raises(WebhookDeliveryError):
        post_webhook(f"https://{HOOKS}:{receiver.port}/", {"e": 1}, SECRET, [HOOKS], connect_timeout_s=2, read_timeout_s=2,
                     allow_networks=[f"{RECEIVER_IP}/32"], getaddrinfo=fake_resolver({HOOKS: [RECEIVER_IP]}))
    assert receiver.received == []


def test_only_the_capped_part_of_a_large_answer_is_read(receiver, ca_pem):
    receiver.answers = [Answer(200, {}, b"x" * 1_000_000)]
    result = post(f"https://{HOOKS}:{receiver.port}/", [HOOKS], ca_pem, max_response_bytes=1024,
                  allow_networks=[f"{RECEIVER_IP}/32"], getaddrinfo=fake_resolver({HOOKS: [RECEIVER_IP]}))
    assert result.status == 200 and len(result.body_prefix) == 1024


def test_a_silent_receiver_times_out(ca_pem):
    """A receiver that accepts and never answers costs the connect + read timeouts, not more."""
    listener = socket.socket()
    listener.bind((RECEIVER_IP, 0))
    listener.listen(5)
    try:
        started = time.monotonic()
        with pytest.raises(WebhookDeliveryError):
            post(f"https://{HOOKS}:{listener.getsockname()[1]}/", [HOOKS], ca_pem, connect_timeout_s=0.5, read_timeout_s=0.5,
                 allow_networks=[f"{RECEIVER_IP}/32"], getaddrinfo=fake_resolver({HOOKS: [RECEIVER_IP]}))
        assert time.monotonic() - started < 3
    finally:
        listener.close()


# --- the RQ job: tenant channel, retries, refusals ------------------------------------


@pytest.fixture
def acme_alerts(tenants, monkeypatch):
    """acme-insurance with an alerts channel on ``hooks.example.test``, which resolves to the receiver."""
    monkeypatch.setenv("ACME_WEBHOOK_SECRET", SECRET)
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({HOOKS: [RECEIVER_IP]}))
    acme = tenants.get("acme-insurance")
    alerts = AlertChannel(webhook_url=f"https://{HOOKS}/alerts", secret=SecretRef(env="ACME_WEBHOOK_SECRET"), allowed_hosts=[HOOKS])
    tenants.save(acme.model_copy(update={"alerts": alerts}), "development")
    return alerts


def _use(rt, receiver, ca_pem, **update):
    rt.settings = rt.settings.model_copy(update={
        "webhook_retry_intervals_s": [0, 0], "webhook_ca_bundle": ca_pem,
        "webhook_allow_networks": [f"{RECEIVER_IP}/32"], **update,
    })


def test_the_job_retries_a_failed_delivery_then_delivers(rt, r, work, receiver, ca_pem, acme_alerts):
    _use(rt, receiver, ca_pem)
    receiver.answers = [Answer(503)]
    url = f"https://{HOOKS}:{receiver.port}/alerts"
    job = enqueue_webhook(rt.queue, rt.settings, "acme-insurance", url, {"event": "nudge_failed", "rule_id": "r1"})
    work()
    job = Job.fetch(job.id, connection=r, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED and job.return_value() == "delivered"
    assert len(receiver.received) == 2
    ids = {got.headers[DELIVERY_ID_HEADER] for got in receiver.received}
    assert ids == {job.id}  # receivers can drop the duplicate of a retried delivery
    assert all(verify_signature(got.headers[SIGNATURE_HEADER], got.body, SECRET) for got in receiver.received)


def test_the_job_uses_the_tenant_channel_url_when_none_is_given(rt, r, work, receiver, ca_pem, acme_alerts, tenants):
    _use(rt, receiver, ca_pem)
    acme = tenants.get("acme-insurance")
    alerts = acme.alerts.model_copy(update={"webhook_url": f"https://{HOOKS}:{receiver.port}/channel"})
    tenants.save(acme.model_copy(update={"alerts": alerts}), "development")
    enqueue_webhook(rt.queue, rt.settings, "acme-insurance", None, {"event": "escalated"})
    work()
    assert [got.path for got in receiver.received] == ["/channel"]


def test_by_default_the_job_refuses_loopback_and_does_not_retry(rt, r, work, receiver, canary, ca_pem, acme_alerts):
    """Default settings (no exemptions): the receiver on loopback gets nothing, the job fails once, for good."""
    assert Settings().webhook_allow_networks == []
    _use(rt, receiver, ca_pem, webhook_allow_networks=[])
    job = enqueue_webhook(rt.queue, rt.settings, "acme-insurance", f"https://{HOOKS}:{receiver.port}/", {"event": "x"})
    work()
    job = Job.fetch(job.id, connection=r, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FAILED
    assert job.retries_left == 0
    assert "special-purpose" in (job.latest_result().exc_string or "")
    assert receiver.connections == 0 and canary.connections == 0


def test_a_trigger_url_off_the_allow_list_is_refused_by_the_job(rt, r, work, canary, ca_pem, acme_alerts, receiver):
    _use(rt, receiver, ca_pem, webhook_allow_networks=["127.0.0.0/8"])
    job = enqueue_webhook(rt.queue, rt.settings, "acme-insurance", f"https://localhost:{canary.port}/", {"event": "x"})
    work()
    job = Job.fetch(job.id, connection=r, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FAILED and "allowed_hosts" in job.latest_result().exc_string
    assert canary.connections == 0


def test_a_tenant_without_an_alerts_channel_gets_nothing_and_enqueueing_never_raises(rt, r, work, ca_pem, receiver):
    _use(rt, receiver, ca_pem)
    job = enqueue_webhook(rt.queue, rt.settings, "bright-clinic", f"https://{HOOKS}:{receiver.port}/", {"event": "x"})
    work()
    job = Job.fetch(job.id, connection=r, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FAILED and "no alerts channel" in job.latest_result().exc_string
    assert receiver.connections == 0
