"""Admin API: ``/api/v1/admin/…``, managing tenants without a restart.

Authenticated with ``Authorization: Bearer <admin key>``; the key is the
environment variable ``LANEWAY_ADMIN_API_KEY`` (read through
:func:`core.settings.environ_value`, the gateway for secrets named by
variable). Unset: every admin request is 503, the API is never open by
default. No key or a wrong key: 401.

Writes go through :meth:`state.tenants.TenantRegistry.apply`, the same code
path as ``laneway tenants load``. Each tenant carries a ``config_version``
(also its ``ETag``); ``PUT`` must send it in ``If-Match`` (428 without, 409 if
another write came first), so two admins never lose each other's change. The
targeted actions (disable, enable, numbers, key rotation) take ``If-Match``
optionally; without it they re-read and retry on a concurrent write, which is
safe because each changes one field. Changes reach every web and worker
process within ``LANEWAY_TENANT_CACHE_TTL_S`` (the registry's cache); a
rotated key stops working at once.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, g, jsonify, request

from core.settings import environ_value
from service.api_models import AddNumber, RotatedKey, TenantView, as_json
from service.errors import ApiError
from service.operator_auth import record_audit, start_audit
from service.request_input import json_model
from service.services import services
from state.errors import ConfigError, UnknownTenantError
from state.tenant_config import TENANT_ID, TenantConfig
from state.tenants import NumberTakenError, StoredTenant, TenantVersionError

log = logging.getLogger(__name__)

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1/admin")
bp.before_request(start_audit)
# In the trail of the tenant acted on, as "admin" only once the admin key was verified (else only counted as refused).
bp.after_request(lambda response: record_audit(response, "admin" if g.get("admin_verified") else None))

ADMIN_KEY_ENV = "LANEWAY_ADMIN_API_KEY"
"""The environment variable holding the admin API's bearer key."""
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


@bp.before_request
def _authorize() -> None:
    expected = environ_value(ADMIN_KEY_ENV)
    if not expected:
        raise ApiError(503, f"the admin API is disabled: set {ADMIN_KEY_ENV} on the server to enable it")
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <admin API key>", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(key.strip().encode(), expected.encode()):
        raise ApiError(401, "wrong admin API key", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    g.admin_verified = True


def _tenant_id(tenant_id: str) -> str:
    if not re.match(TENANT_ID, tenant_id):
        raise ApiError(404, f"unknown tenant {tenant_id[:64]!r}")
    return tenant_id




def _if_match(required: bool) -> int | None:
    """The ``config_version`` in ``If-Match`` (``"3"``, ``3`` or ``W/"3"``); 428 if required and absent."""
    value = request.headers.get("If-Match")
    if value is None:
        if required:
            raise ApiError(428, "send If-Match: \"<config_version>\" (from GET or the ETag) so no concurrent change is lost")
        return None
    match = _IF_MATCH.match(value)
    if not match:
        raise ApiError(400, "If-Match must be the tenant's config_version, like \"3\"")
    return int(match.group(1))


def _answer(stored: StoredTenant, status: int = 200):
    view = TenantView(tenant=stored.config, config_version=stored.config_version)
    response = jsonify(view.model_dump(mode="json", exclude_none=True))
    response.status_code = status
    response.headers["ETag"] = f'"{stored.config_version}"'
    return response


def _write(action):
    """Run a registry write, mapping its errors to HTTP answers."""
    try:
        return action()
    except UnknownTenantError as exc:
        raise ApiError(404, str(exc)) from exc
    except TenantVersionError as exc:
        if exc.expected_version == 0:
            raise ApiError(409, f"tenant {exc.tenant_id!r} already exists; update it with PUT") from exc
        raise ApiError(
            409, f"{exc}: another change came first; GET the tenant, reapply your change and send If-Match: \"{exc.config_version}\""
        ) from exc
    except NumberTakenError as exc:
        raise ApiError(
            409,
            f"{exc}; to move it, POST /api/v1/admin/tenants/<tenant_id>/numbers with {{\"number\": \"{exc.number}\", \"move\": true}}",
        ) from exc
    except ConfigError as exc:
        raise ApiError(409 if "only number" in exc.message else 400, exc.message) from exc


@bp.post("/tenants")
def create_tenant():
    """Create a tenant from a TenantConfig JSON body; 201, or 409 if it exists."""
    config = json_model(TenantConfig)
    svc = services()
    stored = _write(lambda: svc.tenants.apply(config, svc.settings.env, expected_version=0))
    log.info("admin: tenant created tenant_id=%s", stored.config.tenant_id)
    return _answer(stored, 201)


@bp.get("/tenants/<tenant_id>")
def get_tenant(tenant_id: str):
    """The tenant as stored, with its ``config_version`` (also the ETag)."""
    stored = services().tenants.get_versioned(_tenant_id(tenant_id))
    if stored is None:
        raise ApiError(404, f"unknown tenant {tenant_id!r}")
    return _answer(stored)


@bp.put("/tenants/<tenant_id>")
def update_tenant(tenant_id: str):
    """Replace the tenant's config; ``If-Match: "<config_version>"`` required (428 without, 409 stale)."""
    _tenant_id(tenant_id)
    expected = _if_match(required=True)
    config = json_model(TenantConfig)
    if config.tenant_id != tenant_id:
        raise ApiError(400, f"tenant_id in the body ({config.tenant_id!r}) must be the one in the URL ({tenant_id!r})")
    svc = services()
    if svc.tenants.get_versioned(tenant_id) is None:
        raise ApiError(404, f"unknown tenant {tenant_id!r}; create it with POST /api/v1/admin/tenants")
    stored = _write(lambda: svc.tenants.apply(config, svc.settings.env, expected_version=expected))
    log.info("admin: tenant updated tenant_id=%s config_version=%d", tenant_id, stored.config_version)
    return _answer(stored)


def _set_disabled(tenant_id: str, disabled: bool):
    _tenant_id(tenant_id)
    expected = _if_match(required=False)
    svc = services()
    stored = _write(
        lambda: svc.tenants.update(tenant_id, lambda c: c.model_copy(update={"disabled": disabled}), svc.settings.env, expected)
    )
    log.info("admin: tenant %s tenant_id=%s", "disabled" if disabled else "enabled", tenant_id)
    return _answer(stored)


@bp.post("/tenants/<tenant_id>/disable")
def disable_tenant(tenant_id: str):
    """Disable the tenant: its numbers answer Twilio 404, its operator keys keep working (read and erase)."""
    return _set_disabled(tenant_id, True)


@bp.post("/tenants/<tenant_id>/enable")
def enable_tenant(tenant_id: str):
    """Enable a disabled tenant again."""
    return _set_disabled(tenant_id, False)


@bp.post("/tenants/<tenant_id>/numbers")
def add_number(tenant_id: str):
    """Add a phone number to the tenant; with ``move: true``, take it from the tenant that owns it."""
    _tenant_id(tenant_id)
    expected = _if_match(required=False)
    body: AddNumber = json_model(AddNumber)  # type: ignore[assignment]
    svc = services()
    tenants = svc.tenants
    if body.move:
        stored = _write(lambda: tenants.move_number(body.number, tenant_id, svc.settings.env, expected))
    else:
        stored = _write(
            lambda: tenants.update(
                tenant_id,
                lambda c: c if body.number in c.phone_numbers else c.model_copy(update={"phone_numbers": [*c.phone_numbers, body.number]}),
                svc.settings.env,
                expected,
            )
        )
    return _answer(stored)


@bp.post("/tenants/<tenant_id>/api-keys/rotate")
def rotate_api_key(tenant_id: str):
    """Replace the tenant's operator API keys with one new key, returned once; the old ones stop working at once."""
    _tenant_id(tenant_id)
    expected = _if_match(required=False)
    svc = services()
    new_key, stored = _write(lambda: svc.tenants.rotate_api_key(tenant_id, svc.settings.env, expected))
    log.info("admin: operator API key rotated tenant_id=%s", tenant_id)
    response = jsonify(as_json(RotatedKey(tenant_id=tenant_id, api_key=new_key, config_version=stored.config_version)))
    response.headers["ETag"] = f'"{stored.config_version}"'
    response.headers["Cache-Control"] = "no-store"
    return response
