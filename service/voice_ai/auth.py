"""Who may call a tenant's voice-AI tools: its voice platform, proven by the tenant's secret.

``voice_ai.auth: bearer`` checks ``Authorization: Bearer <secret>``;
``hmac`` checks the hex HMAC-SHA256 of the body (with the secret) in
``voice_ai.signature_header`` (an optional ``sha256=`` prefix), over
``<timestamp>.<body>`` when ``voice_ai.timestamp_header`` names a header
(seconds or milliseconds, within ``max_clock_skew_s``). Comparisons are
constant-time. A missing or wrong secret, an unknown tenant and a tenant
without ``voice_ai`` are refused alike, so a caller learns nothing about
which tenants exist.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Mapping

from state.errors import ConfigError
from state.tenant_config import TENANT_ID, TenantConfig, VoiceAiConfig
from state.tenants import TenantRegistry

log = logging.getLogger(__name__)


def check_signature(config: VoiceAiConfig, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Return whether a request with ``headers`` (case-insensitive) and ``body`` carries the tenant's secret."""
    if config.auth == "bearer":
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())
    sent = headers.get(config.signature_header, "").strip().removeprefix("sha256=")
    payload = body
    if config.timestamp_header:
        stamp = headers.get(config.timestamp_header, "").strip()
        if not re.fullmatch(r"[0-9]{1,16}", stamp):
            return False
        seconds = int(stamp) / 1000 if int(stamp) > 10**11 else int(stamp)
        if abs(time.time() - seconds) > config.max_clock_skew_s:
            return False
        payload = stamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent.lower().encode(), expected.encode())


def authenticate(
    tenants: TenantRegistry, environment: str, tenant_id: str, headers: Mapping[str, str], body: bytes
) -> TenantConfig | None:
    """Return the tenant when the request proves it comes from its voice platform, else ``None``.

    Args:
        tenants: where the tenant is read.
        environment: the deployment's ``settings.env`` (a secret's ``dev_value`` is refused in production).
        tenant_id: from the URL (anything: checked against :data:`TENANT_ID` first).
        headers: the request's headers (case-insensitive lookups).
        body: the raw body the signature covers.

    Raises:
        redis.RedisError: the tenant could not be read.
    """
    tenant = tenants.get(tenant_id) if re.fullmatch(TENANT_ID, tenant_id) else None
    if tenant is None or tenant.voice_ai is None:
        return None
    try:
        secret = tenant.voice_ai.secret.resolve(environment)
    except ConfigError:
        log.error("voice_ai secret of tenant_id=%s is not configured", tenant_id)
        return None
    if not check_signature(tenant.voice_ai, secret, headers, body):
        return None
    return tenant
