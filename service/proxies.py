"""What the trusted proxies in front of Laneway say about a request.

One rule for every reader of ``X-Forwarded-*`` (werkzeug ``ProxyFix``'s):
``LANEWAY_TRUSTED_PROXY_HOPS`` proxies are trusted, each appends to the
header, so the value that many from the right is the one the outermost
trusted proxy saw; fewer values than hops means the request skipped the
proxies and the header is ignored.
"""

from __future__ import annotations

import ipaddress

from flask import Request, request
from werkzeug.http import parse_list_header


def forwarded_value(request: Request, header: str, trusted_hops: int) -> str | None:
    """Return the value the outermost of ``trusted_hops`` proxies put in ``header``, or ``None``.

    ``None`` when ``trusted_hops`` is 0, the header is absent, or it holds
    fewer values than ``trusted_hops``.
    """
    raw = request.headers.get(header)
    if not (trusted_hops and raw):
        return None
    values = parse_list_header(raw)
    return values[-trusted_hops].strip() if len(values) >= trusted_hops else None


def client_address(trusted_hops: int) -> str:
    """Return the current request's client address for per-client counting.

    The outermost trusted proxy's ``X-Forwarded-For`` value, else the socket's
    peer. IPv6 addresses are counted by their /64 (one host usually holds a
    whole /64), IPv4-mapped ones as IPv4; an unparsable value is ``"unknown"``.
    """
    raw = forwarded_value(request, "X-Forwarded-For", trusted_hops) or request.remote_addr or ""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
