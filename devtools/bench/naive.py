"""The naive Flask + RQ pipeline ``laneway bench`` measures Laneway against.

What a competent engineer writes in an afternoon with the same packages, and
none of Laneway's guarantees (no dedupe, no lease, no ordering, no outbox):

* :func:`create_app`: a Flask webhook that checks ``X-Twilio-Signature`` with
  twilio's ``RequestValidator`` and enqueues one RQ job per message.
* :func:`answer_message`: the job reads the conversation as JSON from Redis,
  answers from a small FAQ table, writes the conversation back and sends the
  reply with the official ``twilio`` client.

The bench serves :func:`create_app` with the Procfile's gunicorn options and
runs the job in ``rq worker-pool`` (two ``SimpleWorker`` processes), on its own
private Redis, against the same Twilio stand-in. Environment: ``REDIS_URL``,
``NAIVE_PUBLIC_URL`` (the URL Twilio signs), ``NAIVE_TWILIO_API_URL`` (the
stand-in's base URL). The auth token and account are the example tenant's dev
values; the bench signs with the same token.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import cache

import redis
from flask import Flask, Response, abort, request
from rq import Queue
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from jobs.twilio_http import LanewayTwilioHttpClient

ACCOUNT_SID = "AC00000000000000000000000000acme01"
AUTH_TOKEN = "dev-acme-auth-token"
QUEUE = "naive"
CONVERSATION_TTL_S = 24 * 3600
FAQ = {
    "hours": "We're open 9am to 5pm, Monday to Friday.",
    "cost": "Plans start at $20 a month.",
    "exam": "Most plans need no medical exam.",
}
FALLBACK = "Thanks for your message, someone will get back to you shortly."


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@cache
def _twilio() -> Client:
    # The stand-in plumbing Laneway uses too (swaps api.twilio.com for the stand-in's URL, no per-request INFO logs).
    return Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LanewayTwilioHttpClient(os.environ["NAIVE_TWILIO_API_URL"], timeout=10))


def create_app() -> Flask:
    """The webhook: ``POST /twilio/messaging`` (403 on a bad signature, empty TwiML otherwise)."""
    app = Flask(__name__)
    validator = RequestValidator(AUTH_TOKEN)
    public_url = os.environ["NAIVE_PUBLIC_URL"]
    queue = Queue(QUEUE, connection=_redis())

    @app.post("/twilio/messaging")
    def messaging():
        form = request.form.to_dict()
        if not validator.validate(public_url + request.path, form, request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        queue.enqueue(answer_message, form["From"], form["To"], form.get("Body", ""), form["MessageSid"])
        return Response("<Response/>", mimetype="text/xml")

    return app


def answer(text: str) -> str:
    """The FAQ reply whose keyword ``text`` contains, else :data:`FALLBACK`."""
    lowered = text.lower()
    return next((reply for word, reply in FAQ.items() if word in lowered), FALLBACK)


def answer_message(customer: str, number: str, body: str, message_sid: str) -> None:
    """Append the message and the answer to ``conv:{number}:{customer}`` (JSON) and text the answer back."""
    key = f"conv:{number}:{customer}"
    raw = _redis().get(key)
    conversation = json.loads(raw) if raw else {"customer": customer, "number": number, "messages": []}
    now = datetime.now(UTC).isoformat()
    reply = answer(body)
    conversation["messages"].append({"from": "customer", "text": body, "sid": message_sid, "at": now})
    conversation["messages"].append({"from": "bot", "text": reply, "at": now})
    _redis().set(key, json.dumps(conversation), ex=CONVERSATION_TTL_S)
    _twilio().messages.create(to=customer, from_=number, body=reply)
