"""People's names in customers' texts.

Three shapes are understood, tried sentence by sentence:

* **explicit**: "my name is Dana Smith", "call me Dana", "name: Dana Smith";
  up to three name words are taken, stopping at the first word that is not
  a name ("My name is Dana and I want to apply" gives Dana).
* **introduced**: "I'm Dana", "it's dana", "this is Dana Smith" (Spanish
  "soy …", French "c'est …"); the rest of the clause (up to a comma or an
  "and") must be one to three name words, none of them a common word
  ("I'm interested" and "it's expensive" are not names; "Hi I'm Dana
  Whitfield, dana@… " gives Dana Whitfield).

Spanish, French and Portuguese explicit forms ("me llamo …", "mi nombre es
…", "je m'appelle …") are understood too.
* **bare**: "Dana Smith" or "smith", accepted only when the caller is waiting
  for a name, under the same rule as *introduced*.

Names are title-cased when typed all in one case (``"o'brien"`` gives
``"O'Brien"``) and kept as typed otherwise (``"McDonald"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from agents.text import STOPWORDS

MAX_NAME_WORDS = 3
MAX_NAME_CHARS = 40
"""Longest first or last name kept, in characters."""

_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['\-][^\W\d_]+)*$")
_SENTENCES = re.compile(r"[.!?;\n]+|\s[-–—]+\s")
_EXPLICIT = re.compile(
    r"\b(?:my\s+name\s+is|my\s+name's|the\s+name\s+is|name\s+is|name's|call\s+me|name\s*:|"
    r"me\s+llamo|mi\s+nombre\s+es|je\s+m'appelle|meu\s+nome\s+[ée])\s*(.*)$",
    re.IGNORECASE,
)
_INTRODUCED = re.compile(r"^(?:i'm|i\s+am|im|it's|it\s+is|its|this\s+is|soy|c'est|je\s+suis|sou)\s+(.*)$", re.IGNORECASE)
_CLAUSE_END = re.compile(r",|\s(?:and|but|&|y|pero|et)\s", re.IGNORECASE)
"""Where an introduction's clause ends: "I'm Dana Whitfield, and I want …" gives "Dana Whitfield"."""
_HERE = re.compile(r"^(.+?)\s+(?:here|aqu[ií])$", re.IGNORECASE)
"""A signed message: "Jack Reed here"."""
_FIRST_AND_LAST = re.compile(
    r"\bfirst\s+name\s*(?:is|:)?\s*(?P<first>[^\W\d_][\w'\-]*)[\s,]*(?:and\s+)?(?:my\s+)?"
    r"(?:last\s+name|surname)\s*(?:is|:)?\s*(?P<last>[^\W\d_][\w'\-]*)",
    re.IGNORECASE,
)

LEADING_FILLERS = frozenset(
    "hi hello hey hiya yo ok okay sure yes yeah yep so well oh um uh sorry no nope actually oops hola bonjour".split()
)
TRAILING_FILLERS = frozenset("here please thanks thank thx ty".split())

NOT_NAMES = STOPWORDS | frozenset(
    """
    able account add address again ago agent ahead alright already anyone anything
    appointment apply application asap assist available awesome back bad be bill
    billing busy buy call calling cancel car card care change chat check claim
    clinic cool cost could cover coverage covered day dear details did doctor done
    eh email end enroll evening exam expensive fine first form free friend get give
    glad go going good great guess happy health hello help hey hi hmm hold home
    hour hours human idea info information insurance interested just know last
    later life like link looking lot love mail maybe medical message mind minute
    mobile morning name need new nice night no nope not number ok okay online open
    opt over park parking pay person phone plan policy premium price question
    quick quote ready real really reply rep representative right same see send
    service set should sign someone soon sorry start stop sure talk tell term test
    text thank thanks thing think time today tomorrow trying understand unsure
    want wanted wants way week welcome well whatever why wife husband work
    wrong yeah yep yet yup
    monday tuesday wednesday thursday friday saturday sunday january february
    march april june july august september october november december
    tired confused married single retired pregnant sick calling writing texting
    asking wondering curious trying still also here there back done finished
    """.split()
)
"""Words that are (almost) never a person's name in these conversations."""
SURNAME_WORDS = frozenset("park long price bill rich rose hope grace may ward bell stone hill young green brown "
                          "white black king gray grey rush love day".split())
"""Common words that are also common surnames (or first names when capitalised): a name only after a first
name or when written capitalised ("Leo Park", "Park"), never alone in lower case ("park"). Not in
:data:`NOT_NAMES`, so a name already read ("Park") is never dropped as a common word."""
NOT_NAMES = NOT_NAMES - SURNAME_WORDS


NameShape = Literal["explicit", "introduced", "bare"]


@dataclass(frozen=True)
class ParsedName:
    """A name found in a message.

    Attributes:
        first: the first name word.
        last: the remaining words (up to two), or ``None`` when one word was given.
        shape: how it was written: ``explicit`` ("my name is …"),
            ``introduced`` ("I'm …") or ``bare``.
    """

    first: str
    last: str | None = None
    shape: NameShape = "bare"


def _clean_token(token: str) -> str:
    return token.strip(".,!?;:\"()[]{}").replace("\u2019", "'")


def _tokens(text: str) -> list[str]:
    return [t for t in (_clean_token(t) for t in re.split(r"[\s,]+", text)) if t]


def _title(word: str) -> str:
    if word.islower() or word.isupper():
        return re.sub(r"[^\W\d_]+", lambda m: m.group(0).capitalize(), word.lower())
    return word


def _strip_fillers(tokens: list[str]) -> list[str]:
    while tokens and tokens[0].casefold() in LEADING_FILLERS:
        tokens = tokens[1:]
    while tokens and tokens[-1].casefold() in TRAILING_FILLERS:
        tokens = tokens[:-1]
    return tokens


def _is_name_word(token: str) -> bool:
    return bool(_NAME_WORD.match(token)) and len(token) <= MAX_NAME_CHARS


_ADJECTIVE_ENDING = re.compile(r"(?:able|ible|ous|ing|ful|ive|less|ish|ic|ed|ly)$")
"""Endings of the adjectives and participles that follow "this is"/"it's" ("unacceptable", "annoying")."""


def _common_word(token: str, position: int) -> bool:
    """Whether ``token`` is a common word rather than a name; a surname that is also a word
    (:data:`SURNAME_WORDS`: "Park", "Long", "Price") counts as a name after a first name or when written
    capitalised. A lower-case word of six letters or more with an adjective's ending ("ridiculous") is never a name."""
    folded = token.casefold()
    if token.islower() and len(token) >= 6 and _ADJECTIVE_ENDING.search(folded):
        return True
    if folded in SURNAME_WORDS:
        return not (position > 0 or _is_title_case(token))
    return folded in NOT_NAMES


def _whole_name(tokens: list[str]) -> list[str] | None:
    """Return ``tokens`` if all of them (1–3) are name words and none a common word."""
    if not 1 <= len(tokens) <= MAX_NAME_WORDS:
        return None
    if all(_is_name_word(t) and not _common_word(t, i) for i, t in enumerate(tokens)):
        return tokens
    return None


def _leading_name(tokens: list[str]) -> list[str] | None:
    """Return the name words at the start of ``tokens`` (explicit shape), or ``None``."""
    taken: list[str] = []
    for token in tokens:
        if len(taken) == MAX_NAME_WORDS or not _is_name_word(token):
            break
        if token.casefold() in STOPWORDS or token.casefold() in TRAILING_FILLERS:
            break
        if _common_word(token, len(taken)):  # "call me back", "my name is Dana and phone …"
            break
        taken.append(token)
    return taken or None


def _as_name(tokens: list[str], shape: NameShape) -> ParsedName:
    first = _title(tokens[0])
    last = " ".join(_title(t) for t in tokens[1:]) or None
    return ParsedName(first, last, shape)


def parse_name(text: str, expecting_name: bool) -> ParsedName | None:
    """Return the person's name written in ``text``, or ``None``.

    Args:
        text: the turn's text, ideally with phone numbers already removed
            (see :func:`agents.phone.without_phone_numbers`).
        expecting_name: whether the conversation is waiting for a name; only
            then is a bare "Dana Smith" or "Smith" taken as one.

    Returns:
        A :class:`ParsedName`; ``last`` is ``None`` when one word was given.
    """
    both = _FIRST_AND_LAST.search(text)
    if both and all(_is_name_word(w) for w in both.group("first", "last")):
        return ParsedName(_title(both.group("first")), _title(both.group("last")), "explicit")
    sentences = [s.strip() for s in _SENTENCES.split(text) if s.strip()]
    for sentence in sentences:
        explicit = _EXPLICIT.search(sentence)
        if explicit:
            tokens = _leading_name(_tokens(_CLAUSE_END.split(explicit.group(1), maxsplit=1)[0]))
            if tokens:
                return _as_name(tokens, "explicit")
            continue
        for clause in _CLAUSE_END.split(sentence.replace("\u2019", "'")):
            found = _introduction(clause, several_parts=len(sentences) > 1 or clause.strip() != sentence)
            if found is not None:
                return found
        if expecting_name:
            name = _whole_name(_strip_fillers(_tokens(sentence)))
            if name:
                return _as_name(name, "bare")
    return None


def _is_title_case(token: str) -> bool:
    return token[:1].isupper() and not token.isupper() and token[1:2].islower()


def _introduction(clause: str, several_parts: bool) -> ParsedName | None:
    """Return the name one clause introduces: "I'm Dana", "Jack Reed here", or (in a longer message) "Chris Park"."""
    raw = clause.split()
    while raw and _clean_token(raw[0]).casefold() in LEADING_FILLERS:
        raw = raw[1:]
    if not raw:
        return None
    joined = " ".join(raw)
    introduced = _INTRODUCED.match(joined) or _HERE.match(joined)
    if introduced:
        rest = _strip_fillers(_tokens(introduced.group(1)))
        name = _whole_name(rest)
        if name is None:
            # "im tyler brooks want to apply": a first and last name, then the rest of the sentence
            lead = _leading_name(rest)
            if lead is not None and 2 <= len(lead) < len(rest) and _common_word(rest[len(lead)], len(lead)):
                name = lead
        return _as_name(name, "introduced") if name else None
    tokens = [_clean_token(t) for t in raw]
    if several_parts and 2 <= len(tokens) <= MAX_NAME_WORDS and all(_is_title_case(t) for t in tokens):
        name = _whole_name(tokens)
        return _as_name(name, "introduced") if name else None
    return None
