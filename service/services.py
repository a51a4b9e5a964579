"""What request handlers use (:class:`Services`) and its accessor :func:`services`.

Built once per app by :func:`service.app.create_app` and kept in
``app.extensions["laneway"]``; blueprints read it here (as Flask's tutorial keeps
``get_db`` in its own module), so no blueprint imports the app factory.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from jobs.wiring import Wiring
from service.rate_limits import RateLimits
from state.audit import AuditLog


@dataclass
class Services(Wiring):
    """What request handlers use, built once per app (kept in ``app.extensions["laneway"]``).

    The shared :class:`jobs.wiring.Wiring` (settings, connections, queue,
    stores) and the web's own: the audit log and the rate limits.
    """

    audit: AuditLog
    rate_limits: RateLimits


def services() -> Services:
    """Return the current app's :class:`Services`."""
    return current_app.extensions["laneway"]
