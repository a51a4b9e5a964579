"""The conversation store: accept, lease, load, commit, outbox, read, erase.

Every method is one Redis round trip on one conversation's keys (one cluster
slot), and every multi-key change is one Lua script from :mod:`state.scripts`.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from state import scripts
from state.assignment import AssignmentStore
from state.consent import ConsentStore
from state.errors import (
    ClaimedError,
    LeaseLostError,
    SchemaTooNewError,
    StateError,
    VersionConflictError,
)
from state.feed import forget
from state.keys import (
    ConversationKeys,
    FormKeys,
    claim_expiry_index,
    pending_member,
    sla_due_index,
    tenant_conversations,
    trigger_index,
)
from state.models import DeliveryStatus, InboundMessage, OutboundMessage, SessionState
from state.upcast import upcast

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL_MS = 30_000
"""Drain lease time to live, in milliseconds."""


@dataclass(frozen=True)
class Accepted:
    """Result of :meth:`ConversationStore.accept`."""

    new: bool
    pending: bool


@dataclass
class Loaded:
    """What :meth:`ConversationStore.acquire` read under a fresh lease.

    Attributes:
        version: the stored ``version`` (0 when the conversation is new).
        doc: the stored document as JSON-decoded dict (not yet upcast), or ``None``.
        opted_out: whether the contact's opt-out marker is present.
        inbox: the pending inbound messages, oldest first.
        state: the already parsed document, when a commit carried it over
            (then ``doc`` is ``None``).
        alongside: the replies to the reads ``acquire(read_alongside=…)``
            queued, in order (empty without them).
    """

    token: str
    version: int
    doc: dict[str, Any] | None
    opted_out: bool
    inbox: list[InboundMessage]
    state: SessionState | None = None
    alongside: list[Any] = field(default_factory=list)


@dataclass
class Committed:
    """Result of a successful commit: the new ``version`` and inbox entries still waiting."""

    version: int
    inbox: list[InboundMessage] = field(default_factory=list)


@dataclass(frozen=True)
class OutboundEntry:
    """One outbox entry as stored: status (``"missing"`` if unknown), claim time (ms), message,
    and the sid Twilio's status callback named for this entry (``None`` before one arrived)."""

    status: str
    claimed_at_ms: int | None
    message: OutboundMessage | None
    evidence_sid: str | None = None
    twilio_status: str | None = None
    """Twilio's ``MessageStatus`` from its status callbacks (``t:<id>``), ``None`` before one arrived."""
    error_code: str | None = None
    """Twilio's ``ErrorCode`` of the entry (``e:<id>``), if a callback carried one."""


@dataclass(frozen=True)
class StatusRecorded:
    """What :meth:`ConversationStore.record_status` did: ``outcome`` ``moved`` (the status moved
    forward from ``previous``), ``kept`` (not forward: nothing moved), ``unknown`` (no such entry),
    ``conflict`` (the sid is another entry's), ``stale`` (not the sid the entry holds now, e.g.
    the one a 63016 retry retired: nothing recorded)."""

    outcome: str
    previous: str = ""


def delivery_status(send_status: str, twilio_status: str | None) -> str:
    """The status an operator sees for an outbox entry: Twilio's (``t:``) once a callback
    reported one and Laneway's own send has settled, else Laneway's send status (``s:``:
    queued, sending, sent, failed, suppressed). An entry still ``queued``/``sending`` shows
    that until its sender (or the reconcile) finishes, even if Twilio's callback came first."""
    if send_status in ("queued", "sending"):
        return send_status
    return twilio_status or send_status


def deferred_entries(outbox: dict[bytes, bytes]) -> dict[str, str]:
    """Entries still ``queued`` with a deferral (``d:<id>`` = ``<reason> <ms>``: quiet hours or pacing,
    :mod:`jobs.outbound_gate`) → that value."""
    return {
        k[2:].decode(): v.decode() for k, v in outbox.items()
        if k.startswith(b"d:") and outbox.get(b"s:" + k[2:]) == b"queued"
    }


def deferral_json(value: str | None) -> dict[str, str]:
    """``delivery_deferred_reason`` (``quiet_hours``, ``pacing``) and ``delivery_deferred_until`` (ISO, UTC)
    of a deferred outbound turn; empty for any other."""
    if not value:
        return {}
    reason, _, ms = value.partition(" ")
    until = datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat() if ms.isdigit() else ""
    return {"delivery_deferred_reason": reason, "delivery_deferred_until": until}


@dataclass
class ConversationView:
    """A read-only snapshot for the operator API.

    ``delivery`` maps outbox message ids to their status (:func:`delivery_status`:
    Twilio's ``MessageStatus`` once reported, else the :data:`DeliveryStatus`);
    ``delivery_errors`` maps message ids to Twilio's ``ErrorCode``, where one came.
    """

    version: int
    state: SessionState
    opted_out: bool
    delivery: dict[str, str]
    delivery_errors: dict[str, str] = field(default_factory=dict)
    deferrals: dict[str, str] = field(default_factory=dict)
    """Message id → ``<reason> <ms>`` of entries deferred before sending (shown ``deferred``; :func:`deferral_json`)."""


def _decode_inbox(entries: list[bytes]) -> list[InboundMessage]:
    return [InboundMessage.model_validate_json(e) for e in entries]


DOCUMENT_ZLIB_LEVEL = 6
"""zlib level of stored documents: a 10-turn document shrinks about 2.5 times."""


def encode_document(state: SessionState) -> bytes:
    """Return the stored form of a session document: zlib (RFC 1950) of its JSON.

    Transcript text dominates a document and Redis keeps it in RAM; the
    document is written whole on every commit and never read inside Redis,
    so it is stored compressed.
    """
    return zlib.compress(state.model_dump_json().encode(), DOCUMENT_ZLIB_LEVEL)


def decode_document(raw: bytes) -> Any:
    """Return the JSON value of a stored document: zlib-compressed, or plain JSON (older writes).

    Raises:
        StateError: neither valid zlib nor valid JSON.
    """
    try:
        return json.loads(raw if raw[:1] == b"{" else zlib.decompress(raw))
    except (ValueError, zlib.error) as exc:
        raise StateError(f"stored session document is unreadable: {exc.__class__.__name__}") from exc


def parse_document(doc: dict[str, Any]) -> SessionState:
    """Upcast a stored document and validate it as the current :class:`SessionState`.

    Raises:
        SchemaTooNewError: the document is newer than this code (do not write).
        StateError: the document is corrupt.
    """
    try:
        return SessionState.model_validate(upcast(doc))
    except ValidationError as exc:
        raise StateError(f"stored session document is invalid: {exc}") from exc


class ConversationStore:
    """Reads and writes conversations; owns the per-conversation Lua scripts.

    Args:
        redis: client for the state Redis (a ``Redis`` or ``RedisCluster``);
            ``decode_responses`` must be off.
        lease_ttl_ms: drain lease time to live.
        dedupe_ttl_s: how long a provider message id is remembered.
    """

    def __init__(self, redis: Redis, *, lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS, dedupe_ttl_s: int = 48 * 3600):
        self.redis = redis
        self.lease_ttl_ms = lease_ttl_ms
        self.dedupe_ttl_s = dedupe_ttl_s
        self._accept = redis.register_script(scripts.ACCEPT)
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._commit = redis.register_script(scripts.COMMIT)
        self._release = redis.register_script(scripts.RELEASE_LEASE)
        self._renew = redis.register_script(scripts.RENEW_LEASE)
        self._claim = redis.register_script(scripts.CLAIM_OUTBOUND)
        self._finish = redis.register_script(scripts.FINISH_OUTBOUND)
        self._evidence = redis.register_script(scripts.RECORD_SENT_EVIDENCE)
        self._status = redis.register_script(scripts.RECORD_STATUS)

    # -- web process ---------------------------------------------------------------

    def accept(self, keys: ConversationKeys, message: InboundMessage, idle_ttl_s: int, *, reachable: bool = False) -> Accepted:
        """Dedupe on ``message.provider_id`` and append the message to the inbox.

        ``reachable``: the customer wrote a text, so the number receives
        again: ``unreachable`` (Twilio's 30003/30005/30006 marker) is deleted
        too, for a repeat as well, at no extra round trip.

        Keys: ``seen`` (ZSCORE, ZADD, trimmed to the dedupe TTL), ``inbox``
        (RPUSH), ``unreachable`` (DEL, with ``reachable``); atomic.

        Returns:
            :class:`Accepted`: whether the message is new, and whether the
            inbox holds entries a drain must take (true for a repeated
            delivery whose first drain was never enqueued).

        Raises:
            redis.RedisError: Redis is unreachable (nothing was written, or the
                whole script ran: never half).
        """
        n = int(
            self._accept(
                keys=[keys.seen, keys.inbox, keys.unreachable] if reachable else [keys.seen, keys.inbox],
                args=[message.model_dump_json(by_alias=True), message.provider_id, self.dedupe_ttl_s * 1000, idle_ttl_s * 1000],
            )
        )
        return Accepted(new=n > 0, pending=n != 0)

    # -- worker: lease, load, commit -----------------------------------------------

    def acquire(self, keys: ConversationKeys, token: str, *, read_alongside: Callable[[Pipeline], Any] | None = None) -> Loaded | None:
        """Take the lease and read version, document, opt-out and inbox.

        Keys: ``lease`` (SET NX PX), ``state``, ``inbox``, ``optout`` (read); atomic.

        Args:
            read_alongside: queues more reads on a pipeline of this store's
                Redis, sent in the same round trip (not atomic with the
                script); their replies are :attr:`Loaded.alongside`. Only for
                a single Redis (on a cluster the keys of other slots would
                need a round trip per node): raises ``TypeError`` otherwise.
                A read that fails raises its ``redis.ResponseError`` after
                the lease, if taken, is released again.

        Returns:
            ``None`` when another worker holds the lease or the inbox is empty
            (then nothing is held); else :class:`Loaded`.
        """
        script_keys, args = [keys.lease, keys.state, keys.inbox, keys.optout], [token, self.lease_ttl_ms]
        alongside: list[Any] = []
        if read_alongside is None:
            reply = self._acquire(keys=script_keys, args=args)
        else:
            if not isinstance(self.redis, Redis):
                raise TypeError("read_alongside needs a single Redis")
            pipe = self.redis.pipeline(transaction=False)
            pipe.evalsha(self._acquire.sha, len(script_keys), *script_keys, *args)
            read_alongside(pipe)
            reply, *alongside = pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):  # Redis restarted or flushed its scripts: nothing was taken
                reply = self._acquire(keys=script_keys, args=args)
            elif isinstance(reply, Exception):
                raise reply
            failed = next((answer for answer in alongside if isinstance(answer, Exception)), None)
            if failed is not None:
                if int(reply[0]) == 1:
                    self.release_lease(keys, token)  # the turn will not run: the next drain need not wait out the TTL
                raise failed
        if int(reply[0]) != 1:
            return None
        _, version, doc, opted_out, inbox = reply
        return Loaded(
            token=token,
            version=int(version or 0),
            doc=decode_document(doc) if doc else None,
            opted_out=bool(int(opted_out)),
            inbox=_decode_inbox(inbox),
            alongside=alongside,
        )

    def commit(
        self,
        keys: ConversationKeys,
        token: str,
        expected_version: int,
        state: SessionState,
        consumed: int,
        outbound: list[OutboundMessage],
        idle_ttl_s: int,
        optout_action: str = "",
        refuse_if_claimed: bool = False,
    ) -> Committed:
        """Write ``state`` as ``expected_version + 1`` and queue ``outbound``, atomically.

        Keys: ``state``, ``inbox`` (LTRIM of the ``consumed`` oldest entries),
        ``outbox``, ``outbox_pending``, ``lease``, ``optout``, ``claim``
        (EXISTS only); one script.

        Args:
            optout_action: ``"set"``, ``"clear"`` or ``""`` for the contact's
                opt-out marker (kept without TTL: opt-outs outlive sessions).
            refuse_if_claimed: the turn carries the AI's answer; write nothing
                if an operator holds the claim (``C:claim``).

        Raises:
            ClaimedError: ``refuse_if_claimed`` and an operator holds the claim.
            LeaseLostError: the lease expired or another worker holds it.
            VersionConflictError: another worker committed since the load.
            SchemaTooNewError: the stored document has a newer schema.
        """
        args: list[Any] = [
            token,
            expected_version,
            state.schema_version,
            encode_document(state),
            consumed,
            idle_ttl_s * 1000,
            self.lease_ttl_ms,
            optout_action,
            "1" if refuse_if_claimed else "",
        ]
        for m in outbound:
            # defaults left out: a worker of the previous release reads entries without the newer fields
            args += [m.message_id, m.model_dump_json(by_alias=True, exclude_defaults=True), "1" if m.bypass_opt_out else ""]
        reply = self._commit(
            keys=[keys.state, keys.inbox, keys.outbox, keys.lease, keys.optout, keys.outbox_pending, keys.claim],
            args=args,
        )
        code = int(reply[0])
        if code == -1:
            raise LeaseLostError(f"lease on {keys.label} lost before commit")
        if code == -2:
            raise VersionConflictError(f"{keys.label}: expected version {expected_version}, stored {int(reply[1])}")
        if code == -3:
            raise SchemaTooNewError(f"{keys.label}: stored schema_version {int(reply[1])} > {state.schema_version}")
        if code == -4:
            raise ClaimedError(f"{keys.label} is claimed by an operator; the AI's answer is not committed")
        return Committed(version=int(reply[1]), inbox=_decode_inbox(reply[2]))

    def renew_lease(self, keys: ConversationKeys, token: str) -> bool:
        """Extend the lease by its TTL if ``token`` still holds it. Keys: ``lease``."""
        return bool(self._renew(keys=[keys.lease], args=[token, self.lease_ttl_ms]))

    def release_lease(self, keys: ConversationKeys, token: str) -> bool:
        """Release the lease if ``token`` still holds it. Keys: ``lease``."""
        return bool(self._release(keys=[keys.lease], args=[token]))

    # -- delivery ------------------------------------------------------------------

    def claim_outbound(self, keys: ConversationKeys, message_id: str, opted_out: bool = False) -> tuple[str, OutboundMessage | None]:
        """Claim an outbox entry for sending: ``queued → sending`` (or ``→ suppressed``).

        ``opted_out``: the contact's consent record says opted out (suppress
        as for the ``optout`` marker; the opt-out confirmation still goes).

        Keys: ``outbox`` (status, claim time), ``optout``, ``outbox_pending``
        (the message); atomic compare-and-set.

        Returns:
            ``("send", message)`` when this caller must send it;
            ``("suppressed", None)`` when the contact is opted out;
            ``(status, None)`` with the current status (or ``"missing"``) otherwise.
        """
        reply = self._claim(keys=[keys.outbox, keys.optout, keys.outbox_pending], args=[message_id, "1" if opted_out else ""])
        code, value = int(reply[0]), reply[1]
        if code == 1:
            return "send", OutboundMessage.model_validate_json(value)
        if code == 2:
            return "suppressed", None
        return (value.decode() if value else "missing"), None

    def finish_outbound(
        self, keys: ConversationKeys, message_id: str, status: DeliveryStatus, provider_sid: str = "", expected: str = "sending"
    ) -> bool:
        """Compare-and-set an outbox entry from ``expected`` to ``status``, recording ``provider_sid``.

        Keys: ``outbox``, ``outbox_pending`` (a final status drops the message
        body); atomic. Returns ``False`` if the entry was not in ``expected``,
        or if ``provider_sid`` is already recorded for another entry (then
        nothing changes: one Twilio message is never two entries' proof).
        """
        return self._finish(keys=[keys.outbox, keys.outbox_pending], args=[message_id, expected, status, provider_sid]) == 1

    def record_sent_evidence(self, keys: ConversationKeys, message_id: str, provider_sid: str) -> int:
        """Record that Twilio created ``provider_sid`` for outbox entry ``message_id`` (its status callback).

        The reconcile (:func:`jobs.delivery.reconcile`) marks an entry left
        ``sending`` as sent only on this evidence. Keys: ``outbox``
        (``x:<id>``, first one kept); atomic. Returns 1 recorded, 0 no such
        entry, -1 the sid is already another entry's (nothing recorded).
        """
        return int(self._evidence(keys=[keys.outbox], args=[message_id, provider_sid]))

    def record_status(self, keys: ConversationKeys, message_id: str, provider_sid: str, status: str, error_code: str = "") -> StatusRecorded:
        """Record Twilio's status callback for outbox entry ``message_id``: evidence and status.

        The sid is recorded as in :meth:`record_sent_evidence`; Twilio's
        ``MessageStatus`` moves the entry's ``t:<id>`` forward only
        (``queued`` < ``sending`` < ``sent`` < ``delivered`` < ``read``, or
        ``undelivered`` / ``failed``; those and ``read`` are final), whatever
        order callbacks arrive in, and the first ``ErrorCode`` is kept in
        ``e:<id>``. Laneway's send status ``s:<id>`` is not touched. Keys:
        ``outbox``; one script (compare-and-set). An unknown status records
        the evidence only (outcome ``kept``). Only the entry's current sid
        (``p:<id>``; before it is recorded, any sid not recorded for the entry)
        counts: another one, e.g. retired by a 63016 retry, records nothing
        (outcome ``stale``).
        """
        code, previous = self._status(keys=[keys.outbox], args=[message_id, provider_sid, status, error_code])
        outcome = {1: "moved", 2: "kept", 3: "stale", 0: "unknown", -1: "conflict"}[int(code)]
        return StatusRecorded(outcome, previous.decode() if isinstance(previous, bytes) else str(previous or ""))

    def outbound_entry(self, keys: ConversationKeys, message_id: str) -> OutboundEntry:
        """Read one outbox entry: status, claim time, message, evidence, Twilio's status and error code.
        Keys: ``outbox``, ``outbox_pending`` (MULTI)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(keys.outbox, f"s:{message_id}", f"c:{message_id}", f"x:{message_id}", f"t:{message_id}", f"e:{message_id}")
        pipe.hget(keys.outbox_pending, message_id)
        (status, claimed_at_ms, evidence_sid, twilio_status, error_code), message = pipe.execute()
        return OutboundEntry(
            status.decode() if status else "missing",
            int(claimed_at_ms) if claimed_at_ms else None,
            OutboundMessage.model_validate_json(message) if message else None,
            evidence_sid.decode() if evidence_sid else None,
            twilio_status.decode() if twilio_status else None,
            error_code.decode() if error_code else None,
        )

    def record_error(self, keys: ConversationKeys, message_id: str, error_code: str) -> bool:
        """Keep Twilio's ``ErrorCode`` of a send it refused outright (the create answered 4xx) in ``e:<id>``.

        Keys: ``outbox`` (HSETNX: the first code stays). Returns whether it was recorded.
        """
        return bool(self.redis.hsetnx(keys.outbox, f"e:{message_id}", error_code))

    def sid_owner(self, keys: ConversationKeys, provider_sid: str) -> str | None:
        """The outbox entry a provider sid is recorded for, or ``None``. Keys: ``outbox`` (HGET ``q:<sid>``)."""
        owner = self.redis.hget(keys.outbox, f"q:{provider_sid}")
        return owner.decode() if owner else None

    # -- reads and erasure ---------------------------------------------------------

    def read(self, keys: ConversationKeys) -> ConversationView | None:
        """Return a snapshot of the conversation, or ``None`` if it does not exist.

        Keys: ``state``, ``optout``, ``outbox`` read in one MULTI/EXEC
        transaction, so atomic. On a Redis Cluster this is a same-slot
        transaction (redis-py's ``ClusterPipeline(transaction=True)``), which
        the shared hash tag makes possible.

        Raises:
            SchemaTooNewError, StateError: the stored document cannot be read.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(keys.state, "version", "doc")
        pipe.exists(keys.optout)
        pipe.hgetall(keys.outbox)
        (version, doc), opted_out, outbox = pipe.execute()
        if not doc:
            return None
        delivery = {
            k[2:].decode(): delivery_status(v.decode(), (outbox.get(b"t:" + k[2:]) or b"").decode() or None)
            for k, v in outbox.items() if k.startswith(b"s:")
        }
        errors = {k[2:].decode(): v.decode() for k, v in outbox.items() if k.startswith(b"e:")}
        deferrals = deferred_entries(outbox)
        delivery |= {message_id: "deferred" for message_id in deferrals}
        return ConversationView(int(version), parse_document(decode_document(doc)), bool(opted_out), delivery, errors, deferrals)

    def version(self, keys: ConversationKeys) -> int | None:
        """The conversation's committed ``version`` (``None`` before its first commit). Keys: ``state`` (HGET).

        One cheap command: a waiter reads the document only after it changed.
        """
        version = self.redis.hget(keys.state, "version")
        return int(version) if version is not None else None

    def opted_out(self, keys: ConversationKeys) -> bool:
        """Whether the contact is opted out now (even before the conversation's first commit). Keys: ``optout`` (EXISTS)."""
        return bool(self.redis.exists(keys.optout))

    def spoken_reply(self, keys: ConversationKeys, provider_id: str) -> str | None:
        """Return what the AI said in answer to the speech turn ``provider_id``, or ``None`` until committed.

        The controller writes spoken replies into the transcript as
        ``message_id = "say:<provider_id>"``. Keys: ``state`` (HGET ``doc``).

        Raises:
            SchemaTooNewError, StateError: the stored document cannot be read.
        """
        doc = self.redis.hget(keys.state, "doc")
        if not doc:
            return None
        wanted = f"say:{provider_id}"
        for entry in reversed(decode_document(doc).get("transcript", [])):
            if entry.get("message_id") == wanted:
                return entry.get("text") or ""
        return None

    def erase(self, keys: ConversationKeys) -> int:
        """Delete the conversation (right to erasure). Returns the number of conversation keys deleted.

        Everything of it on the state Redis: every key of
        :meth:`ConversationKeys.all` in one ``DEL`` (atomic; on a Redis
        Cluster redis-py splits ``DEL`` by slot, and these share one); then
        the keys of every hosted form session it opened (``C:forms`` and the
        document's ``form_token``: what the customer typed), its entry in
        ``T:conversations``, ``lw:triggers:due``, ``lw:claims:due``, ``lw:sla:due``, the desk's
        queue and assignment (:class:`state.assignment.AssignmentStore`), and every ``T:feed``
        entry naming it (:func:`state.feed.forget`), which live in other
        slots. The contact's consent record (:mod:`state.consent`, named by an
        HMAC of the number, never the number) keeps only the fact of an
        opt-out, which carriers require to be honoured for good; any other
        record is deleted. The queue Redis's keys (``lw:pending``, ``lw:ref:*``, rate
        limit counters) are the caller's (``service.operator_api``).
        Voice-AI tool results and ``sessionId`` records hold no personal
        data (:mod:`service.voice_ai`) and expire on their own.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(keys.state, "doc")
        pipe.smembers(keys.forms)
        doc, tokens = pipe.execute()
        form_tokens = {t.decode() for t in tokens}
        if doc and (current := decode_document(doc).get("form_token")):
            form_tokens.add(current)
        erased = int(self.redis.delete(*keys.all()))
        for form_token in sorted(form_tokens):
            try:
                self.redis.delete(*FormKeys(form_token).all())
            except ValueError:  # a token a key cannot hold was never stored
                continue
        self.redis.zrem(tenant_conversations(keys.tenant_id), keys.conversation_id)
        self.redis.zrem(trigger_index(), pending_member(keys.tenant_id, keys.conversation_id))
        self.redis.zrem(claim_expiry_index(), pending_member(keys.tenant_id, keys.conversation_id))
        self.redis.zrem(sla_due_index(), pending_member(keys.tenant_id, keys.conversation_id))
        AssignmentStore(self.redis).unassign(keys.tenant_id, keys.conversation_id, requeue=False)
        forget(self.redis, keys.tenant_id, keys.conversation_id)
        ConsentStore(self.redis).reduce_for_erasure(keys.tenant_id, keys.conversation_id)
        return erased
