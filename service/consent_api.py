"""Consent API: ``/api/v1/tenants/<tenant_id>/consent…`` (issue 15).

The operator API's rules hold (it shares :func:`service.operator_auth.authorize`,
the audit trail, so every read and change is an audit entry, and the
per-tenant rate limit).

==========================================  ==================================================
``GET consent?limit=&cursor=&format=``      the tenant's consent records, oldest first, paged:
                                            ``limit`` 1–1000 (100); ``format=json`` (default:
                                            ``{"records", "next_cursor"}``) or ``jsonl`` (one
                                            record a line; the next cursor in the
                                            ``X-Next-Cursor`` header)
``GET consent/<address>``                   one contact's record (404 if none)
``POST consent/<address>``                  ``{"action": "opt_out"|"opt_in", "method":
                                            "operator"|"api"}``: an opt-out goes through the
                                            conversation's inbox (an ``opt_out`` event the
                                            controller applies; 202); an opt-in is only
                                            recorded (201) and refused (409) for a contact who
                                            is opted out: only they can opt back in (START)
==========================================  ==================================================

Bodies are the models of :mod:`service.tenant_data_models` (``ConsentRecordView``,
``ConsentPage``, ``ConsentChange``, ``ConsentOptOutAccepted``), as published in
the OpenAPI document. A record names the contact by ``contact`` = ``hmac-sha256:<hex>`` of the
address, never the number (:mod:`state.consent`); ``<address>`` is
``+15551234567`` or ``whatsapp:+15551234567``, URL-encoded (named
``conversation_id`` in the route, so the audit trail masks it as it masks
conversation ids).
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from jobs.intake import submit_event
from service import operator_auth
from service.api_models import as_json
from service.errors import ApiError
from service.request_input import json_model
from service.services import services
from service.tenant_data_models import ConsentChange, ConsentOptOutAccepted, ConsentPage, ConsentRecordView
from state.consent import ConsentRecord
from state.keys import ConversationKeys
from state.models import utcnow

bp = Blueprint("consent_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

ADDRESS = re.compile(r"(whatsapp:)?\+[1-9][0-9]{6,14}")
OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}")
CURSOR = re.compile(r"([0-9]{1,15})\.([0-9a-f]{64})")
LIMIT = re.compile(r"[0-9]{1,4}")
DEFAULT_PAGE, MAX_PAGE = 100, 1000


def _address(value: str) -> str:
    if not ADDRESS.fullmatch(value):
        raise ApiError(400, "the contact must be an E.164 number (+15551234567) or whatsapp:+15551234567, URL-encoded")
    return value


def record_view(record: ConsentRecord) -> ConsentRecordView:
    """``record`` as the API shows it (:class:`~service.tenant_data_models.ConsentRecordView`)."""
    return ConsentRecordView.model_validate(record.to_json())


@bp.get("/tenants/<tenant_id>/consent")
def export_consent(tenant_id: str):
    """Page through the tenant's consent records (JSON or JSON Lines). 400 for a bad ``limit``, ``cursor`` or ``format``."""
    operator_auth.authorize(tenant_id)
    raw_limit = request.args.get("limit", str(DEFAULT_PAGE))
    if not LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_PAGE}")
    limit = int(raw_limit)
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "jsonl"):
        raise ApiError(400, "format must be json or jsonl")
    after = None
    if (cursor := request.args.get("cursor")) is not None:
        match = CURSOR.fullmatch(cursor)
        if match is None:
            raise ApiError(400, "cursor must be a next_cursor this endpoint answered")
        after = (int(match[1]), match[2])
    records, following = services().consent.page(tenant_id, after, limit)
    next_cursor = f"{following[0]}.{following[1]}" if following else None
    views = [record_view(r) for r in records]
    if fmt == "jsonl":
        response = Response("".join(v.model_dump_json() + "\n" for v in views), mimetype="application/x-ndjson")
        if next_cursor:
            response.headers["X-Next-Cursor"] = next_cursor
        return response
    return jsonify(as_json(ConsentPage(tenant_id=tenant_id, records=views, next_cursor=next_cursor)))


@bp.get("/tenants/<tenant_id>/consent/<conversation_id>")
def get_consent(tenant_id: str, conversation_id: str):
    """One contact's consent record; 404 if it has none."""
    operator_auth.authorize(tenant_id)
    record = services().consent.get(tenant_id, _address(conversation_id))
    if record is None:
        raise ApiError(404, "no consent record for that contact")
    return jsonify(as_json(record_view(record)))


@bp.post("/tenants/<tenant_id>/consent/<conversation_id>")
def change_consent(tenant_id: str, conversation_id: str):
    """Opt a contact out (202, through the conversation's inbox) or record an opt-in (201; 409 if opted out).

    400 for a body that is not a :class:`~service.tenant_data_models.ConsentChange`; 415 not JSON.
    """
    operator_auth.authorize(tenant_id)
    address = _address(conversation_id)
    body = json_model(ConsentChange)
    action, method = body.action, body.method
    name = request.headers.get("X-Operator")
    if name is not None and not OPERATOR_NAME.fullmatch(name):
        raise ApiError(400, "X-Operator must be letters, digits, space and ._@- (at most 64)")
    name = name or ""
    svc = services()
    tenant = operator_auth.tenant_config(tenant_id)
    if action == "opt_out":
        accepted = submit_event(
            svc.store, svc.queue, svc.settings, tenant, address, "opt_out", text=f"Opted out by the {method} ({name or 'unnamed'}).",
            author_id=f"{method}:{name}",
        )
        return jsonify(as_json(ConsentOptOutAccepted(accepted=accepted.new, action="opt_out"))), 202
    consent = svc.consent
    if svc.state_redis.exists(ConversationKeys(tenant_id, address).optout) or consent.opted_out(tenant_id, address):
        raise ApiError(409, "the contact opted out; only they can opt back in (texting START)")
    consent.record(tenant_id, address, "opt_in", method, utcnow(), name)
    return jsonify(as_json(record_view(consent.get(tenant_id, address)))), 201
