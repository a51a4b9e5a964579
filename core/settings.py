"""Laneway's one settings object, read from the environment.

Nothing in Laneway reads ``os.environ`` except this module, and it does so only
when :func:`load_settings` is called (never at import time). Every process
(gunicorn worker, RQ worker, CLI) calls it once in its composition root and
passes the result down.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.prices import DEFAULT_LLM_PRICES, ModelPrice


class Settings(BaseSettings):
    """Process-wide configuration.

    Environment variables are ``LANEWAY_<FIELD>`` (case-insensitive), except
    ``REDIS_URL`` and ``PORT`` which keep the names platforms set for them.
    """

    model_config = SettingsConfigDict(env_prefix="LANEWAY_", extra="ignore")

    env: Literal["development", "production"] = "development"
    """``production`` refuses the dev-only secrets shipped in the example tenants."""

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "LANEWAY_REDIS_URL"),
    )
    """Redis for RQ queues (a single primary)."""

    state_redis_url: str | None = None
    """Redis for conversation state and tenants; defaults to ``redis_url``."""

    state_redis_cluster: bool = False
    """Treat ``state_redis_url`` as a Redis Cluster node (requires ``state_redis_url``:
    RQ stays on ``redis_url``, which must be a single primary)."""

    port: int = Field(8000, validation_alias=AliasChoices("PORT", "LANEWAY_PORT"))
    public_base_url: str | None = None
    """Public URL Twilio posts to (scheme, host, optional port; no trailing slash).
    Signatures are checked against it. Defaults to ``http://127.0.0.1:$PORT``."""
    trusted_proxy_hops: int = Field(0, ge=0)
    """Proxies in front of Laneway whose ``X-Forwarded-Proto`` / ``X-Forwarded-Host``
    replace the scheme and host of ``public_base_url`` in the URL a Twilio
    signature is checked against (werkzeug ``ProxyFix`` counting). 0 ignores them."""

    twilio_api_url: str | None = None
    """Base URL replacing ``https://api.twilio.com`` for outbound REST calls
    (a local stand-in in development and tests). ``None`` talks to Twilio."""

    tenants_file: str | None = None
    """YAML loaded into Redis by ``laneway run``."""

    queue_name: str = "laneway"
    redis_socket_timeout_s: float = 2.0
    """Socket connect/read timeout; keeps a dead Redis answering 503 well under 5 s."""

    accept_waitaof: Annotated[tuple[int, int] | None, NoDecode] = None
    """``LANEWAY_ACCEPT_WAITAOF``: ``off`` (default), or ``NUMLOCAL,NUMREPLICAS``
    such as ``1,0`` (the Redis's own append-only file) or ``1,1`` (and one
    replica's): after accepting a webhook, wait (Redis ``WAITAOF``, Redis or
    Valkey >= 7.2 with ``appendonly yes``) until the writes reached that many
    append-only files before answering 200; answer 503 if they did not within
    ``accept_waitaof_timeout_ms`` (Twilio's retry is deduplicated). Off by
    default: it needs a Redis >= 7.2 with AOF, and with ``appendfsync
    always`` the writes are on disk before Redis answers anyway."""
    accept_waitaof_timeout_ms: int = Field(1000, ge=1, le=10_000)
    """How long a webhook waits for ``WAITAOF`` (ms) before answering 503."""

    max_request_bytes: int = 64 * 1024
    dedupe_ttl_s: int = 7 * 24 * 3600
    """How long a provider message id is remembered for deduplication."""

    lease_ttl_ms: int = 30_000
    lease_renew_interval_ms: int | None = None
    """How often a running turn renews its lease; defaults to a third of ``lease_ttl_ms``."""
    job_timeout_s: int = 120
    delivery_retry_intervals_s: list[int] = [2, 10, 60, 300]
    drain_retry_intervals_s: list[int] = [1, 5, 30]
    max_commit_attempts: int = 5
    """Version conflicts tolerated in one drain before the job fails (and RQ retries)."""

    tenant_cache_ttl_s: float = 5.0
    """How long a process keeps a tenant's config before reading it again."""

    twilio_timeout_s: float = 10.0
    """Connect and read timeout of each Twilio API request."""
    delivery_reconcile_after_s: float = 60.0
    """How long an outbox entry may stay ``sending`` before the sweep asks
    Twilio whether it was sent (its sender died mid-request). Must exceed
    twice ``twilio_timeout_s`` (connect, then read), so a live sender has
    finished by then."""
    delivery_order_timeout_s: float = 10.0
    """A turn's second (third, …) reply to one customer is sent only once
    Twilio's status callback reports the previous one at least ``sent``
    (handed to the carrier), so they arrive in order; this is the longest
    wait for that callback (seconds) before sending anyway. 0 sends at once."""
    sweep_period_s: int = 15
    """Seconds between recovery sweeps (:mod:`jobs.sweep`)."""
    trigger_sweep_period_s: int = Field(5, ge=1)
    """Seconds between trigger sweeps (:mod:`jobs.triggers`): how late a due trigger may fire."""
    trigger_sweep_batch: int = Field(500, ge=1)
    """Most conversations one trigger sweep evaluates (the rest stay due for the next)."""
    prometheus_multiproc_dir: str | None = Field(None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR"))
    """prometheus-client's multiprocess directory (its own variable name): set, ``/metrics``
    adds up the samples every process of the host wrote there (:mod:`core.metrics`)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line (:mod:`core.logs`); ``text`` for reading by eye."""
    worker_maintenance_interval_s: int = Field(30, ge=5)
    """How often a worker runs RQ's maintenance: registry cleaning, and taking
    over RQ's scheduler (which moves retries, delayed jobs and the sweep) when
    the worker that ran it died. RQ's default is 600 s; its scheduler lock
    lives 61 s after its holder dies."""
    ready_max_queue_age_s: float = 60.0
    """``GET /readyz`` answers 503 once the oldest waiting job is older (seconds)."""
    inbound_contact_rate: str = "20/minute"
    """Messages one contact may send before their turns wait for the recovery
    sweep (``limits`` notation: ``N/second|minute|hour|day``). Nothing is dropped."""
    inbound_tenant_rate: str = "6000/minute"
    """Inbound messages one tenant's numbers may take before its turns wait the same way."""
    operator_api_rate: str = "600/minute"
    """Operator API requests per tenant, counted only for requests with a valid key of
    that tenant (or a valid live-feed token); past it the API answers 429 with ``Retry-After``."""
    operator_api_unauthenticated_rate: str = "120/minute"
    """Operator API requests without a valid credential for the URL's tenant, per client
    address (all tenants together): past it 429 with ``Retry-After``. Counted apart from
    ``operator_api_rate`` so unauthenticated traffic can never lock a tenant's keys out."""
    feed_streams_per_key: int = Field(8, ge=1)
    """Live-feed (SSE) streams one operator key may hold open at once; one more is 429."""
    feed_streams_per_tenant: int = Field(40, ge=1)
    """Live-feed streams one tenant's keys may hold open at once, all keys together."""
    web_header_timeout_s: float = Field(10.0, gt=0, le=300)
    """Longest a client may take to send a request's line and headers (also how long an
    idle kept-alive connection stays open); then the connection is closed
    (:mod:`service.web_worker`)."""
    web_body_timeout_s: float = Field(15.0, gt=0, le=300)
    """Longest a client may take to send a request's whole body once its headers are in;
    then the answer is 408 and the connection is closed (:mod:`service.web_worker`)."""
    audit_retention_days: int = Field(90, ge=1)
    """Days an operator API action stays in the tenant's audit trail."""
    audit_max_entries: int = Field(100_000, ge=100)
    """Most audit entries kept per tenant (oldest trimmed first)."""

    voice_reply_wait_s: float = Field(3.0, gt=0, le=10)
    """How long one Twilio Voice answer waits for the turn's spoken reply before
    it says a holding phrase and redirects to the poll (seconds). Twilio drops a
    webhook after 15 s; capped at 10 s so an answer never comes near it."""
    voice_language: str = Field("en-US", pattern=r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
    """BCP 47 language of ``<Gather>`` speech recognition and ``<Say>`` (Twilio's ``language``)."""
    voice_gather_timeout_s: int = Field(5, ge=1, le=30)
    """``<Gather timeout>``: seconds Twilio waits for the caller to start speaking
    before it treats the prompt as silence."""

    openai_base_url: str | None = None
    """Base URL of the OpenAI API, ending in ``/v1`` (a local stand-in in development
    and tests: ``http://127.0.0.1:8020/v1``). ``None`` talks to OpenAI."""
    openai_timeout_s: float = 10.0
    """Upper bound (seconds) on the read, write and pool timeouts of each LLM request;
    a tenant's ``llm.timeout_s`` is capped by it. Requests are never retried."""
    openai_connect_timeout_s: float = 3.0
    """Connect timeout (seconds) of each LLM request."""
    llm_prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_LLM_PRICES))
    """The price table: model → USD per 1,000 prompt and completion tokens
    (JSON in ``LANEWAY_LLM_PRICES``). Costs and budgets are counted with it."""

    webhook_connect_timeout_s: float = Field(3.0, gt=0, le=30)
    """Connect timeout (seconds, TCP and TLS handshake) of each outbound alert webhook (:mod:`jobs.webhooks`)."""
    webhook_read_timeout_s: float = Field(5.0, gt=0, le=60)
    """Read timeout (seconds, per socket read) of each outbound alert webhook; the RQ job
    timeout (``job_timeout_s``) bounds a whole attempt."""
    webhook_max_response_bytes: int = Field(16 * 1024, ge=0, le=1024 * 1024)
    """Most bytes of a receiver's answer body that are read (the rest is never read; the
    connection is closed). Only the status decides the outcome."""
    webhook_retry_intervals_s: list[int] = [10, 60, 300, 900]
    """Seconds before each retry of a failed alert webhook delivery (RQ ``Retry``)."""
    webhook_ca_bundle: str | None = None
    """PEM file of the certificate authorities webhook receivers' certificates must chain
    to; ``None``: the system's (``ssl`` default paths)."""
    webhook_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDRs (``127.0.0.1/32,::1/128``, comma-separated or a JSON list) exempt from the
    special-purpose address check of outbound webhooks, for tests and the local demo only.
    Empty by default; refused when ``LANEWAY_ENV=production``. URLs must still be
    HTTPS and on the tenant's allow-list."""

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_allow_networks")
    @classmethod
    def _networks_parse(cls, networks: list[str]) -> list[str]:
        parsed = []
        for network in networks:
            try:
                parsed.append(str(ipaddress.ip_network(network, strict=False)))
            except ValueError as exc:
                raise ValueError(f"LANEWAY_WEBHOOK_ALLOW_NETWORKS: {network!r} is not a CIDR such as 127.0.0.1/32") from exc
        return parsed

    @model_validator(mode="after")
    def _no_webhook_exemptions_in_production(self) -> "Settings":
        if self.env == "production" and self.webhook_allow_networks:
            raise ValueError(
                "LANEWAY_WEBHOOK_ALLOW_NETWORKS is for tests and local demos only and is refused "
                "when LANEWAY_ENV=production: webhooks must never reach special-purpose addresses there"
            )
        return self

    @model_validator(mode="after")
    def _webhook_attempt_fits_in_a_job(self) -> "Settings":
        if self.webhook_connect_timeout_s + self.webhook_read_timeout_s >= self.job_timeout_s:
            raise ValueError(
                "LANEWAY_WEBHOOK_CONNECT_TIMEOUT_S + LANEWAY_WEBHOOK_READ_TIMEOUT_S must be under LANEWAY_JOB_TIMEOUT_S"
            )
        return self

    @model_validator(mode="after")
    def _rates_parse(self) -> "Settings":
        from limits import parse

        for name in ("inbound_contact_rate", "inbound_tenant_rate", "operator_api_rate", "operator_api_unauthenticated_rate"):
            try:
                parse(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"LANEWAY_{name.upper()} is not a rate such as 20/minute: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _reconcile_after_the_request_timeout(self) -> "Settings":
        if self.delivery_reconcile_after_s <= 2 * self.twilio_timeout_s:
            raise ValueError(
                "LANEWAY_DELIVERY_RECONCILE_AFTER_S must exceed twice LANEWAY_TWILIO_TIMEOUT_S: "
                "an entry still being sent must never be reconciled"
            )
        return self

    @model_validator(mode="after")
    def _order_wait_fits_in_a_job(self) -> "Settings":
        if not 0 <= self.delivery_order_timeout_s < self.job_timeout_s:
            raise ValueError("LANEWAY_DELIVERY_ORDER_TIMEOUT_S must be 0 or more and under LANEWAY_JOB_TIMEOUT_S")
        return self

    @model_validator(mode="after")
    def _llm_call_fits_in_a_job(self) -> "Settings":
        if self.openai_timeout_s <= 0 or self.openai_connect_timeout_s <= 0:
            raise ValueError("LANEWAY_OPENAI_TIMEOUT_S and LANEWAY_OPENAI_CONNECT_TIMEOUT_S must be positive")
        if self.openai_connect_timeout_s + self.openai_timeout_s >= self.job_timeout_s:
            raise ValueError(
                "LANEWAY_OPENAI_CONNECT_TIMEOUT_S + LANEWAY_OPENAI_TIMEOUT_S must be under LANEWAY_JOB_TIMEOUT_S: "
                "a routing call must never outlive the drain job"
            )
        return self

    @field_validator("accept_waitaof", mode="before")
    @classmethod
    def _parse_waitaof(cls, value):
        if value is None or isinstance(value, (tuple, list)):
            return value
        text = str(value).strip().lower()
        if text in ("", "off", "0", "false", "no"):
            return None
        parts = text.split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError("LANEWAY_ACCEPT_WAITAOF is off or NUMLOCAL,NUMREPLICAS such as 1,0")
        numlocal, numreplicas = (int(p) for p in parts)
        if numlocal not in (0, 1) or numlocal + numreplicas == 0:
            raise ValueError("LANEWAY_ACCEPT_WAITAOF: NUMLOCAL is 0 or 1, and something must be waited for")
        return numlocal, numreplicas

    @model_validator(mode="after")
    def _waitaof_needs_one_state_primary(self) -> "Settings":
        if self.accept_waitaof and self.state_redis_cluster:
            raise ValueError(
                "LANEWAY_ACCEPT_WAITAOF is not supported with LANEWAY_STATE_REDIS_CLUSTER "
                "(WAITAOF acts on one server); run the cluster's primaries with appendfsync always instead"
            )
        return self

    @model_validator(mode="after")
    def _cluster_needs_its_own_url(self) -> "Settings":
        if self.state_redis_cluster and self.state_redis_url is None:
            raise ValueError(
                "LANEWAY_STATE_REDIS_CLUSTER needs LANEWAY_STATE_REDIS_URL: "
                "RQ stays on REDIS_URL, which must be a single primary"
            )
        return self

    @property
    def effective_public_base_url(self) -> str:
        return (self.public_base_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def effective_lease_renew_interval_s(self) -> float:
        return (self.lease_renew_interval_ms or self.lease_ttl_ms // 3) / 1000

    @property
    def effective_state_redis_url(self) -> str:
        return self.state_redis_url or self.redis_url


def load_settings(**overrides) -> Settings:
    """Read the environment once and return :class:`Settings`.

    Keyword overrides win over the environment (tests use them).
    """
    return Settings(**overrides)


def environ_value(name: str) -> str | None:
    """Return the environment variable ``name``, or ``None``.

    The single gateway for secrets that tenant YAML files name by variable
    (Twilio auth tokens, operator API keys).
    """
    return os.environ.get(name)


def child_environment() -> dict[str, str]:
    """Return a copy of this process's environment for child processes.

    ``laneway run`` and the benchmark start children that must inherit PATH,
    the secrets the tenants file names and the LANEWAY_* settings.
    """
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
