import json
from pathlib import Path

import pytest

from state.errors import SchemaTooNewError, StateError
from state.models import CURRENT_SCHEMA_VERSION, SessionState
from state.upcast import (
    upcast,
    upcast_v1_to_v2,
    upcast_v2_to_v3,
    upcast_v3_to_v4,
    upcast_v4_to_v5,
)

DATA = Path(__file__).parents[2] / "data"


def load_v1():
    return json.loads((DATA / "session_v1.json").read_text())


def test_v1_fixture_upcasts_to_a_valid_current_document():
    doc = load_v1()
    state = SessionState.model_validate(upcast(doc))
    assert state.schema_version == CURRENT_SCHEMA_VERSION
    assert state.slots == {"first_name": "Dana", "last_name": "Whitfield"}
    assert [(e.direction, e.author) for e in state.transcript] == [
        ("inbound", "customer"),
        ("outbound", "ai"),
        ("inbound", "customer"),
    ]
    assert state.transcript[0].message_id == "SM0123456789abcdef0123456789abcdef"
    assert state.transcript[2].at.isoformat() == "2026-01-01T00:01:00+00:00"
    assert state.status == "active"
    assert state.lane == "guide"
    assert state.turn_count == 2


def load_v2():
    return json.loads((DATA / "session_v2.json").read_text())


def load_v3():
    return json.loads((DATA / "session_v3.json").read_text())


def load_v4():
    return json.loads((DATA / "session_v4.json").read_text())


@pytest.mark.parametrize(
    "upcaster, load",
    [(upcast_v1_to_v2, load_v1), (upcast_v2_to_v3, load_v2), (upcast_v3_to_v4, load_v3), (upcast_v4_to_v5, load_v4)],
)
def test_upcasters_are_pure(upcaster, load):
    doc = load()
    before = json.dumps(doc, sort_keys=True)
    upcaster(doc)
    assert json.dumps(doc, sort_keys=True) == before


def test_v2_fixture_upcasts_to_a_valid_current_document():
    doc = load_v2()
    state = SessionState.model_validate(upcast(doc))
    assert state.schema_version == CURRENT_SCHEMA_VERSION == 5
    assert state.status == "waiting_human"
    assert state.handoff.reason == "customer_request"
    assert state.handoff.requested_at.isoformat() == "2026-11-23T10:47:18.656817+00:00"
    # Direction now follows from the author, and agrees with what v2 stored.
    assert [e.direction for e in state.transcript] == [e["direction"] for e in doc["transcript"]]
    assert [e.text for e in state.transcript] == [e["text"] for e in doc["transcript"]]
    assert state.slots == doc["slots"] and state.lane_history[1].reason == "handoff"


def test_a_v2_document_never_handed_over_has_no_handoff():
    doc = load_v2() | {"human_requested_at": None, "status": "active"}
    assert SessionState.model_validate(upcast(doc)).handoff is None


def test_human_requested_becomes_waiting_human():
    doc = load_v1() | {"human_requested": True, "session_token": "tok123"}
    state = SessionState.model_validate(upcast(doc))
    assert state.status == "waiting_human"
    assert state.handoff.reason == "customer_request"
    assert state.handoff.requested_at == state.updated_at
    assert state.form_token == "tok123"


def test_current_document_is_unchanged():
    doc = SessionState.new("t1", "+15550000000").model_dump(mode="json")
    assert upcast(doc) == doc


def test_newer_schema_is_refused():
    with pytest.raises(SchemaTooNewError):
        upcast({"schema_version": CURRENT_SCHEMA_VERSION + 1})


@pytest.mark.parametrize("bad", [{}, {"schema_version": "1"}, {"schema_version": 0}, {"schema_version": 1}])
def test_broken_documents_raise_state_error(bad):
    with pytest.raises(StateError):
        upcast(bad)


def test_v3_fixture_gains_empty_notes_and_keeps_everything_else():
    doc = load_v3()
    lifted = upcast_v3_to_v4(doc)
    assert lifted == {**doc, "schema_version": 4, "notes": []}
    state = SessionState.model_validate(upcast(doc))
    assert state.notes == [] and all(e.channel is None and e.author_id is None for e in state.transcript)


def test_v4_fixture_upcasts_to_v5_with_no_language_and_an_empty_dialogue():
    """tests/data/session_v4.json was written by the v4 code (a handback after a voice question)."""
    doc = load_v4()
    assert doc["schema_version"] == 4
    state = SessionState.model_validate(upcast(doc))
    assert state.schema_version == CURRENT_SCHEMA_VERSION == 5
    assert state.language is None
    assert state.dialogue.expected is None and state.dialogue.misses == 0 and state.dialogue.refused == []
    # Everything v4 held is kept as it was.
    assert state.model_dump(mode="json", exclude={"schema_version", "language", "dialogue"}) == {
        k: v for k, v in doc.items() if k != "schema_version"
    }
    assert [e.channel for e in state.transcript][2] == "voice" and state.transcript[3].author_id == "op-maria"
