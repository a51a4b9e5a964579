"""The session document and the events a turn consumes.

``SessionState`` is the current shape (``schema_version`` =
:data:`CURRENT_SCHEMA_VERSION`). Stored documents of older shapes are upcast by
:mod:`state.upcast` before they are validated here. ``version`` (the
compare-and-set counter) is not part of the document: it lives beside it in the
``state`` hash.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CURRENT_SCHEMA_VERSION = 5

Channel = Literal["sms", "whatsapp", "voice"]
Lane = Literal["guide", "sms", "support"]
Status = Literal["active", "waiting_human", "closed"]
Author = Literal["customer", "ai", "human", "system"]
HandoffReason = Literal["customer_request", "trigger", "operator", "urgent", "language", "callback"]
EventKind = Literal[
    "message", "human_reply", "note", "escalate", "handback", "close", "form_started", "send_link", "nudge",
    "opt_out",
]
"""What an inbox entry is: a customer's ``message`` (text or speech), or an
event from an operator (``human_reply``, ``note``, ``escalate``, ``handback``,
``close``), the voice-AI tools (``form_started``, ``send_link``) or a trigger
(``nudge``, ``escalate``). Every write to a conversation goes through its inbox
and the turn controller (see :mod:`jobs.events`, :mod:`jobs.intake`)."""


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def mask_address(address: str) -> str:
    """Return a phone address masked for logs: ``***`` and its last 4 characters."""
    return "***" + address[-4:]


def channel_of(address: str) -> Channel:
    """Return the channel of a Twilio address (``whatsapp:+1555…`` is WhatsApp, else SMS)."""
    return "whatsapp" if address.startswith("whatsapp:") else "sms"


MEDIA_REFUSED_MARKER = "[file not accepted]"
"""The text marker of an attachment whose type the tenant does not accept (:mod:`state.media`)."""
MEDIA_MARKERS = ("[photo]", "[PDF]", "[video]", "[audio]", "[file]", MEDIA_REFUSED_MARKER)
"""Every marker :func:`media_marker` writes, and the refused one."""


def media_marker(content_type: str) -> str:
    """The text marker of an accepted attachment in a message's text: ``[photo]``, ``[PDF]``, ``[video]``, ``[audio]`` or ``[file]``."""
    if content_type.startswith("image/"):
        return "[photo]"
    if content_type == "application/pdf":
        return "[PDF]"
    if content_type.startswith(("video/", "audio/")):
        return f"[{content_type.split('/')[0]}]"
    return "[file]"


class InboundMessage(BaseModel):
    """One accepted inbound event, as stored in the conversation's inbox.

    Field names follow Twilio's webhook parameters (``MessageSid``, ``From``,
    ``To``, ``Body``), in snake case. ``from_`` is always the customer's address
    (the conversation id) and ``to`` the tenant's number, whoever caused the
    event; ``kind`` says what it is (:data:`EventKind`).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider_id: str = Field(max_length=128)
    """The event's idempotency key (deduped per conversation): Twilio's
    ``MessageSid``, ``<CallSid>:<n>`` for speech, ``op:<uuid>`` for an operator
    action, ``tool:<toolCallId>``, ``trigger:<rule_id>:<n>``."""
    channel: Channel
    from_: str = Field(alias="from", max_length=64)
    to: str = Field(max_length=64)
    text: str = Field(max_length=4096)
    num_media: int = 0
    received_at: AwareDatetime
    kind: EventKind = "message"
    author_id: str | None = Field(None, max_length=128)
    """Who caused a non-customer event: the operator id, the trigger rule id, ``voice-ai``."""
    data: dict[str, str] = Field(default_factory=dict)
    """The event's arguments (e.g. ``reason`` of ``escalate``, ``form_token`` of ``send_link``)."""


class TranscriptEntry(BaseModel):
    """One message in the conversation's transcript.

    The customer's messages are inbound; everything else (AI, human, system)
    was sent to the customer: :attr:`direction` follows from ``author``.
    """

    model_config = ConfigDict(extra="forbid")

    author: Author
    text: str
    at: AwareDatetime
    lane: Lane | None = None
    message_id: str | None = None
    """Inbound: the provider's id (``MessageSid``). Outbound: the outbox entry id,
    or ``say:<provider_id>`` for what was spoken in answer to that speech turn."""
    channel: Channel | None = None
    """Where the entry was said: ``voice`` for speech, else the text channel (``None``: the conversation's)."""
    author_id: str | None = None
    """The operator of a ``human`` entry, the trigger rule of a ``system`` nudge."""

    @property
    def direction(self) -> Literal["inbound", "outbound"]:
        return "inbound" if self.author == "customer" else "outbound"


class LaneChange(BaseModel):
    """A lane the conversation entered, when and why (the router's reason)."""

    model_config = ConfigDict(extra="forbid")

    lane: Lane
    at: AwareDatetime
    reason: str


class Handoff(BaseModel):
    """The conversation was handed to a human: when, and why.

    ``reason``: ``customer_request`` (the customer asked for a person),
    ``trigger`` (a proactive rule escalated), ``operator`` (an operator took it),
    ``urgent`` (a tenant safety rule matched an urgent message), ``language``
    (the customer writes in a language the tenant does not serve), ``callback``
    (a call transferred to the operator line was not answered: call them back).
    """

    model_config = ConfigDict(extra="forbid")

    requested_at: AwareDatetime
    reason: HandoffReason


class Note(BaseModel):
    """An internal note on the conversation (an operator's, or a record of a takeover); never sent."""

    model_config = ConfigDict(extra="forbid")

    author_id: str
    text: str
    at: AwareDatetime


class DialogueState(BaseModel):
    """What the shared dialogue patterns (:mod:`agents.dialogue`) remember between turns.

    Attributes:
        expected: what the AI's last reply asked for: ``name``, ``last_name``,
            ``phone``, ``confirm`` (a yes/no about the offered number), a form
            field id, or ``None``. The NLU reads it to interpret a bare answer.
        misses: consecutive turns answered with a fallback (not understood);
            reset by any understood turn. At 2 the fallback offers a person.
        last_reply_key: the template key of the AI's last reply, so a fallback
            is never sent twice in a row with the same words.
        refused: slots the customer declined to give (never asked again the same way).
    """

    model_config = ConfigDict(extra="forbid")

    expected: str | None = None
    misses: int = 0
    last_reply_key: str | None = None
    refused: list[str] = Field(default_factory=list)


class SessionState(BaseModel):
    """A conversation's session document (schema version 5).

    Attributes:
        slots: values collected from the customer (``first_name``,
            ``last_name``, ``phone``, …), all strings.
        lane_since: the last turn the router kept or put the conversation in
            its lane; the sticky window counts from here, so a lane holds
            until the conversation is idle for the tenant's ``sticky_seconds``.
        form_token: the hosted form session, once the guide lane started one.
        handoff: set when the conversation was handed to a human; the AI
            stays silent while ``status == "waiting_human"``.
        notes: operators' internal notes and takeover records, oldest first.
        language: the conversation's language (ISO 639-1, one of the tenant's
            ``languages``), set from the first message written confidently in
            one; ``None`` until then (replies use the tenant's first language).
        dialogue: the repair patterns' memory (:class:`DialogueState`).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[5] = CURRENT_SCHEMA_VERSION
    tenant_id: str
    conversation_id: str
    channel: Channel
    status: Status = "active"
    lane: Lane | None = None
    lane_since: AwareDatetime | None = None
    intent: str | None = None
    lane_history: list[LaneChange] = Field(default_factory=list)
    slots: dict[str, str] = Field(default_factory=dict)
    opted_out: bool = False
    form_token: str | None = None
    handoff: Handoff | None = None
    turn_count: int = 0
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    dialogue: DialogueState = Field(default_factory=DialogueState)
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @classmethod
    def new(cls, tenant_id: str, conversation_id: str, now: datetime | None = None) -> "SessionState":
        """Return the document of a conversation seen for the first time."""
        now = now or utcnow()
        return cls(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            channel=channel_of(conversation_id),
            created_at=now,
            updated_at=now,
        )


MessagePurpose = Literal["reply", "operator_reply", "nudge"]
"""Why a message goes out: the AI's ``reply`` to the customer, an operator's
``operator_reply``, a trigger's or the system's ``nudge`` (proactive). Outside
WhatsApp's customer-service window each needs an approved template
(:mod:`jobs.whatsapp_window`)."""


class OutboundMessage(BaseModel):
    """One outbox entry: a message to send through the provider.

    ``bypass_opt_out`` is set only on the opt-out confirmation itself, which
    carriers expect to reach a contact who just opted out. ``purpose``,
    ``template`` (a WhatsApp template an operator chose) and ``media_urls``
    (Twilio's ``MediaUrl``) decide how it is sent (:mod:`jobs.whatsapp_window`).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    message_id: str
    to: str
    from_: str = Field(alias="from")
    body: str
    bypass_opt_out: bool = False
    created_at: AwareDatetime
    purpose: MessagePurpose = "reply"
    template: str | None = Field(None, max_length=40)
    media_urls: list[str] = Field(default_factory=list, max_length=10)
    proactive: bool = False
    """Not an answer to the customer (they had not written within the tenant's ``sending.reply_window_s``):
    quiet hours defer it and pacing spreads it (:mod:`jobs.outbound_gate`)."""


DeliveryStatus = Literal["queued", "sending", "sent", "failed", "suppressed"]
