"""Upcasters: pure functions that lift a stored session document one schema step.

A stored document carries ``schema_version``. On read, :func:`upcast` applies
``upcast_v1_to_v2``, ``upcast_v2_to_v3``, … in order until the document has
:data:`state.models.CURRENT_SCHEMA_VERSION`; the next commit writes the current
shape back (lazy migration). A document newer than this code knows raises
:class:`SchemaTooNewError`: the worker must not write it.

Schema history:

* v1 (first production shape): ``customer`` object (``first_name``,
  ``last_name``, ``phone``), ``messages`` list of ``{"from": "customer"|"agent"|
  "human", "body", "ts"}`` with epoch seconds, ``session_token`` for the form,
  ``human_requested`` bool, timestamps as epoch seconds.
* v2: flat ``slots``; ``transcript`` entries with ``direction``,
  ``author``, ISO-8601 ``at``; ``form_token``; ``status`` replaces
  ``human_requested``; ``lane_history``; aware ISO-8601 timestamps.
* v3: ``human_requested_at`` becomes ``handoff``
  (``requested_at``, ``reason``), since a conversation can now be handed over
  by the customer, a trigger or an operator; transcript entries drop
  ``direction``, which always followed from ``author`` (repeated in every
  entry and rewritten on every commit).
* v4: ``notes`` (operators' internal notes); transcript entries may
  carry ``channel`` (``voice`` for speech) and ``author_id`` (the operator or
  trigger rule). Both are optional, so a v3 document only gains ``notes: []``.
* v5 (current): ``language`` (the conversation's language, ``None`` until
  known) and ``dialogue`` (what the repair patterns remember: the pending
  question ``expected``, consecutive ``misses``, ``last_reply_key``,
  ``refused`` slots). A v4 conversation gets ``language: None`` (its next
  message sets it) and an empty ``dialogue``; since v4 never recorded what it
  asked, ``expected`` is left unknown.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from state.errors import SchemaTooNewError, StateError
from state.models import CURRENT_SCHEMA_VERSION, channel_of

Doc = dict[str, Any]


def _iso(epoch_s: float | int | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(float(epoch_s), timezone.utc).isoformat()


_V1_AUTHORS = {"customer": ("inbound", "customer"), "agent": ("outbound", "ai"), "human": ("outbound", "human")}


def upcast_v1_to_v2(doc: Doc) -> Doc:
    """Lift a v1 document to v2. Pure: returns a new dict, never mutates ``doc``.

    Raises:
        KeyError: ``doc`` lacks a field every v1 document has (``tenant_id``,
            ``conversation_id``, ``created_at``).
    """
    customer = doc.get("customer") or {}
    slots = {k: str(v) for k, v in customer.items() if v not in (None, "")}
    transcript = []
    for m in doc.get("messages", []):
        direction, author = _V1_AUTHORS.get(m.get("from", "customer"), ("inbound", "customer"))
        transcript.append(
            {
                "direction": direction,
                "author": author,
                "text": m.get("body", ""),
                "at": _iso(m.get("ts", doc["created_at"])),
                "lane": m.get("lane"),
                "message_id": m.get("sid"),
            }
        )
    updated = doc.get("updated_at", doc["created_at"])
    lane = doc.get("lane")
    return {
        "schema_version": 2,
        "tenant_id": doc["tenant_id"],
        "conversation_id": doc["conversation_id"],
        "channel": doc.get("channel") or channel_of(doc["conversation_id"]),
        "status": "waiting_human" if doc.get("human_requested") else "active",
        "lane": lane,
        "lane_since": _iso(updated) if lane else None,
        "intent": None,
        "lane_history": [],
        "slots": slots,
        "opted_out": bool(doc.get("opted_out", False)),
        "form_token": doc.get("session_token"),
        "human_requested_at": _iso(updated) if doc.get("human_requested") else None,
        "turn_count": int(doc.get("turn_count", 0)),
        "transcript": transcript,
        "created_at": _iso(doc["created_at"]),
        "updated_at": _iso(updated),
    }


def upcast_v2_to_v3(doc: Doc) -> Doc:
    """Lift a v2 document to v3. Pure: returns a new dict, never mutates ``doc``.

    In v2 only the customer could ask for a person, so a set
    ``human_requested_at`` becomes ``handoff`` with reason ``customer_request``.

    Raises:
        KeyError: ``doc`` lacks ``transcript``.
    """
    requested_at = doc.get("human_requested_at")
    lifted = {k: v for k, v in doc.items() if k != "human_requested_at"}
    lifted["schema_version"] = 3
    lifted["handoff"] = {"requested_at": requested_at, "reason": "customer_request"} if requested_at else None
    lifted["transcript"] = [{k: v for k, v in entry.items() if k != "direction"} for entry in doc["transcript"]]
    return lifted


def upcast_v3_to_v4(doc: Doc) -> Doc:
    """Lift a v3 document to v4 (adds an empty ``notes``). Pure: returns a new dict."""
    return {**doc, "schema_version": 4, "notes": []}


def upcast_v4_to_v5(doc: Doc) -> Doc:
    """Lift a v4 document to v5 (``language: None``, an empty ``dialogue``). Pure: returns a new dict."""
    return {
        **doc,
        "schema_version": 5,
        "language": None,
        "dialogue": {"expected": None, "misses": 0, "last_reply_key": None, "refused": []},
    }


UPCASTERS: dict[int, Callable[[Doc], Doc]] = {
    1: upcast_v1_to_v2, 2: upcast_v2_to_v3, 3: upcast_v3_to_v4, 4: upcast_v4_to_v5,
}
"""``UPCASTERS[n]`` lifts a version-``n`` document to version ``n + 1``."""


def upcast(doc: Doc) -> Doc:
    """Return ``doc`` lifted to :data:`CURRENT_SCHEMA_VERSION` (unchanged if current).

    Raises:
        SchemaTooNewError: the document is newer than this code knows.
        StateError: the document has no usable ``schema_version`` or an upcaster
            fails on it.
    """
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise StateError(f"document has no valid schema_version: {version!r}")
    if version > CURRENT_SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"schema_version {version} is newer than this worker's {CURRENT_SCHEMA_VERSION}"
        )
    while version < CURRENT_SCHEMA_VERSION:
        try:
            doc = UPCASTERS[version](doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"cannot upcast schema_version {version}: {exc!r}") from exc
        version = doc["schema_version"]
    return doc
