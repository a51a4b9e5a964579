"""Checking ``X-Twilio-Signature`` on Twilio webhooks.

Follows Twilio's webhook security contract (twilio.com/docs/usage/security):
the signature is computed over the full URL Twilio requested plus the sorted
POST parameters, with the account's auth token. Behind a TLS-terminating
proxy the URL Flask sees differs from the one Twilio signed, so the URL is
rebuilt from ``LANEWAY_PUBLIC_BASE_URL`` + path + query string.
"""

from __future__ import annotations

from flask import Request
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from service.errors import ApiError


def signed_url(public_base_url: str, request: Request) -> str:
    """Return the URL Twilio signed: public base + path (+ ``?query``)."""
    query = request.query_string.decode("latin-1")
    return public_base_url + request.path + (f"?{query}" if query else "")


def check_twilio_signature(request: Request, auth_token: str, public_base_url: str) -> None:
    """Raise :class:`ApiError` 403 unless the request carries a valid Twilio signature.

    Args:
        request: the Flask request (form-encoded body already parsed).
        auth_token: the tenant's Twilio auth token.
        public_base_url: ``LANEWAY_PUBLIC_BASE_URL`` without trailing slash.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise ApiError(403, f"missing {SIGNATURE_HEADER} header")
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(auth_token)
    if not validator.validate(signed_url(public_base_url, request), request.form, signature, algorithm=algorithm):
        raise ApiError(403, f"invalid {SIGNATURE_HEADER}: check the auth token and LANEWAY_PUBLIC_BASE_URL")
