"""Property: every valid v1 document upcasts to a valid current document, purely and deterministically."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.models import CURRENT_SCHEMA_VERSION, SessionState
from state.upcast import upcast
from tests.conftest import examples

EPOCH_2000, EPOCH_2100 = 946_684_800, 4_102_444_800

ids = st.text(st.characters(blacklist_characters="{}|", blacklist_categories=("Cs",)), min_size=1, max_size=40)
epochs = st.one_of(
    st.integers(EPOCH_2000, EPOCH_2100), st.floats(EPOCH_2000, EPOCH_2100, allow_nan=False, allow_infinity=False)
)
lanes = st.sampled_from(["guide", "sms", "support", None])
optional_text = st.one_of(st.none(), st.just(""), st.text(max_size=40))
phone_numbers = st.from_regex(r"\+1555[0-9]{7}", fullmatch=True)
conversation_ids = st.one_of(phone_numbers, phone_numbers.map(lambda n: f"whatsapp:{n}"))


@st.composite
def messages(draw):
    message = {"from": draw(st.sampled_from(["customer", "agent", "human"])), "body": draw(st.text(max_size=200))}
    if draw(st.booleans()):
        message["ts"] = draw(epochs)  # absent: the upcaster falls back to created_at
    if draw(st.booleans()):
        message["sid"] = "SM" + draw(st.text("0123456789abcdef", min_size=32, max_size=32))
    if draw(st.booleans()):
        message["lane"] = draw(lanes)
    return message


@st.composite
def v1_documents(draw):
    """Documents of the v1 shape documented in :mod:`state.upcast` (see tests/data/session_v1.json)."""
    created_at = draw(epochs)
    doc = {
        "schema_version": 1,
        "tenant_id": draw(ids),
        "conversation_id": draw(conversation_ids),
        "messages": draw(st.lists(messages(), max_size=30)),
        "created_at": created_at,
    }
    optional = {
        "lane": lanes,
        "customer": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {}, optional={"first_name": optional_text, "last_name": optional_text, "phone": st.one_of(st.none(), phone_numbers)}
            ),
        ),
        "opted_out": st.booleans(),
        "session_token": st.one_of(st.none(), st.text(min_size=1, max_size=40)),
        "human_requested": st.booleans(),
        "turn_count": st.integers(0, 10_000),
        "updated_at": st.floats(created_at, EPOCH_2100, allow_nan=False) if created_at < EPOCH_2100 else st.just(created_at),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            doc[name] = draw(strategy)
    # Stored documents went through JSON: keep only what JSON round-trips.
    return json.loads(json.dumps(doc))


@pytest.mark.property
@settings(max_examples=examples(200), deadline=None)
@given(v1_documents())
def test_any_v1_document_upcasts_to_a_valid_current_document(doc):
    state = SessionState.model_validate(upcast(doc))
    assert state.schema_version == CURRENT_SCHEMA_VERSION
    assert (state.tenant_id, state.conversation_id) == (doc["tenant_id"], doc["conversation_id"])
    assert len(state.transcript) == len(doc["messages"])
    assert state.status == ("waiting_human" if doc.get("human_requested") else "active")
    assert (state.handoff is not None) == bool(doc.get("human_requested"))
    # What the migration writes back reads back as the same state.
    assert SessionState.model_validate_json(state.model_dump_json()) == state


@pytest.mark.property
@settings(max_examples=examples(200), deadline=None)
@given(v1_documents())
def test_upcast_is_pure_and_deterministic(doc):
    before = copy.deepcopy(doc)
    first = upcast(doc)
    assert doc == before
    assert upcast(copy.deepcopy(before)) == first
    assert upcast(first) == first  # idempotent once current
