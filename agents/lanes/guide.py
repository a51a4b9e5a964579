"""The guide lane: an insurance application started over text or a call.

The guide collects three slots, ``first_name``, ``last_name`` and ``phone``,
one question at a time, then opens a hosted form session (``form_token``) and
texts its link. Each turn it reads everything the parsed message offers
(:mod:`agents.dialogue`: names, phone numbers, an email address, a date of
birth, a coverage amount, a correction, a yes or no in ordinary words), keeps
all of it, and asks only for what is still missing:

1. no first name: "What's your first and last name?"
2. no last name: "What's your last name?"
3. no phone: it offers the number the customer writes from ("Shall I text
   the link to the number ending 5432? Reply YES, or send another number.";
   on a call: "Say yes, or tell me another number"); a yes ("yeah that's my
   cell", "ok do it", "sí") takes that number, a number in the message takes
   that one. It never goes on without one.
4. all three: a new ``form_token`` and the link ``{public_base_url}/f/<token>``.
   A number other than the conversation's own (and every number on a call)
   gets the link in its own SMS (``to=<number>``) and the conversation gets a
   confirmation.

Repair, the same way in every step: a correction ("I meant Jon, not John")
updates the slot and says so; a side question is answered from the FAQ and
the step is asked again in the same reply ("… Now, what's your last name?");
a refusal gets the reason and an alternative (a person), never the same
question; cancel stops the application; thanks and small talk are
acknowledged; anything not understood gets :func:`agents.dialogue.fallback`
(the step restated, a person offered after two misses).

Once the link is out and the customer has the form open, the guide walks them
through it page by page from the live screen (:mod:`agents.lanes.form_guide`);
before that, it says where the link went and offers to send it again.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from datetime import date

from agents.base import AgentResult, OutboundDraft, Route, TurnInput
from agents.dialogue import (
    Dialogue,
    fallback,
    flow_open,
    hand_to_person,
    is_only_social,
    remember,
    social_lead,
    with_dialogue,
)
from agents.dialogue.patterns import (
    PERSON_OFFER,
    capability_answer,
    is_back,
    is_capability_question,
    is_hold_on,
    is_progress_question,
    is_unclear,
)
from agents.faq import best_faq
from agents.intents import apply_match, resend_match
from agents.lanes.common import (
    form_link,
    intent_ops,
    lane_enabled,
    sender_number,
    slot_op,
)
from agents.lanes.form_guide import guide_from_screen
from agents.names import MAX_NAME_WORDS, NOT_NAMES, ParsedName, parse_name
from agents.phone import (
    last_four,
    looks_like_number_attempt,
    normalize_phone,
    without_phone_numbers,
)
from agents.text import looks_like_question
from state.models import SessionState
from state.patch import PatchOp, Replace

FORM_TOKEN_BYTES = 16
"""Random bytes in a form token (``secrets.token_urlsafe``; 22 characters)."""

LINK_HERE = "link_here"
"""Template key of the link sent to the conversation itself (see :mod:`agents.templates`)."""

NAME_SLOTS = ("first_name", "last_name")
STEPS = ("name", "last_name", "phone", "confirm")
"""``dialogue.expected`` values of the guide's questions before the link."""
HUMAN_MIN_CONFIDENCE = 0.7
"""The NLU's confidence (0-1) in ``human`` at which the guide gives the turn to support's handover."""
HUMAN_GUESS_CONFIDENCE = 0.5
"""Below :data:`HUMAN_MIN_CONFIDENCE`, from this confidence a ``human`` guess (frustration) gets an apology and a person offered."""
STRONG_APPLY = 0.8
"""An application request this sure (:func:`agents.intents.apply_match`) keeps an FAQ-like first question with the guide."""
MIN_APPLICANT_AGE = 16
MAX_APPLICANT_AGE = 110


def new_form_token() -> str:
    """Return a new unguessable hosted-form token (URL-safe, :data:`FORM_TOKEN_BYTES` random bytes)."""
    return secrets.token_urlsafe(FORM_TOKEN_BYTES)


def is_first_in_lane(state: SessionState) -> bool:
    """Return whether the guide has not yet replied in this conversation.

    Reads the transcript: an outbound entry whose ``lane`` is ``guide`` means
    the guide has already introduced itself.
    """
    return not any(e.direction == "outbound" and e.lane == "guide" for e in state.transcript)


def merge_name(slots: dict[str, str], name: ParsedName) -> dict[str, str]:
    """Return the name slots that ``name`` sets, given the slots collected so far.

    While the last name is awaited (first name known), a bare answer is the
    last name, whole ("Smith", "van der Berg"); a repeated first name is
    dropped ("Dana Smith" gives ``last_name`` Smith). Otherwise a full name
    sets both slots and a single word sets the first name when none is known.

    Returns:
        ``{"first_name": …, "last_name": …}``, only the keys that change.
    """
    first, last = slots.get("first_name"), slots.get("last_name")
    given = [name.first] + ([name.last] if name.last else [])
    if first and not last:
        if given[0].casefold() == first.casefold():
            update = {"last_name": name.last} if name.last else {}
        elif name.shape == "bare" or not name.last:
            update = {"last_name": " ".join(given)}
        else:
            update = {"first_name": name.first, "last_name": name.last}
    elif not first:
        update = {"first_name": name.first, **({"last_name": name.last} if name.last else {})}
    elif name.last:
        update = {"first_name": name.first, "last_name": name.last}
    else:
        update = {}
    return {k: v for k, v in update.items() if v and slots.get(k) != v}


def deliver_link(
    turn: TurnInput, phone: str | None, first: str | None, link: str, lead: str, here_key: str
) -> list[OutboundDraft]:
    """Return the messages that put ``link`` in the customer's hands.

    To the conversation itself when ``phone`` is its own number (and the
    channel can show a link); otherwise an SMS to ``phone`` (always text
    wording) plus a confirmation, starting with ``lead``, in the conversation.

    Args:
        here_key: the template key of the in-conversation link message
            (``link_here``, ``link_again``), rendered with ``{link}``.
    """
    d = Dialogue(turn)
    if phone is None or (phone == sender_number(turn) and turn.channel != "voice"):
        return [OutboundDraft(text=lead + d.say(here_key, link=link))]
    sms = "sms"
    from agents.templates import render

    key = "link_to_other" if first else "link_to_other_unnamed"
    link_text = render(turn.tenant, d.language, sms, key, first=first, link=link)
    return [
        OutboundDraft(text=link_text, to=phone),
        OutboundDraft(text=lead + d.say("link_sent_elsewhere", last4=last_four(phone))),
    ]


def is_question_for_support(turn: TurnInput) -> bool:
    """Return whether the text is a question support should answer rather than the guide.

    True when it matches one of the tenant's FAQ entries ("how long does the
    application take?"), or is question-shaped without asking to apply
    ("how do I apply?" stays with the guide).
    """
    if best_faq(turn.text, turn.tenant) is not None:
        return True
    return looks_like_question(turn.text) and apply_match(turn.text) is None


# --- the steps ---------------------------------------------------------------------------------


def step_question(d: Dialogue, slots: dict[str, str], said_no: bool = False) -> tuple[str, str] | None:
    """Return the pending step (``dialogue.expected``) and its question, or ``None`` when all is collected."""
    if not slots.get("first_name"):
        return "name", d.say("ask_full_name")
    if not slots.get("last_name"):
        return "last_name", d.say("ask_last_name")
    if not slots.get("phone"):
        own = sender_number(d.turn)
        if said_no or own is None:
            return "phone", d.say("ask_number_after_no" if said_no else "ask_number")
        return "confirm", d.say("offer_own_number", last4=last_four(own))
    return None


def resume_question(turn: TurnInput) -> str | None:
    """The question that resumes the open flow after a side answer ("Now, what's your last name?"), or ``None``.

    Before the link: the pending step. With the form open: what the form needs
    next (:func:`agents.lanes.form_guide.next_step`). Used by every lane.
    """
    from agents.lanes.form_guide import next_step

    d = Dialogue(turn)
    state = turn.state
    if state.form_token:
        if turn.tenant.form is None or (turn.screen is not None and turn.screen.submitted):
            return None
        return next_step(d, turn.tenant.form, turn.screen)
    if not flow_open(turn):
        return None
    pending = step_question(d, dict(state.slots))
    if pending is None:
        return None
    question = pending[1]
    return d.say("resume", question=lower_first(question))


def lower_first(question: str) -> str:
    """``question`` with its first letter lower-cased, for "Now, <question>" ("¿Cuál…" -> "¿cuál…")."""
    for i, ch in enumerate(question):
        if ch.isalpha():
            return question[:i] + ch.lower() + question[i + 1:]
    return question


def _infer_correction_slot(d: Dialogue, slots: dict[str, str]) -> tuple[str, str] | None:
    """The slot and value a correction updates ("I meant Jon, not John"), or ``None``."""
    correction = d.parsed.entities.correction
    if correction is None or not correction.new:
        return None
    slot, new, old = correction.slot, correction.new.strip(), (correction.old or "").strip()
    if slot is None and not old:
        return _unanchored_name_correction(d, slots, new)
    if slot is None:
        for key in ("first_name", "last_name", "email", "phone"):
            if old and slots.get(key, "").casefold() == old.casefold():
                slot = key
                break
    if slot is None and normalize_phone(new):
        slot = "phone"
    if slot is None and "@" in new:
        slot = "email"
    if slot is None:
        expected = d.turn.state.dialogue.expected
        slot = {"last_name": "last_name", "name": "first_name"}.get(expected or "", "first_name" if slots.get("first_name") else None)
    if slot is None:
        return None
    if slot == "phone":
        new = normalize_phone(new) or ""
    if slot == "last_name":
        parts = new.split()
        first = slots.get("first_name", "")
        if len(parts) > 1 and parts[0].casefold() == first.casefold():
            new = " ".join(parts[1:])
    if slot == "first_name" and len(new.split()) > 1 and old and slots.get("last_name", "").casefold() == " ".join(new.split()[1:]).casefold():
        new = new.split()[0]
    return (slot, new) if new else None


_EXPLICIT_SLOT = re.compile(r"\bmy\s+(first|last)\s+name\s+is\s+([^\W\d_][\w'\u2019-]*)", re.IGNORECASE)


def _restated_name_correction(d: Dialogue, slots: dict[str, str]) -> tuple[str, str] | None:
    """Both names known, and the customer writes a full name sharing one of them ("wait it's Samuel, Samuel
    Green", "oops, Sam Greene with an e"): the other part is corrected. ``None`` otherwise."""
    known_first, known_last = slots.get("first_name"), slots.get("last_name")
    if not (known_first and known_last) or d.parsed.entities.phones:
        return None
    first, last = message_name(d, {})
    if not (first and last) or len(last.split()) > 1:
        return None
    same_first, same_last = first.casefold() == known_first.casefold(), last.casefold() == known_last.casefold()
    if same_first and not same_last:
        return "last_name", last
    if same_last and not same_first:
        return "first_name", first
    return None


def _explicit_slot_name(d: Dialogue) -> tuple[str, str] | None:
    """ "my last name is Smyth" -> ("last_name", "Smyth"): the slot a customer names outright."""
    m = _EXPLICIT_SLOT.search(d.turn.text)
    if m is None or _not_name(m.group(2)):
        return None
    value = m.group(2)
    return f"{m.group(1).lower()}_name", value[0].upper() + value[1:]


def _unanchored_name_correction(d: Dialogue, slots: dict[str, str], new: str) -> tuple[str, str] | None:
    """ "actually it's Thomas": which name slot a correction with no old value fixes, or ``None`` (a name given afresh)."""
    first, last = slots.get("first_name"), slots.get("last_name")
    if not first or "correct" not in d.acts or len(new.split()) != 1 or _not_name(new):
        return None
    expected = d.turn.state.dialogue.expected
    if expected == "last_name" or not last:
        return "first_name", new  # the answer just given was the first name
    from rapidfuzz import fuzz

    closer_to_last = fuzz.ratio(new.casefold(), last.casefold()) > fuzz.ratio(new.casefold(), first.casefold())
    return ("last_name" if closer_to_last else "first_name"), new


_SEND_IT = re.compile(
    r"^(?:ok(?:ay)?\s*,?\s*|yes\s*,?\s*|just\s+)?(?:send|text|do)\s+(?:it|that|the\s+link|me)\b"
    r"|^(?:send|send\s+away|m[aá]ndalo|env[ií]alo|env[ií]a(?:me)?lo)[\s.!]*$",
    re.IGNORECASE,
)
"""An answer to "Shall I text the link…?" that agrees by naming the action ("send it", "do it", "text me")."""
_X_NOT_Y = re.compile(r"([^\W\d_][\w'\u2019-]*)\s*,?\s+not\s+([^\W\d_][\w'\u2019-]*)", re.IGNORECASE)
_SPELLED = re.compile(r"\b(?:spelled|spelt|spelling is)\s+([^\W\d_][\w'\u2019-]*)", re.IGNORECASE)
_NAME_IS = re.compile(r"\b(?:my\s+name\s+is|name\s+is|it'?s|i'?m)\s+([A-Z][\w'\u2019-]+)(?:\s+([A-Z][\w'\u2019-]+))?")


def _pattern_correction(d: Dialogue, slots: dict[str, str]) -> tuple[str, str] | None:
    """A name correction the NLU missed: "Smyth not Smith", "it's spelled Jonathan", "correction: my name is Jon Smith"."""
    from rapidfuzz import fuzz

    text = d.turn.text
    for m in _X_NOT_Y.finditer(text):
        new, old = m.group(1), m.group(2)
        for key in NAME_SLOTS:
            if slots.get(key, "").casefold() == old.casefold() and not _not_name(new):
                return key, new[0].upper() + new[1:]
    first, last = slots.get("first_name"), slots.get("last_name")
    if not first:
        return None
    spelled = _SPELLED.search(text)
    if spelled and not _not_name(spelled.group(1)):
        new = spelled.group(1)[0].upper() + spelled.group(1)[1:]
        to_last = bool(last) and fuzz.ratio(new.casefold(), last.casefold()) > fuzz.ratio(new.casefold(), first.casefold())
        return ("last_name" if to_last else "first_name"), new
    if "correct" in d.acts or re.search(r"\b(?:correction|actually|i meant|sorry|wrong)\b", text, re.IGNORECASE):
        named = _NAME_IS.search(text)
        if named and not _not_name(named.group(1)):
            if named.group(1).casefold() != first.casefold():
                return "first_name", named.group(1)
            if named.group(2) and last and named.group(2).casefold() != last.casefold():
                return "last_name", named.group(2)
    return None


def _accent_correction(d: Dialogue, slots: dict[str, str]) -> tuple[str, str] | None:
    """A name re-typed with its accents ("es José con acento" for Jose): the slot and the accented value."""
    for word in re.findall(r"[^\W\d_]+", d.turn.text):
        plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
        if plain == word:
            continue
        for key in NAME_SLOTS:
            value = slots.get(key, "")
            if value and value.casefold() == plain.casefold() and value != word:
                return key, word[0].upper() + word[1:]
    return None


def _plausible_birth_date(value: date, today: date) -> bool:
    age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    return MIN_APPLICANT_AGE <= age <= MAX_APPLICANT_AGE


_CHUNKS = re.compile(r"[,;]|\s[-\u2013\u2014]\s")
_EMAILS = re.compile(r"\S+@\S+")


NOT_NAMES_ES = frozenset(
    "quiero aplicar solicitar solicitud seguro vida hola gracias si sí no ayuda precio cuanto cuánto cuesta "
    "necesito quisiera información informacion agente persona buenas buenos dias días tardes noches por favor "
    "bien vale claro perdón perdon es con acento mi nombre soy".split()
)
"""Spanish words that are never names in these conversations (the English list is :data:`agents.names.NOT_NAMES`)."""
_NAME_WORDS = r"([A-Z\u00c0-\u00de][\w'\u2019-]+)((?:\s+[A-Z\u00c0-\u00de][\w'\u2019-]+){1,2})(?:\s+(?i:here))?\s*$"
_INTRODUCED_NAME = re.compile(r"\b(?i:i'm|i am|im|this is|it's|its|my name is|name is|name:?|soy|me llamo)\s+" + _NAME_WORDS)
_BARE_NAME = re.compile(r"^" + _NAME_WORDS)


def _not_name(word: str) -> bool:
    w = word.casefold()
    return w in NOT_NAMES or w in NOT_NAMES_ES


def _clean_name(value: str | None, text: str = "") -> str | None:
    """``value`` without words that are never names ("Grant Phone" -> "Grant"), unless typed capitalized in
    ``text`` ("Chris Park": a surname that is also a common word)."""
    if not value:
        return None
    kept = [w for w in value.split() if not _not_name(w) or re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text)]
    return " ".join(kept) or None


def _capitalized_name(chunk: str) -> tuple[str, str | None] | None:
    """A name typed capitalized ("Leo Park", "I'm Nina Park"), even when a word of it is also a common word."""
    chunk = chunk.strip().rstrip(".!")
    m = _INTRODUCED_NAME.search(chunk) or _BARE_NAME.match(chunk)
    if m is None:
        return None
    first, rest = m.group(1), m.group(2).split()
    if _not_name(first) or first.casefold() in {"i", "im"}:
        return None
    return first, " ".join(rest)


def message_name(d: Dialogue, slots: dict[str, str]) -> tuple[str | None, str | None]:
    """The first and last name the message gives: the NLU's, else :func:`agents.names.parse_name` clause by clause.

    A bare name ("Leo Park") counts while a name is asked for, or in a first
    message that wants to apply ("Hey, Chris Park. Need life insurance").
    Never from an email address or a phone number.
    """
    entities = d.parsed.entities
    first, last = _clean_name(entities.first_name, d.turn.text), _clean_name(entities.last_name, d.turn.text)
    if first:
        return first, last
    if last:  # "I'm Dana. Last name Whitfield.": the first name from the introduction, when there is one
        for chunk in _CHUNKS.split(without_phone_numbers(_EMAILS.sub(" ", d.turn.text))):
            name = parse_name(chunk, expecting_name=False)
            if name is not None and not _not_name(name.first) and name.first.casefold() != last.casefold():
                return name.first, last
        return None, last
    for chunk in _CHUNKS.split(without_phone_numbers(_EMAILS.sub(" ", d.turn.text))):
        for sentence in re.split(r"[.!?]+", chunk):
            found = _capitalized_name(sentence)
            if found is not None:
                return found
    expected = d.turn.state.dialogue.expected
    expecting = expected in ("name", "last_name") or (
        not slots.get("first_name") and (d.parsed.intent == "apply" or apply_match(d.turn.text) is not None)
    )
    if "question" in d.acts and len(d.turn.text.split()) > MAX_NAME_WORDS:
        expecting = False  # "wait, is this term or whole life?" asks something; its first word is no name
    text = without_phone_numbers(_EMAILS.sub(" ", d.turn.text))
    for chunk in _CHUNKS.split(text):
        name = parse_name(chunk, expecting_name=expecting)
        if name is not None and not _not_name(name.first):
            return name.first, _clean_name(name.last)
    return None, None


def _names_from(d: Dialogue, slots: dict[str, str]) -> dict[str, str]:
    """The name slots this message sets (see :func:`merge_name`)."""
    first, last = message_name(d, slots)
    if not first and not last:
        return {}
    expected = d.turn.state.dialogue.expected
    known_first, known_last = slots.get("first_name"), slots.get("last_name")
    if first is None:  # a last name alone
        return {"last_name": last} if not known_last or expected == "last_name" else {}
    if known_first and known_last and expected not in ("name", "last_name"):
        return {}  # both known; only a correction changes them
    shape = "bare" if expected == "last_name" and not last else "explicit"
    return merge_name(slots, ParsedName(first, last, shape))


def _amount_text(amount: int) -> str:
    return f"${amount:,}"


def guide_agent(turn: TurnInput, route: Route, *, make_form_token: Callable[[], str] = new_form_token) -> AgentResult:
    """Collect the applicant's name and phone, then send the hosted form link.

    Args:
        turn: the turn; reads ``state.slots``, ``state.form_token``,
            ``state.dialogue``, ``state.transcript`` (to introduce the persona
            once), the parsed message, the sender's address, ``tenant.persona``,
            ``tenant.display_name`` and ``public_base_url``.
        route: the router's decision (the guide acts on the message, whatever
            the intent).
        make_form_token: returns a new form token; tests pass a fixed one.

    Returns:
        ``add`` ops on ``/slots/*`` (``first_name``, ``last_name``, ``phone``,
        and ``email``, ``date_of_birth``, ``coverage_amount`` when given);
        ``replace`` on ``/form_token``, ``/intent`` (``apply``) and
        ``/dialogue/*``; one reply, or the link SMS plus a confirmation; or a
        handoff to ``support`` for a question it cannot answer before any
        application started.
    """
    state = turn.state
    if state.form_token:
        return _after_link(turn, state.form_token)

    d = Dialogue(turn)
    parsed, acts = d.parsed, d.acts
    entities = parsed.entities
    slots = dict(state.slots)
    expected = state.dialogue.expected
    started = flow_open(turn) or any(slots.get(k) for k in ("first_name", "last_name"))
    ops: list[PatchOp] = []
    leads: list[str] = []
    collected = False

    def put(key: str, value: str) -> None:
        nonlocal collected
        if value and slots.get(key) != value:
            ops.append(slot_op(key, value))
            slots[key] = value
            collected = True

    correction = (_explicit_slot_name(d) or _infer_correction_slot(d, slots) or _pattern_correction(d, slots)
                  or _accent_correction(d, slots) or _restated_name_correction(d, slots))
    corrected: str | None = None
    if correction is not None:
        slot, new = correction
        old = slots.get(slot)
        if slot in NAME_SLOTS and not old:
            correction = None  # "my name is dana and my last name is whitfield": a name given, nothing corrected
            put(slot, new)
        elif old != new:
            put(slot, new)
            corrected = slot
            if slot in NAME_SLOTS and old:
                leads.append(d.say("corrected_name", new=new, old=old))
            else:
                label = {"first_name": "first name", "last_name": "last name", "date_of_birth": "date of birth"}.get(slot, slot)
                leads.append(d.say("corrected_slot", slot=label, new=new[-4:] if slot == "phone" else new))

    name_given = False
    skipping = bool({"skip", "cancel", "refuse"} & acts) and len(turn.text.split()) <= 2
    if corrected not in NAME_SLOTS and not skipping:
        for key, value in _names_from(d, slots).items():
            put(key, value)
            name_given = True

    said_no = "deny" in acts and "affirm" not in acts
    said_yes = ("affirm" in acts or (expected == "confirm" and _SEND_IT.match(turn.text.strip()) is not None)) \
        and not said_no and not is_back(turn.text)
    if corrected != "phone" and entities.phones:
        put("phone", entities.phones[0])
    elif said_yes and not slots.get("phone") and slots.get("first_name") and slots.get("last_name") \
            and expected in ("confirm", None) and not name_given:
        own = sender_number(turn)
        if own:
            put("phone", own)

    noted: list[str] = []
    if entities.emails and not slots.get("email") and corrected != "email":
        put("email", entities.emails[0])
        noted.append("email")
    elif entities.emails and corrected != "email" and slots.get("email") != entities.emails[0]:
        put("email", entities.emails[0])  # "my email is actually …": the newer address wins, and is said back
        corrected = "email"
        leads.append(d.say("corrected_slot", slot="email", new=entities.emails[0]))
    birth = next((x for x in entities.dates if _plausible_birth_date(x, turn.now.date())), None)
    if birth is not None and not slots.get("date_of_birth"):
        put("date_of_birth", birth.isoformat())
        noted.append("date_of_birth")
    if entities.amounts_usd and not slots.get("coverage_amount"):
        put("coverage_amount", _amount_text(entities.amounts_usd[0]))
        noted.append("coverage_amount")

    pending = step_question(d, slots, said_no=said_no and not collected)
    if pending is None and d.voice and not said_yes and expected not in ("phone", "confirm"):
        # On a call the link goes by text: say the number back and text it once the caller agrees.
        pending = ("confirm", d.say("offer_own_number", last4=last_four(slots["phone"])))
        if slots.get("phone") and slots["phone"] != state.slots.get("phone"):
            pass  # keep the number just given; a yes sends to it

    if not collected:
        early = _repair(d, route, started, pending)
        if early is not None:
            return early

    ops += intent_ops(state, "apply")
    first = slots.get("first_name")
    if is_first_in_lane(state):
        lead = d.say("intro_named", first=first) if first else d.say("intro")
    elif name_given and first and not corrected and not d.returning:
        lead = d.say("thanks_name", first=first)
    else:
        lead = ""
    lead += "".join(leads)
    if noted and pending is not None:
        lead += d.say("noted", items=_join([d.say(f"item_{item}") for item in noted], d.say("and")))
    if not collected and not said_yes and not said_no and not is_first_in_lane(state):
        lead = social_lead(d) + lead
    if pending is not None:
        step, question = pending
        if not collected and looks_like_number_attempt(turn.text) and step in ("phone", "confirm"):
            own = sender_number(turn)
            question = d.say("bad_number") + (d.say("bad_number_own", last4=last_four(own)) if own else "")
        ops += remember(turn, expected=step, last_reply_key=f"ask_{step}")
        return AgentResult(patch=ops, outbound=[OutboundDraft(text=lead + question)])

    token = make_form_token()
    ops.append(Replace(path="/form_token", value=token))
    ops += remember(turn, expected=None, last_reply_key="link")
    link = form_link(turn.public_base_url, token)
    lead = lead or ("" if d.returning else d.say("thanks_name", first=first))
    outbound = deliver_link(turn, slots["phone"], first, link, lead, LINK_HERE)
    return AgentResult(patch=ops, outbound=outbound)


def _join(items: list[str], conjunction: str) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def _repair(d: Dialogue, route: Route, started: bool, pending: tuple[str, str] | None) -> AgentResult | None:
    """Answer a message that gave nothing for the application: repair patterns, side questions, small talk.

    Returns ``None`` when the normal flow should answer (a first message that
    wants to apply, a yes or no it already used).
    """
    turn, acts, parsed = d.turn, d.acts, d.parsed
    state = turn.state
    step, question = pending if pending else (None, "")
    if is_hold_on(turn.text) and not parsed.entities.phones:
        return AgentResult(patch=remember(turn, last_reply_key="take_your_time"),
                           outbound=[OutboundDraft(text=d.say("take_your_time"))])
    if is_back(turn.text) and started and step is not None:
        return AgentResult(patch=remember(turn, expected=step, last_reply_key=f"ask_{step}"),
                           outbound=[OutboundDraft(text=d.say("where_we_were") + question)])
    if pending is None and "affirm" in acts:
        return None  # everything is collected and the customer agrees: the link goes out

    if "ask_human" in acts or (route.intent == "human" and parsed.intent == "human" and parsed.confidence >= HUMAN_MIN_CONFIDENCE):
        if lane_enabled(turn, "support"):
            return AgentResult(handoff="support")
        return hand_to_person(d)
    if "cancel" in acts and started:
        return AgentResult(
            patch=[*remember(turn, expected=None, last_reply_key="cancelled", misses=0), *intent_ops(state, "cancelled")],
            outbound=[OutboundDraft(text=d.say("cancelled"))],
        )
    if "refuse" in acts and started and step is not None:
        slot = "phone" if step in ("phone", "confirm") else "name"
        refused = list(state.dialogue.refused)
        if slot in refused:
            return AgentResult(
                patch=remember(turn, expected=PERSON_OFFER, last_reply_key="refused_again"),
                outbound=[OutboundDraft(text=d.say("refused_again"))],
            )
        return AgentResult(
            patch=remember(turn, refused=refused + [slot], last_reply_key=f"refuse_{slot}", expected=step),
            outbound=[OutboundDraft(text=d.say(f"refuse_{slot}"))],
        )
    if "skip" in acts and started and step is not None:
        return AgentResult(
            patch=remember(turn, expected=step, last_reply_key="skip_required"),
            outbound=[OutboundDraft(text=d.say("skip_required", question=question))],
        )

    if is_capability_question(turn.text):
        resume = d.say("resume", question=lower_first(question)) if started and step is not None else (
            d.say("ask_full_name") if not started else None)
        result = capability_answer(d, resume)
        if step is not None:
            result = result.model_copy(update={"patch": result.patch + remember(turn, expected=step)})
        return result
    answer = d.faq()
    asks = answer is not None or "question" in acts or parsed.intent in ("faq",)
    if answer is not None and started and step is not None:
        resume = d.say("resume", question=lower_first(question))
        return AgentResult(
            patch=[*remember(turn, expected=step, last_reply_key="faq"), *intent_ops(state, "apply")],
            outbound=[OutboundDraft(text=f"{answer.entry.answer} {resume}")],
        )
    applying = apply_match(turn.text)
    strongly_applying = applying is not None and applying.confidence >= STRONG_APPLY
    if asks and not started and lane_enabled(turn, "support") and not strongly_applying and (
        parsed.intent != "apply" or (answer is not None and "question" in acts)
    ):
        return AgentResult(handoff="support")
    if answer is not None and "question" in acts:
        invite = d.say("intro") + d.say("ask_full_name")
        return AgentResult(
            patch=remember(turn, expected="name", last_reply_key="faq"),
            outbound=[OutboundDraft(text=f"{answer.entry.answer} {invite}")],
        )

    if is_progress_question(turn.text) and started and step is not None:
        return AgentResult(
            patch=remember(turn, expected=step, last_reply_key=f"ask_{step}"),
            outbound=[OutboundDraft(text=social_lead(d) + d.say("where_we_were") + question)],
        )
    if "deny" in acts and step == "name" and not ({"affirm", "question"} & acts) and (
        {"thanks", "goodbye"} & acts or len(turn.text.split()) <= 2
    ):
        return AgentResult(
            patch=[*remember(turn, expected=None, last_reply_key="cancelled", misses=0), *intent_ops(state, "chat")],
            outbound=[OutboundDraft(text=d.say("no_problem", name=d.name_suffix))],
        )
    entities = parsed.entities
    if (("complain" in acts) or (parsed.intent == "human" and parsed.confidence >= HUMAN_GUESS_CONFIDENCE)) \
            and "question" not in acts and not (d.acts & {"affirm", "deny", "correct"}) \
            and not (entities.first_name or entities.last_name or entities.phones):
        # The classifier's best guess is "wants a person" (frustration, a complaint): apologise, offer one.
        sorry = d.say("complaint", name=d.name_suffix)
        if started and step is not None:
            sorry = d.say("sorry", name=d.name_suffix) + d.say("resume", question=lower_first(question)) \
                + " " + d.say("offer_person")
        key = "complaint" if not (started and step is not None) else "complaint_resume"  # a yes then answers the step
        return AgentResult(patch=remember(turn, expected=PERSON_OFFER if key == "complaint" else step, last_reply_key=key),
                           outbound=[OutboundDraft(text=sorry)])
    if "goodbye" in acts and not ({"affirm", "deny"} & acts):
        return AgentResult(
            patch=remember(turn, last_reply_key="goodbye"),
            outbound=[OutboundDraft(text=d.say("goodbye", name=d.name_suffix))],
        )
    if is_only_social(d) and started and step is not None:
        lead = social_lead(d)
        return AgentResult(
            patch=remember(turn, expected=step, last_reply_key=f"ask_{step}"),
            outbound=[OutboundDraft(text=lead + question)],
        )

    if started and step is not None and (parsed.intent == "apply" or "affirm" in acts) and not ({"deny", "question"} & acts) \
            and step not in ("confirm", "phone"):
        lead = d.say("affirm_lead") if "affirm" in acts else ""
        return AgentResult(patch=[*remember(turn, expected=step, last_reply_key=f"ask_{step}"), *intent_ops(state, "apply")],
                           outbound=[OutboundDraft(text=lead + question)])
    if not started and is_unclear(d) and apply_match(turn.text) is None:
        return fallback(d, None)
    if not started:
        return None  # a first message: the guide introduces itself and asks for the name
    if ({"affirm", "deny"} & acts) and step in ("confirm", "phone"):
        return None  # the flow uses the yes or no
    if looks_like_number_attempt(turn.text) and step in ("phone", "confirm"):
        return None  # the flow says the number does not look right
    if resend_match(turn.text) is not None:
        return None
    return fallback(d, question, expected=step, unanswered="question" in acts)


# --- after the link -------------------------------------------------------------------------


def _after_link(turn: TurnInput, form_token: str) -> AgentResult:
    """The form link is out: send it again, guide from the screen, answer a question, or say where it went.

    With the tenant's form open on the customer's screen (or on a call, where
    the caller needs to hear what to do), :func:`guide_from_screen` answers.
    """
    d = Dialogue(turn)
    slots = turn.state.slots
    phone = slots.get("phone")
    submitted = turn.screen is not None and turn.screen.submitted
    new_phones = [p for p in d.parsed.entities.phones if p != phone]
    if len(new_phones) == 1 and len(d.parsed.entities.phones) == 1 and not submitted:
        # "oops, it's 646 555 0132": the number is corrected and the link goes to it
        link = form_link(turn.public_base_url, form_token)
        lead = d.say("corrected_slot", slot="phone", new=new_phones[0][-4:])
        return AgentResult(patch=[slot_op("phone", new_phones[0])],
                           outbound=deliver_link(turn, new_phones[0], slots.get("first_name"), link, lead, LINK_HERE))
    if resend_match(turn.text) is not None or d.parsed.intent == "resend_link":
        link = form_link(turn.public_base_url, form_token)
        return AgentResult(outbound=deliver_link(turn, phone, slots.get("first_name"), link, "", "link_again"))
    if "ask_human" in d.acts or (d.parsed.intent == "human" and d.parsed.confidence >= HUMAN_MIN_CONFIDENCE):
        if lane_enabled(turn, "support"):
            return AgentResult(handoff="support")
        return hand_to_person(d)
    guiding = turn.tenant.form is not None and (turn.screen is not None or turn.channel == "voice")
    if guiding:
        return guide_from_screen(turn, turn.tenant.form, turn.screen, slots.get("first_name"))
    answer = d.faq()
    if answer is not None:
        return AgentResult(outbound=[OutboundDraft(text=f"{answer.entry.answer} {d.say('link_open_hint')}")])
    if "thanks" in d.acts or "goodbye" in d.acts:
        return AgentResult(outbound=[OutboundDraft(text=d.say("you_are_welcome") + d.say("link_open_hint"))])
    if looks_like_question(turn.text) and lane_enabled(turn, "support") and d.parsed.intent not in ("form_help", "apply"):
        return AgentResult(handoff="support")
    text = d.say("link_already_sent", last4=last_four(phone)) if phone else d.say("link_already_sent_no_phone")
    return AgentResult(outbound=[OutboundDraft(text=text)])


guide_agent = with_dialogue(guide_agent)
