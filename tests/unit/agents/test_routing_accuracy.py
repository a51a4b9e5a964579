"""Routing accuracy on the labelled set (tests/data/routing_labelled.yaml), and the new vocabulary."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents import route
from devtools.evals.routes import (
    DEFAULT_DATA,
    LANES,
    ROUTERS,
    evaluate,
    load_labelled,
    load_tenant,
)

ACCURACY_FLOOR = 0.85
"""The deterministic router's accuracy on the whole labelled set may not fall below this."""


@pytest.fixture(scope="module")
def items():
    return load_labelled(DEFAULT_DATA)


def test_the_labelled_set_has_at_least_200_items_with_valid_lanes(items):
    assert len(items) >= 200
    assert {item.lane for item in items} == set(LANES)
    assert all(item.lane in LANES for item in items)
    assert all(item.lane_before in (None, *LANES) for item in items)
    assert {item.split for item in items} == {"dev", "test"}
    assert 0.25 <= sum(item.split == "test" for item in items) / len(items) <= 0.45
    assert len({item.item_id for item in items}) == len(items)


def test_the_deterministic_router_is_accurate_on_the_labelled_set(items):
    (report,) = evaluate(items, load_tenant(), {"deterministic": ROUTERS["deterministic"]})
    assert report.count() == len(items)
    for split in ("dev", "test", None):
        assert report.accuracy(split) >= ACCURACY_FLOOR, (split, [i.item_id for i, _ in report.misrouted(split)])


def test_the_confusion_matrix_counts_every_item(items):
    (report,) = evaluate(items, load_tenant(), {"deterministic": ROUTERS["deterministic"]})
    matrix = report.confusion()
    assert sum(sum(row.values()) for row in matrix.values()) == len(items)
    assert sum(matrix[lane][lane] for lane in LANES) == round(report.accuracy() * len(items))


def test_route_eval_command_prints_accuracy_and_the_matrix(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["route-eval", "--split", "dev", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy dev" in result.output and "expected\\predicted" in result.output
    assert '"deterministic"' in out.read_text()


# --- the vocabulary added for the labelled set ------------------------------------------


@pytest.mark.parametrize(
    "text", ["stop texting me", "please remove me from your list", "dont text me anymore", "STOP pls",
             "STOP 🛑", "no more messages", "opt out", "no me manden mas mensajes"],
)  # fmt: skip
def test_opt_outs_in_words_route_to_sms(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent, decision.reason) == ("sms", "opt_out", "match")


@pytest.mark.parametrize("text", ["stop charging my card", "cancel my policy please", "cancel please"])
def test_stop_or_cancel_about_something_else_is_not_an_opt_out(acme, new_state, make_turn, text):
    assert route(make_turn(acme, new_state(acme), text)).intent != "opt_out"


def test_an_opt_out_in_words_leaves_a_sticky_lane(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=60))
    decision = route(make_turn(acme, state, "stop texting me", now=now))
    assert (decision.lane, decision.intent) == ("sms", "opt_out")


@pytest.mark.parametrize(
    "text", ["I need help", "can someone call me", "call me back", "necesito ayuda", "hablar con alguien",
             "je veux parler à un conseiller", "falar com atendente"],
)  # fmt: skip
def test_help_in_a_sentence_and_call_requests_ask_for_a_person(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent) == ("support", "human")


@pytest.mark.parametrize(
    "text", ["i need to make a claim", "my husband passed away", "your service is terrible",
             "I've been charged twice", "change my beneficiary", "quiero hacer un reclamo"],
)  # fmt: skip
def test_claims_complaints_and_policy_changes_go_to_a_person(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent) == ("support", "human")


def test_a_claim_leaves_an_application(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=60))
    decision = route(make_turn(acme, state, "my dad died last week, who do I talk to about his policy", now=now))
    assert (decision.lane, decision.reason) == ("support", "match")


@pytest.mark.parametrize(
    "text", ["Can I get a quote?", "how do i get started", "how can i get a policy", "where do i fill out the form",
             "quot pls", "hola quiero aplicar", "quiero un seguro de vida", "je veux une assurance vie"],
)  # fmt: skip
def test_requests_to_start_route_to_the_guide(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent, decision.reason) == ("guide", "apply", "match")


@pytest.mark.parametrize(
    "text", ["can I get coverage if I have diabetes?", "How long does the application take?",
             "how much is a quote?", "cuanto cuesta el seguro", "combien ça coûte"],
)  # fmt: skip
def test_questions_about_conditions_and_prices_stay_faqs(acme, new_state, make_turn, text):
    assert route(make_turn(acme, new_state(acme), text)).lane == "support"


@pytest.mark.parametrize(
    "text", ["link pls", "the link expired", "the link isnt working", "reenviar el enlace", "renvoyez le lien"],
)  # fmt: skip
def test_more_link_requests_route_to_sms(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent) == ("sms", "resend_link")
