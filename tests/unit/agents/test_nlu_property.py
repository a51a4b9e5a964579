"""Any text at all is understood without an error, and the parse keeps its contract (hypothesis, derandomized)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents.nlu import ACTS, INTENTS, understand
from agents.nlu.language import UNDETERMINED
from state.tenant_config import parse_tenants_yaml

from .conftest import EXAMPLE_TENANTS

ACME = next(t for t in parse_tenants_yaml(EXAMPLE_TENANTS.read_text()).tenants if t.tenant_id == "acme-insurance")
PIECES = st.sampled_from(
    ["I'm Dana", "555-123-4567", "dana@example.com", "born 3/4/1985", "5'9", "500k", "yes", "no", "STOP", "¿qué?",
     "not John", "actually", "😀", "\u200b", " ", ",", "-", "it's", "Whitfield", "quiero", "help", "$", "@", "'"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=200), st.lists(PIECES, max_size=12).map(" ".join)))
@example("")
@example("@@@ 555 @ example.com")
@example("I'm dana@example.com")
def test_any_text_is_understood_within_the_contract(text):
    u = understand(text, ACME, languages=("en", "es"))
    assert u.intent in INTENTS
    assert 0.0 <= u.confidence <= 1.0 and 0.0 <= u.language_confidence <= 1.0
    assert u.language == UNDETERMINED or len(u.language) == 2
    assert set(u.acts) <= set(ACTS)
    assert all(p.startswith("+") for p in u.entities.phones)
    for name in (u.entities.first_name, u.entities.last_name):
        assert name is None or "@" not in name
