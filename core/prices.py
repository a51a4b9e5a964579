"""The LLM price table: USD per 1,000 tokens per model, and the micro-USD unit costs are counted in.

Plumbing, not state: :mod:`core.settings` reads ``LANEWAY_LLM_PRICES`` into it,
and :class:`state.usage.UsageLedger` charges with it.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

MICRO_USD = 1_000_000


class ModelPrice(BaseModel):
    """A model's price, USD per 1,000 tokens (one row of the price table, ``LANEWAY_LLM_PRICES``)."""

    model_config = ConfigDict(extra="forbid")

    prompt_usd_per_1k_tokens: float = Field(ge=0)
    completion_usd_per_1k_tokens: float = Field(ge=0)

    def cost_micro_usd(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Cost of a call in micro-USD, rounded up (never under-charge)."""
        usd = (prompt_tokens * self.prompt_usd_per_1k_tokens + completion_tokens * self.completion_usd_per_1k_tokens) / 1000
        return math.ceil(round(usd * MICRO_USD, 6))


DEFAULT_LLM_PRICES: dict[str, ModelPrice] = {
    name: ModelPrice(prompt_usd_per_1k_tokens=prompt, completion_usd_per_1k_tokens=completion)
    for name, prompt, completion in [
        ("gpt-4o-mini", 0.00015, 0.0006),
        ("gpt-4o", 0.0025, 0.01),
        ("gpt-4.1-nano", 0.0001, 0.0004),
        ("gpt-4.1-mini", 0.0004, 0.0016),
        ("gpt-4.1", 0.002, 0.008),
    ]
}
"""OpenAI's published list prices when this table was written; set
``LANEWAY_LLM_PRICES`` (JSON: model → prices) for others or for changes. A
model without a price is never called (its cost could not be counted)."""
