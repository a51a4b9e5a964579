"""The official ``twilio`` client, optionally pointed at another base URL.

In development and tests ``LANEWAY_TWILIO_API_URL`` names a local stand-in
(``laneway twilio-standin``) that speaks Twilio's Messages REST API. The
client still builds ``https://api.twilio.com/2010-04-01/…`` URLs (and follows
``next_page_uri`` against that host); :class:`LanewayTwilioHttpClient` swaps the
scheme and host for the configured base URL just before each request is sent.

The stock client logs every request at INFO, query parameters (``To``,
``From``: phone numbers) and headers included, in a dozen lines per request;
Laneway's client logs one DEBUG line without parameters instead.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

logger = logging.getLogger(__name__)


def rebase_twilio_url(url: str, base_url: str) -> str:
    """Return ``url`` with an ``https://*.twilio.com`` origin replaced by ``base_url``.

    ``base_url`` is ``scheme://host[:port][/prefix]``; its path prefix is kept
    in front of the original path. URLs on other hosts are returned unchanged.

    >>> rebase_twilio_url("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?To=%2B1",
    ...                   "http://127.0.0.1:8010")
    'http://127.0.0.1:8010/2010-04-01/Accounts/AC1/Messages.json?To=%2B1'
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not (host == "twilio.com" or host.endswith(".twilio.com")):
        return url
    base = urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, parts.fragment))


class LanewayTwilioHttpClient(TwilioHttpClient):
    """A :class:`TwilioHttpClient` that logs one line per request, and may send to another base URL.

    Args:
        base_url: ``scheme://host[:port][/prefix]`` of a Twilio-compatible API,
            such as ``http://127.0.0.1:8010``, or ``None`` for Twilio itself.
        timeout: connect/read timeout in seconds for each request.
    """

    def __init__(self, base_url: str | None = None, timeout: float | None = None, **kwargs) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None

    def request(self, method: str, url: str, *args, **kwargs) -> Response:
        """Send the request (to the rebased URL, if any); see :meth:`TwilioHttpClient.request`."""
        if self.base_url:
            url = rebase_twilio_url(url, self.base_url)
        response = super().request(method, url, *args, **kwargs)
        logger.debug("Twilio %s %s -> %s", method, urlsplit(url).path, response.status_code)
        return response

    def log_request(self, kwargs) -> None:
        """Log nothing here (the stock client logs parameters): :meth:`request` logs one line."""

    def log_response(self, status_code: int, response: Response) -> None:
        """Log nothing here: :meth:`request` logs one line."""


def make_twilio_client(account_sid: str, auth_token: str, api_url: str | None, timeout_s: float) -> Client:
    """Return a ``twilio.rest.Client`` for one account.

    Args:
        account_sid: the account (``AC…``), also the HTTP Basic user.
        auth_token: the account's auth token (HTTP Basic password).
        api_url: base URL replacing ``https://api.twilio.com``
            (``settings.twilio_api_url``); ``None`` talks to Twilio itself.
        timeout_s: connect/read timeout per HTTP request, in seconds.

    Errors surface when the client is used: ``twilio.base.exceptions.TwilioRestException``
    for an HTTP error answer (``.status``, ``.code``), ``requests.ConnectionError``
    / ``requests.Timeout`` for network failures.
    """
    return Client(account_sid, auth_token, http_client=LanewayTwilioHttpClient(api_url, timeout=timeout_s))
