"""The operator tools' tenant settings: canned responses and the CSAT survey (top-level fields of :class:`TenantConfig`).

In the tenants YAML::

    canned_responses:
      - shortcut: hours
        title: Opening hours
        text: "Hi {first_name}, we are open 9 to 5, Monday to Friday."
    csat:
      enabled: true
      question: "How did we do? Reply 1 (poor) to 5 (great)."

A canned response's ``text`` may use the variables of :data:`CANNED_VARIABLES`
only (``{first_name}`` …); ``{{`` and ``}}`` are literal braces. Unknown
variables, bad braces and repeated shortcuts are refused when the config is
validated, naming the entry.
"""

from __future__ import annotations

import string
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

CANNED_VARIABLES: Final = {
    "first_name": "the customer's first name (slot first_name)",
    "last_name": "the customer's last name (slot last_name)",
    "full_name": "first and last name, as far as known",
    "phone_last4": "the last four digits of the customer's number",
    "form_link": "the link to the conversation's hosted form (only once a form was opened)",
    "form_page": "the form page the customer is on (its title)",
    "business_name": "the tenant's display_name",
    "operator": "the name of the operator sending it (X-Operator)",
}
"""The variables a canned response may use, and what each renders to (:mod:`state.canned`)."""
SHORTCUT = r"^[a-z0-9][a-z0-9_-]{0,31}$"
MAX_CANNED_RESPONSES = 200


def template_variables(text: str) -> list[str]:
    """The ``{name}`` variables ``text`` uses, in order (``string.Formatter`` syntax).

    Raises:
        ValueError: unbalanced braces, a positional ``{}``, or a format spec/attribute/index (``{a.b}``, ``{a:>3}``).
    """
    names = []
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name or spec or conversion or not name.isidentifier():
            raise ValueError(f"{{{name}}} is not a variable: write {{first_name}} and the like, {{{{ for a brace")
        names.append(name)
    return names


class CannedResponse(BaseModel):
    """One saved reply an operator inserts by typing ``/<shortcut>`` in the reply box."""

    model_config = ConfigDict(extra="forbid")

    shortcut: str = Field(pattern=SHORTCUT)
    """What the operator types after ``/`` (lower case letters, digits, ``_``, ``-``; at most 32)."""
    title: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=1600)

    @field_validator("text")
    @classmethod
    def _known_variables(cls, text: str) -> str:
        for name in template_variables(text):
            if name not in CANNED_VARIABLES:
                raise ValueError(f"unknown variable {{{name}}}; known: {', '.join('{' + v + '}' for v in CANNED_VARIABLES)}")
        return text


class CsatSettings(BaseModel):
    """The one-question satisfaction survey texted after an operator closes a conversation (:mod:`state.csat`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    question: str = Field(
        "Thanks for contacting {business_name}. How did we do? Reply with a number from 1 (poor) to 5 (great).",
        min_length=1, max_length=320,
    )
    """The survey text; may use ``{business_name}``."""
    thanks: str = Field("Thank you for your feedback!", min_length=1, max_length=320)
    """The answer to a recognised score."""
    answer_within_s: int = Field(24 * 3600, ge=60, le=7 * 24 * 3600)
    """How long after the survey the customer's next message is read as a score (seconds)."""

    @field_validator("question")
    @classmethod
    def _business_name_only(cls, text: str) -> str:
        for name in template_variables(text):
            if name != "business_name":
                raise ValueError(f"unknown variable {{{name}}}; the question may use {{business_name}} only")
        return text


def check_shortcuts(canned: list[CannedResponse]) -> None:
    """Raise ``ValueError`` naming a shortcut that is listed twice."""
    seen: set[str] = set()
    for i, response in enumerate(canned):
        if response.shortcut in seen:
            raise ValueError(f"canned_responses.{i}: shortcut {response.shortcut!r} is listed twice")
        seen.add(response.shortcut)
