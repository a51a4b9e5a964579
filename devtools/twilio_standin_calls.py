"""The Twilio stand-in's voice side: the Calls API and a ``<Dial>`` runner (development and tests only).

Twilio's wire format, as far as Laneway uses it:

- ``POST /2010-04-01/Accounts/<AccountSid>/Calls.json``: form fields ``To``,
  ``From``, ``Url`` (or ``Twiml``), optional ``Method``, ``StatusCallback``,
  ``Timeout``; HTTP Basic auth whose user is the AccountSid (the password is
  the auth token the stand-in signs with, as Twilio signs with the
  account's). Answers 201 with Twilio's Call resource JSON (``status``
  ``queued``, ``direction`` ``outbound-api``); errors in Twilio's JSON shape
  with its codes (21201 no ``To``, 21213 no ``From``, 21205 no ``Url``).
  Then, shortly after, the stand-in plays the phone network: if the called
  phone answers (``POST /_standin/phones``; default ``answer``) it POSTs the
  ``Url``, signed, with ``CallSid``, ``AccountSid``, ``From``, ``To``,
  ``CallStatus=in-progress``, ``Direction=outbound-api``, ``ApiVersion``, and
  runs a ``<Dial>`` in the TwiML it gets back (below); then it POSTs the
  ``StatusCallback`` with the final ``CallStatus`` (``completed`` with
  ``CallDuration``, or the phone's ``no-answer``/``busy``/``failed``).
  ``GET …/Calls/<sid>.json`` fetches the resource.
- A ``<Dial>`` run (of a call's TwiML, or of TwiML posted to ``POST
  /_standin/voice/dial`` ``{"twiml", "url", "form", "auth_token"}`` by a test
  that played Twilio fetching ``url`` with ``form``): for its first
  ``<Number>``, if that phone answers, POSTs the ``<Number url>`` (the
  whisper) signed, as the child call (``CallSid`` new, ``ParentCallSid``,
  ``From`` = the ``callerId``, ``To`` = the number, ``Direction=outbound-dial``);
  then POSTs the ``<Dial action>`` (resolved against ``url``) with the parent
  call's form plus ``DialCallStatus`` (``completed`` or the phone's outcome),
  ``DialCallSid`` and ``DialCallDuration``. Answers ``{"events": [...]}``.

Every request goes to its URL, or to the stand-in's callback base URL when
one is set (``POST /_standin/callbacks``), signed over the URL as given.
``GET /_standin/calls`` answers ``{"calls": [resources], "events": [{"kind":
"fetch"|"whisper"|"action"|"status"|"dial", "url", "form", "status", "body"}]}``
in order; ``DELETE /_standin/calls`` forgets them and the phones.
"""

from __future__ import annotations

import logging
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from flask import Blueprint, current_app, jsonify, request
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
PHONE_OUTCOMES = ("answer", "no-answer", "busy", "failed")
"""What a phone does when called (``POST /_standin/phones``)."""
CALL_DELAY_S = 0.05
"""How long after the 201 the called phone answers (or not)."""
TALK_S = 12
"""The ``CallDuration``/``DialCallDuration`` of an answered call (seconds)."""
REQUEST_TIMEOUT_S = 15.0

bp = Blueprint("twilio_standin_calls", __name__)


@dataclass
class CallsStore:
    """Calls created, phones' behaviour and everything the network did; thread-safe through ``lock``."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    phones: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outcome(self, number: str) -> str:
        with self.lock:
            return self.phones.get(number, "answer")


def _stores():
    return current_app.extensions["twilio_standin_calls"], current_app.extensions["twilio_standin"]


def _new_sid() -> str:
    import secrets

    return "CA" + secrets.token_hex(16)


def _post_signed(calls: CallsStore, base_url: str | None, kind: str, url: str, form: dict[str, str], auth_token: str) -> str:
    """POST ``form`` to ``url`` (or the callback base URL), signed over ``url``; record it; return the body."""
    signature = RequestValidator(auth_token).compute_signature(url, form)
    target = url
    if base_url:
        parts, base = urlsplit(url), urlsplit(base_url)
        target = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))
    body = ""
    try:
        answer = requests.post(target, data=form, headers={"X-Twilio-Signature": signature}, timeout=REQUEST_TIMEOUT_S)
        status: int | str = answer.status_code
        body = answer.text
    except requests.RequestException as exc:
        status = type(exc).__name__
    with calls.lock:
        calls.events.append({"kind": kind, "url": url, "form": form, "status": status, "body": body})
    logger.info("stand-in voice %s %s: %s", kind, url, status)
    return body


def run_dial(calls: CallsStore, base_url: str | None, twiml: str, url: str, parent: dict[str, str], auth_token: str) -> None:
    """Run the first ``<Dial><Number>`` of ``twiml`` (fetched from ``url`` for the call ``parent``); see the module docstring."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return
    dial = root.find("Dial")
    if dial is None:
        return
    number_el = dial.find("Number")
    number = (number_el.text or "").strip() if number_el is not None else (dial.text or "").strip()
    outcome = calls.outcome(number)
    child_sid = _new_sid()
    with calls.lock:
        calls.events.append({"kind": "dial", "url": url, "form": {"To": number, "CallerId": dial.get("callerId", "")},
                             "status": outcome, "body": ""})
    if outcome == "answer" and number_el is not None and number_el.get("url"):
        child = {
            "CallSid": child_sid, "ParentCallSid": parent.get("CallSid", ""), "AccountSid": parent.get("AccountSid", ""),
            "From": dial.get("callerId") or parent.get("From", ""), "To": number, "CallStatus": "in-progress",
            "Direction": "outbound-dial", "ApiVersion": API_VERSION,
        }
        _post_signed(calls, base_url, "whisper", urljoin(url, number_el.get("url")), child, auth_token)
    action = dial.get("action")
    if action:
        status = "completed" if outcome == "answer" else outcome
        form = {**parent, "DialCallStatus": status, "DialCallSid": child_sid,
                "DialCallDuration": str(TALK_S if outcome == "answer" else 0)}
        _post_signed(calls, base_url, "action", urljoin(url, action), form, auth_token)


def _run_call(calls: CallsStore, base_url: str | None, resource: dict[str, Any], form: dict[str, str], auth_token: str) -> None:
    """Play the network for a created call (a thread): answer or not, fetch the TwiML, run its Dial, post the status."""
    time.sleep(CALL_DELAY_S)
    outcome = calls.outcome(resource["to"])
    call_form = {
        "CallSid": resource["sid"], "AccountSid": resource["account_sid"], "From": resource["from"], "To": resource["to"],
        "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": API_VERSION,
    }
    if outcome == "answer":
        url = form.get("Url", "")
        twiml = _post_signed(calls, base_url, "fetch", url, call_form, auth_token) if url else form.get("Twiml", "")
        run_dial(calls, base_url, twiml, url, call_form, auth_token)
    final = "completed" if outcome == "answer" else outcome
    with calls.lock:
        resource["status"] = final
        resource["duration"] = str(TALK_S if outcome == "answer" else 0)
    if form.get("StatusCallback"):
        status_form = {**call_form, "CallStatus": final, "CallDuration": resource["duration"]}
        _post_signed(calls, base_url, "status", form["StatusCallback"], status_form, auth_token)


def _call_resource(account_sid: str, form: dict[str, str]) -> dict[str, Any]:
    sid = _new_sid()
    date = format_datetime(datetime.now(timezone.utc))
    return {
        "sid": sid, "account_sid": account_sid, "to": form["To"], "to_formatted": form["To"], "from": form["From"],
        "from_formatted": form["From"], "status": "queued", "direction": "outbound-api", "api_version": API_VERSION,
        "date_created": date, "date_updated": date, "start_time": None, "end_time": None, "duration": None,
        "price": None, "price_unit": "USD", "answered_by": None, "caller_name": None, "forwarded_from": None,
        "group_sid": None, "parent_call_sid": None, "phone_number_sid": None, "queue_time": "0", "trunk_sid": None,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Calls/{sid}.json",
        "subresource_uris": {}, "annotation": None,
    }


@bp.post(f"/{API_VERSION}/Accounts/<account_sid>/Calls.json")
def create_call(account_sid: str):
    """Twilio's Calls create (see the module docstring)."""
    from devtools.twilio_standin import twilio_error

    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username != account_sid:
        return twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    form = request.form.to_dict()
    if not form.get("To"):
        return twilio_error(400, 21201, "No 'To' number is specified")
    if not form.get("From"):
        return twilio_error(400, 21213, "No 'From' number is specified")
    if not form.get("Url") and not form.get("Twiml"):
        return twilio_error(400, 21205, "Url parameter is required.")
    calls, standin = _stores()
    resource = _call_resource(account_sid, form)
    with calls.lock:
        calls.calls.append({**resource, "form": form})
    with standin.lock:
        base_url = standin.callback_base_url
    threading.Thread(target=_run_call, args=(calls, base_url, resource, form, auth.password or ""), daemon=True).start()
    return jsonify(resource), 201


@bp.get(f"/{API_VERSION}/Accounts/<account_sid>/Calls/<sid>.json")
def fetch_call(account_sid: str, sid: str):
    from devtools.twilio_standin import twilio_error

    calls, _ = _stores()
    with calls.lock:
        found = next((c for c in calls.calls if c["sid"] == sid and c["account_sid"] == account_sid), None)
    if found is None:
        return twilio_error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/{account_sid}/Calls/{sid}.json was not found")
    return jsonify({k: v for k, v in found.items() if k != "form"})


@bp.post("/_standin/phones")
def configure_phone():
    """``{"number": "+1555…", "outcome": "answer"|"no-answer"|"busy"|"failed"}``: what that phone does when called."""
    body = request.get_json(silent=True) or {}
    if body.get("outcome") not in PHONE_OUTCOMES or not isinstance(body.get("number"), str):
        return jsonify({"error": f"number and outcome (one of {', '.join(PHONE_OUTCOMES)}) are required"}), 400
    calls, _ = _stores()
    with calls.lock:
        calls.phones[body["number"]] = body["outcome"]
    return jsonify({"ok": True})


@bp.post("/_standin/voice/dial")
def dial():
    """Run the ``<Dial>`` of TwiML a test got from a Voice webhook (``{"twiml", "url", "form", "auth_token"}``)."""
    body = request.get_json(silent=True) or {}
    if not all(isinstance(body.get(k), str) for k in ("twiml", "url", "auth_token")) or not isinstance(body.get("form"), dict):
        return jsonify({"error": "twiml, url, auth_token (strings) and form (object) are required"}), 400
    calls, standin = _stores()
    with calls.lock:
        first = len(calls.events)
    with standin.lock:
        base_url = standin.callback_base_url
    run_dial(calls, base_url, body["twiml"], body["url"], {k: str(v) for k, v in body["form"].items()}, body["auth_token"])
    with calls.lock:
        return jsonify({"events": calls.events[first:]})


@bp.get("/_standin/calls")
def calls_made():
    calls, _ = _stores()
    with calls.lock:
        return jsonify({"calls": list(calls.calls), "events": list(calls.events)})


@bp.delete("/_standin/calls")
def forget_calls():
    calls, _ = _stores()
    with calls.lock:
        calls.calls.clear()
        calls.events.clear()
        calls.phones.clear()
    return "", 204
