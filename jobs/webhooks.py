"""Alert webhooks: signed JSON POSTs from workers to tenants' receivers, safely.

Signing (Stripe's scheme, so receivers can reuse what they know): the body is
the payload as compact JSON (UTF-8, sorted keys); the signature is
HMAC-SHA256 (RFC 2104) of ``<timestamp>.<body>`` under the tenant's
``alerts.secret``, sent as::

    Laneway-Signature: t=<unix seconds>,v1=<64 hex digits>
    Content-Type: application/json
    Laneway-Webhook-Id: <delivery id, the same on every retry>

A receiver recomputes the HMAC over the raw body it received, compares in
constant time and rejects a timestamp older (or newer) than its tolerance:
:func:`verify_signature` is that check.

Where a request may go (:func:`post_webhook`, before any byte is sent):

1. The URL: ``https`` only, no user info, host on the tenant's
   ``alerts.allowed_hosts`` (:func:`state.tenant_config.webhook_url_problem`).
2. The host is resolved once with ``socket.getaddrinfo`` and EVERY address it
   resolves to must be globally routable (:func:`address_problem`): no
   loopback, private (RFC 1918, ``fc00::/7``), link-local (``169.254/16``
   with the cloud metadata address, ``fe80::/10``), shared/CGNAT
   (``100.64/10``), multicast, unspecified (``0.0.0.0``, ``::``), reserved or
   documentation ranges; IPv4 inside IPv6 (``::ffff:a.b.c.d``, 6to4
   ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96``) is unwrapped and checked
   too. Numeric spellings (``127.1``, ``0x7f000001``, ``2130706433``) are
   resolved by the C library exactly as a connection would, so they are caught
   as the loopback they are.
3. The connection goes to a checked address (no second resolution, so DNS
   rebinding cannot swap it), with the original host in ``Host``, TLS SNI and
   certificate verification (urllib3's ``server_hostname``). Proxy variables
   (``HTTPS_PROXY``) are ignored on purpose: a proxy would resolve the name again.
4. Redirects are not followed (a 3xx is a failed delivery); connect and read
   timeouts are short; at most ``webhook_max_response_bytes`` of the answer
   body are read.

``LANEWAY_WEBHOOK_ALLOW_NETWORKS`` exempts listed CIDRs from rule 2 only (tests
and the local demo; refused in production).

Delivery from workers: :func:`enqueue_webhook` enqueues
:func:`deliver_webhook_job` with RQ's ``Retry`` on
``webhook_retry_intervals_s``. A refused URL or address fails the job for good
(no retry: the tenant's configuration must change); a network failure or a
non-2xx answer raises :class:`WebhookDeliveryError` and RQ retries.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from rq import Queue, Retry, get_current_job
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from core.settings import Settings
from jobs import runtime
from jobs.errors import JobError
from state.errors import ConfigError
from state.tenant_config import normalize_host, webhook_url_problem

log = logging.getLogger(__name__)

DELIVER_WEBHOOK = "jobs.webhooks.deliver_webhook_job"
SIGNATURE_HEADER = "Laneway-Signature"
DELIVERY_ID_HEADER = "Laneway-Webhook-Id"
USER_AGENT = "Laneway-Webhooks/1"
DEFAULT_TOLERANCE_S = 300
"""Seconds a receiver should accept between the signed timestamp and its clock (Stripe's default)."""
MAX_ADDRESSES_TRIED = 3
"""Checked addresses connected to, in resolver order, before a delivery fails (each its own connect timeout)."""
FAILURE_TTL_S = 7 * 24 * 3600
"""How long RQ keeps a failed webhook job for operators to inspect."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookError(JobError):
    """Base class of webhook errors."""


class WebhookRefusedError(WebhookError):
    """The URL or an address it resolves to may not receive webhooks; nothing was sent. Not retried."""


class WebhookDeliveryError(WebhookError):
    """The receiver could not be reached, timed out, or answered other than 2xx (3xx included). Retried."""


# --- signing -----------------------------------------------------------------


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    """The payload as sent: compact JSON, sorted keys, UTF-8 (non-ASCII kept)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _hmac_hex(secret: str, timestamp_s: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()


def sign_payload(payload: Mapping[str, Any], secret: str, timestamp_s: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Serialise and sign a payload.

    Args:
        payload: a JSON-serialisable mapping.
        secret: the tenant's signing secret (``alerts.secret``, resolved).
        timestamp_s: Unix seconds to sign; default now.

    Returns:
        ``(body, headers)``: the exact bytes to POST, and ``Content-Type`` and
        ``Laneway-Signature: t=<timestamp_s>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
    """
    if not secret:
        raise ValueError("the webhook secret is empty")
    body = canonical_body(payload)
    t = int(time.time()) if timestamp_s is None else int(timestamp_s)
    return body, {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={t},v1={_hmac_hex(secret, t, body)}",
    }


def verify_signature(
    header: str | None, body: bytes, secret: str, tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None
) -> bool:
    """The receiver's check of a ``Laneway-Signature`` header. Returns whether to accept the request.

    Args:
        header: the ``Laneway-Signature`` value, ``t=<unix s>,v1=<hex>``
            (several ``v1=`` are allowed, one per secret during a rotation).
        body: the raw request body, byte for byte as received (not re-serialised JSON).
        secret: the shared signing secret.
        tolerance_s: the most seconds the timestamp may differ from ``now``
            either way; older requests are replays.
        now: Unix seconds; default the current time.

    Accepts only when the timestamp is within tolerance and some ``v1``
    equals HMAC-SHA256(secret, ``"<t>." + body``), compared in constant time.
    """
    if not header or not secret:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _hmac_hex(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)


# --- where a webhook may go ----------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a packet to ``ip`` may end up at: 6to4, Teredo (server and client), NAT64."""
    found: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _special_purpose(ip: _IP) -> str | None:
    """Name the special-purpose class of ``ip`` (Python's ``ipaddress`` tables), or ``None`` if globally routable."""
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if not ip.is_global:  # 100.64.0.0/10 (shared, CGNAT), and whatever newer tables add
        return "not globally routable"
    return None


def parse_networks(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse CIDRs (``LANEWAY_WEBHOOK_ALLOW_NETWORKS``). Raises ``ValueError`` for one that is not a network."""
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def address_problem(address: str, allow_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> str | None:
    """Say why a webhook must not connect to ``address``, or return ``None`` if it may.

    Args:
        address: an IP address as ``getaddrinfo`` returns it (an IPv6 zone ``%eth0`` is allowed).
        allow_networks: networks exempt from the check (tests and local demos only).

    An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged as the IPv4
    address it is; 6to4, Teredo and NAT64 addresses are judged as themselves
    and as the IPv4 addresses inside them.
    """
    try:
        ip: _IP = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == n.version and ip in n for n in allow_networks):
        return None
    candidates: list[_IP] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += _embedded_ipv4(ip)
    for candidate in candidates:
        kind = _special_purpose(candidate)
        if kind:
            inner = "" if candidate == ip else f" (it carries {candidate})"
            return f"{ip} is special-purpose ({kind}){inner}"
    return None


Resolver = Callable[..., list]


def resolve_checked(
    host: str, port: int, allow_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
    getaddrinfo: Resolver | None = None,
) -> list[str]:
    """Resolve ``host`` once and check every address. Returns the addresses, in resolver order, without duplicates.

    Raises:
        WebhookRefusedError: the name does not resolve, or ANY address it
            resolves to is special-purpose (one bad address refuses the host:
            a name that mixes public and private answers is not trusted).
    """
    resolve = getaddrinfo or socket.getaddrinfo
    networks = list(allow_networks)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise WebhookRefusedError(f"cannot resolve {host!r}: {exc}") from exc
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise WebhookRefusedError(f"{host!r} resolves to a non-IP address family {family}")
        address = str(sockaddr[0])
        problem = address_problem(address, networks)
        if problem:
            raise WebhookRefusedError(f"{host!r} resolves to {address}: {problem}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise WebhookRefusedError(f"{host!r} resolves to no address")
    return addresses


# --- delivery --------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    """A delivered webhook: the receiver's 2xx ``status``, the ``address`` connected to,
    ``elapsed_ms`` of the attempt and the first bytes of the answer (at most the cap)."""

    status: int
    address: str
    elapsed_ms: float
    body_prefix: bytes


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    secret: str,
    allowed_hosts: Iterable[str],
    *,
    connect_timeout_s: float = 3.0,
    read_timeout_s: float = 5.0,
    max_response_bytes: int = 16 * 1024,
    allow_networks: Iterable[str] = (),
    ca_certs: str | None = None,
    delivery_id: str | None = None,
    timestamp_s: int | None = None,
    getaddrinfo: Resolver | None = None,
) -> WebhookResult:
    """POST a signed JSON payload to ``url``, only if every rule in this module's docstring holds.

    Args:
        url: ``https://host[:port]/path[?query]``; ``host`` must be on ``allowed_hosts``.
        payload: the JSON-serialisable event.
        secret: the signing secret (``alerts.secret``, resolved).
        allowed_hosts: the tenant's ``alerts.allowed_hosts``.
        connect_timeout_s / read_timeout_s: per address connect (TCP and
            TLS), and per socket read, in seconds.
        max_response_bytes: most answer-body bytes read; the connection is closed after.
        allow_networks: CIDRs exempt from the address check (``LANEWAY_WEBHOOK_ALLOW_NETWORKS``).
        ca_certs: PEM bundle of trusted CAs; ``None``: the system's.
        delivery_id: the ``Laneway-Webhook-Id`` header (stable across retries, so
            receivers can drop duplicates); default a new UUID.
        timestamp_s: the signed time (Unix seconds); default now.
        getaddrinfo: the resolver (tests); default ``socket.getaddrinfo``.

    Returns:
        :class:`WebhookResult` for a 2xx answer.

    Raises:
        WebhookRefusedError: the URL or an address is not allowed; nothing was sent.
        WebhookDeliveryError: no checked address could be reached (connect
            failure, TLS failure, timeout) or the answer was not 2xx
            (a redirect is reported, never followed).
    """
    allowed = list(allowed_hosts)
    problem = webhook_url_problem(url, allowed)
    if problem:
        raise WebhookRefusedError(problem)
    parts = urlsplit(url)
    host = normalize_host(parts.hostname or "")
    port = parts.port or 443
    try:
        networks = parse_networks(allow_networks)
    except ValueError as exc:
        raise WebhookRefusedError(f"allow_networks: {exc}") from exc
    addresses = resolve_checked(host, port, networks, getaddrinfo)

    body, headers = sign_payload(payload, secret, timestamp_s)
    headers |= {
        "Host": parts.netloc,  # the host as written (with its port, IPv6 brackets): what the receiver's vhost expects
        "User-Agent": USER_AGENT,
        DELIVERY_ID_HEADER: delivery_id or uuid.uuid4().hex,
        "Accept": "*/*",
    }
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
    started = time.monotonic()
    last_error: Exception | None = None
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            server_hostname=host,  # SNI and certificate verification for the name, not the address
        )
        try:
            response = pool.urlopen(
                "POST", target, body=body, headers=headers, redirect=False, retries=False,
                preload_content=False, decode_content=False, assert_same_host=False,
            )
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
            last_error = exc  # nothing was sent: the next checked address may answer
            pool.close()
            continue
        except (Urllib3HTTPError, OSError) as exc:
            pool.close()
            raise WebhookDeliveryError(f"POST to {host} ({address}) failed: {type(exc).__name__}: {exc}") from exc
        try:
            try:
                prefix = response.read(max_response_bytes, decode_content=False) if max_response_bytes else b""
            except (Urllib3HTTPError, OSError):
                prefix = b""
            status = response.status
        finally:
            response.close()
            pool.close()
        elapsed_ms = (time.monotonic() - started) * 1000
        if 300 <= status < 400:
            raise WebhookDeliveryError(f"{host} answered {status} (a redirect; not followed)")
        if not 200 <= status < 300:
            raise WebhookDeliveryError(f"{host} answered {status}")
        return WebhookResult(status, address, elapsed_ms, prefix)
    raise WebhookDeliveryError(f"cannot connect to {host} at {', '.join(addresses[:MAX_ADDRESSES_TRIED])}: {last_error}") from last_error


def enqueue_webhook(queue: Queue, settings: Settings, tenant_id: str, url: str | None, payload: Mapping[str, Any]):
    """Enqueue :func:`deliver_webhook_job` (never raises into the caller for delivery problems).

    Args:
        url: the trigger action's URL, or ``None`` for the tenant's ``alerts.webhook_url``.
        payload: the event, JSON-serialisable. It is stored with the RQ job
            (its arguments) until the job ends and ``FAILURE_TTL_S`` after a
            failure: put ids in it, never message bodies or unmasked phone numbers.

    Returns the RQ ``Job``; its id is the ``Laneway-Webhook-Id`` of every attempt.
    Retries follow ``settings.webhook_retry_intervals_s``. Raises
    ``redis.RedisError`` if the queue Redis is down.
    """
    intervals = settings.webhook_retry_intervals_s
    return queue.enqueue_call(
        DELIVER_WEBHOOK,
        args=(tenant_id, url, dict(payload)),
        timeout=settings.job_timeout_s,
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        failure_ttl=FAILURE_TTL_S,
    )


def deliver_webhook_job(tenant_id: str, url: str | None, payload: dict[str, Any]) -> str:
    """Deliver one webhook for a tenant (RQ job). Returns ``"delivered"``.

    Uses the tenant's ``alerts`` channel: its secret, its allow-list, and its
    ``webhook_url`` when ``url`` is ``None``. Settings: the webhook timeouts,
    response cap, CA bundle and allow-networks.

    Raises:
        WebhookDeliveryError: unreachable, timed out or not 2xx; RQ retries
            the job (``Retry``) while retries are left.
        WebhookRefusedError: no such tenant, no ``alerts`` channel, or the URL
            or an address is refused; the job fails without further retries.
    """
    rt = runtime.current()
    job = get_current_job()
    delivery_id = job.id if job is not None else None
    try:
        tenant = rt.tenants.get(tenant_id)
        if tenant is None:
            raise WebhookRefusedError(f"unknown tenant {tenant_id!r}")
        alerts = tenant.alerts
        if alerts is None:
            raise WebhookRefusedError(f"tenant {tenant_id!r} has no alerts channel")
        target = url or alerts.webhook_url
        if not target:
            raise WebhookRefusedError(f"tenant {tenant_id!r} has no alerts.webhook_url and no URL was given")
        try:
            secret = alerts.secret.resolve(rt.settings.env)
        except ConfigError as exc:  # the variable is unset (and no dev value applies)
            raise WebhookRefusedError(f"tenant {tenant_id!r}: the alerts secret: {exc}") from exc
        settings = rt.settings
        result = post_webhook(
            target, payload, secret, alerts.allowed_hosts,
            connect_timeout_s=settings.webhook_connect_timeout_s,
            read_timeout_s=settings.webhook_read_timeout_s,
            max_response_bytes=settings.webhook_max_response_bytes,
            allow_networks=settings.webhook_allow_networks,
            ca_certs=settings.webhook_ca_bundle,
            delivery_id=delivery_id,
        )
    except WebhookRefusedError as exc:
        if job is not None:
            job.retries_left = 0  # the worker reads this on failure: refused is final
        log.error("webhook for tenant %s refused, not retried: %s", tenant_id, exc)
        raise
    except WebhookDeliveryError as exc:
        left = job.retries_left if job is not None else None
        log.warning("webhook for tenant %s not delivered (%s retries left): %s", tenant_id, left, exc)
        raise
    log.info("webhook for tenant %s delivered to %s: %s in %.0f ms", tenant_id, urlsplit(target).hostname, result.status, result.elapsed_ms)
    return "delivered"
