"""The guide lane once the form link is out: guiding page by page from the live screen.

The customer fills the hosted form (``/f/<form_token>``) while texting or
talking with the guide. Each turn the guide reads :class:`state.screen.ScreenState`
(the page the screen shows, its values, what changed since the previous
activity) and answers in this order:

1. the form was submitted: thanks, and nothing more to do;
2. a value the customer changed: "I see you changed <label> from X to Y.";
3. what the current page holds so far, read back for confirmation: "I see
   your first name is Dana." (dates and other sensitive values are only said
   to be filled, never read back);
4. what comes next: the first empty required field of the page ("Next is
   your date of birth.") with a highlight command for it, or, when the page
   is complete, the next page ("Tap Next for Contact details.") or, on the
   last page, "Check your answers and tap Submit."

A "no" to a read-back asks which value to fix. Before the customer opens the
link there is no screen; the guide says where the link went.
"""

from __future__ import annotations

from agents.answers import is_no
from agents.base import AgentResult, OutboundDraft, TurnInput
from state.form_definition import FormDefinition, FormField, FormPage
from state.screen import FormCommand, ScreenState

SUBMITTED = "Your application is submitted. Thank you{name}! We'll be in touch soon."
CHANGED = "I see you changed {label} from {before} to {after}."
FILLED = "I see {items}."
NEXT_FIELD = "Next is {label}."
NEXT_PAGE = "That page is complete. Tap Next for {title}."
REVIEW = "Please check your answers and tap Submit."
WHICH_TO_FIX = "No problem. Which answer should we fix? I'll point it out on your screen."
NOT_OPENED = "Open the link I texted you, and I'll guide you through each page."

SENSITIVE_TYPES = frozenset({"date"})
"""Field types whose values are never read back (a date of birth): "is filled in" instead."""

READ_BACK_MAX = 3
"""At most this many values are read back in one reply (the most recent first)."""

HIGHLIGHT_LABEL_CHARS = 40


def _phrase(field: FormField) -> str:
    """"your date of birth" for a field labelled "Date of birth"."""
    label = field.label.rstrip(":?").strip()
    return f"your {label[0].lower()}{label[1:]}" if label else field.id


def _read_back(field: FormField, value: str) -> str:
    if field.type in SENSITIVE_TYPES:
        return f"{_phrase(field)} is filled in"
    return f"{_phrase(field)} is {value}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _highlight(turn: TurnInput, field: FormField) -> FormCommand:
    """A highlight of ``field``; the controller replaces ``command_id`` with the committed turn's id."""
    return FormCommand(command_id="turn", field_id=field.id, label=field.label[:HIGHLIGHT_LABEL_CHARS],
                       created_at=turn.now)


def guide_from_screen(turn: TurnInput, form: FormDefinition, screen: ScreenState | None, first_name: str | None) -> AgentResult:
    """Answer from the customer's screen (see the module doc). Pure.

    Returns:
        One reply, and at most one highlight command (the next field, or the
        first filled field of the page after a "no").
    """
    if screen is None:
        return AgentResult(outbound=[OutboundDraft(text=NOT_OPENED)])
    if screen.submitted:
        name = f", {first_name}" if first_name else ""
        return AgentResult(outbound=[OutboundDraft(text=SUBMITTED.format(name=name))])

    fields = form.fields()
    page: FormPage | None = form.page(screen.page_number)
    page_fields = page.fields if page else []
    sentences: list[str] = []

    if is_no(turn.text):
        filled = [f for f in page_fields if screen.fields.get(f.id)]
        commands = [_highlight(turn, filled[0])] if filled else []
        return AgentResult(outbound=[OutboundDraft(text=WHICH_TO_FIX)], commands=commands)

    corrections = [c for c in screen.changed_fields if c.from_ and c.to and c.field_id in fields]
    for change in corrections[:1]:
        field = fields[change.field_id]
        if field.type in SENSITIVE_TYPES:
            sentences.append(f"I see you changed {_phrase(field)}.")
        else:
            sentences.append(CHANGED.format(label=_phrase(field), before=change.from_, after=change.to))
    corrected = {c.field_id for c in corrections[:1]}

    recent = [c.field_id for c in reversed(screen.changed_fields)]
    order = {fid: i for i, fid in enumerate(recent)}
    filled = sorted(
        (f for f in page_fields if screen.fields.get(f.id) and f.id not in corrected),
        key=lambda f: order.get(f.id, len(order)),
    )[:READ_BACK_MAX]
    filled.sort(key=lambda f: page_fields.index(f))
    if filled:
        sentences.append(FILLED.format(items=_join([_read_back(f, screen.fields[f.id]) for f in filled])))

    commands: list[FormCommand] = []
    missing = next((f for f in page_fields if f.required and not screen.fields.get(f.id)), None)
    if missing is not None:
        sentences.append(NEXT_FIELD.format(label=_phrase(missing)))
        commands.append(_highlight(turn, missing))
    elif page is not None and screen.page_number is not None and screen.page_number < len(form.pages):
        sentences.append(NEXT_PAGE.format(title=form.pages[screen.page_number].title))
    else:
        sentences.append(REVIEW)
    return AgentResult(outbound=[OutboundDraft(text=" ".join(sentences))], commands=commands)
