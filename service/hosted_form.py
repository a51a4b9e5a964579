"""The hosted form: ``/f/<form_token>``, the web page a customer fills while the guide lane watches.

Routes (the token is the only credential; it names one :class:`state.forms.FormSession`):

* ``GET /f/<form_token>``: the tenant's form definition (``TenantConfig.form``)
  rendered as one mobile-friendly HTML page (Jinja template
  ``templates/form/page.html``, script ``static/form/form.js``, style
  ``static/form/form.css``; no build step, nothing from a CDN). The page
  opens where the customer left off: on the page and with the values of the
  session's last activity. Unknown or expired token, or a tenant without a
  form: an HTML 404 page.
* ``POST /f/<form_token>/activity``: one screen activity, JSON
  ``{"screen_name", "page", "fields": {field_id: value}, "action", "field_id"}``
  (:class:`ActivityBody`), appended with :meth:`FormStore.record_activity`
  (the session's activity stream, capped). ``fields`` carries every field of
  the form, empty ones as ``""``, so the stream holds the whole screen at
  each step and change detection compares like with like. Answers
  ``201 {"id": <stream id>}``. Errors (JSON ``{"error", "status"}``, nothing
  written): 400 malformed JSON or a body that breaks :class:`ActivityBody`
  (unknown keys, unknown field ids, page out of range, screen name not the
  page's), or an ``action: submit`` whose values break the definition's
  rules (named); 404 unknown or expired token; 409 the form was already
  submitted; 413 body over :data:`MAX_ACTIVITY_BYTES`; 415 not JSON; 429
  over :data:`FORM_REQUEST_RATE` (with ``Retry-After``).

Guessing: a token is looked up (a read) before anything is counted, so an
unknown token creates no Redis key; it counts one wrong guess for the client
address (``X-Forwarded-For`` through ``LANEWAY_TRUSTED_PROXY_HOPS`` proxies,
else the peer), and a client over :data:`FORM_GUESS_RATE` gets 429 on every
form URL until its window frees a guess.
* ``GET /f/<form_token>/commands``: the pending commands
  (``{"commands": [{"id", "command_id", "action", "field_id", "label",
  "created_at"}], "poll_interval_ms"}``), oldest first; the page polls every
  :data:`POLL_INTERVAL_MS`.
* ``POST /f/<form_token>/commands/ack``: ``{"ids": [<stream id>, …]}``
  (1–:data:`MAX_ACK_IDS`); the page acknowledges each command it has shown,
  so it is shown once. Answers ``{"acked": n}`` (ids already gone count 0).

Redis: only through :class:`state.forms.FormStore` (keys ``lw:{f:<token>}:*``)
and the rate limiter (:mod:`service.rate_limits`, queue Redis).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any, Literal

from flask import Blueprint, Response, render_template, request
from limits import parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service import json_body, proxies
from service.errors import ApiError
from service.services import services
from state.analytics import day_of, record_form_page
from state.form_definition import FormDefinition, FormField
from state.forms import FormSession, FormStore, ScreenActivity
from state.models import utcnow
from state.triggers import screen_activity_recorded

log = logging.getLogger(__name__)

bp = Blueprint("hosted_form", __name__)

POLL_INTERVAL_MS = 1000
"""How often the page asks for pending commands, in milliseconds (the page reads it from the HTML)."""
ACTIVITY_DEBOUNCE_MS = 600
"""Quiet time after the last keystroke before the page posts a ``field_change``, in milliseconds."""
MAX_ACTIVITY_BYTES = 16 * 1024
"""Largest activity body accepted, in bytes; a longer one answers 413."""
MAX_FIELD_VALUE_CHARS = 500
"""Longest field value accepted in an activity, in characters."""
MAX_ACK_BYTES = 4 * 1024
"""Largest ack body accepted, in bytes."""
MAX_ACK_IDS = 50
"""Most command ids acknowledged in one request."""
FORM_REQUEST_RATE = "600/minute"
"""Requests per form token (activity, commands, acks; the page polls once a second), as a ``limits`` rate."""
FORM_GUESS_RATE = "30/minute"
"""Unknown, expired or malformed form tokens tried per client address, as a ``limits`` rate. Past it,
every form URL from that address answers 429 until the window frees a guess (a valid token too, so
the answer tells a guesser nothing). Tokens are 128 random bits: this bounds load, not luck. The
page stops polling on a 404, so an expired link left open is not counted forever."""

FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,128}")
"""What a form token can look like; anything else is 404 without touching Redis."""
SCREEN_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
"""A page's ``screen_name`` (as :class:`state.form_definition.FormPage` allows)."""
NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")
"""A ``number`` field's value, as the page checks it too."""
STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
NOT_FOUND = "form not found: the link is wrong or has expired"

_rate = parse(FORM_REQUEST_RATE)
_guess_rate = parse(FORM_GUESS_RATE)


class ActivityBody(BaseModel):
    """The JSON body of ``POST /f/<form_token>/activity``, checked strictly (extra keys are refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    screen_name: str = Field(max_length=80, pattern=f"^{SCREEN_NAME.pattern}$")
    page: int | None = Field(None, ge=1, le=100)
    fields: dict[str, str] = Field(default_factory=dict, max_length=200)
    action: Literal["load", "field_change", "page_change", "submit"]
    field_id: str | None = Field(None, max_length=64)


class AckBody(BaseModel):
    """The JSON body of ``POST /f/<form_token>/commands/ack``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[str] = Field(min_length=1, max_length=MAX_ACK_IDS)


def _store() -> FormStore:
    return services().forms


def client_address() -> str:
    """The client's address for counting wrong token guesses (:func:`service.proxies.client_address`)."""
    return proxies.client_address(services().settings.trusted_proxy_hops)


def _retry_after_s(item, *identifiers: str) -> int:
    reset_at = services().rate_limits.limiter.get_window_stats(item, *identifiers).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def _guesses_left() -> bool:
    """Whether this client may still try a form token (reads its guess counter; writes nothing)."""
    return services().rate_limits.limiter.test(_guess_rate, "form-guess", client_address())


def _count_wrong_guess() -> bool:
    """Count one unknown token for this client; ``False`` when that was over :data:`FORM_GUESS_RATE`.

    Keys: the client's counters under :func:`state.keys.rate_limit_prefix`
    (``form-guess/<address>``, queue Redis, the ``limits`` library's sliding
    window); nothing is written for the token itself.
    """
    return services().rate_limits.limiter.hit(_guess_rate, "form-guess", client_address())


def _guess_retry_after_s() -> int:
    return _retry_after_s(_guess_rate, "form-guess", client_address())


def _session(form_token: str) -> FormSession | None:
    """The live session for ``form_token``, or ``None`` (malformed, unknown or expired). Reads only (HGETALL)."""
    if not FORM_TOKEN.fullmatch(form_token):
        return None
    return _store().session(form_token)


def _too_many_guesses() -> ApiError:
    retry_after_s = _guess_retry_after_s()
    return ApiError(429, f"too many unknown form links from this address; retry in {retry_after_s}s",
                    {"Retry-After": str(retry_after_s)})


def _definition(session: FormSession) -> FormDefinition | None:
    tenant = services().tenants.get(session.tenant_id)
    if tenant is None or tenant.disabled:
        return None
    return tenant.form


def _api_target(form_token: str) -> tuple[FormSession, FormDefinition]:
    """Check the client's guesses, resolve the token, then rate-limit the session, for a JSON endpoint.

    The token is resolved (a read) before anything is counted for it, so an
    unknown token creates no key: it counts one wrong guess for the client
    address (:data:`FORM_GUESS_RATE`) instead. Only a live session's token
    gets a per-token counter (:data:`FORM_REQUEST_RATE`).

    Raises:
        ApiError: 429 the client is over :data:`FORM_GUESS_RATE` (whatever the
            token), or the session over :data:`FORM_REQUEST_RATE`; 404 unknown
            or expired token, or no form.
    """
    if not _guesses_left():
        raise _too_many_guesses()
    session = _session(form_token)
    definition = _definition(session) if session else None
    if session is None or definition is None:
        if not _count_wrong_guess():
            raise _too_many_guesses()
        raise ApiError(404, NOT_FOUND)
    if not services().rate_limits.limiter.hit(_rate, "hosted-form", form_token):
        retry_after_s = _retry_after_s(_rate, "hosted-form", form_token)
        raise ApiError(429, f"too many requests for this form; retry in {retry_after_s}s", {"Retry-After": str(retry_after_s)})
    return session, definition


def _json_body(max_bytes: int) -> Any:
    """The request's JSON document, read under ``max_bytes``.

    Raises:
        ApiError: 415 not ``application/json``; 413 over ``max_bytes``; 400 not JSON.
    """
    if request.mimetype != "application/json":
        raise ApiError(415, "expected application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"request body is too large (at most {max_bytes} bytes)")
    raw = request.get_data(cache=True)  # a chunked body is whole here, or the app answered 413 (service/app.py)
    if len(raw) > max_bytes:
        raise ApiError(413, f"request body is too large (at most {max_bytes} bytes)")
    try:
        return json_body.loads(raw)
    except ValueError as exc:  # not JSON, not UTF-8, or nested too deep
        raise ApiError(400, f"body is not valid JSON: {str(exc)[:120]}") from None


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"invalid {where}: {first['msg']}"


def submit_problems(definition: FormDefinition, values: dict[str, str]) -> list[str]:
    """What keeps ``values`` from being a complete application under ``definition``'s rules (empty: none).

    The same rules the page checks before it offers Submit: required,
    ``min_length`` / ``max_length`` (characters), ``pattern`` (matched whole),
    ``min`` / ``max`` for number fields, and for select and radio fields one
    of the options.
    """
    problems = []
    for field in definition.fields().values():
        value = values.get(field.id, "").strip()
        if not value:
            if field.required:
                problems.append(f"{field.label} is required")
            continue
        problems.extend(_value_problems(field, value))
    return problems


def _value_problems(field: FormField, value: str) -> list[str]:
    """What is wrong with a non-empty ``value`` of ``field`` under its rules (empty: nothing)."""
    problems = []
    if field.min_length is not None and len(value) < field.min_length:
        problems.append(f"{field.label} needs at least {field.min_length} characters")
    if field.max_length is not None and len(value) > field.max_length:
        problems.append(f"{field.label} takes at most {field.max_length} characters")
    if field.pattern and not _matches(field.pattern, value):
        problems.append(f"{field.label} is not in the expected format")
    if field.type in ("select", "radio") and value not in field.options:
        problems.append(f"{field.label} must be one of the listed choices")
    if field.type == "number":
        if not NUMBER.fullmatch(value):
            problems.append(f"{field.label} must be a number")
        else:
            number = float(value)
            if field.min is not None and number < field.min:
                problems.append(f"{field.label} must be at least {field.min:g}")
            if field.max is not None and number > field.max:
                problems.append(f"{field.label} must be at most {field.max:g}")
    return problems


def _matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern`` whole; a pattern Python cannot compile is not enforced (as browsers ignore one)."""
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return True


def _check_activity(body: ActivityBody, definition: FormDefinition) -> None:
    """Check an activity against the form it claims to come from.

    Raises:
        ApiError: 400 naming the first problem.
    """
    known = set(definition.fields())
    if unknown := sorted(set(body.fields) - known):
        raise ApiError(400, f"invalid fields: unknown field id {unknown[0][:64]!r}")
    if body.field_id is not None and body.field_id not in known:
        raise ApiError(400, f"invalid field_id: unknown field id {body.field_id[:64]!r}")
    if long := [k for k, v in body.fields.items() if len(v) > MAX_FIELD_VALUE_CHARS]:
        raise ApiError(400, f"invalid fields.{long[0]}: longer than {MAX_FIELD_VALUE_CHARS} characters")
    if body.page is not None:
        if body.page > len(definition.pages):
            raise ApiError(400, f"invalid page: the form has {len(definition.pages)} pages")
        expected = definition.pages[body.page - 1].screen_name
        if body.screen_name != expected:
            raise ApiError(400, f"invalid screen_name: page {body.page} is {expected!r}")
    if body.action == "submit" and (problems := submit_problems(definition, body.fields)):
        raise ApiError(400, "the application is not complete: " + "; ".join(problems[:5]))


def _security_headers(response: Response) -> Response:
    # The token is in the URL: never send it on as a Referer, never cache the page.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
    return response


bp.after_request(_security_headers)


@bp.get("/f/<form_token>")
def form_page(form_token: str):
    """Render the form for ``form_token``, opened where the customer left off (HTML; 404 page if unknown).

    An unknown token counts a wrong guess for the client like the JSON
    endpoints (:func:`_api_target`); over :data:`FORM_GUESS_RATE`, 429 (the
    not-found page, with ``Retry-After``).
    """
    if not _guesses_left():
        return render_template("form/not_found.html"), 429, {"Retry-After": str(_guess_retry_after_s())}
    session = _session(form_token)
    definition = _definition(session) if session else None
    if session is None or definition is None:
        if not _count_wrong_guess():
            return render_template("form/not_found.html"), 429, {"Retry-After": str(_guess_retry_after_s())}
        return render_template("form/not_found.html"), 404
    tenant = services().tenants.get(session.tenant_id)
    state = _store().screen_state(form_token, definition, utcnow())
    initial = {
        "page": state.page_number if state and state.page_number else 1,
        "fields": {k: v for k, v in (state.fields if state else {}).items() if k in definition.fields()},
        "submitted": session.submitted_at is not None,
    }
    return render_template(
        "form/page.html",
        definition=definition,
        display_name=tenant.display_name if tenant else "",
        form_token=form_token,
        initial=initial,
        poll_interval_ms=POLL_INTERVAL_MS,
        debounce_ms=ACTIVITY_DEBOUNCE_MS,
    )


@bp.post("/f/<form_token>/activity")
def post_activity(form_token: str):
    """Record one screen activity (see the module docstring for the body and the answers)."""
    session, definition = _api_target(form_token)
    document = _json_body(MAX_ACTIVITY_BYTES)
    try:
        body = ActivityBody.model_validate(document)
    except ValidationError as exc:
        raise ApiError(400, _validation_message(exc)) from None
    _check_activity(body, definition)
    if session.submitted_at is not None:
        raise ApiError(409, "this application was already submitted")
    try:  # ActivityBody's limits are the stored model's; a drift between them is still a 400, never a 500
        activity = ScreenActivity(
            screen_name=body.screen_name,
            page=body.page,
            fields=body.fields,
            action=body.action,
            field_id=body.field_id,
            at=utcnow(),
        )
    except ValidationError as exc:
        raise ApiError(400, _validation_message(exc)) from None
    stream_id = _store().record_activity(form_token, activity)
    if stream_id is None:  # expired between the check and the write
        raise ApiError(404, NOT_FOUND)
    screen_activity_recorded(_store().redis, session)  # the trigger rules look at the screen again
    record_form_page(_store().redis, session.tenant_id, form_token, body.page, body.action == "submit", day_of(activity.at))
    log.info(
        "form activity tenant_id=%s form=%s… action=%s page=%s",
        session.tenant_id, form_token[:6], body.action, body.page,
    )
    return {"id": stream_id}, 201


@bp.get("/f/<form_token>/commands")
def get_commands(form_token: str):
    """The commands waiting for the page, oldest first (each until acknowledged)."""
    _api_target(form_token)
    pending = _store().pending_commands(form_token)
    return {
        "commands": [{"id": stream_id, **command.model_dump(mode="json")} for stream_id, command in pending],
        "poll_interval_ms": POLL_INTERVAL_MS,
    }


@bp.post("/f/<form_token>/commands/ack")
def ack_commands(form_token: str):
    """Acknowledge shown commands by stream id: ``{"ids": [...]}`` → ``{"acked": n}``."""
    _api_target(form_token)
    document = _json_body(MAX_ACK_BYTES)
    try:
        body = AckBody.model_validate(document)
    except ValidationError as exc:
        raise ApiError(400, _validation_message(exc)) from None
    if bad := [i for i in body.ids if not STREAM_ID.fullmatch(i)]:
        raise ApiError(400, f"invalid ids: {bad[0][:40]!r} is not a command id such as 1795430158123-0")
    return {"acked": _store().ack_commands(form_token, body.ids)}
