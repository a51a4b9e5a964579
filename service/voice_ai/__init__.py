"""Voice-AI tools for a voice assistant (VAPI-style): the blueprint :data:`bp` at ``/voice-ai``.

Rooms: :mod:`~service.voice_ai.webhook` (the endpoints, status codes,
idempotency), :mod:`~service.voice_ai.wire` (VAPI's ``tool-calls`` message and
answer), :mod:`~service.voice_ai.auth` (the tenant's secret or signature),
:mod:`~service.voice_ai.tools` (the four tools and the trust model),
:mod:`~service.voice_ai.screen` (what ``getScreenState`` reads out),
:mod:`~service.voice_ai.spec` (the ``tools.json`` definitions). Their Redis
lives in :mod:`state.tool_calls` and :mod:`state.voice_sessions`.
"""

from service.voice_ai.webhook import bp

__all__ = ["bp"]
