"""Structured logs: JSON lines whose request id follows a turn from the webhook to its delivery."""

from __future__ import annotations

import io
import json
import logging

import pytest

from core.logs import configure_logging
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, sign, twilio_form

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"


@pytest.fixture
def json_lines():
    """Configure logging as production does, into a buffer; restore pytest's handlers afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO", "json")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_the_request_id_follows_the_turn_to_its_delivery(client, work, standin, json_lines):
    form = twilio_form("What are your opening hours?", CUSTOMER)
    headers = {"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER]), "X-Request-Id": "req-follow-me"}
    answer = client.post("/twilio/messaging", data=form, headers=headers)
    assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "req-follow-me"
    work()
    assert len(standin.messages()) == 1

    lines = json_lines()
    traced = {(line["logger"], line["event"].split()[0]) for line in lines if line.get("request_id") == "req-follow-me"}
    assert ("service.twilio_messaging", "inbound") in traced  # the webhook
    assert ("jobs.controller", "turn") in traced  # the turn, in the worker
    assert ("jobs.delivery", "outbox") in traced  # its reply's delivery
    committed = next(line for line in lines if line["event"].startswith("turn committed"))
    assert committed["tenant_id"] == "acme-insurance" and committed["turn_id"].endswith("#1")
    assert committed["conversation"].endswith("***4321}") and committed["level"] == "info" and committed["timestamp"]
    assert all(CUSTOMER not in json.dumps(line) for line in lines)
