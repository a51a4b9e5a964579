"""Canned responses rendered for one conversation (pure, no Redis).

The tenant's ``canned_responses`` (:class:`state.desk_tools_config.CannedResponse`)
are rendered server-side from what the conversation already knows, so the
operator sees, and sends, the final text. A variable with no value (no first
name yet, no form opened) renders empty, the space or comma it leaves is
tidied, and it is listed in ``missing`` so the dashboard can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from state.desk_tools_config import CannedResponse, template_variables
from state.models import SessionState

_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.!?;:])")
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class RenderedResponse:
    """One canned response for a conversation: ``text`` as it would be sent, ``missing`` variables with no value."""

    shortcut: str
    title: str
    text: str
    template: str
    missing: tuple[str, ...]

    def as_json(self) -> dict:
        return {"shortcut": self.shortcut, "title": self.title, "text": self.text, "template": self.template,
                "missing": list(self.missing)}


def variables_for(
    state: SessionState, *, business_name: str, operator: str, form_link: str | None, form_page: str | None,
) -> dict[str, str]:
    """The value of every :data:`state.desk_tools_config.CANNED_VARIABLES` for this conversation (``""`` when unknown)."""
    slots = state.slots
    first, last = (slots.get("first_name") or "").strip(), (slots.get("last_name") or "").strip()
    digits = re.sub(r"\D", "", state.conversation_id)
    values = {
        "first_name": first,
        "last_name": last,
        "full_name": " ".join(v for v in (first, last) if v),
        "phone_last4": digits[-4:] if len(digits) >= 4 else "",
        "form_link": form_link or "",
        "form_page": form_page or "",
        "business_name": business_name,
        "operator": operator,
    }
    return values


def render(response: CannedResponse, values: dict[str, str]) -> RenderedResponse:
    """Render ``response`` with ``values`` (:func:`variables_for`); unknown values render empty and are ``missing``."""
    used = template_variables(response.text)
    missing = tuple(dict.fromkeys(name for name in used if not values.get(name)))
    text = response.text.format_map({name: values.get(name, "") for name in used})
    if missing:
        text = _SPACES.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", text)).strip()
    return RenderedResponse(response.shortcut, response.title, text, response.text, missing)


def search(responses: list[CannedResponse], query: str) -> list[CannedResponse]:
    """The responses matching ``query`` (case-insensitive), shortcut prefix matches first, then title/text ones."""
    q = query.strip().lstrip("/").casefold()
    if not q:
        return list(responses)
    prefix = [r for r in responses if r.shortcut.startswith(q)]
    rest = [r for r in responses if r not in prefix and (q in r.shortcut or q in r.title.casefold() or q in r.text.casefold())]
    return prefix + rest
