"""The Flask application factory (the web composition root: the shared :mod:`jobs.wiring` plus the web's own)."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, g, request

from core import logs
from core.logs import configure_logging
from core.settings import Settings, load_settings
from jobs.wiring import build_wiring
from service import errors
from service.errors import ApiError
from service.rate_limits import RateLimits
from service.services import Services
from state.audit import AuditLog
from state.feed import FeedReader
from state.takeover import TakeoverStore

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A client's ``X-Request-Id`` is kept if it matches; otherwise a new id is made."""


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Laneway web app.

    Args:
        test_config: optional overrides: ``SETTINGS`` (a :class:`Settings`),
            ``QUEUE_REDIS`` / ``STATE_REDIS`` (clients), and any Flask config.
    """
    test_config = dict(test_config or {})
    settings: Settings = test_config.pop("SETTINGS", None) or load_settings()
    w = build_wiring(settings, test_config.pop("QUEUE_REDIS", None), test_config.pop("STATE_REDIS", None))

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_bytes, MAX_FORM_PARTS=200, JSON_SORT_KEYS=False)
    app.config.update(test_config)
    app.extensions["laneway"] = Services(
        **w.parts(),
        audit=AuditLog(w.state_redis, settings.audit_retention_days, settings.audit_max_entries),
        rate_limits=RateLimits(w.queue_redis, settings),
        takeover=TakeoverStore(w.state_redis),
        feed=FeedReader(w.state_redis, settings.redis_socket_timeout_s),
    )
    if not app.debug and not logging.getLogger().handlers:
        configure_logging(settings.log_level, settings.log_format)

    @app.before_request
    def _request_context() -> None:
        sent = request.headers.get("X-Request-Id", "")
        g.request_id = sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        logs.clear()
        logs.bind(request_id=g.request_id)

    @app.before_request
    def _refuse_cut_chunked_bodies() -> None:
        """413 for a chunked body (no ``Content-Length``) that reached ``MAX_CONTENT_LENGTH``.

        werkzeug stops reading such a body at the limit without an error, so
        the view would parse a truncated body and answer something misleading
        (a bad signature, bad JSON). The body read here is cached for the view.
        The voice-AI webhook reads its body itself: it answers 200 with a
        speakable error instead (its platform's contract).
        """
        if request.content_length is not None or request.blueprint == "voice_ai" or not request.headers.get("Transfer-Encoding"):
            return
        if len(request.get_data(cache=True)) >= app.config["MAX_CONTENT_LENGTH"]:
            raise ApiError(413, f"request body is {app.config['MAX_CONTENT_LENGTH']} bytes or more")

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    from service import (
        admin_api,
        analytics_api,
        consent_api,
        dashboard,
        export_api,
        desk_api,
        desk_tools_api,
        health,
        hosted_form,
        live_feed,
        media_proxy,
        metrics,
        openapi,
        operator_api,
        outbound_call,
        takeover_api,
        twilio_messaging,
        twilio_voice,
        voice_ai,
        voice_transfer,
    )

    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(twilio_messaging.bp)
    app.register_blueprint(twilio_voice.bp)
    app.register_blueprint(operator_api.bp)
    app.register_blueprint(takeover_api.bp)
    app.register_blueprint(media_proxy.bp)
    app.register_blueprint(live_feed.bp)
    app.register_blueprint(desk_api.bp)
    app.register_blueprint(desk_tools_api.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(hosted_form.bp)
    app.register_blueprint(voice_ai.bp)
    app.register_blueprint(voice_transfer.bp)
    app.register_blueprint(outbound_call.api_bp)
    app.register_blueprint(outbound_call.bp)
    app.register_blueprint(analytics_api.bp)
    app.register_blueprint(analytics_api.page_bp)
    app.register_blueprint(export_api.bp)
    app.register_blueprint(consent_api.bp)
    return app
