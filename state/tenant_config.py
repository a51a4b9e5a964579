"""Tenant configuration: the YAML shape, validated by pydantic.

A tenant owns one or more phone numbers (E.164); one number belongs to one
tenant. Secrets are never written in the YAML for production: a
:class:`SecretRef` names the environment variable that holds the value, and may
carry a ``dev_value`` that only ``LANEWAY_ENV=development`` accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.settings import environ_value
from state.desk_config import DeskConfig
from state.desk_tools_config import MAX_CANNED_RESPONSES, CannedResponse, CsatSettings, check_shortcuts
from state.errors import ConfigError
from state.form_definition import FormDefinition
from state.models import Lane, MessagePurpose

E164 = r"^\+[1-9][0-9]{6,14}$"
TENANT_ID = r"^[a-z0-9][a-z0-9-]{1,62}$"


def sha256_hex(value: str) -> str:
    """Return the hex SHA-256 of ``value`` (how operator API keys are stored)."""
    return hashlib.sha256(value.encode()).hexdigest()


class SecretRef(BaseModel):
    """A secret read from the environment variable ``env``.

    ``dev_value`` is a development-only fallback, refused when
    ``LANEWAY_ENV=production``.
    """

    model_config = ConfigDict(extra="forbid")

    env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    dev_value: str | None = None

    def resolve(self, environment: str) -> str:
        """Return the secret's value.

        Raises:
            ConfigError: the variable is unset and no dev value may be used.
        """
        value = environ_value(self.env)
        if value:
            return value
        if self.dev_value is not None and environment != "production":
            return self.dev_value
        raise ConfigError(f"environment variable {self.env} is not set")


KeyScope = Literal["export"]
"""What an operator API key may do beyond the operator API: ``export`` reads the
tenant's export (``GET …/export``, ``laneway export``) with phone numbers and
message texts unmasked; without it they are masked."""


class OperatorKeyRef(SecretRef):
    """An operator API key read from the environment (:class:`SecretRef`), with its ``scopes``."""

    scopes: list[KeyScope] = Field(default_factory=list)


class HashedKey(BaseModel):
    """An operator API key stored as its SHA-256 (what Redis holds), with its ``scopes``."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[KeyScope] = Field(default_factory=list)


class TwilioCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_sid: SecretRef
    auth_token: SecretRef


class LlmExample(BaseModel):
    """One example exchange shown to the LLM agents: what a customer wrote, what a good reply is."""

    model_config = ConfigDict(extra="forbid")

    customer: str = Field(min_length=1, max_length=500)
    reply: str = Field(min_length=1, max_length=640)


class AgentPrompt(BaseModel):
    """The prompt material of the tenant's LLM lane agents (``llm.prompt:`` in the tenants YAML).

    The system prompt is built from these, ``persona``, ``display_name`` and
    ``banned_phrases`` (:func:`agents.llm_agent.system_prompt`); never from
    customer text.
    """

    model_config = ConfigDict(extra="forbid")

    role: str = Field("a friendly assistant who answers customers by text message", min_length=1, max_length=500)
    """Who the agent is, after "You are <persona>, "."""
    workflow: list[str] = Field(default_factory=list, max_length=20)
    """The steps the agent follows, in order (numbered in the prompt)."""
    critical_rules: list[str] = Field(default_factory=list, max_length=20)
    """Rules the agent must never break (listed last in the prompt, as the seeds advise)."""
    examples: list[LlmExample] = Field(default_factory=list, max_length=10)


class LlmConfig(BaseModel):
    """The tenant's LLM settings (``llm:`` in the tenants YAML).

    With ``enabled``, the LLM router (:mod:`agents.llm_router`) asks ``model``
    which lane should take a turn the deterministic router could only
    ``match`` or ``default``; carrier keywords, handoffs and sticky lanes never
    reach the model. Its answer is used only at ``router_min_confidence`` or
    above, for a lane the tenant enabled; anything else falls back to the
    deterministic route.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_key: SecretRef
    """The OpenAI API key, by environment variable (like the Twilio auth token)."""
    model: str = Field("gpt-4o-mini", min_length=1, max_length=100)
    """Chat Completions model name; it must support structured outputs (``json_schema``)."""
    router_min_confidence: float = Field(0.6, ge=0.0, le=1.0)
    """The least confidence (0–1) at which the model's lane is used."""
    timeout_s: float = Field(5.0, gt=0, le=30)
    """Read timeout (seconds) of one routing request; capped by ``LANEWAY_OPENAI_TIMEOUT_S``."""
    history_entries: int = Field(6, ge=0, le=20)
    """How many earlier transcript entries the model sees."""
    max_completion_tokens: int = Field(300, ge=16, le=4096)
    """Most tokens one answer may use (sent to the API); with the prompt's
    size it bounds a call's cost, which is reserved from the budget first."""
    monthly_budget_usd: float | None = Field(None, gt=0)
    """LLM spend allowed per UTC month. At 90 % an alert is recorded; a call
    that could pass 100 % is not made (the deterministic agents answer) until
    the month ends or the budget is raised. ``None``: no limit."""
    lanes: list[Lane] = Field(default_factory=list)
    """Lanes answered by an LLM agent with tools (:mod:`agents.llm_agent`) while
    ``enabled``; the other lanes keep their deterministic agents. Each must be
    one of the tenant's ``lanes``."""
    max_model_calls_per_turn: int = Field(4, ge=1, le=8)
    """Most model calls an LLM agent makes in one turn (tool steps and the one
    regeneration included); each is budgeted. Past it the deterministic agent answers."""
    context_tokens: int = Field(1500, ge=100, le=8000)
    """Token budget (estimated at 4 characters a token) for the collected slots
    and recent transcript an LLM agent sees; the oldest entries are left out first."""
    prompt: AgentPrompt = Field(default_factory=AgentPrompt)

    @field_validator("lanes")
    @classmethod
    def _unique_lanes(cls, lanes: list[Lane]) -> list[Lane]:
        if len(set(lanes)) != len(lanes):
            raise ValueError("a lane is listed twice")
        return lanes


HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$")
"""A DNS host name, lower case, ASCII (write internationalised names in their ``xn--`` form)."""


def normalize_host(host: str) -> str:
    """Return ``host`` as compared with an allow-list: lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").strip("[]")


def webhook_url_problem(url: str, allowed_hosts: list[str]) -> str | None:
    """Say why ``url`` may not receive a tenant's webhooks, or return ``None`` if it may.

    The URL rules (checked again before every delivery, :func:`jobs.webhooks.post_webhook`):
    scheme ``https``; a host, compared case-insensitively and without a
    trailing dot with ``allowed_hosts``; no user name or password; an ASCII
    host; a port, if any, in 1–65535. This is syntax only: where the host
    resolves to is checked at delivery time, address by address.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        return "the URL is empty or longer than 2048 characters"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "the URL contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"the URL does not parse: {exc}"
    if parts.scheme.lower() != "https":
        return f"the URL must use https, not {parts.scheme or 'no scheme'!r}"
    if parts.username is not None or parts.password is not None:
        return "the URL must not carry a user name or password"
    host = normalize_host(parts.hostname or "")
    if not host:
        return "the URL has no host"
    if not host.isascii():
        return f"the host {host!r} is not ASCII (write it in its xn-- form)"
    if port == 0:
        return "the URL's port must be 1-65535"
    allowed = {normalize_host(h) for h in allowed_hosts}
    if host not in allowed:
        return f"the host {host!r} is not on the tenant's alerts.allowed_hosts"
    return None


class AlertChannel(BaseModel):
    """The tenant's alert webhook (``alerts:`` in the tenants YAML).

    ``webhook_url`` receives the tenant alert channel's events; a trigger
    rule's ``webhook`` action may name its own URL, which must also be on
    ``allowed_hosts``. Every delivery is signed with ``secret``
    (HMAC-SHA256, ``Laneway-Signature`` header: :mod:`jobs.webhooks`).
    """

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = None
    """``https://`` URL whose host is on ``allowed_hosts``; ``None``: only trigger actions post."""
    secret: SecretRef
    """The signing secret, by environment variable (like ``twilio.auth_token``)."""
    allowed_hosts: list[str] = Field(min_length=1, max_length=20)
    """Host names (or IP literals) webhooks may be posted to, matched exactly (no wildcards)."""

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        normalized = []
        for host in hosts:
            name = normalize_host(host)
            try:
                ipaddress.ip_address(name)
            except ValueError:
                if not HOST_NAME.match(name):
                    raise ValueError(f"{host!r} is not a host name such as hooks.example.com") from None
            normalized.append(name)
        return normalized

    @model_validator(mode="after")
    def _url_allowed(self) -> "AlertChannel":
        if self.webhook_url is not None:
            problem = webhook_url_problem(self.webhook_url, self.allowed_hosts)
            if problem:
                raise ValueError(f"webhook_url: {problem}")
        return self

    def url_problem(self, url: str) -> str | None:
        """:func:`webhook_url_problem` against this channel's ``allowed_hosts`` (for trigger ``webhook`` actions)."""
        return webhook_url_problem(url, self.allowed_hosts)


VoiceAiTool = Literal["startSession", "sendSms", "getScreenState", "highlightField"]
"""The voice-AI tools Laneway serves (:mod:`service.voice_ai`)."""


class VoiceAiToolMessages(BaseModel):
    """What the voice platform says around one tool call (VAPI ``messages``; ``""`` = say nothing).

    ``None`` keeps Laneway's default for that moment (the seeds' production
    messages); a message that is ``None`` with no default is left out of the
    tool definition.
    """

    model_config = ConfigDict(extra="forbid")

    request_start: str | None = Field(None, max_length=300)
    """Spoken while the tool runs."""
    request_complete: str | None = Field(None, max_length=300)
    """Spoken when it answered (``""``: silent, the model speaks from the result)."""
    request_failed: str | None = Field(None, max_length=300)
    """Spoken when the platform could not get an answer (timeout, transport error)."""


class VoiceAiConfig(BaseModel):
    """The voice-AI tool webhook (``voice_ai:`` in the tenants YAML): ``/voice-ai/<tenant_id>/tools``.

    ``auth`` decides how a request proves it comes from the tenant's voice
    platform (compared in constant time; anything else answers 401):

    - ``bearer``: ``Authorization: Bearer <secret>`` (VAPI's "Bearer Token" credential).
    - ``hmac``: the hex HMAC-SHA256, keyed with the secret, of the raw body in
      ``signature_header`` (VAPI's "HMAC" credential; an optional ``sha256=``
      prefix is accepted). With ``timestamp_header`` set, the signed payload is
      ``<timestamp>.<body>`` (VAPI's default payload format) and the timestamp
      (seconds or milliseconds since the epoch) must be within
      ``max_clock_skew_s`` of now.
    """

    model_config = ConfigDict(extra="forbid")

    secret: SecretRef
    auth: Literal["bearer", "hmac"] = "bearer"
    signature_header: str = Field("X-Signature", pattern=r"^[A-Za-z0-9-]{1,64}$")
    timestamp_header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    max_clock_skew_s: int = Field(300, ge=1, le=3600)
    server_url: str | None = Field(None, pattern=r"^https?://[^\s]+$", max_length=500)
    """The URL the tool definitions name (``server.url``); default
    ``<LANEWAY_PUBLIC_BASE_URL>/voice-ai/<tenant_id>/tools``."""
    messages: dict[VoiceAiTool, VoiceAiToolMessages] = Field(default_factory=dict)
    """Per tool, what the platform says while it runs (``request-start``,
    ``request-complete``, ``request-failed``); unset ones keep the defaults."""


class VoiceConfig(BaseModel):
    """People on the phone (``voice:`` in the tenants YAML).

    When a caller asks for a person (or a rule, an operator's claim or an
    earlier escalation puts the conversation with a person), the live call is
    transferred to ``operator_number`` with ``<Dial>`` (the tenant's number as
    ``callerId``), and the operator hears the conversation's summary before
    being connected. Nobody answering within ``ring_timeout_s`` (or busy,
    failed) leaves a callback task for the operators and the caller hears
    ``callback_text`` (both texts default to templates in the caller's language).
    """

    model_config = ConfigDict(extra="forbid")

    operator_number: str | None = Field(None, pattern=E164)
    """The operator line (E.164); ``None``: calls are not transferred (the caller is told a person will follow up)."""
    ring_timeout_s: int = Field(20, ge=5, le=60)
    """``<Dial timeout>``: seconds the operator line rings before the call counts as unanswered."""
    transfer_text: str | None = Field(None, min_length=1, max_length=300)
    """Said to the caller before the transfer rings; ``None``: the ``transfer_voice`` template in the
    conversation's language ("Connecting you to a person from our team now. Please hold.")."""
    callback_text: str | None = Field(None, min_length=1, max_length=300)
    """Said to the caller when nobody answered the operator line, before the call ends; ``None``: the
    ``callback_voice`` template in the conversation's language ("… A person will call you back soon. Goodbye.")."""


# -- proactive triggers (issue 6) -----------------------------------------------

RULE_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def template_names(template: str) -> list[str]:
    """Return the ``{name}`` placeholders of an SMS template, in order.

    Only bare lowercase identifiers are placeholders; ``{{`` and ``}}`` are a
    literal brace. Nothing else is allowed: no ``{x.attr}``, ``{x[0]}``,
    ``{0}``, format specs or conversions (the renderer looks names up in a
    dict of strings and never evaluates anything).

    Raises:
        ValueError: a placeholder is not a bare identifier, or a brace is unmatched.
    """
    names = []
    for m in _PLACEHOLDER.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        name = m.group(1)
        if name is None or not _IDENTIFIER.match(name):
            raise ValueError(f"template placeholder {token!r} must be a bare name like {{first_name}} or {{link}}")
        names.append(name)
    return names


class NoActivityCondition(BaseModel):
    """True ``seconds`` after the customer's last message or screen activity."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["no_activity"]
    seconds: int = Field(ge=1, le=30 * 24 * 3600)


class SessionInactiveCondition(BaseModel):
    """True ``seconds`` after the conversation's last activity of any kind (a commit or screen
    activity), while its status is ``active``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["session_inactive"]
    seconds: int = Field(ge=1, le=30 * 24 * 3600)


class NoProgressCondition(BaseModel):
    """True when the form's screen (page and values) has not changed for ``seconds``
    (needs an open, unsubmitted form with activity)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["no_progress"]
    seconds: int = Field(ge=1, le=30 * 24 * 3600)


class FieldErrorCondition(BaseModel):
    """True when one form field whose id matches ``field`` (a glob, ``fnmatch`` rules)
    changed ``times`` times within ``within_seconds`` (changes after the rule's last fire only)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["field_error"]
    field: str = Field("*", min_length=1, max_length=64)
    times: int = Field(3, ge=2, le=50)
    within_seconds: int = Field(60, ge=1, le=24 * 3600)


TriggerCondition = Annotated[
    NoActivityCondition | SessionInactiveCondition | NoProgressCondition | FieldErrorCondition,
    Field(discriminator="type"),
]


class SmsAction(BaseModel):
    """Text the customer ``template`` (a ``nudge`` event: outbox, retried by delivery).

    Placeholders: the session's slots (``{first_name}``, ``{last_name}``, …; empty
    when unset), ``{display_name}``, ``{persona}`` and ``{link}`` (the resume
    link of the hosted form; a rule whose template uses it fires only once a
    form is open).
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["sms"]
    template: str = Field(min_length=1, max_length=640)

    @field_validator("template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        template_names(template)
        return template


class VoicePromptAction(BaseModel):
    """Record ``message`` for the customer's next voice turn to speak (``C:fires`` ``voice_prompt``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["voice_prompt"]
    message: str = Field(min_length=1, max_length=300)


class HighlightFieldAction(BaseModel):
    """Highlight a field on the customer's form page: ``field`` (default: the field a
    ``field_error`` condition matched) with ``label``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["highlight_field"]
    field: str | None = Field(None, min_length=1, max_length=64)
    label: str = Field("", max_length=60)


class DashboardAlertAction(BaseModel):
    """Open a dashboard alert (``C:alert``) with ``priority``, and announce it on the tenant feed."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["dashboard_alert"]
    priority: Literal["low", "normal", "high", "urgent"] = "normal"


class EscalateAction(BaseModel):
    """Hand the conversation to a human (an ``escalate`` event, reason ``trigger``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["escalate"]


class WebhookAction(BaseModel):
    """POST a signed JSON payload (:func:`jobs.webhooks.deliver_webhook_job`) to ``url``, or to the
    tenant's ``alerts.webhook_url`` when ``url`` is unset. The URL must pass the tenant's
    ``alerts`` rules (https, ``allowed_hosts``); the tenant needs an ``alerts`` channel."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    url: str | None = Field(None, max_length=2048)


TriggerAction = Annotated[
    SmsAction | VoicePromptAction | HighlightFieldAction | DashboardAlertAction | EscalateAction | WebhookAction,
    Field(discriminator="type"),
]


class TriggerRule(BaseModel):
    """One proactive rule (``triggers:`` in the tenants YAML): when ``condition`` holds, run ``actions``.

    A rule fires at most ``max_fires_per_session`` times per conversation, at
    least ``cooldown_seconds`` apart, and once per eligible moment (one idle
    spell, one burst of field changes). Rules fire only while the
    conversation is ``active`` and the contact has not opted out.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=RULE_ID)
    condition: TriggerCondition
    actions: list[TriggerAction] = Field(min_length=1, max_length=6)
    max_fires_per_session: int = Field(1, ge=1, le=100)
    cooldown_seconds: int = Field(0, ge=0, le=30 * 24 * 3600)

    @model_validator(mode="before")
    @classmethod
    def _single_action(cls, data):
        """Accept the seeds' ``action:`` (one) as ``actions: [it]``."""
        if isinstance(data, dict) and "action" in data and "actions" not in data:
            data = {**data, "actions": [data["action"]]}
            del data["action"]
        return data

    @model_validator(mode="after")
    def _coherent(self) -> "TriggerRule":
        kinds = [a.type for a in self.actions]
        if len(set(kinds)) != len(kinds):
            raise ValueError("an action type is listed twice")
        for a in self.actions:
            if isinstance(a, HighlightFieldAction) and a.field is None and self.condition.type != "field_error":
                raise ValueError("highlight_field needs a field unless the condition is field_error")
        return self

    @property
    def needs_form(self) -> bool:
        """Whether the rule can only fire for a conversation with an open form."""
        return (
            self.condition.type in ("no_progress", "field_error")
            or any(a.type == "highlight_field" for a in self.actions)
            or any(a.type == "sms" and "link" in template_names(a.template) for a in self.actions)
        )


class FaqEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=3)
    answer: str = Field(min_length=1, max_length=1600)
    keywords: list[str] = Field(default_factory=list)


LANGUAGE = r"^[a-z]{2,3}$"
"""An ISO 639-1 code (``en``, ``es``); three letters allowed for languages without one."""

CARRIER_TEXTS = ("help_text", "opt_out_text", "opt_in_text", "human_handoff_text", "fallback_text")
"""The tenant's texts that go out as written (carrier-mandated or the handoff); each may be translated."""


class LanguagePack(BaseModel):
    """The tenant's texts in one of its ``languages`` (``translations.<code>:`` in the tenants YAML).

    Anything left unset falls back to the tenant's own (first-language) text,
    or to Laneway's built-in wording for that language (:mod:`agents.templates`).
    """

    model_config = ConfigDict(extra="forbid")

    faq: list[FaqEntry] | None = None
    """The FAQ in this language; ``None``: the tenant's ``faq``."""
    persona: str | None = None
    """The name the agent speaks as in this language ("Ava de Acme Insurance"); ``None``: ``persona``."""
    help_text: str | None = None
    opt_out_text: str | None = None
    opt_in_text: str | None = None
    human_handoff_text: str | None = None
    fallback_text: str | None = None
    templates: dict[str, str] = Field(default_factory=dict, max_length=200)
    """Overrides of the built-in reply templates by key (``ask_last_name``); a key
    ending ``.voice`` (``ask_last_name.voice``) overrides the spoken form only.
    Placeholders as in the built-in template (``{first}``, ``{link}``, …)."""
    opt_out_keywords: list[str] = Field(default_factory=list, max_length=20)
    """Extra opt-out keywords in this language (``BAJA``), matched like the carriers'
    STOP: only as the whole message, case and surrounding punctuation ignored."""

    @field_validator("templates")
    @classmethod
    def _template_keys(cls, templates: dict[str, str]) -> dict[str, str]:
        for key, template in templates.items():
            if not re.match(r"^[a-z][a-z0-9_]{0,63}(\.voice)?$", key):
                raise ValueError(f"template key {key!r} must look like ask_last_name or ask_last_name.voice")
            if not template.strip():
                raise ValueError(f"template {key!r} is empty")
            template_names(template)
        return templates

    @field_validator("opt_out_keywords")
    @classmethod
    def _one_word(cls, keywords: list[str]) -> list[str]:
        cleaned = [k.strip().casefold() for k in keywords]
        if any(not k or len(k) > 40 for k in cleaned):
            raise ValueError("an opt-out keyword must be 1-40 characters")
        return cleaned


class SafetyRule(BaseModel):
    """An urgent-message rule (``safety:`` in the tenants YAML), checked before any lane answers.

    A message matching one of ``terms`` (whole words or phrases, any case), or
    understood as urgent (the NLU's ``urgent`` act) when ``on_urgent_act``, gets
    ``reply`` in the conversation's language at once and, with ``escalate``, is
    handed to a person (``handoff.reason`` ``urgent``). Carrier keywords still
    come first; a conversation already waiting for a person still gets the reply.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=RULE_ID)
    terms: list[str] = Field(default_factory=list, max_length=200)
    on_urgent_act: bool = True
    reply: dict[str, str] = Field(min_length=1)
    """The answer per language code; must hold the tenant's first language. Say the emergency line here."""
    escalate: bool = True

    @field_validator("terms")
    @classmethod
    def _terms(cls, terms: list[str]) -> list[str]:
        cleaned = [" ".join(t.casefold().split()) for t in terms]
        if any(not t for t in cleaned):
            raise ValueError("a safety term is empty")
        return cleaned


TEMPLATE_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
CONTENT_SID = r"^HX[0-9a-fA-F]{32}$"
"""A Twilio Content API template (``ContentSid``: ``HX`` + 32 hex digits)."""
TemplateVariableSource = Literal["text", "first_name", "display_name"]
"""What fills a template variable: the message's ``text`` (the reply an
operator typed, the nudge's words), the customer's ``first_name`` slot
(``there`` when unknown), or the tenant's ``display_name``."""
PUBLIC_MEDIA_URL = r"^https://[^\s]{1,2040}$"
"""Outbound ``MediaUrl``: Twilio fetches it, so it must be public HTTPS."""


class WhatsAppTemplate(BaseModel):
    """One approved WhatsApp template (Twilio Content API), and the purposes it may stand in for.

    Sent as ``ContentSid`` + ``ContentVariables`` (JSON object of strings,
    keys ``"1"``, ``"2"``, …) on the Messages create call
    (twilio.com/docs/content/send-templates-created-with-the-content-editor).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TEMPLATE_NAME)
    """How operators pick it in the dashboard's reply box."""
    content_sid: str = Field(pattern=CONTENT_SID)
    purposes: list[MessagePurpose] = Field(default_factory=list, max_length=3)
    """The purposes it is the default for, outside the window (the first template listed for a purpose wins)."""
    variables: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]?$")], TemplateVariableSource] = Field(
        default_factory=dict, max_length=10
    )
    """Template variable number → what fills it."""
    description: str = Field("", max_length=200)
    """What the template says, for the operator choosing it."""
    media_url: str | None = Field(None, pattern=PUBLIC_MEDIA_URL)
    """Sent as ``MediaUrl`` with the template (a template with a media header)."""


class WhatsAppConfig(BaseModel):
    """WhatsApp settings: the approved templates for messages outside the 24-hour window."""

    model_config = ConfigDict(extra="forbid")

    templates: list[WhatsAppTemplate] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _unique(self) -> "WhatsAppConfig":
        names = [t.name for t in self.templates]
        if len(set(names)) != len(names):
            raise ValueError("a WhatsApp template name is listed twice")
        return self

    def for_purpose(self, purpose: str) -> WhatsAppTemplate | None:
        """The first template listed for ``purpose``, or ``None``."""
        return next((t for t in self.templates if purpose in t.purposes), None)

    def named(self, name: str) -> WhatsAppTemplate | None:
        """The template called ``name``, or ``None``."""
        return next((t for t in self.templates if t.name == name), None)


DEFAULT_MEDIA_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "application/pdf"]
"""Inbound media types accepted by default: photos and PDFs."""


class MediaConfig(BaseModel):
    """Inbound media (MMS, WhatsApp): which content types are accepted, and the proxy's size limit."""

    model_config = ConfigDict(extra="forbid")

    allowed_types: list[Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_TYPES), max_length=30
    )
    """MIME types kept as references and shown; any other is refused politely."""
    max_bytes: int = Field(5_000_000, ge=1_000, le=20_000_000)
    """The largest file the dashboard's media proxy fetches (bytes)."""


HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHours(BaseModel):
    """When proactive messages may go out, in the recipient's local time (issue 15).

    A proactive message (a trigger's nudge, a follow-up, an operator's message
    when the customer has not written within ``sending.reply_window_s``) is
    sent only from ``send_from`` until ``send_until`` (``HH:MM``, 24-hour;
    ``send_from`` later than ``send_until`` spans midnight). Outside the
    window it is deferred to the window's next opening, never dropped
    (:mod:`state.quiet_hours`). The recipient's time zone comes from the number
    (``phonenumbers``' time-zone data); ``time_zone`` (IANA) is used when the
    number's is unknown or ambiguous (several zones, e.g. toll-free or
    non-geographic numbers). The TCPA's calling hours are 08:00 to 21:00 local.
    """

    model_config = ConfigDict(extra="forbid")

    send_from: str = Field("08:00", pattern=HH_MM)
    send_until: str = Field("21:00", pattern=HH_MM)
    time_zone: str = Field(min_length=1, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone (like America/New_York)") from None
        return name

    @model_validator(mode="after")
    def _not_empty(self) -> "QuietHours":
        if self.send_from == self.send_until:
            raise ValueError("send_from and send_until are equal: the window would be empty (or all day: leave quiet_hours out)")
        return self


class SendingConfig(BaseModel):
    """How the tenant's outbound messages go out (issue 15): sender, pacing, what counts as a reply.

    ``messaging_service_sid`` (``MG`` + 32 hex): send through that Twilio
    Messaging Service (``MessagingServiceSid``) instead of ``From`` = the
    conversation's number; pacing is then per service. ``segments_per_s``:
    the sender's throughput in SMS segments per second; unset, it follows
    the sender (:func:`state.pacing.default_segments_per_s`: 1 for a US/CA long code,
    3 toll-free, 100 short code, 80 WhatsApp, 1 a Messaging Service, whose
    real rate is the sum of its senders: set it). ``reply_window_s``: a
    message sent within this many seconds of the customer's last message
    answers them (never deferred by quiet hours, never paced behind a
    campaign); later ones are proactive.
    """

    model_config = ConfigDict(extra="forbid")

    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-f]{32}$")
    segments_per_s: float | None = Field(None, gt=0, le=1000)
    reply_window_s: int = Field(300, ge=10, le=24 * 3600)


class TenantConfig(BaseModel):
    """One tenant, as written in the tenants YAML and stored in Redis."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID)
    display_name: str
    phone_numbers: list[str] = Field(min_length=1)
    lanes: list[Lane] = Field(min_length=1)
    default_lane: Lane
    persona: str = Field("Laneway assistant", description="The name the agent speaks as.")
    sticky_seconds: int = Field(900, ge=0)
    session_idle_ttl_s: int = Field(24 * 3600, ge=60)
    help_text: str
    opt_out_text: str = (
        "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
    )
    opt_in_text: str = "You have been resubscribed. Reply HELP for help, STOP to unsubscribe."
    human_handoff_text: str = "Thanks, a person from our team will answer you here shortly."
    attention_after_s: int = Field(300, ge=10, le=7 * 24 * 3600)
    """A conversation whose last customer message has waited this long (seconds) unanswered
    needs an operator's attention (the dashboard's ``stalled``)."""
    claim_ttl_s: int = Field(900, ge=10, le=7 * 24 * 3600)
    """How long an operator's claim lasts without them acting (seconds; claiming again or replying
    renews it). An expired claim goes back to the queue with a dashboard alert (:mod:`jobs.claims`)."""
    fallback_text: str = "Sorry, I did not catch that. Reply HELP for help."
    faq: list[FaqEntry] = Field(default_factory=list)
    faq_min_score: float = Field(70.0, ge=0, le=100)
    banned_phrases: list[str] = Field(default_factory=list)
    max_sms_chars: int = Field(640, ge=70, le=1600)
    twilio: TwilioCredentials
    operator_api_keys: list[OperatorKeyRef | HashedKey] = Field(default_factory=list)
    llm: LlmConfig | None = None
    """LLM settings; ``None`` (or ``enabled: false``) routes deterministically."""
    form: FormDefinition | None = None
    """The hosted form the guide lane walks customers through (``/f/<form_token>``)."""
    max_voice_chars: int = Field(300, ge=40, le=1000)
    """Longest spoken reply (characters): a caller hears one short turn at a time."""
    alerts: AlertChannel | None = None
    """The alert webhook channel; ``None``: the tenant receives no webhooks (trigger
    ``webhook`` actions need it for their secret and allow-list)."""
    voice: VoiceConfig | None = None
    """Phone calls handled by people (:mod:`service.voice_transfer`, :mod:`service.calls_api`):
    the operator line a call is transferred to, the ring time, what the caller hears."""
    voice_ai: VoiceAiConfig | None = None
    """The voice-AI tool webhook (``/voice-ai/<tenant_id>/tools``); ``None``: not offered (401)."""
    triggers: list[TriggerRule] = Field(default_factory=list, max_length=50)
    """Proactive trigger rules (:mod:`state.triggers`, :mod:`jobs.triggers`)."""
    languages: list[Annotated[str, Field(pattern=LANGUAGE)]] = Field(default_factory=lambda: ["en"], min_length=1, max_length=20)
    """The languages the tenant serves, the first being its default (the language
    of its top-level texts and FAQ). A conversation keeps the language of its
    first clearly written message; a language not listed goes to a person."""
    translations: dict[str, LanguagePack] = Field(default_factory=dict)
    """Texts, templates, FAQ and opt-out keywords per language (each key one of ``languages``)."""
    safety: list[SafetyRule] = Field(default_factory=list, max_length=20)
    """Urgent-message rules, checked before any lane answers (:mod:`agents.dialogue.safety`)."""
    whatsapp: WhatsAppConfig = Field(default_factory=WhatsAppConfig)
    """WhatsApp templates for messages outside the 24-hour customer-service window."""
    media: MediaConfig = Field(default_factory=MediaConfig)
    """Inbound media accepted, and the media proxy's size limit."""
    quiet_hours: QuietHours | None = None
    """When proactive messages may go out (recipient's local time); ``None``: any time."""
    sending: SendingConfig = Field(default_factory=SendingConfig)
    """Sender (number or Messaging Service), pacing and the reply window of outbound messages."""
    desk: DeskConfig | None = None
    """The support desk: assignment policy, business hours, SLA targets (:mod:`state.desk_config`)."""
    canned_responses: list[CannedResponse] = Field(default_factory=list, max_length=MAX_CANNED_RESPONSES)
    """Operators' saved replies (:mod:`state.desk_tools_config`, rendered by :mod:`state.canned`)."""
    csat: CsatSettings = Field(default_factory=CsatSettings)
    """The satisfaction survey after close (off unless ``csat.enabled``)."""
    disabled: bool = False

    @property
    def default_language(self) -> str:
        """The tenant's first language: that of its top-level texts and FAQ."""
        return self.languages[0]

    def pack(self, language: str | None) -> LanguagePack | None:
        """Return the tenant's texts in ``language``, or ``None`` when it has none there."""
        return self.translations.get(language or self.default_language)

    def text_in(self, name: str, language: str | None) -> str:
        """Return the tenant text ``name`` (one of :data:`CARRIER_TEXTS`) in ``language``, else the default one."""
        pack = self.pack(language)
        translated = getattr(pack, name, None) if pack is not None else None
        return translated or getattr(self, name)

    def faq_in(self, language: str | None) -> list[FaqEntry]:
        """Return the FAQ in ``language`` (the tenant's ``faq`` when it has none there)."""
        pack = self.pack(language)
        return pack.faq if pack is not None and pack.faq is not None else self.faq

    @field_validator("phone_numbers")
    @classmethod
    def _e164(cls, numbers: list[str]) -> list[str]:
        for n in numbers:
            if not re.match(E164, n):
                raise ValueError(f"{n!r} is not an E.164 number (like +15550001111)")
        if len(set(numbers)) != len(numbers):
            raise ValueError("a phone number is listed twice")
        return numbers

    @model_validator(mode="after")
    def _consistent(self) -> "TenantConfig":
        if self.default_lane not in self.lanes:
            raise ValueError(f"default_lane {self.default_lane!r} is not in lanes {self.lanes}")
        if self.llm is not None:
            for lane in self.llm.lanes:
                if lane not in self.lanes:
                    raise ValueError(f"llm.lanes names {lane!r}, which is not in lanes {self.lanes}")
            for i, example in enumerate(self.llm.prompt.examples):
                for phrase in self.banned_phrases:
                    if re.search(rf"\b{re.escape(phrase.lower())}\b", example.reply.lower()):
                        raise ValueError(f"llm.prompt.examples.{i}.reply contains the banned phrase {phrase!r}")
        rule_ids = [rule.id for rule in self.triggers]
        if len(set(rule_ids)) != len(rule_ids):
            raise ValueError("a trigger rule id is listed twice")
        check_shortcuts(self.canned_responses)
        for i, rule in enumerate(self.triggers):
            for action in rule.actions:
                if action.type != "webhook":
                    continue
                if self.alerts is None:
                    raise ValueError(f"triggers.{i} ({rule.id}) has a webhook action, and the tenant has no alerts: channel")
                if action.url is None and self.alerts.webhook_url is None:
                    raise ValueError(f"triggers.{i} ({rule.id}): the webhook action has no url and alerts.webhook_url is unset")
                problem = action.url is not None and self.alerts.url_problem(action.url)
                if problem:
                    raise ValueError(f"triggers.{i} ({rule.id}) webhook url: {problem}")
        # The reply guard would replace a text containing a banned phrase, and
        # these carrier-mandated texts must go out as written.
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("a language is listed twice")
        for code in self.translations:
            if code not in self.languages:
                raise ValueError(f"translations.{code}: {code!r} is not one of languages {self.languages}")
        texts = [(name, getattr(self, name)) for name in CARRIER_TEXTS]
        for code, pack in self.translations.items():
            texts += [(f"translations.{code}.{name}", getattr(pack, name)) for name in CARRIER_TEXTS if getattr(pack, name)]
        rule_ids = [rule.id for rule in self.safety]
        if len(set(rule_ids)) != len(rule_ids):
            raise ValueError("a safety rule id is listed twice")
        for rule in self.safety:
            if self.default_language not in rule.reply:
                raise ValueError(f"safety {rule.id}: reply needs the tenant's first language {self.default_language!r}")
            texts += [(f"safety {rule.id} reply.{code}", text) for code, text in rule.reply.items()]
        for name, text in texts:
            for phrase in self.banned_phrases:
                if re.search(rf"\b{re.escape(phrase.lower())}\b", text.lower()):
                    raise ValueError(f"{name} contains the banned phrase {phrase!r}")
        return self

    def hashed(self, environment: str) -> "TenantConfig":
        """Return a copy whose operator API keys are resolved and stored as SHA-256.

        Raises:
            ConfigError: a key's environment variable is unset (and no dev value applies).
        """
        keys: list[OperatorKeyRef | HashedKey] = [
            k if isinstance(k, HashedKey) else HashedKey(sha256=sha256_hex(k.resolve(environment)), scopes=k.scopes)
            for k in self.operator_api_keys
        ]
        return self.model_copy(update={"operator_api_keys": keys})

    def key_scopes(self, api_key_sha256: str) -> list[KeyScope]:
        """The scopes of the operator key whose SHA-256 is ``api_key_sha256`` (``[]`` if it is not listed hashed)."""
        for key in self.operator_api_keys:
            if isinstance(key, HashedKey) and hmac.compare_digest(key.sha256, api_key_sha256):
                return list(key.scopes)
        return []


class TenantsFile(BaseModel):
    """The tenants YAML file: ``tenants: [TenantConfig, …]``."""

    model_config = ConfigDict(extra="forbid")

    tenants: list[TenantConfig]

    @model_validator(mode="after")
    def _unique(self) -> "TenantsFile":
        seen_ids: set[str] = set()
        owner: dict[str, str] = {}
        for t in self.tenants:
            if t.tenant_id in seen_ids:
                raise ValueError(f"tenant_id {t.tenant_id!r} appears twice")
            seen_ids.add(t.tenant_id)
            for n in t.phone_numbers:
                if n in owner:
                    raise ValueError(f"phone number {n} belongs to both {owner[n]!r} and {t.tenant_id!r}")
                owner[n] = t.tenant_id
        return self


def format_validation_error(exc: ValidationError) -> list[str]:
    """Return one line per error, naming the field by its dotted path."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(file)"
        lines.append(f"{path}: {err['msg']}")
    return lines


def parse_tenants_yaml(text: str) -> TenantsFile:
    """Parse and validate a tenants YAML document.

    Raises:
        ConfigError: the YAML is malformed or fails validation; ``.details``
            lists each problem with the field's dotted path
            (``tenants.0.phone_numbers``).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("tenants file is not valid YAML", [str(exc)]) from exc
    try:
        return TenantsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("tenants file is invalid", format_validation_error(exc)) from exc
