"""The official ``twilio`` client, optionally pointed at another base URL.

In development and tests ``LANEWAY_TWILIO_API_URL`` names a local stand-in
(``laneway twilio-standin``) that speaks Twilio's Messages REST API. The
client still builds ``https://api.twilio.com/2010-04-01/…`` URLs (and follows
``next_page_uri`` against that host); :class:`RebasedTwilioHttpClient` swaps the
scheme and host for the configured base URL just before each request is sent.
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


class RebasedTwilioHttpClient(TwilioHttpClient):
    """A :class:`TwilioHttpClient` that sends every ``*.twilio.com`` request to ``base_url``.

    Args:
        base_url: ``scheme://host[:port][/prefix]`` of a Twilio-compatible API,
            such as ``http://127.0.0.1:8010``.
        timeout: connect/read timeout in seconds for each request.
    """

    def __init__(self, base_url: str, timeout: float | None = None, **kwargs) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args, **kwargs) -> Response:
        """Send the request to the rebased URL; see :meth:`TwilioHttpClient.request`."""
        return super().request(method, rebase_twilio_url(url, self.base_url), *args, **kwargs)


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
    if api_url:
        http_client: TwilioHttpClient = RebasedTwilioHttpClient(api_url, timeout=timeout_s)
    else:
        http_client = TwilioHttpClient(timeout=timeout_s)
    return Client(account_sid, auth_token, http_client=http_client)
