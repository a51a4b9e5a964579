"""Every Redis key Laneway uses, built here and nowhere else.

Per-conversation keys share one hash tag, ``{<tenant_id>|<conversation_id>}``,
so every conversation script touches a single Redis Cluster slot. Tenant-wide
and global keys carry no conversation tag and are never passed to a
conversation script.

Key map (``C`` = ``lw:{<tenant_id>|<conversation_id>}``):

=============================  ==========  ======================================
key                            type        holds
=============================  ==========  ======================================
``C:state``                    hash        ``version``, ``schema_version``, ``doc``
``C:inbox``                    list        accepted, not yet committed events (JSON)
``C:lease``                    string      the drain lease token (PX TTL)
``C:seen``                     zset        provider message ids (dedupe), scored by
                                           accept time (ms); trimmed to the dedupe TTL
``C:outbox``                   hash        per outbox entry: ``s:<id>`` status,
                                           ``p:<id>`` provider sid (dropped when a 63016
                                           retry retires it), ``c:<id>`` claim
                                           time (ms, while sending), ``b:<id>``
                                           bypasses opt-out (until final), ``q:<sid>``
                                           the entry a provider sid is recorded for,
                                           ``x:<id>`` the sid Twilio's status callback
                                           named for the entry (evidence for reconcile),
                                           ``t:<id>`` Twilio's MessageStatus (forward only),
                                           ``e:<id>`` Twilio's ErrorCode (or Laneway's
                                           ``window_no_template``), ``o:<id>`` a free-form
                                           WhatsApp message kept for a 63016 retry,
                                           ``w:<id>`` retried as a template after 63016
``C:outbox_pending``           hash        ``<id>`` → message JSON, only until the
                                           entry's status is final
``C:optout``                   string      present while the contact is opted out
``C:unreachable``              string      Twilio's ErrorCode (30003/30005/30006) while the
                                           contact cannot receive messages: no nudges
``C:claim``                    hash        ``operator_id``, ``claimed_at`` (ms): who holds it
``C:fires``                    hash        trigger fires: ``n:<rule_id>`` count, ``t:<rule_id>``
                                           last fire (ms), ``a:<rule_id>`` the activity (ms)
                                           the last fire answered; ``voice_prompt``,
                                           ``voice_prompt_rule``: a prompt for the next voice turn
``C:alert``                    hash        open dashboard alert: ``rule_id``, ``priority``, ``at``
``C:sla``                      hash        SLA breaches alerted: ``<kind>`` → the ``due_at`` (ms) alerted
``C:forms``                    set         every form token opened for the conversation (so
                                           erasure reaches sessions it no longer links)
``C:wa_window``                string      WhatsApp: the customer's last inbound message (ms);
                                           expires when the 24-hour window closes
``C:media``                    hash        inbound media references: ``<MessageSid>`` → JSON
                                           list of ``{url, content_type}`` (never the bytes)
``C:csat``                     hash        the last CSAT survey (:mod:`state.csat`): ``operator_id``,
                                           ``sent_at``, ``expires_at`` (ms), ``score``, ``answered_at``
``C:summary``                  string      the model-written handoff summary JSON (:mod:`state.handoff_summary`)
``T:conversations``            zset        the tenant's conversation ids by last activity (ms)
``T:feed``                     stream      one entry per commit or alert (capped), for the
                                           dashboard's live list
``T:csat:<YYYY-MM-DD>``        hash        CSAT answers of one UTC day: ``count``, ``sum``, ``score:<1-5>``,
                                           ``op:<operator>|count``, ``op:<operator>|sum``,
                                           ``op:<operator>|score:<1-5>`` (TTL 400 days)
``lw:{f:<form_token>}:meta``   hash        the hosted form session (:class:`state.forms.FormSession`)
``lw:{f:<form_token>}:activity`` stream    screen activity posted by the form page (capped)
``lw:{f:<form_token>}:commands`` stream    pending commands for the page (highlight), acked by XDEL
``lw:tenant:<tenant_id>``      string      the tenant's config JSON
``{lw:tenant:<id>}:version``   string      the tenant's ``config_version`` (compare-and-set
                                           counter; its hash tag is the config key's
                                           name, so both share one cluster slot)
``lw:tenants``                 set         all tenant ids
``lw:number:<e164>``           string      tenant id owning the phone number
``lw:apikey:<sha256>``         string      tenant id owning an operator API key
``lw:migrate:cursor:<t|*>``    hash        saved SCAN cursors of ``laneway state migrate``
``lw:ratelimit*``              (limits)    rate limit counters of the ``limits`` library
``lw:ref:<ref>``               string      ``<tenant_id>|<conversation_id>`` of an opaque
                                           job reference; on the queue Redis
``lw:refkey``                  string      the HMAC key of job references (queue Redis)
``lw:aof-fence``               string      a counter written right before ``WAITAOF`` (each Redis)
``lw:callbacks-seen``          string      present (24 h) after a Twilio status callback reached us:
                                           multi-part replies then wait for ``sent`` (state Redis)
``lw:dashkey``                 string      the HMAC key of the dashboard's live-feed tokens (state Redis)
``lw:pace:<sender>``           string      a sender's (number or Messaging Service sid) pacing schedule:
                                           the time (ms) of its next free slot (:mod:`state.pacing`)
``lw:consentkey``              string      the HMAC key that names contacts in consent records (state Redis)
``T:consent:<hmac>``           hash        one contact's consent record (:mod:`state.consent`), named by the
                                           HMAC-SHA256 of its address: ``opted_out``, ``at``, ``method``,
                                           ``events`` (JSON); outlives the conversation, never the number
``T:consents``                 zset        the tenant's consent records (hmac) by first record (ms)
``lw:pending``                 zset        ``<tenant_id>|<conversation_id>`` scored by
                                           the last accept (ms); on the queue Redis
``lw:triggers:due``            zset        ``<tenant_id>|<conversation_id>`` scored by when
                                           its trigger rules must next be evaluated (ms);
                                           on the state Redis (:mod:`state.triggers`)
``T:usage:<YYYY-MM-DD>``       hash        LLM usage of one UTC day: ``calls``,
                                           ``prompt_tokens``, ``completion_tokens``,
                                           ``latency_ms``, ``cost_micro_usd``, and the
                                           same per model as ``<model>|<field>``
``T:spend:<YYYY-MM>``          string      LLM spend of one UTC month (micro-USD),
                                           reservations included
``T:alerts``                   stream      budget alerts (capped)
``T:alerted:<YYYY-MM>:<pct>``  string      an alert at ``pct`` % was recorded
``T:audit``                    stream      operator API actions (trimmed by age and
                                           count)
``T:audit:refused:<YYYY-MM-DD>`` hash      requests to the tenant's URLs refused without a
                                           valid credential, one UTC day: ``<status>|<client
                                           address>`` → count (capped fields, TTL)
``T:feeds``                    zset        open live-feed streams of the tenant: stream id →
                                           expiry (ms); stale members are pruned
``T:feeds:key:<fp>``           zset        the same, of one operator key (its fingerprint)
``T:desk:online``              zset        operators with a live dashboard or an explicit "online":
                                           ``<operator_id>|<key_fp>`` → heartbeat expiry (ms)
``T:desk:away``                set         operators who set themselves away (same members)
``T:desk:load``                hash        member → open assignments it holds
``T:desk:assigned``            hash        conversation id → member it is assigned to
``T:desk:queue``               zset        unassigned escalations → waiting since (ms)
``T:desk:rr``                  string      the member given the last assignment (round robin)
``lw:sla:due``                 zset        ``<tenant_id>|<conversation_id>`` → earliest SLA
                                           deadline (ms) not yet alerted (:mod:`jobs.desk`)
``T:toolcall:<sha256>``        string      the first result (JSON) of a voice-AI tool call, by
                                           the SHA-256 of its ``toolCallId`` (SET NX, 24 h);
                                           never personal data (:mod:`state.tool_calls`)
``T:voicesession:<sha256>``    string      JSON ``form_token``, ``call_id``: the form session a
                                           voice-AI ``sessionId`` stands for, by its SHA-256
                                           (the form's TTL; :mod:`state.voice_sessions`)
``T:analytics:<YYYY-MM-DD>``  hash        the desk's counters of one UTC day (:mod:`state.analytics`):
                                           ``<metric>``, ``<metric>|lane=<lane>``,
                                           ``<metric>|channel=<channel>``, first-response
                                           histogram ``frt_le:<s>``, CSAT ``csat:<1-5>`` (TTL)
``T:funnel:<YYYY-MM-DD>:<stage>`` set      form tokens that reached a form page (``page:<n>``)
                                           or ``submitted`` that day (TTL)
=============================  ==========  ======================================

``T`` = ``lw:{t:<tenant_id>}``: tenant-scoped keys that a script uses
together share that hash tag (one cluster slot per tenant).
"""

from __future__ import annotations

import hashlib

from state.models import mask_address

PREFIX = "lw"
_FORBIDDEN_IN_TAG = set("{}|")


def _check_id(value: str, what: str) -> str:
    if not value or _FORBIDDEN_IN_TAG & set(value):
        raise ValueError(f"{what} must be non-empty and contain none of '{{', '}}', '|': {value!r}")
    return value


def conversation_tag(tenant_id: str, conversation_id: str) -> str:
    """Return the hash-tagged prefix ``lw:{tenant|conversation}`` of a conversation's keys.

    Raises:
        ValueError: if either id is empty or contains ``{``, ``}`` or ``|``.
    """
    return f"{PREFIX}:{{{_check_id(tenant_id, 'tenant_id')}|{_check_id(conversation_id, 'conversation_id')}}}"


class ConversationKeys:
    """The keys of one conversation, all in one cluster slot."""

    __slots__ = ("tenant_id", "conversation_id", "tag")

    def __init__(self, tenant_id: str, conversation_id: str) -> None:
        self.tenant_id = tenant_id
        self.conversation_id = conversation_id
        self.tag = conversation_tag(tenant_id, conversation_id)

    @property
    def state(self) -> str:
        return f"{self.tag}:state"

    @property
    def inbox(self) -> str:
        return f"{self.tag}:inbox"

    @property
    def lease(self) -> str:
        return f"{self.tag}:lease"

    @property
    def outbox(self) -> str:
        return f"{self.tag}:outbox"

    @property
    def optout(self) -> str:
        return f"{self.tag}:optout"

    @property
    def unreachable(self) -> str:
        return f"{self.tag}:unreachable"

    @property
    def outbox_pending(self) -> str:
        return f"{self.tag}:outbox_pending"

    @property
    def seen(self) -> str:
        return f"{self.tag}:seen"

    @property
    def claim(self) -> str:
        return f"{self.tag}:claim"

    @property
    def fires(self) -> str:
        return f"{self.tag}:fires"

    @property
    def alert(self) -> str:
        return f"{self.tag}:alert"

    @property
    def forms(self) -> str:
        return f"{self.tag}:forms"

    @property
    def wa_window(self) -> str:
        return f"{self.tag}:wa_window"

    @property
    def media(self) -> str:
        return f"{self.tag}:media"

    @property
    def sla(self) -> str:
        return f"{self.tag}:sla"

    @property
    def csat(self) -> str:
        return f"{self.tag}:csat"

    @property
    def summary(self) -> str:
        return f"{self.tag}:summary"

    @property
    def label(self) -> str:
        """The tag with the conversation id masked to its last 4 characters, for logs and errors."""
        return f"{{{self.tenant_id}|{mask_address(self.conversation_id)}}}"

    def all(self) -> list[str]:
        """Every key of the conversation."""
        return [
            self.state, self.inbox, self.lease, self.outbox, self.outbox_pending, self.optout, self.seen,
            self.claim, self.fires, self.alert, self.forms, self.unreachable, self.wa_window, self.media, self.sla,
            self.csat, self.summary,
        ]


def tenant(tenant_id: str) -> str:
    return f"{PREFIX}:tenant:{tenant_id}"


def tenant_version(tenant_id: str) -> str:
    """The tenant's ``config_version`` counter: ``{lw:tenant:<id>}:version``.

    Its hash tag is the whole name of :func:`tenant`'s key, so Redis Cluster
    puts both keys in the same slot and one script can compare-and-set them.
    """
    return f"{{{tenant(_check_id(tenant_id, 'tenant_id'))}}}:version"


def tenants_index() -> str:
    return f"{PREFIX}:tenants"


def tenant_tag(tenant_id: str) -> str:
    """``lw:{t:<tenant_id>}``: the prefix of tenant-scoped keys used together in one script."""
    return f"{PREFIX}:{{t:{_check_id(tenant_id, 'tenant_id')}}}"


def usage_day(tenant_id: str, day: str) -> str:
    """LLM usage of ``day`` (``YYYY-MM-DD``, UTC)."""
    return f"{tenant_tag(tenant_id)}:usage:{day}"


def analytics_day(tenant_id: str, day: str) -> str:
    """The desk's counters of ``day`` (``YYYY-MM-DD``, UTC): :mod:`state.analytics`."""
    return f"{tenant_tag(tenant_id)}:analytics:{day}"


def funnel_stage(tenant_id: str, day: str, stage: str) -> str:
    """Form tokens that reached ``stage`` (``page:<n>`` or ``submitted``) on ``day`` (UTC)."""
    return f"{tenant_tag(tenant_id)}:funnel:{day}:{stage}"
def csat_day(tenant_id: str, day: str) -> str:
    """CSAT answers of ``day`` (``YYYY-MM-DD``, UTC), in total and per operator: :mod:`state.csat`."""
    return f"{tenant_tag(tenant_id)}:csat:{day}"


def spend_month(tenant_id: str, month: str) -> str:
    """LLM spend of ``month`` (``YYYY-MM``, UTC), in micro-USD."""
    return f"{tenant_tag(tenant_id)}:spend:{month}"


def budget_alerts(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:alerts"


def budget_alerted(tenant_id: str, month: str, percent: int) -> str:
    return f"{tenant_tag(tenant_id)}:alerted:{month}:{percent}"


def job_ref(ref: str) -> str:
    """The conversation an RQ job's opaque reference stands for (queue Redis)."""
    return f"{PREFIX}:ref:{ref}"


def aof_fence() -> str:
    """Counter a webhook increments right before ``WAITAOF`` (:mod:`state.durability`), once per Redis server."""
    return f"{PREFIX}:aof-fence"


def callbacks_seen() -> str:
    """Present while Twilio's status callbacks are known to reach Laneway (:mod:`jobs.delivery` ordering)."""
    return f"{PREFIX}:callbacks-seen"


def pacing_schedule(sender: str) -> str:
    """A sender's pacing schedule (:mod:`state.pacing`): ``lw:pace:<sender>`` (a tenant's number or ``MG…`` sid)."""
    return f"{PREFIX}:pace:{sender}"


def consent_key() -> str:
    """The HMAC key that names contacts in consent records, made once per Redis (:mod:`state.consent`)."""
    return f"{PREFIX}:consentkey"


def consent_record(tenant_id: str, contact_hmac: str) -> str:
    """One contact's consent record: ``T:consent:<hmac of the address>``."""
    return f"{tenant_tag(tenant_id)}:consent:{_check_id(contact_hmac, 'contact hmac')}"


def consent_index(tenant_id: str) -> str:
    """The tenant's consent records by first record (zset: hmac → ms), for the paged export."""
    return f"{tenant_tag(tenant_id)}:consents"


def job_ref_key() -> str:
    """The HMAC key that turns conversations into job references, made once per Redis."""
    return f"{PREFIX}:refkey"


def dashboard_token_key() -> str:
    """The HMAC key that signs the dashboard's short-lived live-feed tokens, made once per Redis."""
    return f"{PREFIX}:dashkey"


def rate_limit_prefix() -> str:
    """Prefix of the ``limits`` library's counters (inbound and operator API rate limits; queue Redis)."""
    return f"{PREFIX}:ratelimit"


def audit(tenant_id: str) -> str:
    """The tenant's audit trail of operator API actions."""
    return f"{tenant_tag(tenant_id)}:audit"


def audit_refused(tenant_id: str, day: str) -> str:
    """Counters of requests to the tenant's URLs refused without a valid credential on ``day`` (``YYYY-MM-DD``, UTC)."""
    return f"{tenant_tag(tenant_id)}:audit:refused:{day}"


def feed_streams(tenant_id: str) -> str:
    """The tenant's open live-feed streams (zset: stream id → expiry in ms)."""
    return f"{tenant_tag(tenant_id)}:feeds"


def feed_streams_of_key(tenant_id: str, key_fingerprint: str) -> str:
    """One operator key's open live-feed streams (same shape as :func:`feed_streams`, same slot)."""
    return f"{tenant_tag(tenant_id)}:feeds:key:{_check_id(key_fingerprint, 'key fingerprint')}"


def voice_ai_tool_result(tenant_id: str, tool_call_id: str) -> str:
    """The stored first result of a voice-AI tool call: ``T:toolcall:<sha256 hex of tool_call_id>``.

    The id is hashed so any id the platform sends makes a short, safe key.
    """
    digest = hashlib.sha256(tool_call_id.encode()).hexdigest()
    return f"{tenant_tag(tenant_id)}:toolcall:{digest}"


def voice_ai_session(tenant_id: str, session_id: str) -> str:
    """The form session a voice-AI ``sessionId`` stands for: ``T:voicesession:<sha256 hex of session_id>``."""
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return f"{tenant_tag(tenant_id)}:voicesession:{digest}"


def number(e164: str) -> str:
    return f"{PREFIX}:number:{e164}"


def api_key(sha256_hex: str) -> str:
    return f"{PREFIX}:apikey:{sha256_hex}"


class FormKeys:
    """The keys of one hosted form session, all in one cluster slot (tag ``{f:<form_token>}``)."""

    __slots__ = ("tag",)

    def __init__(self, form_token: str) -> None:
        self.tag = f"{PREFIX}:{{f:{_check_id(form_token, 'form_token')}}}"

    @property
    def meta(self) -> str:
        return f"{self.tag}:meta"

    @property
    def activity(self) -> str:
        return f"{self.tag}:activity"

    @property
    def commands(self) -> str:
        return f"{self.tag}:commands"

    def all(self) -> list[str]:
        return [self.meta, self.activity, self.commands]


def tenant_conversations(tenant_id: str) -> str:
    """The tenant's conversation ids scored by last activity (ms since the epoch)."""
    return f"{tenant_tag(tenant_id)}:conversations"


def tenant_feed(tenant_id: str) -> str:
    """The tenant's live feed: one stream entry per commit or alert (the dashboard's SSE source)."""
    return f"{tenant_tag(tenant_id)}:feed"


def pending_index() -> str:
    """Sorted set of conversations with recent inbound activity, for the recovery sweep.

    Lives on the queue Redis (beside RQ), so it is written in the same
    pipeline as the drain job's enqueue.
    """
    return f"{PREFIX}:pending"


def pending_member(tenant_id: str, conversation_id: str) -> str:
    """The member naming a conversation in :func:`pending_index`."""
    return f"{_check_id(tenant_id, 'tenant_id')}|{_check_id(conversation_id, 'conversation_id')}"


def trigger_index() -> str:
    """Sorted set of conversations by when their trigger rules must next be evaluated (ms).

    One global key on the state Redis; members are :func:`pending_member`.
    Every commit and every screen activity marks its conversation due now;
    the trigger sweep takes only members due (``ZRANGEBYSCORE … LIMIT``) and
    rescores each to its next due time, or removes it.
    """
    return f"{PREFIX}:triggers:due"


def claim_expiry_index() -> str:
    """Sorted set of claimed conversations by when their claim expires (ms), for the claim sweep.

    One global key on the state Redis; members are :func:`pending_member`.
    Written after each claim or renewal (not in the claim's script: another
    slot); the claim's own ``expires_at`` is the truth, so a stale score only
    makes the sweep look once more.
    """
    return f"{PREFIX}:claims:due"


def desk_key(tenant_id: str, part: str) -> str:
    """``T:desk:<part>``: the support desk's keys (``online``, ``away``, ``load``, ``assigned``, ``queue``,
    ``rr``; :mod:`state.presence`, :mod:`state.assignment`), all in the tenant's slot."""
    return f"{tenant_tag(tenant_id)}:desk:{part}"


def sla_due_index() -> str:
    """Sorted set of conversations by their earliest SLA deadline not yet alerted (ms), for the SLA sweep.

    One global key on the state Redis; members are :func:`pending_member`.
    """
    return f"{PREFIX}:sla:due"


_GLOB_SPECIAL = set("*?[]\\")


def state_scan_pattern(tenant_id: str | None) -> str:
    """``SCAN MATCH`` pattern of every conversation ``state`` key, or one tenant's.

    ``lw:{<tenant_id>|*}:state`` (glob characters in ``tenant_id`` escaped), or
    ``lw:{*|*}:state`` for all tenants.
    """
    if tenant_id is None:
        tag = "*"
    else:
        _check_id(tenant_id, "tenant_id")
        tag = "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in tenant_id)
    return f"{PREFIX}:{{{tag}|*}}:state"


def migrate_cursor(tenant_id: str | None) -> str:
    """Hash of a migration run's saved SCAN cursors: ``lw:migrate:cursor:<tenant_id or *>``.

    Fields: one per scanned node (``standalone``, or ``host:port`` of a cluster
    primary), value the next cursor or ``done``.
    """
    return f"{PREFIX}:migrate:cursor:{tenant_id or '*'}"


def parse_state_key(key: str) -> ConversationKeys | None:
    """Return the :class:`ConversationKeys` whose ``state`` key is ``key``, or ``None``."""
    head, tail = f"{PREFIX}:{{", "}:state"
    if not (key.startswith(head) and key.endswith(tail)):
        return None
    tenant_id, sep, conversation_id = key[len(head) : -len(tail)].partition("|")
    try:
        keys = ConversationKeys(tenant_id, conversation_id) if sep else None
    except ValueError:
        return None
    return keys if keys is not None and keys.state == key else None
