"""The hosted form a tenant's guide lane walks customers through (``form:`` in the tenants YAML).

A form is a list of pages; a page is a list of fields. Field ids are unique in
the form: the page shows them as HTML ``id``/``name``, screen activity reports
values by them, and agents name them in highlight commands. A page's
``screen_name`` is what the page reports as its screen (``page-2-contact``),
so the agent can tell which page the customer is on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FIELD_ID = r"^[a-z][a-z0-9_]{0,63}$"

FieldType = Literal["text", "date", "select", "radio", "tel", "email", "number", "checkbox"]

SAYABLE_TYPES: frozenset[str] = frozenset({"select", "radio", "checkbox"})
"""Field types whose values may be read out over voice unless the field says otherwise.

Their values are one of the options the form itself lists (the assistant may
read the options anyway); free text, dates, numbers, phone numbers and emails
can carry anything (a date of birth, a beneficiary, an address), so they are
withheld by default. A field overrides the rule with ``sensitive``.
"""


class FormField(BaseModel):
    """One input: ``id`` (snake case), the ``label`` shown and spoken, and its validation."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=FIELD_ID)
    label: str = Field(min_length=1, max_length=120)
    type: FieldType = "text"
    required: bool = True
    options: list[str] = Field(default_factory=list, max_length=50)
    """The choices of a ``select`` or ``radio`` field."""
    pattern: str | None = Field(None, max_length=200)
    """A regular expression the whole value must match (HTML ``pattern``)."""
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=1, le=1000)
    min: float | None = None
    """Least value of a ``number`` field."""
    max: float | None = None
    """Greatest value of a ``number`` field."""
    help: str | None = Field(None, max_length=300)
    sensitive: bool | None = None
    """Whether the value is withheld when the screen is described over voice (the
    voice-AI ``getScreenState``): ``None`` (the default) withholds every type but
    the choice types of :data:`SAYABLE_TYPES`; set ``false`` for a value the
    caller may hear (their own first name), ``true`` for a choice that is
    private (a health answer). The page itself always shows every value."""

    @property
    def is_sensitive(self) -> bool:
        """Whether the value is withheld over voice (see ``sensitive``)."""
        return self.sensitive if self.sensitive is not None else self.type not in SAYABLE_TYPES

    @model_validator(mode="after")
    def _choices(self) -> "FormField":
        if self.type in ("select", "radio") and not self.options:
            raise ValueError(f"field {self.id}: a {self.type} field needs options")
        return self


class FormPage(BaseModel):
    """One page: ``id``, the ``title`` shown, the ``screen_name`` it reports, its fields."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=FIELD_ID)
    title: str = Field(min_length=1, max_length=120)
    screen_name: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")
    fields: list[FormField] = Field(default_factory=list, max_length=40)
    """Empty on a review page (it lists every value for a last check)."""


class FormDefinition(BaseModel):
    """A tenant's multi-page form."""

    model_config = ConfigDict(extra="forbid")

    form_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str = Field(min_length=1, max_length=120)
    pages: list[FormPage] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique(self) -> "FormDefinition":
        ids = [f.id for p in self.pages for f in p.fields]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"field ids must be unique in the form: {', '.join(dupes)}")
        screens = [p.screen_name for p in self.pages]
        if len(set(screens)) != len(screens):
            raise ValueError("page screen_name values must be unique")
        return self

    def fields(self) -> dict[str, FormField]:
        """Every field by id, in page order."""
        return {f.id: f for p in self.pages for f in p.fields}

    def page_number(self, screen_name: str | None, field_ids: list[str] | tuple[str, ...] = ()) -> int | None:
        """Return the 1-based page a screen shows, or ``None``.

        The ``screen_name`` decides when it names a page. A stale or unknown
        name (the page renamed, an old client) falls back to the page holding
        most of ``field_ids`` (the fields the screen reported as changed or
        focused, most telling first).
        """
        for number, page in enumerate(self.pages, start=1):
            if page.screen_name == screen_name:
                return number
        best, best_hits = None, 0
        for number, page in enumerate(self.pages, start=1):
            hits = len({f.id for f in page.fields} & set(field_ids))
            if hits > best_hits:
                best, best_hits = number, hits
        return best

    def page(self, number: int | None) -> FormPage | None:
        """Return page ``number`` (1-based), or ``None`` when out of range."""
        if number is None or not 1 <= number <= len(self.pages):
            return None
        return self.pages[number - 1]
