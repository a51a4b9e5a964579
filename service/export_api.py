"""Export: ``GET /api/v1/tenants/<tenant_id>/export`` — the tenant's conversations as JSON Lines, streamed.

Query: ``since`` and ``until`` (ISO 8601 datetimes or dates, UTC when no
offset; default the last 24 hours), ``limit`` (1–:data:`MAX_LIMIT`,
default :data:`DEFAULT_LIMIT`), ``cursor`` (from the previous page). Pages
follow the tenant's index of conversations by last activity
(``T:conversations``), oldest first: the response carries ``X-Next-Cursor``
when more conversations fall in the range (pass it as ``cursor`` with the
same ``since``/``until``); a conversation active again after its page was
read shows up again, later, with its newer state.

Each line (``application/x-ndjson``) is one conversation, a
:class:`service.tenant_data_models.ExportLine`::

    {"conversation_id", "channel", "lane", "status", "handoff_reason", "language", "created_at",
     "updated_at", "last_activity_at", "turn_count", "opted_out", "slots": {...},
     "transcript": [{"author", "author_id", "text", "at", "lane", "channel"}], "notes": [{"author_id", "text", "at"}]}

**PII is masked** unless the bearer key has the ``export`` scope
(:class:`state.tenant_config.HashedKey` ``scopes``): the conversation id
becomes ``***`` + its last four characters, every slot value and every
message and note text becomes ``[masked]`` (their lengths and timing stay).
The response says which in ``X-Export-Masked: true|false``.

Redis: ``T:conversations`` (ZRANGEBYSCORE with LIMIT), then ``C:state``
(HGET ``doc``) of a batch of :data:`BATCH` conversations per round trip
while streaming. 400 bad query, 401/404 as the operator API.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

from flask import Blueprint, Response, request, stream_with_context

from service import operator_auth
from service.errors import ApiError
from service.services import services
from service.tenant_data_models import ExportLine
from state.errors import StateError
from state.keys import ConversationKeys, tenant_conversations
from state.models import SessionState, mask_address, utcnow
from state.store import decode_document, parse_document
from state.tenant_config import sha256_hex

log = logging.getLogger(__name__)

bp = Blueprint("export_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
BATCH = 100
"""Conversations read per Redis round trip while streaming."""
MASK = "[masked]"
LIMIT = re.compile(r"[0-9]{1,5}")
CURSOR_SCORE = re.compile(r"-?[0-9]{1,16}")
"""A cursor's score: milliseconds since 1970 (Redis takes it as a double: 16 digits stay exact)."""


def _moment(name: str, default: datetime | None) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        moment = datetime.fromisoformat(value) if "T" in value or " " in value else datetime.combine(
            date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _limit() -> int:
    value = request.args.get("limit", str(DEFAULT_LIMIT))
    if not LIMIT.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def encode_cursor(score_ms: int, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score_ms}|{conversation_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """``(score_ms, conversation_id)`` of a cursor. Raises :class:`ApiError` 400 for a malformed one."""
    try:
        score, _, member = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed cursor") from None
    if not CURSOR_SCORE.fullmatch(score):
        raise ApiError(400, "malformed cursor")
    return int(score), member


def page_of(redis, tenant_id: str, since_ms: int, until_ms: int, after: tuple[int, str] | None, limit: int) -> tuple[list[tuple[str, int]], str | None]:
    """The next ``limit`` conversation ids in ``[since_ms, until_ms]`` by last activity, after ``after``, and the next cursor.

    Keys: ``T:conversations`` (ZRANGEBYSCORE … WITHSCORES LIMIT; repeated only
    while members at the cursor's own score are skipped).
    """
    start, skip_to = (after[0], after[1]) if after else (since_ms, None)
    out: list[tuple[str, int]] = []
    offset = 0
    while len(out) <= limit:
        rows = redis.zrangebyscore(tenant_conversations(tenant_id), start, until_ms, start=offset, num=limit + 1, withscores=True)
        if not rows:
            break
        offset += len(rows)
        for member, score in rows:
            cid, score_ms = member.decode(), int(score)
            if skip_to is not None and score_ms == after[0] and cid <= skip_to:
                continue
            out.append((cid, score_ms))
        if len(rows) < limit + 1:
            break
    page, more = out[:limit], len(out) > limit
    return page, encode_cursor(page[-1][1], page[-1][0]) if more and page else None


def record_line(state: SessionState, last_activity_ms: int, masked: bool) -> ExportLine:
    """One export line (:class:`~service.tenant_data_models.ExportLine`); ``masked`` hides the conversation id,
    slot values and texts. Pure."""
    def text(value: str) -> str:
        return MASK if masked else value

    return ExportLine.model_validate({
        "conversation_id": mask_address(state.conversation_id) if masked else state.conversation_id,
        "channel": state.channel,
        "lane": state.lane,
        "status": state.status,
        "handoff_reason": state.handoff.reason if state.handoff else None,
        "language": state.language,
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "last_activity_at": datetime.fromtimestamp(last_activity_ms / 1000, tz=timezone.utc).isoformat(),
        "turn_count": state.turn_count,
        "opted_out": state.opted_out,
        "slots": {k: text(v) for k, v in state.slots.items()},
        "transcript": [
            {"author": e.author, "author_id": e.author_id, "text": text(e.text), "at": e.at.isoformat(),
             "lane": e.lane, "channel": e.channel or state.channel}
            for e in state.transcript
        ],
        "notes": [{"author_id": n.author_id, "text": text(n.text), "at": n.at.isoformat()} for n in state.notes],
    })


def _lines(redis, tenant_id: str, page: list[tuple[str, int]], masked: bool) -> Iterator[str]:
    for i in range(0, len(page), BATCH):
        batch = page[i:i + BATCH]
        pipe = redis.pipeline(transaction=False)
        for cid, _ in batch:
            pipe.hget(ConversationKeys(tenant_id, cid).state, "doc")
        for (cid, score_ms), raw in zip(batch, pipe.execute()):
            if not raw:
                continue  # erased or expired since it was indexed
            try:
                state = parse_document(decode_document(raw))
            except StateError as exc:
                log.warning("export skipped an unreadable conversation tenant_id=%s: %s", tenant_id, exc)
                continue
            yield record_line(state, score_ms, masked).model_dump_json() + "\n"


@bp.get("/tenants/<tenant_id>/export")
def export(tenant_id: str):
    """Stream the conversations active in the range as JSON Lines (module docstring)."""
    operator_auth.authorize(tenant_id)
    svc = services()
    tenant = operator_auth.tenant_config(tenant_id)
    until = _moment("until", utcnow())
    since = _moment("since", None)
    if since is None:
        try:
            since = until - timedelta(days=1)
        except OverflowError:
            raise ApiError(400, "until is too early a date for the default since; send since as well") from None
    if since > until:
        raise ApiError(400, "since is after until")
    limit = _limit()
    cursor = request.args.get("cursor")
    after = decode_cursor(cursor) if cursor is not None else None
    key = request.headers["Authorization"].partition(" ")[2].strip()
    masked = "export" not in tenant.key_scopes(sha256_hex(key))
    redis = svc.state_redis
    page, next_cursor = page_of(redis, tenant_id, int(since.timestamp() * 1000), int(until.timestamp() * 1000), after, limit)
    headers = {"X-Export-Masked": "true" if masked else "false", "Cache-Control": "no-store"}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    log.info("export tenant_id=%s conversations=%d masked=%s", tenant_id, len(page), masked)
    return Response(stream_with_context(_lines(redis, tenant_id, page, masked)), mimetype="application/x-ndjson", headers=headers)
