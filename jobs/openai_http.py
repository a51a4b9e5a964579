"""The official ``openai`` client behind the agents' LLM port (:class:`agents.llm_router.ChatCompletion`).

In development and tests ``LANEWAY_OPENAI_BASE_URL`` names a local stand-in
(``laneway openai-standin``) that speaks the Chat Completions API. Clients
never retry (``max_retries=0``): a turn holds the conversation's lease, and
the router falls back to the deterministic route instead.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, Callable

import openai

from agents.llm_router import LlmCallError
from state.errors import ConfigError
from state.settings import Settings
from state.tenant_config import TenantConfig

logger = logging.getLogger(__name__)

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
    """The :class:`agents.llm_router.ChatCompletion` port over ``client.chat.completions.create``.

    Args:
        client_for: ``client_for(tenant) -> openai.OpenAI`` (an
            :class:`OpenAIClientFactory`, or a test's own client).
    """

    def __init__(self, client_for: Callable[[TenantConfig], openai.OpenAI]) -> None:
        self.client_for = client_for

    def __call__(
        self, tenant: TenantConfig, *, model: str, messages: list[dict[str, str]], response_format: dict[str, Any]
    ) -> str:
        """Send one Chat Completions request; return the first choice's content.

        Raises:
            LlmCallError: ``config_error`` (no API key), ``timeout``,
                ``rate_limited`` (429), ``connection_error``, ``api_error``
                (other HTTP errors), ``refused`` (the model's refusal), or
                ``invalid_output`` (no choice or content, ``finish_reason``
                other than ``stop``: cut off, tool calls).
        """
        try:
            client = self.client_for(tenant)
        except ConfigError as exc:
            raise LlmCallError("config_error", str(exc)) from exc
        try:
            completion = client.chat.completions.create(model=model, messages=messages, response_format=response_format)
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
        if not completion.choices:
            raise LlmCallError("invalid_output", "no choices")
        choice = completion.choices[0]
        if choice.message.refusal:
            raise LlmCallError("refused")
        if choice.finish_reason != "stop" or not choice.message.content:
            raise LlmCallError("invalid_output", f"finish_reason={choice.finish_reason}")
        if completion.usage is not None:
            logger.debug(
                "openai tenant_id=%s model=%s prompt_tokens=%d completion_tokens=%d",
                tenant.tenant_id, completion.model, completion.usage.prompt_tokens, completion.usage.completion_tokens,
            )
        return choice.message.content
