"""A local stand-in for OpenAI's Chat Completions API (development and tests only).

It speaks the wire format of ``POST https://api.openai.com/v1/chat/completions``
closely enough for the official ``openai.OpenAI(base_url=<url>/v1, …)`` client
(https://platform.openai.com/docs/api-reference/chat/create):

- Request: JSON with ``model`` and a non-empty ``messages`` list; optional
  ``tools``, ``tool_choice``, ``response_format`` (``{"type": "json_schema",
  "json_schema": {"name", "schema", "strict"}}`` or ``{"type": "json_object"}``),
  ``temperature``, … (recorded, not interpreted). ``Authorization: Bearer <key>``
  is required (any key). ``stream: true`` is refused (400).
- Answer 200: ``{"id": "chatcmpl-…", "object": "chat.completion", "created":
  <unix s>, "model", "choices": [{"index": 0, "message": {"role":
  "assistant", "content", "refusal": null[, "tool_calls": [{"id": "call_…",
  "type": "function", "function": {"name", "arguments": <JSON string>}}]]},
  "logprobs": null, "finish_reason": "stop" | "tool_calls" | "length"}],
  "usage": {"prompt_tokens", "completion_tokens", "total_tokens"},
  "system_fingerprint"}``. Token counts are estimates (4 characters a token).
- Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``:
  401 ``invalid_api_key``, 400 ``invalid_request_error``, 429
  ``rate_limit_exceeded`` (with ``Retry-After``), 500 ``server_error``.

What it answers is scripted by the test, outside OpenAI's API:

- ``POST /_standin/script`` ``{"responses": [<answer>, …], "rules": [{"contains":
  "<text>", "answer": <answer>}, …], "default": <answer>}`` (every key
  optional; each POST replaces the script). A request takes the first queued
  response; when the queue is empty, the first rule whose ``contains`` occurs
  (case-insensitive) in the last ``user`` message; else ``default``; else a
  plain-text "nothing scripted" answer.
  An ``<answer>`` is one of ``{"content": "<text>"}``, ``{"json": <value>}``
  (content is the value as JSON), ``{"tool_calls": [{"name", "arguments":
  <value or JSON string>}]}``; optional ``finish_reason``, ``usage``.
- ``POST /_standin/faults`` ``{"faults": [<fault>, …]}`` or one ``<fault>``
  with ``"count": N``: the next requests (one fault each, in order) fail or
  misbehave. A ``<fault>`` is ``{"status": 429|500|…, "retry_after_s": 1}``,
  ``{"delay_s": 2.5}`` (answer normally after sleeping), or
  ``{"invalid_json": true}`` (200 whose content is truncated JSON; the
  scripted answer it replaces is used up).
  ``DELETE /_standin/faults`` clears them.
- ``GET /_standin/requests``: every completion request received, in order, as
  ``{"requests": [{"path", "api_key", "body", "status", "received_at"}]}``
  (``status`` is the HTTP status answered, ``null`` while a delayed request
  is still pending; requests are recorded on arrival). ``DELETE /_standin/requests``
  forgets them; ``DELETE /_standin/script`` forgets the script;
  ``POST /_standin/reset`` forgets everything.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple

import click
from flask import Blueprint, Flask, current_app, jsonify, request

from devtools.serving import serve_in_thread, serve_until_interrupted

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""Characters per token in the stand-in's usage estimate."""
DEFAULT_RETRY_AFTER_S = 1
"""``Retry-After`` (seconds) of an injected 429 that names none."""
MAX_DELAY_S = 120.0
"""Longest injected delay accepted (seconds)."""
NOTHING_SCRIPTED = "(openai stand-in: nothing scripted for this request)"
INVALID_JSON_CONTENT = '{"lane": "guide", "intent": '
"""Content of an ``invalid_json`` fault: truncated JSON, as a cut-off model answer looks."""

ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}

bp = Blueprint("openai_standin", __name__)


@dataclass
class OpenAIStandinStore:
    """The stand-in's script, pending faults and received requests; guarded by ``lock``."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    responses: deque[dict[str, Any]] = field(default_factory=deque)
    rules: list[dict[str, Any]] = field(default_factory=list)
    default: dict[str, Any] | None = None
    faults: deque[dict[str, Any]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _store() -> OpenAIStandinStore:
    return current_app.extensions["openai_standin"]


def openai_error(status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None):
    """Return a Flask response in OpenAI's error shape (``{"error": {message, type, param, code}}``)."""
    error_type, code = ERROR_TYPES.get(status, ("server_error", None))
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return jsonify(body), status, headers or {}


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def _text_of(content: Any) -> str:
    """The text of a message's ``content``: a string, or a list of ``{"type": "text", "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Return the text of the last ``user`` message ("" if none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _check_request(body: Any):
    """Return an OpenAI 400 for a malformed completion request, or ``None``."""
    if not isinstance(body, dict):
        return openai_error(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return openai_error(400, "you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        return openai_error(400, "'messages' must be a non-empty array of messages with a role", "messages")
    if body.get("stream"):
        return openai_error(400, "the OpenAI stand-in does not stream", "stream")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not schema.get("name") or not isinstance(schema.get("schema"), dict):
            return openai_error(400, "response_format.json_schema needs a name and a schema", "response_format.json_schema")
    return None


def _pick_answer(store: OpenAIStandinStore, body: dict[str, Any]) -> dict[str, Any]:
    """Return the scripted answer for a request (call with ``store.lock`` held)."""
    if store.responses:
        return store.responses.popleft()
    text = last_user_text(body["messages"]).lower()
    for rule in store.rules:
        if str(rule.get("contains", "")).lower() in text:
            return rule["answer"]
    return store.default or {"content": NOTHING_SCRIPTED}


def _completion(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Build a ``chat.completion`` object from an ``<answer>`` (see the module docstring)."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    finish_reason = "stop"
    if "tool_calls" in answer:
        message["tool_calls"] = [
            {
                "id": "call_" + secrets.token_hex(12),
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"] if isinstance(call.get("arguments"), str) else json.dumps(call.get("arguments", {})),
                },
            }
            for call in answer["tool_calls"]
        ]
        finish_reason = "tool_calls"
    elif "json" in answer:
        message["content"] = json.dumps(answer["json"])
    else:
        message["content"] = str(answer.get("content", ""))
    finish_reason = answer.get("finish_reason", finish_reason)
    prompt_tokens = sum(_tokens(_text_of(m.get("content"))) for m in body["messages"])
    completion_tokens = _tokens(message["content"] or json.dumps(message.get("tool_calls", [])))
    usage = answer.get("usage") or {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
        "system_fingerprint": "fp_standin",
    }


def _bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer "):] if header.startswith("Bearer ") else None


@bp.post("/v1/chat/completions")
def create_chat_completion():
    """Create a chat completion (OpenAI: POST /v1/chat/completions), as scripted."""
    store = _store()
    body = request.get_json(silent=True)
    record: dict[str, Any] = {
        "path": request.path,
        "api_key": _bearer_key(),
        "body": body,
        "received_at": datetime.now(timezone.utc).isoformat(),
        "status": None,  # set when answered (a delayed request is recorded on arrival)
    }
    with store.lock:
        store.requests.append(record)

    def answer_with(response):
        with store.lock:
            record["status"] = response[1]
        return response

    if record["api_key"] is None:
        return answer_with(openai_error(401, "You didn't provide an API key."))
    if (bad := _check_request(body)) is not None:
        return answer_with(bad)
    with store.lock:
        fault = store.faults.popleft() if store.faults else {}
        # Picked on arrival, so a delayed request never takes a later test's answer.
        scripted = None if fault.get("status") is not None else _pick_answer(store, body)
    if fault.get("delay_s"):
        time.sleep(float(fault["delay_s"]))
    status = fault.get("status")
    if status is not None:
        headers = {}
        if status == 429:
            headers["Retry-After"] = str(fault.get("retry_after_s", DEFAULT_RETRY_AFTER_S))
            message = "Rate limit reached for requests (OpenAI stand-in)."
        else:
            message = f"Injected fault {status} (OpenAI stand-in)."
        logger.info("openai stand-in answered %s (injected)", status)
        return answer_with(openai_error(status, message, headers=headers))
    if fault.get("invalid_json"):
        scripted = {"content": INVALID_JSON_CONTENT}
    completion = _completion(body, scripted)
    logger.info("openai stand-in answered model=%s finish_reason=%s", body["model"], completion["choices"][0]["finish_reason"])
    return answer_with((jsonify(completion), 200))


def _valid_answer(answer: Any) -> bool:
    return isinstance(answer, dict) and (
        isinstance(answer.get("content"), str)
        or "json" in answer
        or (isinstance(answer.get("tool_calls"), list) and all(isinstance(c, dict) and c.get("name") for c in answer["tool_calls"]))
    )


@bp.post("/_standin/script")
def set_script():
    """Replace the script: ``{"responses": [...], "rules": [...], "default": ...}`` (see the module docstring)."""
    data = request.get_json(silent=True) or {}
    responses, rules, default = data.get("responses", []), data.get("rules", []), data.get("default")
    ok = (
        isinstance(responses, list)
        and all(_valid_answer(a) for a in responses)
        and isinstance(rules, list)
        and all(isinstance(r, dict) and isinstance(r.get("contains"), str) and _valid_answer(r.get("answer")) for r in rules)
        and (default is None or _valid_answer(default))
    )
    if not ok:
        return jsonify(error="expected {responses: [answer], rules: [{contains, answer}], default: answer}"), 400
    store = _store()
    with store.lock:
        store.responses = deque(responses)
        store.rules = list(rules)
        store.default = default
    return jsonify(responses=len(responses), rules=len(rules), default=default is not None)


@bp.delete("/_standin/script")
def clear_script():
    """Forget the script (requests then get the "nothing scripted" answer)."""
    store = _store()
    with store.lock:
        store.responses.clear()
        store.rules = []
        store.default = None
    return "", 204


def _valid_fault(fault: Any) -> bool:
    if not isinstance(fault, dict) or not fault.keys() <= {"status", "retry_after_s", "delay_s", "invalid_json"}:
        return False
    status, delay = fault.get("status"), fault.get("delay_s", 0)
    return (
        (status is None or (isinstance(status, int) and 400 <= status <= 599))
        and isinstance(delay, (int, float)) and 0 <= delay <= MAX_DELAY_S
        and isinstance(fault.get("retry_after_s", 0), (int, float))
        and bool(fault)
    )


@bp.post("/_standin/faults")
def add_faults():
    """Queue faults: ``{"faults": [fault, …]}`` or ``{<fault>, "count": N}`` (see the module docstring)."""
    data = request.get_json(silent=True) or {}
    if "faults" in data:
        faults = data["faults"]
    else:
        count = data.pop("count", 1)
        faults = [data] * count if isinstance(count, int) and count >= 0 else None
    if not isinstance(faults, list) or not all(_valid_fault(f) for f in faults):
        return jsonify(error='expected {"faults": [{"status"?, "retry_after_s"?, "delay_s"?, "invalid_json"?}]}'), 400
    with _store().lock:
        _store().faults.extend(faults)
        pending = len(_store().faults)
    return jsonify(added=len(faults), pending=pending)


@bp.delete("/_standin/faults")
def clear_faults():
    """Drop every pending fault."""
    with _store().lock:
        _store().faults.clear()
    return "", 204


@bp.get("/_standin/requests")
def received_requests():
    """Return every completion request received, in arrival order."""
    with _store().lock:
        received = list(_store().requests)
    return jsonify(requests=received)


@bp.delete("/_standin/requests")
def clear_requests():
    """Forget every request received."""
    with _store().lock:
        _store().requests.clear()
    return "", 204


@bp.post("/_standin/reset")
def reset():
    """Forget requests, script and faults."""
    store = _store()
    with store.lock:
        store.requests.clear()
        store.responses.clear()
        store.rules = []
        store.default = None
        store.faults.clear()
    return "", 204


def create_openai_standin_app() -> Flask:
    """Build the stand-in's Flask app with an empty store (``app.extensions["openai_standin"]``)."""
    app = Flask(__name__)
    app.extensions["openai_standin"] = OpenAIStandinStore()
    app.register_blueprint(bp)
    return app


class OpenAIStandinServer(NamedTuple):
    """An OpenAI stand-in served from a background thread."""

    url: str
    """``http://127.0.0.1:<port>``; the OpenAI base URL is ``url + "/v1"``."""
    stop: Callable[[], None]
    """Shut the server down and join its thread (idempotent)."""
    app: Flask

    @property
    def base_url(self) -> str:
        """The value for ``openai.OpenAI(base_url=…)`` and ``LANEWAY_OPENAI_BASE_URL``."""
        return self.url + "/v1"


def start_openai_standin_thread(host: str = "127.0.0.1", port: int = 0) -> OpenAIStandinServer:
    """Serve a fresh stand-in from a daemon thread (tests).

    Args:
        host: interface to bind.
        port: TCP port; 0 lets the OS pick a free one.

    Returns:
        An :class:`OpenAIStandinServer`; ``.base_url`` is what the client needs.
    """
    app = create_openai_standin_app()
    url, stop = serve_in_thread(app, "openai-standin", host, port)
    return OpenAIStandinServer(url, stop, app)


@click.command("openai-standin")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8020, show_default=True, help="TCP port (0 picks a free one).")
def openai_standin_command(host: str, port: int) -> None:
    """Serve a local stand-in for OpenAI's Chat Completions API (development only).

    Point Laneway at it with LANEWAY_OPENAI_BASE_URL=http://HOST:PORT/v1 and
    script its answers through POST /_standin/script.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve_until_interrupted(create_openai_standin_app(), host, port, "OpenAI stand-in listening on {url} (base URL …/v1)")
