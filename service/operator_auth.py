"""Who is calling the tenant APIs, their rate limit and audit trail (request hooks shared by blueprints).

Operator and takeover APIs authenticate with ``Authorization: Bearer <operator
API key>``; keys are stored as SHA-256 and each belongs to one tenant. No key:
401. A key of another tenant, or an unknown conversation: 404 (the same
answer, so a key learns nothing about other tenants).

Who is calling is settled once per request, before anything is counted
(:func:`identify_caller`): a bearer key that belongs to the URL's tenant makes
the request *authenticated* for it. Only those count against the tenant's rate
limit (``LANEWAY_OPERATOR_API_RATE``) and become entries of its audit trail
(:mod:`state.audit`), with the request id (``X-Request-Id`` if the client sent
a sane one, else a new one; echoed in the response), the first characters of
the verified key, and the conversation id masked in the path. Every other
request to the tenant's URLs (no key, a forged or revoked key, another
tenant's key) counts against its client address's limit
(``LANEWAY_OPERATOR_API_UNAUTHENTICATED_RATE``) and only adds to the
tenant's refused-request counters (``GET …/audit/refused``): it can neither
lock the tenant's keys out nor evict or imitate a genuine audit entry.

A blueprint registers, in this order: ``before_request`` :func:`start_audit`,
:func:`identify_caller` (and any other way of identifying the caller),
:func:`rate_limit`; ``after_request`` :func:`record_audit`.

Who acts (takeover): the operator's name comes from the ``X-Operator`` header
(letters, digits, space and ``._@-``, at most 64), else ``key-<8 hex>`` of the
key (:func:`current_operator`).
"""

from __future__ import annotations

import logging
import re
import time

from flask import g, request
from redis.exceptions import RedisError

from service import proxies
from service.errors import ApiError
from service.services import services
from state.audit import AuditEntry
from state.errors import StateError
from state.keys import ConversationKeys
from state.models import mask_address, utcnow
from state.store import ConversationView
from state.takeover import key_fingerprint
from state.tenant_config import TenantConfig, sha256_hex

log = logging.getLogger(__name__)

NOT_FOUND = "conversation not found"
CREDENTIAL_PREFIX_CHARS = 8
"""Characters of an API key the audit trail keeps."""
OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}")


def start_audit() -> None:
    """Note when the request started, for its audit entry's ``duration_ms``."""
    g.audit_started = time.perf_counter()


def _bearer_key() -> str | None:
    """The ``Authorization: Bearer`` value, stripped, or ``None`` when there is none."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _key_owner(key: str) -> str | None:
    """The tenant ``key`` belongs to (one Redis GET, kept for the rest of the request)."""
    cached = g.get("bearer_owner")
    if cached is None or cached[0] != key:
        cached = g.bearer_owner = (key, services().tenants.tenant_for_api_key(key))
    return cached[1]


def identify_caller() -> None:
    """Mark the request authenticated for the URL's tenant when its bearer key belongs to it.

    Sets ``g.audit_credential`` (the key's first :data:`CREDENTIAL_PREFIX_CHARS`
    characters) and ``g.verified_tenant``; leaves both unset otherwise. Runs
    before :func:`rate_limit`. Keys: ``lw:apikey:<sha>`` (GET).
    """
    tenant_id = (request.view_args or {}).get("tenant_id")
    key = _bearer_key()
    if tenant_id is not None and key is not None and _key_owner(key) == tenant_id:
        mark_verified(tenant_id, key[:CREDENTIAL_PREFIX_CHARS])


def mark_verified(tenant_id: str, credential: str) -> None:
    """Record that this request's credential was verified for ``tenant_id``, shown as ``credential`` in the audit trail."""
    g.verified_tenant = tenant_id
    g.audit_credential = credential


def client_address() -> str:
    """The caller's address for per-client counting (:func:`service.proxies.client_address`)."""
    return proxies.client_address(services().settings.trusted_proxy_hops)


def rate_limit() -> None:
    """Refuse the request with 429 and ``Retry-After`` once its caller is over its limit.

    Authenticated for the URL's tenant (:func:`identify_caller`): the tenant's
    ``operator_api_rate``. Otherwise: ``operator_api_unauthenticated_rate``
    of the client address (:func:`client_address`).
    """
    tenant_id = (request.view_args or {}).get("tenant_id")
    if tenant_id is None:
        return
    limits = services().rate_limits
    if g.get("verified_tenant") == tenant_id:
        if (retry_after_s := limits.operator_retry_after_s(tenant_id)) is not None:
            raise ApiError(429, f"too many requests for tenant {tenant_id}; retry in {retry_after_s}s", {"Retry-After": str(retry_after_s)})
    elif (retry_after_s := limits.unauthenticated_retry_after_s(client_address())) is not None:
        raise ApiError(
            429, f"too many requests without a valid API key from your address; retry in {retry_after_s}s",
            {"Retry-After": str(retry_after_s)},
        )


def record_audit(response, credential: str | None = None):
    """Record the request for the tenant its URL names (never fails the request); returns ``response``.

    A request whose credential was verified for that tenant (``g.audit_credential``,
    set by :func:`mark_verified`; or ``credential`` when given, which the caller
    must have verified) becomes an entry of the tenant's trail. Any other
    request only counts in the tenant's refused-request counters, by status
    and :func:`client_address`: never an entry, never a credential.
    """
    args = request.view_args or {}
    tenant_id = args.get("tenant_id")
    svc = services()
    try:
        if tenant_id is None or svc.tenants.get(tenant_id) is None:
            return response  # unknown tenants get no trail: nobody could read it, anybody could fill it
        credential = credential or (g.get("audit_credential") if g.get("verified_tenant") == tenant_id else None)
        if credential is None:
            svc.audit.record_refused(tenant_id, client_address(), response.status_code, utcnow().date())
            return response
        path = request.path
        if conversation_id := args.get("conversation_id"):
            path = path.replace(conversation_id, mask_address(conversation_id))
        svc.audit.record(
            AuditEntry(
                request_id=g.request_id,
                tenant_id=tenant_id,
                credential=credential,
                method=request.method,
                path=path,
                status=response.status_code,
                # 0 when the app refused the request before this blueprint's hooks ran (a 413)
                duration_ms=round((time.perf_counter() - g.get("audit_started", time.perf_counter())) * 1000, 2),
                at=utcnow().isoformat(),
            )
        )
    except RedisError as exc:
        log.error("audit entry not recorded for tenant_id=%s request_id=%s: %s", tenant_id, g.request_id, exc.__class__.__name__)
    return response


def authorize(tenant_id: str) -> None:
    """Check the bearer key belongs to ``tenant_id``; raise :class:`ApiError` 401/404."""
    key = _bearer_key()
    if key is None:
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <api key>", {"WWW-Authenticate": "Bearer"})
    owner = _key_owner(key)
    if owner is None:
        raise ApiError(401, "unknown API key", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if owner != tenant_id:
        raise ApiError(404, NOT_FOUND)


class Operator:
    """The caller: ``tenant_id``, the key's SHA-256, its fingerprint and the operator's name."""

    __slots__ = ("tenant_id", "key_sha256", "key_fp", "operator_id")

    def __init__(self, tenant_id: str, key_sha256: str, operator_id: str) -> None:
        self.tenant_id = tenant_id
        self.key_sha256 = key_sha256
        self.key_fp = key_fingerprint(key_sha256)
        self.operator_id = operator_id


def current_operator(tenant_id: str) -> Operator:
    """Authorize the bearer key for ``tenant_id`` and name the operator; 401/404 (:func:`authorize`), 400 for a bad ``X-Operator``."""
    authorize(tenant_id)
    key = request.headers["Authorization"].partition(" ")[2].strip()
    sha = sha256_hex(key)
    name = request.headers.get("X-Operator")
    if name is None:
        name = f"key-{sha[:8]}"
    elif not OPERATOR_NAME.fullmatch(name):
        raise ApiError(400, "X-Operator must be 1-64 letters, digits, spaces or ._@- (starting with a letter or digit)")
    return Operator(tenant_id, sha, name)


def tenant_config(tenant_id: str) -> TenantConfig:
    """The config of the tenant the caller was authorized for; 404 (:data:`NOT_FOUND`) if it was deleted since."""
    tenant = services().tenants.get(tenant_id)
    if tenant is None:
        raise ApiError(404, NOT_FOUND)
    return tenant


def conversation_keys(tenant_id: str, conversation_id: str) -> ConversationKeys:
    """The keys of the conversation the URL names; 404 (:data:`NOT_FOUND`) for an id that cannot be one."""
    try:
        return ConversationKeys(tenant_id, conversation_id)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


def read_conversation(keys: ConversationKeys) -> ConversationView:
    """The conversation as stored (:meth:`state.store.ConversationStore.read`); 404 if none, 409 if unreadable."""
    try:
        view = services().store.read(keys)
    except StateError as exc:
        raise ApiError(409, f"conversation cannot be read by this version of Laneway: {exc}") from exc
    if view is None:
        raise ApiError(404, NOT_FOUND)
    return view
