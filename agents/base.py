"""The contract between the turn controller and the router and lane agents.

Agents decide; they do no I/O. The controller (``jobs/controller.py``) builds a
:class:`TurnInput` from the loaded state, asks the router for a :class:`Route`,
runs the lane's agent, and commits the returned :class:`AgentResult` (a patch
on the session document plus outbound messages) atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from state.models import Channel, InboundMessage, Lane, SessionState
from state.patch import PatchOp
from state.screen import FormCommand, ScreenState
from state.tenant_config import TenantConfig

if TYPE_CHECKING:
    from agents.nlu.models import Understanding


class AgentError(Exception):
    """Base class of errors raised by the agents package."""


RouteReason = Literal["keyword", "sticky", "handoff", "match", "default"]


class Route(BaseModel):
    """The router's decision for one turn.

    Attributes:
        lane: the lane whose agent runs the turn.
        intent: what the customer wants, e.g. ``opt_out``, ``opt_in``,
            ``help``, ``faq``, ``human``, ``apply``, ``chat``.
        confidence: 0–1.
        reason: why this lane: a carrier ``keyword``, the ``sticky`` lane
            window, an agent's ``handoff``, a strong ``match`` of another
            lane's vocabulary, or the tenant's ``default`` lane.
        evidence: what the decision rests on, for logs and the dashboard: the
            vocabulary entry or FAQ question that matched (``"phrase:sign me
            up"``, ``"faq:What are your opening hours?"``, ``"llm:<model>"``),
            never the customer's own text. ``None`` when nothing matched.
        router: which router decided: the ``deterministic`` rules
            (:mod:`agents.router`) or the tenant's ``llm``
            (:mod:`agents.llm_router`; ``reason`` is then ``match``).
        fallback: why the LLM router fell back to the deterministic route
            (``timeout``, ``rate_limited``, ``api_error``, ``connection_error``,
            ``invalid_output``, ``refused``, ``lane_not_enabled``,
            ``low_confidence``, ``config_error``); ``None`` when it did not.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lane: Lane
    intent: str
    confidence: float = Field(ge=0.0, le=1.0)
    reason: RouteReason
    evidence: str | None = None
    router: Literal["deterministic", "llm"] = "deterministic"
    fallback: str | None = None


class OutboundDraft(BaseModel):
    """A reply the agent wants sent to the customer.

    ``bypass_opt_out`` may be set only for the carrier-mandated answers: the
    opt-out confirmation and the HELP text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)
    to: str | None = None
    """Recipient address; ``None`` answers the conversation's own address."""
    bypass_opt_out: bool = False


class AgentResult(BaseModel):
    """What an agent returns: a patch on the session document, replies, an optional handoff.

    ``handoff`` names another lane; the controller re-routes inside the same
    turn (at most twice) and runs that lane's agent on the patched state.

    ``agent`` says who decided: the lane's ``deterministic`` rules or its
    ``llm`` agent (:mod:`agents.llm_agent`). ``fallback`` names why an LLM
    agent gave the turn to the deterministic agent (``timeout``,
    ``budget_exhausted``, ``invalid_tool_call``, ``too_many_steps``,
    ``guard_failed``, …); ``None`` when it did not.
    """

    model_config = ConfigDict(extra="forbid")

    patch: list[PatchOp] = Field(default_factory=list)
    outbound: list[OutboundDraft] = Field(default_factory=list)
    handoff: Lane | None = None
    commands: list[FormCommand] = Field(default_factory=list)
    """Commands for the customer's form page (highlight a field); pushed after the commit."""
    agent: Literal["deterministic", "llm"] = "deterministic"
    fallback: str | None = None


@dataclass(frozen=True)
class TurnInput:
    """Everything an agent may look at for one turn. Read-only.

    Attributes:
        tenant: the tenant's configuration.
        state: the session document as loaded (already upcast).
        messages: the inbound messages of this turn, in arrival order (people
            split a sentence over several texts; they form one turn).
        text: the messages' texts joined with a space.
        now: aware UTC time of the turn.
        public_base_url: where hosted form links point
            (``{public_base_url}/f/<form_token>``).
        screen: the customer's form screen (``state.form_token``'s latest
            activity), ``None`` before the form was opened.
    """

    tenant: TenantConfig
    state: SessionState
    messages: tuple[InboundMessage, ...]
    text: str
    now: datetime
    public_base_url: str
    screen: ScreenState | None = None

    @property
    def channel(self) -> Channel:
        """Where this turn's replies go: the channel of its last message (``voice`` replies are spoken)."""
        return self.messages[-1].channel if self.messages else self.state.channel

    @property
    def expected(self) -> str | None:
        """What the AI's last reply asked for (``state.dialogue.expected``: ``name``, ``phone``, …), or ``None``."""
        dialogue = getattr(self.state, "dialogue", None)
        return getattr(dialogue, "expected", None)

    @property
    def languages(self) -> tuple[str, ...]:
        """The tenant's languages (ISO 639-1, first is its main one); ``("en",)`` when it declares none."""
        return tuple(getattr(self.tenant, "languages", None) or ("en",))

    def with_state(self, state: SessionState) -> "TurnInput":
        """This turn with ``state`` (the controller's state after a lane change or an agent's patch).

        The understanding already computed is carried over while what it was
        computed from (:attr:`expected`; text, tenant and languages are the
        turn's) is unchanged, so the router and the lane agents of one turn
        share one parse instead of understanding the text once per hop.
        """
        moved = replace(self, state=state)
        cached = self.__dict__.get("understanding")
        if cached is not None and moved.expected == self.expected:
            moved.__dict__["understanding"] = cached  # what cached_property stores; frozen only guards __setattr__
        return moved

    @cached_property
    def understanding(self) -> Understanding:
        """The turn's text understood (:func:`agents.nlu.understand`), computed once per turn and shared.

        Read by the router, the lane agents and the LLM prompts, so every
        path works from the same parse. Uses :attr:`text`, :attr:`tenant`,
        :attr:`expected` and :attr:`languages`. Pure CPU (well under a
        millisecond once :func:`agents.nlu.warm` ran).
        """
        from agents.nlu import understand

        return understand(self.text, self.tenant, expected=self.expected, languages=self.languages)


class Agent(Protocol):
    """A lane agent: a pure function of the turn input and the route."""

    def __call__(self, turn: TurnInput, route: Route) -> AgentResult: ...
