"""HTTP error mapping: the only place exceptions become status codes."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from service.api_models import ErrorBody, as_json

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a message a client can act on."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    """Return the JSON error body ``{"error": message, "status": status}``."""
    response = jsonify(as_json(ErrorBody(error=message, status=status)))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def init_app(app: Flask) -> None:
    """Register the error handlers on ``app``."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.errorhandler(RedisError)
    def _redis_down(exc: RedisError):
        log.error("Redis unavailable: %s", exc.__class__.__name__)
        return error_response(503, "storage is unavailable; retry later", {"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {413: "request body is too large", 405: "method not allowed", 404: "not found"}
        # Keep werkzeug's headers (``Allow`` on a 405, as RFC 9110 §15.5.6 requires).
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(exc.code or 500, messages.get(exc.code or 0, exc.description or exc.name), headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal error")
