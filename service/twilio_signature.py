"""Checking ``X-Twilio-Signature`` on Twilio webhooks.

Follows Twilio's webhook security contract (twilio.com/docs/usage/security):
the signature is computed over the full URL Twilio requested plus the sorted
POST parameters, with the account's auth token. Behind a TLS-terminating
proxy the URL Flask sees differs from the one Twilio signed, so the URL is
rebuilt from ``LANEWAY_PUBLIC_BASE_URL`` + path + query string.

Two refinements of that contract:

* JSON bodies. Twilio signs a JSON-bodied webhook by adding
  ``bodySHA256=<hex SHA-256 of the raw body>`` to the query string and signing
  the URL alone. The hash is checked over the raw body bytes as received
  (``request.get_data()``), never over a re-encoded document: re-serialising
  the same JSON changes the bytes and must fail.
* Forwarded headers. ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` are ignored
  unless ``LANEWAY_TRUSTED_PROXY_HOPS`` is set to the number of proxies in
  front of Laneway; then the value that the outermost trusted proxy appended
  (werkzeug ``ProxyFix`` semantics: the Nth value from the right) replaces the
  scheme / host of ``LANEWAY_PUBLIC_BASE_URL`` in the signed URL. Nothing else
  in the app reads these headers (``service/app.py`` applies no ``ProxyFix``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from flask import Request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from service.errors import ApiError
from service.proxies import forwarded_value

BODY_HASH_PARAM = "bodySHA256"
"""Query parameter carrying the hex SHA-256 of a JSON body Twilio signed."""

FORWARDED_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
"""What an ``X-Forwarded-Host`` value must look like to be used (host[:port])."""


def signed_url(public_base_url: str, request: Request, trusted_proxy_hops: int = 0) -> str:
    """Return the URL Twilio signed: public base + path (+ ``?query``).

    Args:
        public_base_url: ``LANEWAY_PUBLIC_BASE_URL`` without trailing slash.
        request: the Flask request.
        trusted_proxy_hops: ``LANEWAY_TRUSTED_PROXY_HOPS``; 0 ignores
            ``X-Forwarded-Proto`` / ``X-Forwarded-Host``.
    """
    base = urlsplit(public_base_url)
    scheme, netloc = base.scheme, base.netloc
    proto = forwarded_value(request, "X-Forwarded-Proto", trusted_proxy_hops)
    if proto and proto.lower() in ("http", "https"):
        scheme = proto.lower()
    host = forwarded_value(request, "X-Forwarded-Host", trusted_proxy_hops)
    if host and FORWARDED_HOST.fullmatch(host):
        netloc = host
    query = request.query_string.decode("latin-1")
    return f"{scheme}://{netloc}{base.path}{request.path}" + (f"?{query}" if query else "")


def _json_body(request: Request, url: str) -> str:
    """Return the raw JSON body as text, for ``RequestValidator.validate`` to hash.

    Raises:
        ApiError: 403 when the URL carries no ``bodySHA256`` (the body would be
            unsigned) or the body is not UTF-8 (Twilio always sends UTF-8).
    """
    hashes = parse_qs(urlsplit(url).query).get(BODY_HASH_PARAM)
    if not hashes:
        raise ApiError(403, f"a JSON body must be signed with {BODY_HASH_PARAM} in the query string")
    try:
        return request.get_data(cache=True).decode("utf-8")  # the raw bytes, never a re-encoded document
    except UnicodeDecodeError:
        raise ApiError(403, f"invalid {SIGNATURE_HEADER}: the JSON body is not UTF-8") from None


def check_twilio_signature(
    request: Request, auth_token: str, public_base_url: str, trusted_proxy_hops: int = 0
) -> None:
    """Raise :class:`ApiError` 403 unless the request carries a valid Twilio signature.

    A form-encoded request is checked over URL + form parameters; a JSON one
    (``Content-Type: application/json``) over the URL, whose ``bodySHA256``
    must equal the SHA-256 of the raw body bytes.

    Args:
        request: the Flask request.
        auth_token: the tenant's Twilio auth token.
        public_base_url: ``LANEWAY_PUBLIC_BASE_URL`` without trailing slash.
        trusted_proxy_hops: ``LANEWAY_TRUSTED_PROXY_HOPS`` (see :func:`signed_url`).

    Raises:
        ApiError: 403 for a missing or invalid signature.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise ApiError(403, f"missing {SIGNATURE_HEADER} header")
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    url = signed_url(public_base_url, request, trusted_proxy_hops)
    params = _json_body(request, url) if request.is_json else request.form
    if not RequestValidator(auth_token).validate(url, params, signature, algorithm=algorithm):
        raise ApiError(403, f"invalid {SIGNATURE_HEADER}: check the auth token and LANEWAY_PUBLIC_BASE_URL")
