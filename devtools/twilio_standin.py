"""A local stand-in for Twilio's Messages REST API (development and tests only).

Its voice side (the Calls API, a ``<Dial>`` runner) is :mod:`devtools.twilio_standin_calls`.

It speaks the wire format of ``https://api.twilio.com/2010-04-01`` closely
enough for the official ``twilio.rest.Client`` (pointed here by
``jobs.twilio_http.make_twilio_client``) to create, fetch and list messages:

- ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json``: form fields ``To``,
  ``From`` (or ``MessagingServiceSid``), ``Body``, optional ``StatusCallback``;
  HTTP Basic auth whose user must be the path's AccountSid. Answers 201 with
  Twilio's Message resource JSON (status ``queued``). Errors use Twilio's JSON
  error shape ``{"code", "message", "more_info", "status"}`` with Twilio's codes
  (20003 authenticate, 21602 body required, 21603 from required, 21604 to
  required, 21617 body too long).
- ``GET …/Messages.json?To=&From=&PageSize=&Page=``: Twilio's list page, newest
  first; ``GET …/Messages/<sid>.json`` fetches one.

The password is not checked (the stand-in knows no auth tokens), but it is
the key status callbacks are signed with, as Twilio signs them with the
account's auth token. A create with ``StatusCallback`` gets the callbacks
Twilio sends after the initial ``queued``: shortly after the 201, POSTs to
that URL (query kept) with ``MessageSid``, ``SmsSid``, ``MessageStatus``,
``SmsStatus``, ``AccountSid``, ``From``, ``To``, ``ApiVersion`` (and
``ErrorCode`` for ``undelivered``/``failed``) and ``X-Twilio-Signature``:
``sent`` alone by default (``laneway twilio-standin --outcome`` sets another
default), or as configured per recipient with ``POST /_standin/delivery``:
``sent`` then ``delivered``, ``sent`` then ``undelivered`` + ``ErrorCode``, or
``failed`` + ``ErrorCode`` alone. Twilio's Message resource
has no ``status_callback`` field, so neither the list nor the fetch returns
it; the stand-in keeps it in the received form. Test controls, outside
Twilio's API:

- ``POST /_standin/faults`` ``{"status": 500|429|…, "count": N}``: the next N
  message POSTs fail with that status (429 carries ``Retry-After``);
  ``DELETE /_standin/faults`` clears pending faults.
- ``GET /_standin/messages``: every message POST received, in arrival order,
  as ``{"messages": [{"account_sid", "auth_user", "form", "status", "sid",
  "received_at"}]}`` (``status`` is the HTTP status answered).
- ``DELETE /_standin/messages``: forget everything received; the status
  callbacks of messages created before it are cancelled (those still waiting
  are never posted, one in flight is not recorded).
- ``GET /_standin/callbacks``: every status callback made, in order, as
  ``{"callbacks": [{"url", "form", "signature", "status"}]}`` (``status``: the
  HTTP status answered, or the error if the request failed).
- ``POST /_standin/callbacks`` ``{"base_url": "http://127.0.0.1:PORT"}``:
  deliver callbacks there instead of the URL's own scheme and host (a proxy
  in front of Laneway; the signature still covers the URL as given), or
  ``{"base_url": null}``; ``DELETE /_standin/callbacks`` forgets them and the
  base URL, and cancels pending callbacks as ``DELETE /_standin/messages`` does.
- ``POST /_standin/delivery`` (JSON, every key optional):
  ``{"to": "+1555…", "outcome": "delivered"|"undelivered"|"failed"|"sent",
  "error_code": 30003}`` sets what happens to messages to that number
  (without ``to``: to every other number; ``undelivered``/``failed`` need an
  ``error_code``; ``rejected`` + ``error_code`` answers the create 400 with
  that code, as Twilio refuses 21610 "unsubscribed recipient" outright);
  ``{"callback_delays_s": [1.0, 0]}`` delays the first callback of the next
  messages created, one delay per message in creation order (then the
  default :data:`CALLBACK_DELAY_S`); ``{"reorder": true}`` posts each
  message's callbacks last status first (as carriers' receipts overtake
  Twilio's ``sent``). ``GET /_standin/delivery`` answers ``{"handset":
  [sid, …]}``: the order messages were handed to the carrier (when their
  ``sent`` callback was posted), i.e. the order the customer sees them.
  ``DELETE /_standin/delivery`` resets all of it.

WhatsApp, as Twilio behaves (twilio.com/docs/whatsapp/key-concepts): a
free-form message (``To`` ``whatsapp:…`` without ``ContentSid``) more than 24
hours after the customer's last message to that sender (or with none) is
accepted (201) and then fails: one ``failed`` status callback with
``ErrorCode`` 63016. A template (``ContentSid`` ``HX…``, optional
``ContentVariables``: a JSON object of strings, else 400 with code 21656) is
always accepted. ``MediaUrl`` (repeatable, http(s)) is accepted on any send
and counted in ``num_media``. Test controls:

- ``POST /_standin/services`` ``{"sid": "MG…", "numbers": ["+1…",
  "whatsapp:+1…"]}``: a Messaging Service and its senders (a tenant's
  ``phone_numbers``). A create with ``MessagingServiceSid`` and no ``From``
  is sent from the service's first number of the ``To``'s channel (``From``
  in the resource and its status callbacks, which also carry
  ``MessagingServiceSid``, as Twilio's do); an undeclared service answers
  400 with 21701, one without a number for that channel 21704.
  ``DELETE /_standin/delivery`` forgets them.
- ``POST /_standin/whatsapp/inbound`` ``{"from": "whatsapp:+1…", "to":
  "whatsapp:+1…", "at_s": <epoch seconds, default now>}``: the customer wrote
  to that sender at ``at_s`` (what Twilio learns from the inbound message).
  ``DELETE /_standin/delivery`` forgets these too.
- ``POST /_standin/media`` ``{"account_sid", "auth_token", "content_type",
  "body_b64"}``: store an inbound attachment; answers ``{"url"}``, a Twilio
  media URL (``https://api.twilio.com/2010-04-01/Accounts/<AccountSid>/
  Messages/MM…/Media/ME…``). ``GET`` of its path (rebased onto the stand-in)
  serves the bytes only with HTTP Basic ``AccountSid:AuthToken`` (else 401,
  code 20003), as Twilio does with HTTP auth on media enforced.
  ``GET /_standin/media`` lists the fetches (``path``, ``status``).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Callable, NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

import click
import urllib3
from flask import Blueprint, Flask, current_app, jsonify, request
from twilio.request_validator import RequestValidator

from devtools.serving import serve_in_thread, serve_until_interrupted
from devtools.twilio_standin_calls import CallsStore
from devtools.twilio_standin_calls import bp as calls_bp
from state.models import mask_address

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_PAGE_SIZE = 50
"""Twilio's default ``PageSize`` for list requests (records per page)."""
MAX_PAGE_SIZE = 1000
MAX_BODY_CHARS = 1600
"""Twilio rejects longer bodies with error 21617."""
RETRY_AFTER_S = 1
"""``Retry-After`` (seconds) sent with an injected 429."""
CALLBACK_DELAY_S = 0.05
"""How long after the 201 the first status callback is posted, and between a message's callbacks."""
OUTCOMES = ("delivered", "undelivered", "failed", "sent", "rejected")
"""What the stand-in's carrier does with a message (``POST /_standin/delivery``)."""
CALLBACK_TIMEOUT_S = 5.0
CALLBACK_HTTP = urllib3.PoolManager(maxsize=16, retries=False, timeout=urllib3.Timeout(total=CALLBACK_TIMEOUT_S))
"""Where status callbacks are posted from: one thread-safe pool of kept-alive connections per host, as a
busy sender keeps them (a new connection per callback would cost both ends a TCP handshake)."""
WHATSAPP_WINDOW_S = 24 * 3600
"""WhatsApp's customer-service window: free-form messages only this long after the customer's last."""
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
MAX_MEDIA_BYTES = 20_000_000

ERROR_MESSAGES = {
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}

# GSM 03.38 basic character set; anything else makes a message UCS-2.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"

bp = Blueprint("twilio_standin", __name__)


def num_segments(body: str) -> int:
    """Return how many SMS segments ``body`` needs (GSM-7: 160/153 chars, UCS-2: 70/67 units)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in body):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def new_sid(prefix: str = "SM") -> str:
    """Return a Twilio-style SID: ``prefix`` + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass
class StandinStore:
    """What the stand-in received and created; every method is thread-safe."""

    received: list[dict[str, Any]] = field(default_factory=list)
    """Every message POST in arrival order (see the module docstring)."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Created Message resources (Twilio JSON), oldest first."""
    faults: deque[int] = field(default_factory=deque)
    """HTTP statuses the next message POSTs answer with, one per POST."""
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    """Status callbacks made, in order (see the module docstring)."""
    callback_base_url: str | None = None
    """Where callbacks go instead of their URL's scheme and host, if set."""
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Recipient → (outcome, ErrorCode); others get ``default_outcome``."""
    default_outcome: tuple[str, str] = ("sent", "")
    """(outcome, ErrorCode) of a recipient not in ``outcomes``."""
    initial_default_outcome: tuple[str, str] = ("sent", "")
    """What ``DELETE /_standin/delivery`` resets ``default_outcome`` to."""
    callback_delays_s: deque[float] = field(default_factory=deque)
    """Delays of the first callback of the next messages created, one each."""
    reorder: bool = False
    """Post each message's callbacks last status first."""
    handset: list[str] = field(default_factory=list)
    """Sids in the order their ``sent`` callback was posted (the carrier's hand-over)."""
    whatsapp_inbound: dict[tuple[str, str], float] = field(default_factory=dict)
    """(customer, sender) → epoch seconds of the customer's last WhatsApp message."""
    media: dict[str, tuple[str, str, str, bytes]] = field(default_factory=dict)
    """Media path → (AccountSid, AuthToken, content type) and bytes."""
    media_fetches: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, list[str]] = field(default_factory=dict)
    """Messaging Service sid → its sender numbers (``POST /_standin/services``)."""
    generation: int = 0
    """Bumped by ``DELETE /_standin/messages`` and ``DELETE /_standin/callbacks``: callbacks of an
    older generation still pending or in flight are dropped (never posted, or not recorded)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _store() -> StandinStore:
    return current_app.extensions["twilio_standin"]


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None):
    """Return a Flask response in Twilio's error JSON shape (twilio.com/docs/api/errors)."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return jsonify(body), status, headers or {}


def _basic_user() -> str | None:
    auth = request.authorization
    return auth.username if auth is not None and auth.type == "basic" else None


def _authenticate(account_sid: str):
    """Return Twilio's 401 (error 20003) unless the Basic auth user is ``account_sid``."""
    if _basic_user() == account_sid:
        return None
    return twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})


def _messages_uri(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"


def _service_sender(numbers: list[str], to: str) -> str | None:
    """The number a Messaging Service sends from: its first number of ``to``'s channel (``whatsapp:`` or SMS)."""
    whatsapp = to.startswith("whatsapp:")
    return next((n for n in numbers if n.startswith("whatsapp:") == whatsapp), None)


def _message_resource(account_sid: str, form: dict[str, str], now: datetime) -> dict[str, Any]:
    sid = new_sid()
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    date = format_datetime(now)  # RFC 2822, "Mon, 23 Nov 2026 09:26:03 +0000", as Twilio sends
    body = form.get("Body", "")
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": date,
        "date_sent": None,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": str(len(request.form.getlist("MediaUrl"))),
        "num_segments": str(num_segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": form["To"],
        "uri": f"{uri}.json",
    }


def _validate(form: dict[str, str]):
    """Return a Twilio error response for a bad create request, or ``None``."""
    if not form.get("To"):
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
        return twilio_error(400, 21602, "Message body is required.")
    if form.get("ContentSid") and not CONTENT_SID.fullmatch(form["ContentSid"]):
        return twilio_error(400, 21655, "The ContentSid is Invalid.")
    if "ContentVariables" in form:
        try:
            variables = json.loads(form["ContentVariables"])
        except ValueError:
            variables = None
        if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
            return twilio_error(400, 21656, "The ContentVariables Parameter is invalid.")
    if not all(u.startswith(("http://", "https://")) for u in request.form.getlist("MediaUrl")):
        return twilio_error(400, 21620, "Invalid media URL(s).")
    if len(form.get("Body", "")) > MAX_BODY_CHARS:
        return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    return None


@bp.post(f"/{API_VERSION}/Accounts/<account_sid>/Messages.json")
def create_message(account_sid: str):
    """Create a Message (Twilio: POST /2010-04-01/Accounts/{AccountSid}/Messages.json)."""
    store = _store()
    form = request.form.to_dict()
    now = datetime.now(timezone.utc)
    attempt = {"account_sid": account_sid, "auth_user": _basic_user(), "form": form, "received_at": now.isoformat(),
               "media_urls": request.form.getlist("MediaUrl")}

    answer = _authenticate(account_sid)
    if answer is None:
        with store.lock:
            fault = store.faults.popleft() if store.faults else None
        if fault is not None:
            code, message = ERROR_MESSAGES.get(fault, (fault, "Injected fault"))
            headers = {"Retry-After": str(RETRY_AFTER_S)} if fault == 429 else {}
            answer = twilio_error(fault, code, message, headers)
        else:
            answer = _validate(form)
    if answer is None and not form.get("From"):
        with store.lock:
            numbers = store.services.get(form["MessagingServiceSid"])
        if numbers is None:
            answer = twilio_error(400, 21701, "The Messaging Service does not exist")
        elif (sender := _service_sender(numbers, form["To"])) is None:
            answer = twilio_error(400, 21704, "The Messaging Service contains no phone numbers")
        else:
            form = {**form, "From": sender}  # the resource and its callbacks carry the number the service picked
    if answer is None:
        with store.lock:
            outcome, error_code = store.outcomes.get(form["To"], store.default_outcome)
        if outcome == "rejected":
            reason = "Attempt to send to unsubscribed recipient" if error_code == "21610" else "Message rejected"
            answer = twilio_error(400, int(error_code), reason)
    if answer is not None:
        attempt.update(status=answer[1], sid=None)
        with store.lock:
            store.received.append(attempt)
        logger.info("stand-in answered %s to a message POST for %s", answer[1], account_sid)
        return answer

    resource = _message_resource(account_sid, form, now)
    attempt.update(status=201, sid=resource["sid"])
    with store.lock:
        store.received.append(attempt)
        store.messages.append(resource)
    if form.get("StatusCallback"):
        password = request.authorization.password if request.authorization else ""
        with store.lock:
            delay_s = store.callback_delays_s.popleft() if store.callback_delays_s else CALLBACK_DELAY_S
            outcome, error_code = store.outcomes.get(form["To"], store.default_outcome)
            reorder = store.reorder
            generation = store.generation
        if _outside_whatsapp_window(store, form, now):
            outcome, error_code = "failed", "63016"
        statuses = {"delivered": ["sent", "delivered"], "undelivered": ["sent", "undelivered"],
                    "failed": ["failed"], "sent": ["sent"]}[outcome]  # fmt: skip
        if reorder:
            statuses.reverse()
        threading.Thread(
            target=_status_callbacks,
            args=(store, generation, form["StatusCallback"], resource, password or "", statuses, error_code, delay_s),
            daemon=True,
        ).start()
    logger.info("stand-in accepted %s to %s (%s segments)", resource["sid"], mask_address(form["To"]), resource["num_segments"])
    logger.debug("stand-in %s body: %r", resource["sid"], form.get("Body", ""))
    return jsonify(resource), 201


def _outside_whatsapp_window(store: StandinStore, form: dict[str, str], now: datetime) -> bool:
    """Whether Twilio would refuse this send with 63016: free-form WhatsApp, no customer message in 24 h."""
    if not form["To"].startswith("whatsapp:") or form.get("ContentSid"):
        return False
    with store.lock:
        last_s = store.whatsapp_inbound.get((form["To"], form.get("From", "")))
    return last_s is None or now.timestamp() - last_s > WHATSAPP_WINDOW_S


def _status_callbacks(
    store: StandinStore, generation: int, url: str, resource: dict[str, Any], auth_token: str, statuses: list[str],
    error_code: str, delay_s: float,
) -> None:
    """Post ``statuses`` for ``resource`` to ``url`` in order, the first after ``delay_s``, signed with ``auth_token`` (a thread).

    ``generation``: the store's when the message was created; once a reset moved
    it on, the remaining callbacks are dropped.
    """
    time.sleep(delay_s)
    for i, status in enumerate(statuses):
        if i:
            time.sleep(CALLBACK_DELAY_S)
        code = error_code if status in ("undelivered", "failed") else ""
        if not _status_callback(store, generation, url, resource, auth_token, status, code):
            return


def _status_callback(
    store: StandinStore, generation: int, url: str, resource: dict[str, Any], auth_token: str, status: str, error_code: str,
) -> bool:
    """Post one status callback for ``resource`` to ``url``, signed with ``auth_token``.

    Returns ``False`` (nothing posted, or the answer not recorded) when the
    store was reset since ``generation``: a test's late callback must not
    reach or show up in the next test.
    """
    form = {
        "MessageSid": resource["sid"], "SmsSid": resource["sid"], "MessageStatus": status, "SmsStatus": status,
        "AccountSid": resource["account_sid"], "From": resource["from"], "To": resource["to"], "ApiVersion": API_VERSION,
    }
    if resource["messaging_service_sid"]:
        form["MessagingServiceSid"] = resource["messaging_service_sid"]
    if error_code:
        form["ErrorCode"] = error_code
    signature = RequestValidator(auth_token).compute_signature(url, form)
    with store.lock:
        if store.generation != generation:
            return False
        base_url = store.callback_base_url
        if status == "sent":
            store.handset.append(resource["sid"])
    target = url
    if base_url:
        parts, base = urlsplit(url), urlsplit(base_url)
        target = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))
    try:
        answer: int | str = CALLBACK_HTTP.request(
            "POST", target, body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        ).status
    except urllib3.exceptions.HTTPError as exc:
        answer = f"{type(exc).__name__}"
    with store.lock:
        if store.generation != generation:
            logger.info("stand-in status callback %s for %s: %s, after a reset (not recorded)", status, resource["sid"], answer)
            return False
        store.callbacks.append({"url": url, "form": form, "signature": signature, "status": answer})
    logger.info("stand-in status callback %s for %s: %s", status, resource["sid"], answer)
    return True


@bp.get(f"/{API_VERSION}/Accounts/<account_sid>/Messages.json")
def list_messages(account_sid: str):
    """List Messages newest first (Twilio's list page shape; filters ``To``, ``From``)."""
    if (denied := _authenticate(account_sid)) is not None:
        return denied
    try:
        page_size = min(max(int(request.args.get("PageSize", DEFAULT_PAGE_SIZE)), 1), MAX_PAGE_SIZE)
        page = max(int(request.args.get("Page", 0)), 0)
    except ValueError:
        return twilio_error(400, 20001, "Invalid paging parameter")
    filters = {k: request.args[k] for k in ("To", "From") if request.args.get(k)}
    with _store().lock:
        matching = [
            m
            for m in reversed(_store().messages)
            if m["account_sid"] == account_sid and all(m[k.lower()] == v for k, v in filters.items())
        ]
    start = page * page_size
    records = matching[start : start + page_size]
    base = _messages_uri(account_sid)

    def page_uri(n: int) -> str:
        return base + "?" + urlencode({**filters, "PageSize": page_size, "Page": n})

    return jsonify(
        messages=records,
        page=page,
        page_size=page_size,
        start=start,
        end=start + max(len(records) - 1, 0),
        uri=page_uri(page),
        first_page_uri=page_uri(0),
        next_page_uri=page_uri(page + 1) if start + page_size < len(matching) else None,
        previous_page_uri=page_uri(page - 1) if page > 0 else None,
    )


@bp.get(f"/{API_VERSION}/Accounts/<account_sid>/Messages/<sid>.json")
def fetch_message(account_sid: str, sid: str):
    """Fetch one Message (Twilio: GET …/Messages/{Sid}.json)."""
    if (denied := _authenticate(account_sid)) is not None:
        return denied
    with _store().lock:
        found = next((m for m in _store().messages if m["sid"] == sid and m["account_sid"] == account_sid), None)
    if found is None:
        return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    return jsonify(found)


@bp.post("/_standin/faults")
def add_faults():
    """Make the next ``count`` message POSTs answer ``status`` (JSON body)."""
    data = request.get_json(silent=True) or {}
    status, count = data.get("status"), data.get("count", 1)
    if not isinstance(status, int) or not 400 <= status <= 599 or not isinstance(count, int) or count < 0:
        return jsonify(error='expected {"status": 400..599, "count": N >= 0}'), 400
    with _store().lock:
        _store().faults.extend([status] * count)
        pending = len(_store().faults)
    return jsonify(status=status, count=count, pending=pending)


@bp.delete("/_standin/faults")
def clear_faults():
    """Drop every pending injected fault."""
    with _store().lock:
        _store().faults.clear()
    return "", 204


@bp.get("/_standin/messages")
def received_messages():
    """Return every message POST received, in arrival order."""
    with _store().lock:
        received = list(_store().received)
    return jsonify(messages=received)


@bp.delete("/_standin/messages")
def clear_messages():
    """Forget every message received and created, and cancel their pending status callbacks."""
    with _store().lock:
        _store().received.clear()
        _store().messages.clear()
        _store().generation += 1
    return "", 204


@bp.get("/_standin/callbacks")
def status_callbacks():
    """Return every status callback made, in order."""
    with _store().lock:
        return jsonify(callbacks=list(_store().callbacks))


@bp.post("/_standin/callbacks")
def set_callback_base_url():
    """Deliver status callbacks to ``base_url`` (JSON body; ``null`` for the URLs' own hosts)."""
    data = request.get_json(silent=True) or {}
    base_url = data.get("base_url")
    if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        return jsonify(error='expected {"base_url": "http(s)://host:port" or null}'), 400
    with _store().lock:
        _store().callback_base_url = base_url
    return jsonify(base_url=base_url)


@bp.delete("/_standin/callbacks")
def clear_callbacks():
    """Forget the callbacks made and the callback base URL, and cancel pending ones."""
    with _store().lock:
        _store().callbacks.clear()
        _store().callback_base_url = None
        _store().generation += 1
    return "", 204


@bp.post("/_standin/delivery")
def configure_delivery():
    """Configure what the carrier does: per-recipient outcome, next callback delays, reordering (JSON body)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error="expected a JSON object"), 400
    outcome, error_code, to = data.get("outcome"), data.get("error_code"), data.get("to")
    delays, reorder = data.get("callback_delays_s"), data.get("reorder")
    if outcome is not None:
        if outcome not in OUTCOMES or not (to is None or (isinstance(to, str) and to)):
            return jsonify(error=f'expected {{"to": "+1…", "outcome": one of {", ".join(OUTCOMES)}}}'), 400
        if (outcome in ("undelivered", "failed", "rejected")) != isinstance(error_code, int):
            return jsonify(error="error_code (an integer) is required for undelivered, failed and rejected, and only for them"), 400
    if delays is not None and not (
        isinstance(delays, list) and all(isinstance(d, (int, float)) and 0 <= d <= 60 for d in delays)
    ):
        return jsonify(error="callback_delays_s must be a list of seconds, 0..60 each"), 400
    if reorder is not None and not isinstance(reorder, bool):
        return jsonify(error="reorder must be true or false"), 400
    store = _store()
    with store.lock:
        if outcome is not None:
            chosen = (outcome, str(error_code) if error_code is not None else "")
            if to is None:
                store.default_outcome = chosen
            else:
                store.outcomes[to] = chosen
        if delays is not None:
            store.callback_delays_s.extend(float(d) for d in delays)
        if reorder is not None:
            store.reorder = reorder
    return jsonify(ok=True)


@bp.post("/_standin/services")
def add_service():
    """Declare a Messaging Service and its sender numbers (``{"sid": "MG…", "numbers": ["+1…", "whatsapp:+1…"]}``)."""
    data = request.get_json(silent=True) or {}
    sid, numbers = data.get("sid"), data.get("numbers")
    if not (isinstance(sid, str) and MESSAGING_SERVICE_SID.fullmatch(sid) and isinstance(numbers, list)
            and all(isinstance(n, str) and E164.fullmatch(n.removeprefix("whatsapp:")) for n in numbers)):
        return jsonify(error='expected {"sid": "MG + 32 hex", "numbers": ["+1…" or "whatsapp:+1…", …]}'), 400
    with _store().lock:
        _store().services[sid] = list(numbers)
    return jsonify(sid=sid, numbers=numbers)


@bp.post("/_standin/whatsapp/inbound")
def whatsapp_inbound():
    """The customer wrote on WhatsApp (``{"from", "to", "at_s"}``): the 24-hour window runs from ``at_s``."""
    data = request.get_json(silent=True) or {}
    customer, sender, at_s = data.get("from"), data.get("to"), data.get("at_s", time.time())
    if not (isinstance(customer, str) and customer.startswith("whatsapp:") and isinstance(sender, str)
            and sender.startswith("whatsapp:") and isinstance(at_s, (int, float))):
        return jsonify(error='expected {"from": "whatsapp:+1…", "to": "whatsapp:+1…", "at_s": epoch seconds}'), 400
    with _store().lock:
        _store().whatsapp_inbound[(customer, sender)] = float(at_s)
    return jsonify(ok=True)


@bp.post("/_standin/media")
def add_media():
    """Store an inbound attachment; answers its Twilio media URL (see the module docstring)."""
    data = request.get_json(silent=True) or {}
    account_sid, auth_token = data.get("account_sid"), data.get("auth_token")
    content_type, body_b64 = data.get("content_type"), data.get("body_b64", "")
    try:
        body = base64.b64decode(body_b64, validate=True)
    except (ValueError, TypeError):
        body = None
    if not (isinstance(account_sid, str) and account_sid.startswith("AC") and isinstance(auth_token, str)
            and isinstance(content_type, str) and body is not None and len(body) <= MAX_MEDIA_BYTES):
        return jsonify(error='expected {"account_sid", "auth_token", "content_type", "body_b64"}'), 400
    path = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{new_sid('MM')}/Media/{new_sid('ME')}"
    with _store().lock:
        _store().media[path] = (account_sid, auth_token, content_type, body)
    return jsonify(url=f"https://api.twilio.com{path}"), 201


@bp.get("/_standin/media")
def media_fetches():
    """Every fetch of a media URL (``path``, ``status``), in order."""
    with _store().lock:
        return jsonify(fetches=list(_store().media_fetches))


@bp.get(f"/{API_VERSION}/Accounts/<account_sid>/Messages/<message_sid>/Media/<media_sid>")
def fetch_media(account_sid: str, message_sid: str, media_sid: str):
    """Serve an attachment's bytes, only with HTTP Basic ``AccountSid:AuthToken`` (Twilio's enforced media auth)."""
    store = _store()
    with store.lock:
        found = store.media.get(request.path)
    auth = request.authorization
    if found is None:
        status, answer = 404, twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    elif auth is None or auth.type != "basic" or (auth.username, auth.password) != (found[0], found[1]):
        status, answer = 401, twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    else:
        status, answer = 200, (found[3], 200, {"Content-Type": found[2]})
    with store.lock:
        store.media_fetches.append({"path": request.path, "status": status})
    return answer


@bp.get("/_standin/delivery")
def delivery_order():
    """The sids in the order the carrier handed them over (their ``sent`` callback)."""
    with _store().lock:
        return jsonify(handset=list(_store().handset))


@bp.delete("/_standin/delivery")
def reset_delivery():
    """Forget outcomes, pending delays, reordering and the hand-over order."""
    store = _store()
    with store.lock:
        store.outcomes.clear()
        store.default_outcome = store.initial_default_outcome
        store.callback_delays_s.clear()
        store.reorder = False
        store.handset.clear()
        store.whatsapp_inbound.clear()
        store.services.clear()
        store.media.clear()
        store.media_fetches.clear()
    return "", 204


def create_standin_app(default_outcome: str = "sent") -> Flask:
    """Build the stand-in's Flask app with an empty in-memory store (``app.extensions["twilio_standin"]``).

    ``default_outcome``: what the carrier does with a message to a number not
    configured otherwise (``sent`` or ``delivered``; see the module docstring).
    """
    if default_outcome not in ("sent", "delivered"):
        raise ValueError("default_outcome must be sent or delivered")
    app = Flask(__name__)
    app.extensions["twilio_standin"] = StandinStore(
        default_outcome=(default_outcome, ""), initial_default_outcome=(default_outcome, "")
    )
    app.register_blueprint(bp)
    app.extensions["twilio_standin_calls"] = CallsStore()
    app.register_blueprint(calls_bp)  # Calls.json and the <Dial> runner (devtools/twilio_standin_calls.py)
    return app


class StandinServer(NamedTuple):
    """A stand-in served from a background thread: its base URL and how to stop it."""

    url: str
    """``http://127.0.0.1:<port>``, the value for ``LANEWAY_TWILIO_API_URL``."""
    stop: Callable[[], None]
    """Shut the server down and join its thread (idempotent)."""
    app: Flask


def start_standin_thread(host: str = "127.0.0.1", port: int = 0) -> StandinServer:
    """Serve a fresh stand-in from a daemon thread (tests).

    Args:
        host: interface to bind.
        port: TCP port; 0 lets the OS pick a free one.

    Returns:
        A :class:`StandinServer`; unpack it as ``url, stop, app``.
    """
    app = create_standin_app()
    url, stop = serve_in_thread(app, "twilio-standin", host, port)
    return StandinServer(url, stop, app)


@click.command("twilio-standin")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8010, show_default=True, help="TCP port (0 picks a free one).")
@click.option(
    "--outcome", type=click.Choice(["delivered", "sent"]), default="delivered", show_default=True,
    help="The last status callback a message gets (delivered: sent, then delivered).",
)
def twilio_standin_command(host: str, port: int, outcome: str) -> None:
    """Serve a local stand-in for Twilio's Messages API (development only).

    Point Laneway at it with LANEWAY_TWILIO_API_URL=http://HOST:PORT.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its access log shows phone numbers
    serve_until_interrupted(create_standin_app(outcome), host, port, "Twilio stand-in listening on {url}")
