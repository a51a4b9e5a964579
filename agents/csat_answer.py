"""Reading a customer's answer to the CSAT survey (pure).

"4", "five", "4 stars", "4/5", "4 out of 5", "I'd give it a 4!", "⭐⭐⭐⭐" are
scores; anything else ("4 more questions", "yes", a new question) is not, and
goes to the lanes as an ordinary message.
"""

from __future__ import annotations

import re

WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_SCORE = r"(?P<score>[1-5]|one|two|three|four|five)"
_ANSWER = re.compile(
    r"^(?:(?:i(?:'d| would)? (?:say|give (?:it|you|you guys|them)?)|it(?:'s| is| was)|a|rating:?|score:?)\s+)*"
    + _SCORE
    + r"(?:\s*(?:/\s*5|out of (?:5|five)|stars?|\*|points?))?(?:\s*(?:thanks|thank you|thx))?$"
)


def parse_score(text: str) -> int | None:
    """The 1–5 score ``text`` gives, or ``None`` when it is not (only) a score.

    Case, surrounding spaces and trailing punctuation are ignored; a message of
    one to five stars (``⭐``/``★``) is that many.
    """
    cleaned = re.sub(r"[\s.!,]+$", "", text.strip().casefold())
    cleaned = re.sub(r"^[\s.!,]+", "", cleaned).replace("\u2019", "'")
    stars = cleaned.replace(" ", "")
    if stars and len(stars) <= 5 and set(stars) <= {"⭐", "★"}:
        return len(stars)
    match = _ANSWER.fullmatch(re.sub(r"\s+", " ", cleaned))
    if match is None:
        return None
    raw = match.group("score")
    return int(raw) if raw.isdigit() else WORDS[raw]
