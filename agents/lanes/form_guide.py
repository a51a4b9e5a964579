"""The guide lane once the form link is out: guiding page by page from the live screen.

The customer fills the hosted form (``/f/<form_token>``) while texting or
talking with the guide. Each turn the guide reads :class:`state.screen.ScreenState`
(the page the screen shows, its values, what changed since the previous
activity) and the parsed message, and stays in charge while the form is open:

1. the form was submitted: thanks and what happens next (once); after that a
   question gets its FAQ answer, or what happens next; thanks get a welcome;
2. a "no" to a read-back asks which value to fix (and points at the page);
3. a question about a field ("what do I put for height?"): the field's
   question, help and choices (and "5'9" worked out as 69 inches), then what
   comes next; a question from the FAQ: its answer, then what comes next;
4. a value the form will not accept (a height in feet where inches are
   asked, a number out of range, a choice not offered): what is wrong and the
   fix; it is never read back as accepted;
5. a value the customer changed: "I see you changed <label> from X to Y.";
6. what the current page holds so far, read back for confirmation: "I see
   your first name is Dana." (dates are only said to be filled, never read back);
7. what comes next: the first empty required field of the page ("Next is
   your date of birth."; a field labelled with a question is asked as that
   question) with a highlight command for it, or, when the page is complete,
   the next page ("That page is complete. Tap Next for Contact details."),
   or, on the last page, "Please check your answers and tap Submit."

Before the customer opens the link there is no screen; the guide says where the link went.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from agents.base import AgentResult, OutboundDraft, TurnInput
from agents.dialogue import Dialogue, remember
from agents.nlu.entities import find_emails, find_heights
from agents.templates import english
from agents.text import content_words, looks_like_question
from state.form_definition import FormDefinition, FormField, FormPage
from state.screen import FormCommand, ScreenState

SENSITIVE_TYPES = frozenset({"date"})
"""Field types whose values are never read back (a date of birth): "is filled in" instead."""

READ_BACK_MAX = 3
"""At most this many values are read back in one reply (the most recent first)."""

HIGHLIGHT_LABEL_CHARS = 40
SHORT_LABEL_WORDS: Final = 4
"""A label longer than this many words, or ending in "?", is a question: asked as one, named by its id."""

NOT_OPENED_KEY, REVIEW_KEY, WHICH_TO_FIX_KEY = "form_not_opened", "form_review", "form_which_to_fix"
"""Template keys (:mod:`agents.templates`) of three fixed answers."""
NOT_OPENED = english(NOT_OPENED_KEY)
REVIEW = english(REVIEW_KEY)
WHICH_TO_FIX = english(WHICH_TO_FIX_KEY)
"""Their English text forms."""

_AGE_RANGE = re.compile(r"(\d{1,3})\s*(?:to|-|\u2013|and)\s*(\d{1,3})\s*years", re.I)
"""An age range in a date field's help ("Applicants must be 18 to 75 years old.")."""
_WHATS_NEXT = re.compile(
    r"\b(?:what(?:'s|\s+is|s)?\s+next|now\s+what|what\s+now|what\s+(?:do|should)\s+i\s+do\s+(?:now|next)"
    r"|y\s+ahora\s+qu[eé]|qu[eé]\s+sigue)\b",
    re.I,
)
"""A question about the next step ("ok I typed my name, what's next?"): answered from the screen, not as a field question."""


def is_question_label(field: FormField) -> bool:
    """Whether ``field``'s label is a question or too long to say as "your <label>"."""
    label = field.label.strip()
    return label.endswith("?") or len(label.split()) > SHORT_LABEL_WORDS


def short_label(field: FormField) -> str:
    """A short name for ``field``: its label ("date of birth", "height in inches"), or its id words for a question label."""
    if is_question_label(field):
        return field.id.replace("_", " ")
    label = re.sub(r"\s*\(([^)]*)\)", r" in \1", field.label.rstrip(":?").strip())
    return label[0].lower() + label[1:] if label and not label[:2].isupper() else label


def _phrase(d: Dialogue, field: FormField) -> str:
    """"your date of birth" for a field labelled "Date of birth"."""
    return d.say("field_phrase", label=short_label(field))


def _join(d: Dialogue, items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {d.say('and')} " + items[-1]


def _highlight(turn: TurnInput, field: FormField) -> FormCommand:
    """A highlight of ``field``; the controller replaces ``command_id`` with the committed turn's id."""
    return FormCommand(command_id="turn", field_id=field.id, label=field.label[:HIGHLIGHT_LABEL_CHARS],
                       created_at=turn.now)


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def _fmt(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else str(value))


def value_problem(d: Dialogue, field: FormField, value: str) -> str | None:
    """Say what is wrong with ``value`` for ``field`` and how to fix it, or ``None`` when the form accepts it."""
    value = value.strip()
    if not value:
        return None
    if field.type == "number":
        number = _number(value)
        if number is None:
            heights = find_heights(value)
            if heights and ("inch" in field.id or "inch" in field.label.lower()):
                total = heights[0]
                return d.say("form_invalid_height", feet=total // 12, inches=total % 12, total=total)
            if field.min is not None and field.max is not None:
                return d.say("form_invalid_number_range", min=_fmt(field.min), max=_fmt(field.max))
            return d.say("form_invalid_number")
        if (field.min is not None and number < field.min) or (field.max is not None and number > field.max):
            return d.say("form_invalid_number_range", min=_fmt(field.min), max=_fmt(field.max))
        return None
    if field.type == "date":
        try:
            born = date.fromisoformat(value[:10])
        except ValueError:
            return d.say("form_invalid_date")
        ages = _AGE_RANGE.search(field.help or "")
        if ages:
            today = d.turn.now.date()
            age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
            low, high = int(ages.group(1)), int(ages.group(2))
            if not low <= age <= high:
                return d.say("form_invalid_age", min=low, max=high)
        return None
    if field.type in ("select", "radio") and field.options and value not in field.options:
        return d.say("form_invalid_choice", options=", ".join(field.options))
    if field.type == "email" and not find_emails(value)[0]:
        return d.say("form_invalid_email")
    if field.pattern:
        try:
            if re.fullmatch(field.pattern, value) is None:
                return d.say("form_invalid_phone" if field.type == "tel" else "form_invalid_format")
        except re.error:
            return None
    if (field.max_length is not None and len(value) > field.max_length) or (
        field.min_length is not None and len(value) < field.min_length
    ):
        return d.say("form_invalid_format")
    return None


def _label_for_problem(d: Dialogue, field: FormField) -> str:
    phrase = _phrase(d, field)
    return phrase[0].upper() + phrase[1:]


def next_step(d: Dialogue, form: FormDefinition, screen: ScreenState | None) -> str | None:
    """What the customer does next on the form, as a sentence ("Next is your email."), or ``None`` once submitted."""
    if screen is None:
        return d.say(NOT_OPENED_KEY)
    if screen.submitted:
        return None
    page = form.page(screen.page_number)
    page_fields = page.fields if page else []
    missing = _next_missing(d, page_fields, screen)
    if missing is not None:
        return _ask_field(d, missing)
    if page is not None and screen.page_number is not None and screen.page_number < len(form.pages):
        return d.say("form_page_done", title=form.pages[screen.page_number].title)
    return d.say(REVIEW_KEY)


def _next_missing(d: Dialogue, page_fields: list[FormField], screen: ScreenState) -> FormField | None:
    for field in page_fields:
        value = screen.fields.get(field.id)
        if field.required and (not value or value_problem(d, field, value) is not None):
            return field
    return None


def _ask_field(d: Dialogue, field: FormField) -> str:
    if is_question_label(field):
        return d.say("form_next_question", question=field.label.strip())
    return d.say("form_next_field", label=_phrase(d, field))


def field_asked_about(d: Dialogue, form: FormDefinition, screen: ScreenState | None) -> FormField | None:
    """The form field the message asks about ("what do I put for height?"), or ``None``.

    A field is named by a content word of its label or id (``height``,
    ``tobacco``, ``beneficiary``); ties go to the field on the current page,
    then to the earlier field.
    """
    message = set(content_words(d.turn.text))
    if not message:
        return None
    page = form.page(screen.page_number) if screen is not None else None
    on_page = {f.id for f in page.fields} if page else set()
    best: tuple[int, int, int] | None = None
    found: FormField | None = None
    for index, field in enumerate(f for p in form.pages for f in p.fields):
        names = set(content_words(field.label)) | set(field.id.split("_"))
        names -= {"your", "you", "have", "used", "last", "months", "to"}
        overlap = len(message & names)
        if not overlap:
            continue
        rank = (overlap, field.id in on_page, -index)
        if best is None or rank > best:
            best, found = rank, field
    return found


def field_help(d: Dialogue, field: FormField) -> str:
    """The field's question, help and choices, in one or two sentences."""
    label = field.label.strip()
    head = label if label.endswith("?") else f"{label}:"
    parts = [head]
    heights = getattr(d.parsed.entities, "heights_in", ())
    if heights and field.type == "number" and "inch" in (field.id + field.label.lower()):
        parts.append(d.say("form_height_hint", feet=heights[0] // 12, inches=heights[0] % 12, total=heights[0]))
    elif field.help:
        parts.append(field.help)
    if field.options:
        parts.append(d.say("form_field_options", options=", ".join(field.options)).strip())
    elif field.type == "number" and field.min is not None and field.max is not None and not heights:
        parts.append(d.say("form_number_range", min=_fmt(field.min), max=_fmt(field.max)))
    if len(parts) == 1:  # nothing more to say about it than where it is
        page = next((p for p in form_pages(d) if field in p.fields), None)
        parts = [d.say("form_field_where", label=label.rstrip(":?"), title=page.title if page else "")]
    return " ".join(p.strip() for p in parts if p.strip())


def form_pages(d: Dialogue) -> list[FormPage]:
    form = d.turn.tenant.form
    return form.pages if form is not None else []


def guide_from_screen(turn: TurnInput, form: FormDefinition, screen: ScreenState | None, first_name: str | None) -> AgentResult:
    """Answer from the customer's screen (see the module doc). Pure.

    Returns:
        One reply, and at most one highlight command (the next field, the
        field asked about, or the first filled field of the page after a "no").
    """
    d = Dialogue(turn)
    acts = d.acts
    if screen is None:
        answer = d.faq()
        if answer is not None:
            return AgentResult(outbound=[OutboundDraft(text=f"{answer.entry.answer} {d.say(NOT_OPENED_KEY)}")])
        return AgentResult(outbound=[OutboundDraft(text=d.say(NOT_OPENED_KEY))])
    if screen.submitted:
        return _after_submit(d, first_name)

    fields = form.fields()
    page: FormPage | None = form.page(screen.page_number)
    page_fields = page.fields if page else []
    sentences: list[str] = []

    if "deny" in acts and "affirm" not in acts and not d.parsed.entities.correction and "question" not in acts:
        filled = [f for f in page_fields if screen.fields.get(f.id)]
        commands = [_highlight(turn, filled[0])] if filled else []
        return AgentResult(outbound=[OutboundDraft(text=d.say(WHICH_TO_FIX_KEY))], commands=commands)

    invalid = [(f, screen.fields[f.id]) for f in page_fields
               if screen.fields.get(f.id) and value_problem(d, f, screen.fields[f.id]) is not None]
    invalid_ids = {f.id for f, _ in invalid}
    asking = ("question" in acts or (d.parsed.intent == "form_help" and not invalid)) and not _WHATS_NEXT.search(d.turn.text)
    asked = field_asked_about(d, form, screen) if asking else None
    heights = getattr(d.parsed.entities, "heights_in", ())
    if asked is None and heights and not invalid:
        # "I'm 6 foot 1" on the page with a height in inches: the number to enter
        asked = next((f for f in page_fields if f.type == "number" and "inch" in (f.id + f.label.lower())), None)
    answer = d.faq() if asked is None and (
        "question" in acts or d.parsed.intent == "faq") else None
    if asked is not None or answer is not None:
        head = field_help(d, asked) if asked is not None else answer.entry.answer
        missing = _next_missing(d, page_fields, screen)
        follow = None if asked is not None and missing is not None and missing.id == asked.id else next_step(d, form, screen)
        commands = [_highlight(turn, asked)] if asked is not None else []
        text = f"{head} {follow}" if follow else head
        return AgentResult(patch=remember(turn, last_reply_key="form_help"), outbound=[OutboundDraft(text=text)],
                           commands=commands)

    if invalid:
        field, value = invalid[0]
        problem = value_problem(d, field, value)
        text = d.say("form_invalid", label=_label_for_problem(d, field), problem=problem)
        return AgentResult(patch=remember(turn, expected=field.id, last_reply_key="form_invalid"),
                           outbound=[OutboundDraft(text=text)], commands=[_highlight(turn, field)])

    if "thanks" in acts or "small_talk" in acts:
        sentences.append(d.say("you_are_welcome" if "thanks" in acts else "small_talk").strip())

    corrections = [c for c in screen.changed_fields if c.from_ and c.to and c.field_id in fields
                   and c.field_id not in invalid_ids]
    for change in corrections[:1]:
        field = fields[change.field_id]
        if field.type in SENSITIVE_TYPES:
            sentences.append(d.say("form_changed_sensitive", label=_phrase(d, field)))
        else:
            sentences.append(d.say("form_changed", label=_phrase(d, field), before=change.from_, after=change.to))
    corrected = {c.field_id for c in corrections[:1]}

    recent = [c.field_id for c in reversed(screen.changed_fields)]
    order = {fid: i for i, fid in enumerate(recent)}
    filled = sorted(
        (f for f in page_fields if screen.fields.get(f.id) and f.id not in corrected and f.id not in invalid_ids),
        key=lambda f: order.get(f.id, len(order)),
    )[:READ_BACK_MAX]
    filled.sort(key=lambda f: page_fields.index(f))
    if filled:
        items = [
            d.say("form_filled_sensitive", label=_phrase(d, f)) if f.type in SENSITIVE_TYPES
            else d.say("form_filled_item", label=_phrase(d, f), value=screen.fields[f.id])
            for f in filled
        ]
        sentences.append(d.say("form_filled", items=_join(d, items)))

    commands: list[FormCommand] = []
    missing = _next_missing(d, page_fields, screen)
    if missing is not None:
        sentences.append(_ask_field(d, missing))
        commands.append(_highlight(turn, missing))
        expected = missing.id
    elif page is not None and screen.page_number is not None and screen.page_number < len(form.pages):
        sentences.append(d.say("form_page_done", title=form.pages[screen.page_number].title))
        expected = None
    else:
        sentences.append(d.say(REVIEW_KEY))
        expected = None
    return AgentResult(patch=remember(turn, expected=expected, last_reply_key="form_step"),
                       outbound=[OutboundDraft(text=" ".join(sentences))], commands=commands)


_ABOUT_THE_DECISION = re.compile(
    r"\b(?:approv\w*|decision|decided|decide|hear\s+(?:back|from)|get\s+back|result|results|status|review\w*|"
    r"went\s+through|go\s+through|gone\s+through|come\s+through|came\s+through|received|get\s+it|got\s+it|"
    r"anything\s+else|(?:need|have)\s+to\s+(?:send|do|sign|upload)|what\s+happens|"
    r"find\s+out|know\s+(?:if|whether|when)|let\s+me\s+know|notif\w*|contact\s+me|text\s+me\s+back|"
    r"aprobaci[oó]n|aprob\w*|decisi[oó]n|respuesta|respond\w*|contest\w*|avis\w*|resultado|estado|revisi[oó]n|"
    r"lleg[oó]|recibi\w*|algo\s+m[aá]s)\b",
    re.IGNORECASE,
)
"""Questions about the submitted application itself (its review, the decision, whether it arrived, what else
is needed): answered with what happens next, never with an FAQ that shares a word ("how long ... approval")."""
_DID_IT_ARRIVE = re.compile(
    r"\b(?:went|go|gone|come|came)\s+through\b|\b(?:received|get\s+it|got\s+it)\b|\blleg[oó]\b|\brecibi\w*",
    re.IGNORECASE,
)


_FIX_AFTER_SUBMIT = re.compile(
    r"\b(?:mistake|wrong|typo|error|fix|correct|change|update|edit)\b|\bequivoqu\w*|\berror\b|\bcorregir|\bcambiar",
    re.IGNORECASE,
)


def _after_submit(d: Dialogue, first_name: str | None) -> AgentResult:
    """Submitted: thanks and what happens next once; then answer questions instead of repeating it.

    A question about the application itself ("did it go through?", "when will I hear back?",
    "do I need to send anything else?") gets what happens next (``after_submit``), led by a yes
    when it asked whether the application arrived; thanks get a you're-welcome first.
    """
    turn = d.turn
    name = f", {first_name}" if first_name else ""
    asked = "question" in d.acts or looks_like_question(turn.text)
    about_it = asked and _ABOUT_THE_DECISION.search(turn.text) is not None
    answer = None if about_it else d.faq()
    first_time = turn.state.dialogue.last_reply_key not in ("form_submitted", "after_submit")
    if _FIX_AFTER_SUBMIT.search(turn.text) and not about_it:
        # "I made a mistake on my weight": a submitted application is changed by a person
        from agents.dialogue.patterns import person_offer_answer

        return person_offer_answer(d)
    if about_it:
        lead = d.say("form_received") if _DID_IT_ARRIVE.search(turn.text) else ""
        return AgentResult(patch=remember(turn, expected=None, last_reply_key="after_submit"),
                           outbound=[OutboundDraft(text=(lead + d.say("after_submit")).strip())])
    if first_time and answer is None:
        lead = d.say("you_are_welcome") if "thanks" in d.acts else ""
        return AgentResult(patch=remember(turn, expected=None, last_reply_key="form_submitted"),
                           outbound=[OutboundDraft(text=lead + d.say("form_submitted", name=name))])
    if answer is not None:
        text = answer.entry.answer
    elif d.acts and d.acts <= {"affirm", "greet", "small_talk"}:
        text = d.say("anything_else")  # "ok great", "ya": nothing more to say about the application
    elif "thanks" in d.acts or "goodbye" in d.acts:
        text = d.say("you_are_welcome") + d.say("anything_else") if "goodbye" not in d.acts else d.say("goodbye", name=name)
    else:
        text = d.say("after_submit")
    return AgentResult(patch=remember(turn, last_reply_key="after_submit"), outbound=[OutboundDraft(text=text.strip())])
