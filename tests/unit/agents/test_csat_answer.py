"""Reading a CSAT answer: scores in the ways people write them; everything else is a message."""

import pytest

from agents.csat_answer import parse_score


@pytest.mark.parametrize("text, score", [
    ("4", 4), (" 5. ", 5), ("five", 5), ("Five stars", 5), ("4 stars", 4), ("1 star", 1), ("4/5", 4),
    ("4 out of 5", 4), ("I'd give it a 4!", 4), ("it was a 3", 3), ("3 thanks", 3), ("⭐⭐⭐⭐", 4), ("★★", 2),
])
def test_scores(text, score):
    assert parse_score(text) == score


@pytest.mark.parametrize("text", ["0", "6", "10", "yes", "4 more questions", "what are your hours", "", "⭐⭐⭐⭐⭐⭐", "STOP"])
def test_not_scores(text):
    assert parse_score(text) is None
