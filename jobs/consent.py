"""Recording consent as turns change it, and restoring an opt-out that erasure took from the conversation.

The turn controller (:mod:`jobs.controller`), the conversation's single
writer, calls :func:`record_consent_change` after a commit that set or
cleared the opt-out marker, and :func:`restore_opt_out` before a new
conversation's first turn. How the change came about is read from the
turn's inbox entries:

* an ``opt_out`` event: ``carrier`` when Twilio's error 21610 sent it
  (``author_id`` ``twilio:21610``), ``operator`` / ``api`` when the consent
  API did (``author_id`` ``operator:<name>`` / ``api:<name>``);
* otherwise a customer's keyword (STOP, START, …): ``keyword``, with the
  keyword as ``detail`` (the whole message was the keyword; anything longer
  is not kept).
"""

from __future__ import annotations

import logging
from datetime import datetime

from state.consent import ConsentStore
from state.keys import ConversationKeys
from state.models import InboundMessage

log = logging.getLogger(__name__)

KEYWORD_DETAIL_CHARS = 16


def change_method(inbox: list[InboundMessage]) -> tuple[str, str]:
    """``(method, detail)`` of the turn's consent change (see the module docstring)."""
    for entry in reversed(inbox):
        if entry.kind == "opt_out":
            author = entry.author_id or ""
            if author.startswith("twilio:"):
                return "carrier", author.removeprefix("twilio:")
            kind, _, who = author.partition(":")
            return ("operator" if kind == "operator" else "api"), who[:64]
    for entry in reversed(inbox):
        if entry.kind == "message":
            word = entry.text.strip()
            return "keyword", (word.upper() if len(word) <= KEYWORD_DETAIL_CHARS and word.isalpha() else "")
    return "api", ""


def record_consent_change(consent: ConsentStore, keys: ConversationKeys, inbox: list[InboundMessage], optout_action: str, at: datetime) -> None:
    """Append the turn's opt-out (``set``) or opt-in (``clear``) to the contact's consent record.

    Runs after the commit: a crash in between loses the record's event, never
    the opt-out itself (``C:optout`` is committed). Keys: as
    :meth:`state.consent.ConsentStore.record`.
    """
    method, detail = change_method(inbox)
    action = "opt_out" if optout_action == "set" else "opt_in"
    consent.record(keys.tenant_id, keys.conversation_id, action, method, at, detail)  # type: ignore[arg-type]
    log.info("consent %s %s by %s", keys.label, action, method)


def restore_opt_out(consent: ConsentStore, keys: ConversationKeys, loaded, record_says: bool | None = None) -> bool:
    """Whether a conversation with no stored document (new, expired or erased) belongs to a contact
    whose consent record says opted out: its first turn then starts opted out.

    ``record_says``: the record's answer when it was already read (with the lease); ``None`` reads it.
    Keys: ``T:consent:<hmac>``."""
    if loaded.doc is not None or loaded.state is not None or loaded.opted_out:
        return False
    return record_says if record_says is not None else bool(consent.opted_out(keys.tenant_id, keys.conversation_id))
