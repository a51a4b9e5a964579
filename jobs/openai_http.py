"""The official ``openai`` client behind the agents' LLM ports.

:class:`OpenAIChatCompletion` is the router's :class:`agents.llm_router.ChatCompletion`
(``__call__``) and, through :meth:`OpenAIChatCompletion.chat`, the lane agents'
tool-calling :class:`agents.llm_agent.ChatWithTools`; both share one
reserve → call → settle path against the tenant's budget.

In development and tests ``LANEWAY_OPENAI_BASE_URL`` names a local stand-in
(``laneway openai-standin``) that speaks the Chat Completions API. Clients
never retry (``max_retries=0``): a turn holds the conversation's lease, and
the router falls back to the deterministic route instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from datetime import datetime
from typing import Any, Callable

import openai

from agents.llm_agent import AssistantTurn, ToolCall
from agents.llm_router import LlmCallError
from core import metrics
from core.prices import MICRO_USD, ModelPrice
from core.settings import Settings
from state.errors import ConfigError
from state.models import utcnow
from state.tenant_config import TenantConfig
from state.usage import CallUsage, UsageLedger

logger = logging.getLogger(__name__)

PROMPT_CHARS_PER_TOKEN = 3
"""Characters per prompt token assumed when reserving a call's worst case
(OpenAI's tokenizers average about 4 for English; 3 over-reserves)."""
REFUNDED_FAILURES = frozenset({"rate_limited", "connection_error", "api_error", "config_error"})
"""Failures after which nothing was generated: the reservation is refunded.
After a timeout the model may have worked (and billed), so it stays spent."""

OPENAI_BASE_URL = "https://api.openai.com/v1"
"""Used when ``LANEWAY_OPENAI_BASE_URL`` is unset (passed explicitly, so the
client never falls back to the ``OPENAI_BASE_URL`` environment variable)."""


class OpenAIClientFactory:
    """``factory(tenant) -> openai.OpenAI``, cached per tenant until its key or timeout changes.

    Each client talks to ``settings.openai_base_url`` (else OpenAI) with
    ``max_retries=0``, a connect timeout of ``settings.openai_connect_timeout_s``
    and read/write/pool timeouts of ``min(tenant.llm.timeout_s,
    settings.openai_timeout_s)`` seconds. httpx's read timeout bounds each wait
    for bytes, not the whole response.

    Args:
        settings: the process settings (``env`` decides whether dev secrets apply).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, tuple[tuple[str, float], openai.OpenAI]] = {}
        self._lock = threading.Lock()

    def __call__(self, tenant: TenantConfig) -> openai.OpenAI:
        """Return the tenant's client.

        Raises:
            ConfigError: the tenant has no ``llm`` section, or its API key's
                environment variable is unset (and no dev value applies).
        """
        if tenant.llm is None:
            raise ConfigError(f"tenant {tenant.tenant_id!r} has no llm settings")
        api_key = tenant.llm.api_key.resolve(self.settings.env)
        read_s = min(tenant.llm.timeout_s, self.settings.openai_timeout_s)
        fingerprint = (hashlib.sha256(api_key.encode()).hexdigest(), read_s)
        with self._lock:
            cached = self._clients.get(tenant.tenant_id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            client = openai.OpenAI(
                base_url=self.settings.openai_base_url or OPENAI_BASE_URL,
                api_key=api_key,
                max_retries=0,
                timeout=openai.Timeout(read_s, connect=self.settings.openai_connect_timeout_s),
            )
            self._clients[tenant.tenant_id] = (fingerprint, client)
            return client


class OpenAIChatCompletion:
    """The :class:`agents.llm_router.ChatCompletion` port over ``client.chat.completions.create``, within budget.

    Each call reserves its worst-case cost from the tenant's monthly budget
    first (prompt size at :data:`PROMPT_CHARS_PER_TOKEN`, plus
    ``llm.max_completion_tokens``, at the model's price), is made only if the
    reservation fits, and is then settled with OpenAI's ``usage``
    (:class:`state.usage.UsageLedger`: per-day usage, monthly spend, alerts).

    Args:
        client_for: ``client_for(tenant) -> openai.OpenAI`` (an
            :class:`OpenAIClientFactory`, or a test's own client).
        ledger: where usage and spend are recorded.
        prices: the price table (``settings.llm_prices``).
        clock: returns an aware UTC datetime (the budget month and usage day).
    """

    def __init__(
        self,
        client_for: Callable[[TenantConfig], openai.OpenAI],
        ledger: UsageLedger,
        prices: dict[str, ModelPrice],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client_for = client_for
        self.ledger = ledger
        self.prices = prices
        self.clock = clock

    def __call__(
        self, tenant: TenantConfig, *, model: str, messages: list[dict[str, str]], response_format: dict[str, Any]
    ) -> str:
        """Send one Chat Completions request within budget; return the first choice's content.

        Keys: the tenant's ``spend:<month>``, ``usage:<day>`` and alert keys
        (two scripts: reserve before, settle after).

        Raises:
            LlmCallError: ``config_error`` (no API key, no ``llm`` section, no
                price for ``model``), ``budget_exhausted`` (the call could pass
                the month's budget: not made), ``timeout``, ``rate_limited``
                (429), ``connection_error``, ``api_error`` (other HTTP errors),
                ``refused`` (the model's refusal), or ``invalid_output`` (no
                choice or content, ``finish_reason`` other than ``stop``).
            redis.RedisError: the ledger is unreachable (no call is made).
        """
        completion = self._budgeted(tenant, model, messages=messages, response_format=response_format)
        return _content(completion)

    def chat(
        self, tenant: TenantConfig, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AssistantTurn:
        """The :class:`agents.llm_agent.ChatWithTools` port: one tool-calling request, within the same budget.

        Reserved, made and settled exactly like :meth:`__call__` (same keys).

        Returns:
            The assistant's turn: its tool calls (``finish_reason`` ``tool_calls``)
            or its text (``stop``), with the tokens used.

        Raises:
            LlmCallError: as :meth:`__call__`; ``invalid_output`` also for an
                answer with neither text nor tool calls, or one cut off (``length``).
            redis.RedisError: the ledger is unreachable (no call is made).
        """
        completion = self._budgeted(tenant, model, messages=messages, tools=tools)
        return _assistant_turn(completion)

    def _budgeted(self, tenant: TenantConfig, model: str, **request: Any):
        """Reserve the call's worst case, make it, settle it with OpenAI's ``usage``; return the completion.

        ``request`` holds ``messages`` and ``response_format`` or ``tools``
        (all counted in the prompt's size).
        """
        llm, price = tenant.llm, self.prices.get(model)
        if llm is None or price is None:
            raise LlmCallError("config_error", f"no llm settings or no price for model {model!r}")
        now = self.clock()
        prompt_chars = sum(len(json.dumps(value)) for value in request.values())
        worst_case = price.cost_micro_usd(math.ceil(prompt_chars / PROMPT_CHARS_PER_TOKEN), llm.max_completion_tokens)
        budget = None if llm.monthly_budget_usd is None else round(llm.monthly_budget_usd * MICRO_USD)
        reservation = self.ledger.reserve(tenant.tenant_id, now, worst_case, budget)
        if reservation is None:
            raise LlmCallError("budget_exhausted", f"month's budget of {llm.monthly_budget_usd} USD reached")
        started = time.monotonic()
        usage = CallUsage(model, 0, 0, 0, worst_case)
        try:
            completion = self._create(tenant, model=model, max_completion_tokens=llm.max_completion_tokens, **request)
            if completion.usage is not None:
                prompt, generated = completion.usage.prompt_tokens, completion.usage.completion_tokens
                usage = CallUsage(model, prompt, generated, 0, price.cost_micro_usd(prompt, generated))
            return completion
        except LlmCallError as exc:
            if exc.reason in REFUNDED_FAILURES:
                usage = CallUsage(model, 0, 0, 0, 0)
            raise
        finally:
            latency_ms = round((time.monotonic() - started) * 1000)
            usage = CallUsage(usage.model, usage.prompt_tokens, usage.completion_tokens, latency_ms, usage.cost_micro_usd)
            metrics.LLM_TOKENS.labels(tenant.tenant_id, model, "prompt").inc(usage.prompt_tokens)
            metrics.LLM_TOKENS.labels(tenant.tenant_id, model, "completion").inc(usage.completion_tokens)
            metrics.LLM_COST_USD.labels(tenant.tenant_id, model).inc(usage.cost_micro_usd / MICRO_USD)
            for percent in self.ledger.settle(reservation, usage, self.clock()) + reservation.alerts:
                logger.warning("tenant_id=%s reached %d%% of its monthly LLM budget", tenant.tenant_id, percent)

    def _create(self, tenant: TenantConfig, **request: Any):
        try:
            client = self.client_for(tenant)
        except ConfigError as exc:
            raise LlmCallError("config_error", str(exc)) from exc
        try:
            return client.chat.completions.create(**request)
        except openai.APITimeoutError as exc:
            raise LlmCallError("timeout", type(exc).__name__) from exc
        except openai.RateLimitError as exc:
            raise LlmCallError("rate_limited", f"HTTP {exc.status_code}") from exc
        except openai.APIConnectionError as exc:
            raise LlmCallError("connection_error", type(exc).__name__) from exc
        except openai.APIStatusError as exc:
            raise LlmCallError("api_error", f"HTTP {exc.status_code}") from exc
        except openai.OpenAIError as exc:
            raise LlmCallError("api_error", type(exc).__name__) from exc


def _content(completion) -> str:
    """The first choice's content. Raises :class:`LlmCallError` (``refused``, ``invalid_output``)."""
    if not completion.choices:
        raise LlmCallError("invalid_output", "no choices")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise LlmCallError("refused")
    if choice.finish_reason != "stop" or not choice.message.content:
        raise LlmCallError("invalid_output", f"finish_reason={choice.finish_reason}")
    return choice.message.content


def _assistant_turn(completion) -> AssistantTurn:
    """The first choice as an :class:`AssistantTurn`. Raises :class:`LlmCallError` (``refused``, ``invalid_output``)."""
    if not completion.choices:
        raise LlmCallError("invalid_output", "no choices")
    choice = completion.choices[0]
    message = choice.message
    if message.refusal:
        raise LlmCallError("refused")
    usage = completion.usage
    prompt, generated = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (0, 0)
    calls = tuple(
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "")
        for call in (message.tool_calls or [])
        if getattr(call, "function", None) is not None
    )
    if calls and choice.finish_reason in ("tool_calls", "stop"):
        return AssistantTurn(content=message.content, tool_calls=calls, prompt_tokens=prompt, completion_tokens=generated)
    if choice.finish_reason != "stop" or not message.content:
        raise LlmCallError("invalid_output", f"finish_reason={choice.finish_reason}")
    return AssistantTurn(content=message.content, prompt_tokens=prompt, completion_tokens=generated)
