"""Every reply's wording, per language and per channel (text or voice).

A template is looked up by key (``ask_last_name``) in the conversation's
language, and rendered in its **voice** form on a call and its **text** form
otherwise (SMS, WhatsApp). A voice form never says "Reply" or "Text"; it says
"say yes", "I can connect you". Lookup order, first found wins:

1. the tenant's override in that language (``translations.<lang>.templates``:
   ``<key>.voice`` on a call, then ``<key>``);
2. the built-in catalog in that language (:mod:`agents.templates.catalog`):
   the voice form on a call, then the text form;
3. the same two steps in English.

Placeholders are bare names (``{first}``, ``{link}``); a name with no value
renders empty, so a tenant's override can never make a reply fail.
"""

from __future__ import annotations

import string
from typing import Final

from agents.templates.catalog import CATALOG, Wording
from state.models import Channel
from state.tenant_config import TenantConfig

FALLBACK_STEMS: Final = (
    "Sorry, I didn't catch that",
    "Sorry, I'm still not following",
    "I'm sorry, I can't help with that one",
    "I don't have an answer to that one",
    "Perdón, no le entendí",
    "Perdón, sigo sin entender",
    "Lo siento, no puedo ayudar con eso",
    "No tengo una respuesta para eso",
)
"""How every fallback reply (not understood, no answer) begins, in each built-in language:
for counting fallbacks (``laneway eval``). Keep in step with the ``fallback_*`` and ``no_answer`` templates."""

FALLBACK_LANGUAGE: Final = "en"
"""The catalog's complete language: every key has an English form."""


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


_FORMATTER = string.Formatter()


def fill(template: str, values: dict[str, object]) -> str:
    """Return ``template`` with its ``{name}`` placeholders replaced (unknown names empty). Pure."""
    return _FORMATTER.vformat(template, (), _Blank({k: "" if v is None else str(v) for k, v in values.items()}))


def _builtin(language: str, key: str, voice: bool) -> str | None:
    wording: Wording | None = CATALOG.get(language, {}).get(key)
    if wording is None:
        return None
    if isinstance(wording, str):
        return wording
    text, spoken = wording
    return spoken if voice and spoken is not None else text


def template(tenant: TenantConfig, language: str | None, channel: Channel, key: str) -> str:
    """Return the unrendered template ``key`` for ``tenant`` in ``language`` on ``channel``.

    Raises:
        KeyError: no built-in template has ``key`` (a bug in the caller).
    """
    voice = channel == "voice"
    for lang in dict.fromkeys([language or tenant.default_language, FALLBACK_LANGUAGE]):
        pack = tenant.translations.get(lang)
        if pack is not None:
            if voice and f"{key}.voice" in pack.templates:
                return pack.templates[f"{key}.voice"]
            if key in pack.templates:
                return pack.templates[key]
        found = _builtin(lang, key, voice)
        if found is not None:
            return found
    raise KeyError(f"no template {key!r}")


def render(tenant: TenantConfig, language: str | None, channel: Channel, key: str, /, **values: object) -> str:
    """Return template ``key`` rendered with ``values`` (see the module doc for the lookup). Pure.

    ``persona`` and ``display_name`` are always available as placeholders.
    """
    pack = tenant.translations.get(language or tenant.default_language)
    persona = (pack.persona if pack is not None else None) or tenant.persona
    base = {"persona": persona, "display_name": tenant.display_name}
    return fill(template(tenant, language, channel, key), {**base, **values})


def english(key: str) -> str:
    """Return the built-in English text form of ``key`` (for constants and tests)."""
    text = _builtin(FALLBACK_LANGUAGE, key, voice=False)
    if text is None:
        raise KeyError(f"no template {key!r}")
    return text


def has_language(language: str) -> bool:
    """Return whether the built-in catalog speaks ``language``."""
    return language in CATALOG


__all__ = ["FALLBACK_LANGUAGE", "FALLBACK_STEMS", "english", "fill", "has_language", "render", "template"]
