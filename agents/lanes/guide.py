"""The guide lane: an insurance application started over text.

The guide collects three slots, ``first_name``, ``last_name`` and ``phone``,
one question at a time, then opens a hosted form session (``form_token``) and
texts its link. Each turn it reads whatever the message offers (a name, a
number, a yes or no), whatever was asked, and then asks for the next missing
thing:

1. no first name: "What's your first and last name?"
2. no last name: "What's your last name?"
3. no phone: it offers the number the customer writes from ("Shall I text
   the link to the number ending 5432? Reply YES, or send another number.");
   a yes takes that number, a number in the message (US 10-digit or
   +E.164, any punctuation) takes that one. It never goes on without one.
4. all three: a new ``form_token`` and the link ``{public_base_url}/f/<token>``.
   A number other than the conversation's own gets the link in its own SMS
   (``to=<number>``) and the conversation gets a confirmation.

The first reply of the lane introduces ``tenant.persona``. A question the
guide cannot use (nothing collected from it, and question-shaped or one of the
tenant's FAQ) is handed to support when the tenant enabled it. Once the link
is out and the customer has the form open, the guide walks them through it
page by page from the live screen (:mod:`agents.lanes.form_guide`); before
that, it says where the link went and offers to send it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from agents.answers import is_acknowledgement, is_no, is_yes
from agents.base import AgentResult, OutboundDraft, Route, TurnInput
from agents.faq import best_faq
from agents.intents import apply_match, resend_match
from agents.lanes.form_guide import guide_from_screen
from agents.lanes.common import form_link, intent_ops, lane_enabled, sender_number, slot_op
from agents.names import ParsedName, parse_name
from agents.phone import find_phone, last_four, looks_like_number_attempt, without_phone_numbers
from agents.text import looks_like_question
from state.models import SessionState
from state.patch import PatchOp, Replace

FORM_TOKEN_BYTES = 16
"""Random bytes in a form token (``secrets.token_urlsafe``; 22 characters)."""

INTRO = "Hi! I'm {persona} and I can help you apply by text. "
INTRO_NAMED = "Hi {first}! I'm {persona}. "
THANKS = "Thanks, {first}! "
ASK_FULL_NAME = "What's your first and last name?"
ASK_LAST_NAME = "What's your last name?"
OFFER_OWN_NUMBER = "Shall I text the link to the number ending {last4}? Reply YES, or send another number."
ASK_NUMBER = "What number should I text the link to?"
ASK_NUMBER_AFTER_NO = "No problem. What number should I text the link to?"
BAD_NUMBER = "That number doesn't look right. Please send a 10-digit US number, or one starting with +."
BAD_NUMBER_OWN = " Or reply YES to use the number ending {last4}."
LINK_HERE = "Here's your application link: {link}"
LINK_TO_OTHER = "Hi {first}, here's your {display_name} application link: {link}"
LINK_TO_OTHER_UNNAMED = "Hi, here's your {display_name} application link: {link}"
LINK_SENT_ELSEWHERE = "I texted the application link to the number ending {last4}."
LINK_ALREADY_SENT = "I sent your application link to the number ending {last4}. Reply RESEND to get it again."
LINK_ALREADY_SENT_NO_PHONE = "I sent your application link earlier. Reply RESEND to get it again."
LINK_AGAIN = "Here it is again: {link}"
YOU_ARE_WELCOME = "You're welcome! Reply RESEND if you need the link again."

NAME_SLOTS = ("first_name", "last_name")


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
    turn: TurnInput, phone: str | None, first: str | None, link: str, lead: str, here_text: str
) -> list[OutboundDraft]:
    """Return the messages that put ``link`` in the customer's hands.

    To the conversation itself when ``phone`` is its own number (and the
    channel can show a link); otherwise an SMS to ``phone`` plus a
    confirmation, starting with ``lead``, in the conversation.
    """
    if phone is None or (phone == sender_number(turn) and turn.channel != "voice"):
        return [OutboundDraft(text=lead + here_text.format(link=link))]
    link_text = LINK_TO_OTHER.format(first=first, display_name=turn.tenant.display_name, link=link)
    if not first:
        link_text = LINK_TO_OTHER_UNNAMED.format(display_name=turn.tenant.display_name, link=link)
    return [
        OutboundDraft(text=link_text, to=phone),
        OutboundDraft(text=lead + LINK_SENT_ELSEWHERE.format(last4=last_four(phone))),
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


def _after_link(turn: TurnInput, form_token: str) -> AgentResult:
    """The form link is out: send it again, hand a question to support, guide from the screen, or say where it went.

    With the tenant's form open on the customer's screen (or on a call, where
    the caller needs to hear what to do), :func:`guide_from_screen` answers.
    """
    slots = turn.state.slots
    phone = slots.get("phone")
    if resend_match(turn.text) is not None:
        link = form_link(turn.public_base_url, form_token)
        return AgentResult(outbound=deliver_link(turn, phone, slots.get("first_name"), link, "", LINK_AGAIN))
    guiding = turn.tenant.form is not None and (turn.screen is not None or turn.channel == "voice")
    # While guiding, "what now?" is for the guide; only an FAQ question goes to support.
    asks_support = best_faq(turn.text, turn.tenant) is not None if guiding else is_question_for_support(turn)
    if asks_support and lane_enabled(turn, "support"):
        return AgentResult(handoff="support")
    if guiding:
        return guide_from_screen(turn, turn.tenant.form, turn.screen, slots.get("first_name"))
    if is_acknowledgement(turn.text):
        return AgentResult(outbound=[OutboundDraft(text=YOU_ARE_WELCOME)])
    text = LINK_ALREADY_SENT.format(last4=last_four(phone)) if phone else LINK_ALREADY_SENT_NO_PHONE
    return AgentResult(outbound=[OutboundDraft(text=text)])


def _ask_for_phone(turn: TurnInput, said_no: bool) -> str:
    own = sender_number(turn)
    if looks_like_number_attempt(turn.text):
        return BAD_NUMBER + (BAD_NUMBER_OWN.format(last4=last_four(own)) if own else "")
    if said_no or own is None:
        return ASK_NUMBER_AFTER_NO if said_no else ASK_NUMBER
    return OFFER_OWN_NUMBER.format(last4=last_four(own))


def guide_agent(turn: TurnInput, route: Route, *, make_form_token: Callable[[], str] = new_form_token) -> AgentResult:
    """Collect the applicant's name and phone, then send the hosted form link.

    Args:
        turn: the turn; reads ``state.slots``, ``state.form_token``,
            ``state.transcript`` (to introduce the persona once), the
            sender's address, ``tenant.persona``, ``tenant.display_name``
            and ``public_base_url``.
        route: the router's decision (the guide acts on the text, whatever
            the intent).
        make_form_token: returns a new form token; tests pass a fixed one.

    Returns:
        ``add`` ops on ``/slots/first_name``, ``/slots/last_name``,
        ``/slots/phone``; ``replace`` on ``/form_token`` and ``/intent``
        (``apply``); one reply, or the link SMS plus a confirmation; or a
        handoff to ``support`` for a question.
    """
    state = turn.state
    if state.form_token:
        return _after_link(turn, state.form_token)

    slots = dict(state.slots)
    names_known = all(slots.get(k) for k in NAME_SLOTS)
    ops: list[PatchOp] = []

    name = parse_name(without_phone_numbers(turn.text), expecting_name=not names_known)
    name_given = False
    if name is not None:
        for key, value in merge_name(slots, name).items():
            ops.append(slot_op(key, value))
            slots[key] = value
            name_given = True

    said_yes, said_no = is_yes(turn.text), is_no(turn.text)
    phone = find_phone(turn.text)
    if phone is None and said_yes and names_known and not slots.get("phone"):
        phone = sender_number(turn)
    if phone is not None and slots.get("phone") != phone:
        ops.append(slot_op("phone", phone))
        slots["phone"] = phone

    answered = bool(ops) or said_yes or said_no
    if not answered and is_question_for_support(turn) and lane_enabled(turn, "support"):
        return AgentResult(handoff="support")

    ops += intent_ops(state, "apply")
    first = slots.get("first_name")
    persona = turn.tenant.persona
    if is_first_in_lane(state):
        lead = INTRO_NAMED.format(first=first, persona=persona) if first else INTRO.format(persona=persona)
    else:
        lead = THANKS.format(first=first) if name_given and first else ""

    if not first:
        return AgentResult(patch=ops, outbound=[OutboundDraft(text=lead + ASK_FULL_NAME)])
    if not slots.get("last_name"):
        return AgentResult(patch=ops, outbound=[OutboundDraft(text=lead + ASK_LAST_NAME)])
    if not slots.get("phone"):
        return AgentResult(patch=ops, outbound=[OutboundDraft(text=lead + _ask_for_phone(turn, said_no))])

    token = make_form_token()
    ops.append(Replace(path="/form_token", value=token))
    link = form_link(turn.public_base_url, token)
    lead = lead or THANKS.format(first=first)
    outbound = deliver_link(turn, slots["phone"], first, link, lead, LINK_HERE)
    return AgentResult(patch=ops, outbound=outbound)
