"""``GET /healthz``: 200 when both Redis connections answer, else 503."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.exceptions import RedisError

from service.app import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    svc = services()
    checks = {}
    for name, conn in (("queue_redis", svc.queue_redis), ("state_redis", svc.state_redis)):
        try:
            checks[name] = bool(conn.ping())
        except RedisError:
            checks[name] = False
    ok = all(checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
