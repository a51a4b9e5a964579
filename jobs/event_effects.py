"""What each event does to a conversation inside a turn: :func:`apply_event`. Pure.

The controller (:mod:`jobs.controller`) calls :func:`apply_event` for each
inbox entry that is an event (:mod:`jobs.events`), in arrival order, under the
conversation's lease; the replies it makes go into the turn's
:class:`jobs.replies.Replies`.

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
``close``           ``closed``; the customer's next message reopens it. With
                    ``csat.enabled`` the question is texted (author ``system``,
                    ``author_id`` ``csat``) and the turn records the survey
                    (:mod:`state.csat`)
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
from datetime import datetime
from typing import Any

from agents.lanes.common import form_link
from jobs.events import HANDOFF_REASONS
from jobs.replies import Replies
from state.models import Handoff, InboundMessage, Note, SessionState
from state.tenant_config import TenantConfig

log = logging.getLogger(__name__)

LINK_TEXT = "Here's your {display_name} application link: {link}"
CSAT_AUTHOR = "csat"
"""``author_id`` of the survey's question and its thanks in the transcript."""
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
        if state.status != "waiting_human" or reason == "callback":  # a callback task replaces the queue's reason
            if not event.data.get("claim") and reason != "callback":  # a claim tells the customer nothing, a caller heard it
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
        if tenant.csat.enabled and state.status != "closed" and not state.opted_out:
            question = tenant.csat.question.format(business_name=tenant.display_name)
            acc.add(question, event, lane=None, author="system", author_id=CSAT_AUTHOR)
            acc.csat.append(("open", author_id))
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
