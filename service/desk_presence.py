"""Presence from the dashboard's live connection: the live feed heartbeats its operator.

The dashboard opens the live feed (``GET …/events?token=…&operator=<name>``,
:mod:`service.live_feed`) with the name it signed in with (EventSource
cannot send ``X-Operator``; the name is trusted as far as that header is:
within the key that opened the feed). While the stream is open it heartbeats
the operator (:meth:`state.presence.PresenceStore.heartbeat`) after every
blocking read; an operator who just came online gets the escalations waiting
for them (:func:`jobs.desk.came_online`).
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from jobs import desk
from jobs.wiring import Wiring
from service.errors import ApiError
from service.operator_auth import OPERATOR_NAME
from state.presence import PresenceStore

log = logging.getLogger(__name__)


def feed_operator(name: str | None) -> str | None:
    """The live feed's ``operator`` query parameter, checked like ``X-Operator``; ``None`` when absent (no presence). 400 if malformed."""
    if name is None or name == "":
        return None
    if not OPERATOR_NAME.fullmatch(name):
        raise ApiError(400, "operator must be 1-64 letters, digits, spaces or ._@- (starting with a letter or digit)")
    return name


def heartbeat(w: Wiring, tenant_id: str, operator_id: str | None, key_fp: str) -> None:
    """Keep ``operator_id`` online (nothing without one); assign waiting escalations when they just came online.

    A Redis error is logged, not raised: the stream goes on, and presence lapses by itself.
    Keys: :meth:`PresenceStore.heartbeat`; and :func:`jobs.desk.assign_waiting`'s when online now.
    """
    if operator_id is None:
        return
    try:
        if PresenceStore(w.state_redis).heartbeat(tenant_id, operator_id, key_fp, int(time.time() * 1000)):
            desk.came_online(w, tenant_id)
    except RedisError as exc:
        log.warning("presence heartbeat of tenant_id=%s failed: %s", tenant_id, exc.__class__.__name__)
