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
from state.feed import FeedReader
from state.feed_streams import FeedStreams
from state.takeover import TakeoverStore


@dataclass
class Services(Wiring):
    """What request handlers use, built once per app (kept in ``app.extensions["laneway"]``).

    The shared :class:`jobs.wiring.Wiring` (settings, connections, queue,
    stores) and the web's own: the audit log, the rate limits, the takeover store and the live-feed reader.
    """

    audit: AuditLog
    rate_limits: RateLimits
    takeover: TakeoverStore
    feed: FeedReader

    def feed_streams(self, lease_ms: int) -> FeedStreams:
        """The caps on open live feeds (the current settings'), each counted for ``lease_ms`` after its last refresh."""
        return FeedStreams(self.state_redis, self.settings.feed_streams_per_key, self.settings.feed_streams_per_tenant, lease_ms)


def services() -> Services:
    """Return the current app's :class:`Services`."""
    return current_app.extensions["laneway"]
