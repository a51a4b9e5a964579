"""Conversation events: how operators, tools and triggers change a conversation.

Every write to a conversation goes through its inbox and the turn controller,
under the conversation's lease and with its version-checked commit: the
operator API, the voice-AI tools and the trigger engine call
:func:`submit_event`, and the controller applies each event in arrival order
with :func:`apply_event` (customer messages are routed to the lanes instead).
So an operator's reply and a customer's text can never overwrite each other,
and a retried submission (same ``event_id``) is deduplicated like a repeated
Twilio ``MessageSid``.

What each :data:`state.models.EventKind` does:

==================  ==========================================================
``human_reply``     ``text`` to the customer (outbox, SMS from the tenant's
                    number), transcript author ``human``; an ``active``
                    conversation becomes ``waiting_human`` (reason ``operator``)
``note``            internal note (``SessionState.notes``); never sent
``escalate``        ``waiting_human`` with ``handoff.reason`` = ``data["reason"]``;
                    the customer is told once (``tenant.human_handoff_text``),
                    except for an operator's claim (``data["claim"]`` = the
                    operator id): then nothing is sent
``handback``        ``active`` again; the AI answers the customer's unanswered
                    messages (:mod:`jobs.controller`) and the next ones
``close``           ``closed``; the customer's next message reopens it
``form_started``    slots ``first_name``/``last_name``/``phone`` and
                    ``form_token`` from ``data`` (a voice-AI ``startSession``);
                    names only when the conversation names nobody yet or the
                    same person, ``form_token`` only then and when the platform
                    vouched for the number (``data["vouched"]``), or when the
                    conversation has no form yet
``send_link``       texts the form link (``data["form_token"]``) to
                    ``data["to"]`` or the customer
``nudge``           ``text`` to the customer, transcript author ``system``
                    (a trigger's message; ``author_id`` = the rule id)
``opt_out``         the contact is opted out (``SessionState.opted_out``; the
                    commit sets ``C:optout``), with a note saying why
                    (``text``); from Twilio's error 21610 (:mod:`jobs.receipts`)
==================  ==========================================================
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args

from agents.base import Route
from agents.lanes.common import form_link
from state.keys import ConversationKeys
from state.models import (
    Author,
    EventKind,
    Handoff,
    HandoffReason,
    InboundMessage,
    Lane,
    Note,
    SessionState,
    channel_of,
    utcnow,
)
from state.tenant_config import TenantConfig

if TYPE_CHECKING:
    from state.forms import FormCommand
    from state.store import Accepted

log = logging.getLogger(__name__)

LINK_TEXT = "Here's your {display_name} application link: {link}"
HANDOFF_REASONS: tuple[str, ...] = get_args(HandoffReason)
EVENT_SLOTS = ("first_name", "last_name", "phone")
"""The slots a ``form_started`` event may set."""


def same_person(slots: dict[str, Any], first: str, last: str) -> bool:
    """Whether ``first last`` is the person the conversation's name slots name (or they name nobody yet).

    Compared case- and space-insensitively; a conversation with no name on
    file matches anyone.
    """
    on_file = (str(slots.get("first_name") or ""), str(slots.get("last_name") or ""))
    if not any(on_file):
        return True

    def norm(value: str) -> str:
        return " ".join(value.split()).casefold()

    return (norm(on_file[0]), norm(on_file[1])) == (norm(first), norm(last))


@dataclass
class Reply:
    """One message a turn produces: to the outbox, or spoken (``spoken_for`` = the speech's provider id)."""

    text: str
    to: str
    from_: str
    author: Author = "ai"
    author_id: str | None = None
    lane: Lane | None = None
    bypass_opt_out: bool = False
    spoken_for: str | None = None
    template: str | None = None
    """The WhatsApp template an operator chose for outside the window (``data["template"]``)."""
    media_url: str | None = None
    """An operator's attachment (``data["media_url"]``), sent as Twilio's ``MediaUrl``."""


@dataclass
class Replies:
    """What a turn accumulates while the controller works through its inbox entries."""

    replies: list[Reply] = field(default_factory=list)
    commands: list["FormCommand"] = field(default_factory=list)
    route: Route | None = None
    router_fallback: str | None = None
    agents: list[str] = field(default_factory=list)
    agent_fallbacks: list[tuple[str, str]] = field(default_factory=list)

    def add(
        self, text: str, entry: InboundMessage, *, lane: Lane | None, to: str | None = None,
        author: Author = "ai", author_id: str | None = None, bypass_opt_out: bool = False,
        spoken_for: str | None = None,
    ) -> None:
        """Add a reply answering ``entry``: to ``to`` (default the customer), from the tenant number ``entry.to``."""
        self.replies.append(
            Reply(text, to or entry.from_, entry.to, author, author_id, lane, bypass_opt_out, spoken_for)
        )


def apply_event(
    tenant: TenantConfig, state: SessionState, event: InboundMessage, now: datetime, public_base_url: str,
    acc: Replies,
) -> SessionState:
    """Apply one non-message inbox entry to ``state``; replies go into ``acc``. Pure.

    Returns the new state. An event that cannot apply (``send_link`` with no
    form token, an unknown ``escalate`` reason) is logged and dropped: it was
    validated when submitted, so this only happens to an entry written by a
    bug, and dropping it keeps the conversation moving.
    """
    kind = event.kind
    author_id = event.author_id or kind
    update: dict[str, Any] = {}
    if kind == "human_reply":
        acc.add(event.text, event, lane=None, author="human", author_id=event.author_id)
        acc.replies[-1].template = event.data.get("template")
        acc.replies[-1].media_url = event.data.get("media_url")
        if state.status != "waiting_human":
            update = {"status": "waiting_human", "handoff": Handoff(requested_at=now, reason="operator")}
    elif kind == "note":
        update = {"notes": state.notes + [Note(author_id=author_id, text=event.text, at=now)]}
    elif kind == "escalate":
        reason = event.data.get("reason", "operator")
        if reason not in HANDOFF_REASONS:
            log.error("escalate event with unknown reason %r dropped", reason)
            return state
        if state.status != "waiting_human":
            if not event.data.get("claim"):  # a claim tells the customer nothing
                acc.add(tenant.human_handoff_text, event, lane=None, author="system", author_id=event.author_id)
            update = {"status": "waiting_human", "handoff": Handoff(requested_at=now, reason=reason)}  # type: ignore[arg-type]
    elif kind == "handback":
        update = {
            "status": "active", "handoff": None,
            "notes": state.notes + [Note(author_id=author_id, text="Handed back to the AI.", at=now)],
        }
    elif kind == "close":
        update = {
            "status": "closed", "handoff": None,
            "notes": state.notes + [Note(author_id=author_id, text="Closed.", at=now)],
        }
    elif kind == "form_started":
        # A voice call names a person and a number; only the platform vouches for the number. Names never
        # overwrite a different person's, and someone else's form is never unlinked from their conversation.
        data = event.data
        same = same_person(state.slots, data.get("first_name", ""), data.get("last_name", ""))
        written = [k for k in EVENT_SLOTS if data.get(k) and (same or (k == "phone" and not state.slots.get(k)))]
        slots = {**state.slots, **{k: data[k] for k in written}}
        relink = not state.form_token or (same and data.get("vouched") == "1")
        update = {"slots": slots, "form_token": (data.get("form_token") if relink else None) or state.form_token}
    elif kind == "send_link":
        token = event.data.get("form_token") or state.form_token
        if not token:
            log.error("send_link event without a form token dropped")
            return state
        link = form_link(public_base_url, token)
        acc.add(LINK_TEXT.format(display_name=tenant.display_name, link=link), event, lane="guide",
                to=event.data.get("to"), author_id=event.author_id)
        update = {"form_token": state.form_token or token}
    elif kind == "nudge":
        acc.add(event.text, event, lane=None, author="system", author_id=event.author_id)
    elif kind == "opt_out":
        if not state.opted_out:
            update = {
                "opted_out": True,
                "notes": state.notes + [Note(author_id=author_id, text=event.text or "Opted out.", at=now)],
            }
    else:  # pragma: no cover - EventKind is closed; "message" never reaches here
        raise ValueError(f"not an event: {kind!r}")
    return state.model_copy(update=update) if update else state


class EventError(ValueError):
    """An event that must not be submitted (unknown kind, missing text or data)."""


def make_event(
    tenant: TenantConfig, conversation_id: str, kind: EventKind, *, text: str = "", author_id: str | None = None,
    data: dict[str, str] | None = None, event_id: str | None = None, to: str | None = None,
) -> InboundMessage:
    """Return the inbox entry of an event for ``conversation_id`` (the customer's address).

    Args:
        event_id: the idempotency key (``op:<uuid>``, ``tool:<toolCallId>``,
            ``trigger:<rule>:<n>``); a new ``ev:<uuid>`` when ``None``.
        to: the tenant number the conversation uses (default its first number).

    Raises:
        EventError: ``kind`` is ``message``, or a ``human_reply``/``note``/``nudge`` without text,
            or an ``escalate`` with an unknown reason.
    """
    if kind == "message":
        raise EventError("customer messages arrive through the webhooks, not as events")
    if kind in ("human_reply", "note", "nudge") and not text.strip():
        raise EventError(f"a {kind} needs a non-empty text")
    if kind == "escalate" and (data or {}).get("reason", "operator") not in HANDOFF_REASONS:
        raise EventError(f"escalate reason must be one of {', '.join(HANDOFF_REASONS)}")
    return InboundMessage(
        provider_id=event_id or f"ev:{uuid.uuid4().hex}",
        channel=channel_of(conversation_id),
        from_=conversation_id,
        to=_our_address(to or tenant.phone_numbers[0], conversation_id),
        text=text,
        received_at=utcnow(),
        kind=kind,
        author_id=author_id,
        data=data or {},
    )


def _our_address(number: str, conversation_id: str) -> str:
    """The tenant's number on the conversation's channel: ``whatsapp:+1…`` for a WhatsApp conversation."""
    if channel_of(conversation_id) == "whatsapp" and not number.startswith("whatsapp:"):
        return "whatsapp:" + number
    return number


def submit_event(svc: Any, tenant: TenantConfig, conversation_id: str, kind: EventKind, **kwargs: Any) -> "Accepted":
    """Accept an event into the conversation's inbox and enqueue its drain.

    Args:
        svc: has ``store`` (:class:`state.store.ConversationStore`), ``queue``
            (RQ) and ``settings`` (the web app's ``services()`` or a worker's
            runtime).
        kwargs: as :func:`make_event`; ``request_id`` is passed to the drain job.

    Returns:
        :class:`state.store.Accepted`: ``new`` is false for a repeated ``event_id``
        (nothing written, no second drain).

    Raises:
        EventError: see :func:`make_event`.
        redis.RedisError: Redis is unreachable (nothing accepted).
    """
    from jobs.queues import (
        enqueue_drain,  # the queue module imports RQ; keep it out of pure users' imports
    )

    request_id = kwargs.pop("request_id", None)
    event = make_event(tenant, conversation_id, kind, **kwargs)
    keys = ConversationKeys(tenant.tenant_id, conversation_id)
    accepted = svc.store.accept(keys, event, tenant.session_idle_ttl_s)
    if accepted.pending:
        enqueue_drain(svc.queue, svc.settings, tenant.tenant_id, conversation_id, request_id=request_id)
    return accepted
