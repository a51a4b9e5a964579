"""What the customer's form screen shows, and commands for it: the pure models.

:class:`ScreenState` is what agents read (the seeds' ``get_screen_state``):
the current page, the values, what changed since the previous activity, how
fresh it is. :class:`FormCommand` is what they ask the page to do (the seeds'
``highlight_field``). Storage is :mod:`state.forms`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from state.form_definition import FormDefinition

FRESH_S = 10.0
"""Screen state younger than this many seconds is ``is_fresh``."""

ActivityAction = Literal["load", "field_change", "page_change", "submit"]


class FormSession(BaseModel):
    """A hosted form session: whose it is and where its link was sent."""

    model_config = ConfigDict(extra="forbid")

    form_token: str
    tenant_id: str
    conversation_id: str
    """The customer's address: the conversation whose agents guide this form."""
    phone: str | None = None
    """Where the link is texted (E.164)."""
    created_at: AwareDatetime
    submitted_at: AwareDatetime | None = None


class ScreenActivity(BaseModel):
    """One report from the form page: what the screen shows after an action.

    ``at`` is set by the server when the report arrives (the page's clock is
    not trusted). ``fields`` are every value on the form so far, by field id.
    """

    model_config = ConfigDict(extra="forbid")

    screen_name: str = Field(min_length=1, max_length=80)
    page: int | None = Field(None, ge=1, le=100)
    fields: dict[str, str] = Field(default_factory=dict, max_length=200)
    action: ActivityAction
    field_id: str | None = Field(None, max_length=64)
    """The field the action was on (a ``field_change``), if any."""
    at: AwareDatetime


class FieldChange(BaseModel):
    """A field whose value differs from the previous activity's: ``from`` → ``to``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field_id: str
    from_: str | None = Field(alias="from")
    to: str | None


class ScreenState(BaseModel):
    """What an agent knows of the customer's screen (the seeds' ``get_screen_state``).

    ``page_number`` comes from the screen name, or from the changed fields when
    the name is stale; ``seconds_since_update`` counts from the last activity.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    screen_name: str
    page_number: int | None
    page_id: str | None
    page_title: str | None
    page_count: int | None
    fields: dict[str, str]
    changed_fields: list[FieldChange]
    seconds_since_update: float
    is_fresh: bool
    submitted: bool
    last_action: ActivityAction
    field_id: str | None
    updated_at: AwareDatetime


class FormCommand(BaseModel):
    """A command for the form page: highlight ``field_id`` (in yellow, with ``label``)."""

    model_config = ConfigDict(extra="forbid")

    command_id: str = Field(min_length=1, max_length=80)
    """Idempotency key: one command per id, whoever pushes it twice (an agent's turn id, a tool call id)."""
    action: Literal["highlight"] = "highlight"
    field_id: str = Field(min_length=1, max_length=64)
    label: str = Field("", max_length=60)
    created_at: AwareDatetime



def screen_state_of(
    latest: ScreenActivity,
    previous: ScreenActivity | None,
    definition: FormDefinition | None,
    now: datetime,
    submitted: bool = False,
) -> ScreenState:
    """Build a :class:`ScreenState` from the last two activities (pure).

    ``changed_fields`` lists every field whose value differs between
    ``previous`` and ``latest`` (none without a previous activity).
    """
    before = previous.fields if previous else latest.fields
    changed = [
        FieldChange(field_id=k, from_=before.get(k), to=latest.fields.get(k))
        for k in dict.fromkeys([*latest.fields, *before])
        if before.get(k) != latest.fields.get(k)
    ]
    hints = [c.field_id for c in changed] + ([latest.field_id] if latest.field_id else [])
    number = definition.page_number(latest.screen_name, hints) if definition else latest.page
    if number is None and definition is not None:
        number = latest.page
    page = definition.page(number) if definition else None
    age_s = max(0.0, (now - latest.at).total_seconds())
    return ScreenState(
        screen_name=latest.screen_name,
        page_number=number,
        page_id=page.id if page else None,
        page_title=page.title if page else None,
        page_count=len(definition.pages) if definition else None,
        fields=dict(latest.fields),
        changed_fields=changed,
        seconds_since_update=round(age_s, 3),
        is_fresh=age_s < FRESH_S,
        submitted=submitted or latest.action == "submit",
        last_action=latest.action,
        field_id=latest.field_id,
        updated_at=latest.at,
    )

