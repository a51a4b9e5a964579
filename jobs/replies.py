"""What one turn accumulates: the replies it sends and what it decided on the way.

The controller (:mod:`jobs.controller`) makes one :class:`Replies` per turn;
the lanes' answers and the events' effects (:mod:`jobs.event_effects`) are
added to it, and the commit writes its replies to the outbox (or speaks them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.base import Route
from state.models import Author, InboundMessage, Lane

if TYPE_CHECKING:
    from state.forms import FormCommand


@dataclass
class Reply:
    """One message a turn produces: to the outbox, or spoken (``spoken_for`` = the speech's provider id)."""

    text: str
    to: str
    from_: str
    author: Author = "ai"
    author_id: str | None = None
    lane: Lane | None = None
    bypass_opt_out: bool = False
    spoken_for: str | None = None
    template: str | None = None
    """The WhatsApp template an operator chose for outside the window (``data["template"]``)."""
    media_url: str | None = None
    """An operator's attachment (``data["media_url"]``), sent as Twilio's ``MediaUrl``."""


@dataclass
class Replies:
    """What a turn accumulates while the controller works through its inbox entries."""

    replies: list[Reply] = field(default_factory=list)
    commands: list["FormCommand"] = field(default_factory=list)
    route: Route | None = None
    router_fallback: str | None = None
    agents: list[str] = field(default_factory=list)
    agent_fallbacks: list[tuple[str, str]] = field(default_factory=list)
    csat: list[tuple[str, str | int | None]] = field(default_factory=list)
    """What the turn did to the CSAT survey, in order (:mod:`state.csat`): ``("open", operator_id)`` (a close
    sent the question), ``("answer", score)``, ``("drop", None)`` (the customer wrote something else)."""

    def add(
        self, text: str, entry: InboundMessage, *, lane: Lane | None, to: str | None = None,
        author: Author = "ai", author_id: str | None = None, bypass_opt_out: bool = False,
        spoken_for: str | None = None,
    ) -> None:
        """Add a reply answering ``entry``: to ``to`` (default the customer), from the tenant number ``entry.to``."""
        self.replies.append(
            Reply(text, to or entry.from_, entry.to, author, author_id, lane, bypass_opt_out, spoken_for)
        )
